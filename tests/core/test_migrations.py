"""Models and migrations must not differ: a model change without a migration fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from siyu.core.db import Database
from siyu.models import Base


def test_models_match_migrations(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ; run `make migration m='…'`:\n{diff}"


def test_downgrade_and_upgrade_roundtrip(tmp_path) -> None:
    from siyu.core import migrate

    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
    db = Database(url)
    with db.engine.connect() as conn:
        tables = set(db.engine.dialect.get_table_names(conn))
    db.dispose()
    assert set(Base.metadata.tables) <= tables
