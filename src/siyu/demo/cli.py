"""`siyu demo` (build or reuse the demo brand in an embedded SQLite file, then serve it) and `siyu serve`.

`make demo` runs `siyu demo`: one command from a fresh clone to a running app with data and logins.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import typer

from siyu.core import migrate
from siyu.core.config import get_settings
from siyu.core.db import Database, set_database
from siyu.core.errors import ValidationFailed
from siyu.demo import generator, service

APP_FACTORY = "siyu.web.app:create_served_app"  # with the in-process reach worker


def default_demo_url() -> str:
    """The demo's embedded database: `<data_dir>/demo.db` (var/demo.db by default)."""
    return f"sqlite:///{get_settings().data_dir / 'demo.db'}"


def _sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(url[len(prefix) :]) if url.startswith(prefix) and url != prefix + ":memory:" else None


def _remove_sqlite(url: str) -> None:
    path = _sqlite_path(url)
    if path is None:
        raise ValidationFailed(
            "--rebuild only removes an embedded SQLite demo file",
            where="--database-url",
            hint="for a server database, drop and recreate it yourself, or use another --slug",
        )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _sample_phone(directory: Path) -> str:
    """A member's phone number from the generated file, to try the lookup API with."""
    try:
        with (directory / generator.CUSTOMERS_FILE).open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("手机号", "").isdigit() and len(row["手机号"]) == 11:
                    return row["手机号"]
    except OSError:
        pass
    return "<11-digit phone from customers.csv>"


def print_logins(build: service.DemoBuild, *, host: str, port: int, directory: Path) -> None:
    base = f"http://{host}:{port}"
    owner, staff = build.owner, build.staff
    lines = [
        "",
        f"  茶山集 ChaShanJi demo — {base}",
        f"  owner login:  {owner.email} / {owner.password}",
        f"  staff login:  {staff.email} / {staff.password}  (sees only assigned customers, masked phones)",
        f"  API token:    {build.api_token}",
        f'  try:          curl -H "Authorization: Bearer {build.api_token}" \\',
        f'                  "{base}/api/customers/lookup?phone={_sample_phone(directory)}"',
        f"  API docs:     {base}/api/docs",
        f"  data window:  {generator.WINDOW_START} … {generator.WINDOW_END} (fixed; demo 'today' is "
        f"{generator.ANCHOR_DATE})",
        "",
    ]
    typer.echo("\n".join(lines))


def serve(*, host: str, port: int, workers: int = 1, database_url: str | None = None) -> None:
    """Run the web app with uvicorn (every worker builds the app from settings)."""
    import uvicorn

    if database_url:
        # workers are separate processes that read settings: the environment is how they learn the URL
        os.environ["SIYU_DATABASE_URL"] = database_url
        get_settings.cache_clear()
        set_database(None)
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level="info")


def demo_command(
    customers: int = typer.Option(50_000, "--customers", help="How many people the brand has."),
    seed: int = typer.Option(7, "--seed", help="Random seed: the same seed gives the same brand."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Database to build into (default: sqlite file <data_dir>/demo.db)."
    ),
    slug: str = typer.Option(service.DEFAULT_SLUG, "--slug", help="Workspace slug of the demo."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Delete the demo SQLite file and build it again."),
    no_serve: bool = typer.Option(
        False, "--no-serve", help="Build (or reuse) and print logins, do not serve."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on."),
    port: int = typer.Option(8000, "--port", help="Port to serve on."),
) -> None:
    """Build the demo brand (or reuse it), print how to log in, then serve the app."""
    url = database_url or default_demo_url()
    if rebuild:
        _remove_sqlite(url)
    sqlite_file = _sqlite_path(url)
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(url)
    database = Database(url)
    directory = get_settings().data_dir / "demo" / slug
    try:
        if service.find_demo(database, slug=slug) is not None:
            typer.echo(f"reusing the demo workspace {slug!r} in {url} (--rebuild to start over)")
            build = service.open_demo(database, slug=slug)
        else:
            typer.echo(f"building the demo brand ({customers} customers, seed {seed}) into {url}")
            build = service.build_demo(
                database, directory=directory, customers=customers, seed=seed, slug=slug, report=typer.echo
            )
            typer.echo(f"built in {build.seconds['total']:.1f}s")
    finally:
        database.dispose()
    print_logins(build, host=host, port=port, directory=directory)
    if not no_serve:
        serve(host=host, port=port, database_url=url)


def serve_command(
    host: str | None = typer.Option(None, "--host", help="Address to bind (default: SIYU_HOST, 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port (default: SIYU_PORT, 8000)."),
    workers: int = typer.Option(1, "--workers", help="uvicorn worker processes."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Database (default: SIYU_DATABASE_URL)."
    ),
) -> None:
    """Serve the web app and API with uvicorn."""
    settings = get_settings()
    serve(host=host or settings.host, port=port or settings.port, workers=workers, database_url=database_url)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
    app.command("serve")(serve_command)
