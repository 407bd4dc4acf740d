"""Generate an Alembic migration from the difference between the models and the migrated schema.

Runs against a scratch SQLite database migrated to head, so it never touches a real one.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from siyu.core import migrate


def main() -> int:
    message = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None
    if not message:
        print('usage: make migration m="what changed"')
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'scratch.db'}"
        migrate.upgrade(url)
        command.revision(migrate.alembic_config(url), message=message, autogenerate=True)
    print("review the new file under src/siyu/migrations/versions/, then run `make format`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
