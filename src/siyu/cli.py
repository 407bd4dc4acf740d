"""The `siyu` command line. Each domain adds its commands from its own `cli.py` (a `register(app)`)."""

from __future__ import annotations

import importlib

import typer

from siyu.core.errors import SiyuError

app = typer.Typer(
    help="siyu (私域): the customer pool of a brand, from the command line.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

# Domains whose `cli` module has `register(app: typer.Typer)`.
DOMAINS = (
    "workspaces",
    "auth",
    "channels",
    "customers",
    "segments",
    "ingest",
    "demo",
    "web",
    "clv",
    "rfm",
    "lifecycle",
    "wecom",
    "coupons",
    "membership",
    "reach",
    "livecodes",
    "content",
    "referrals",
    "broadcasts",
    "communities",
    "tags",
    "journeys",
    "metrics",
    "analytics",
)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from siyu.core import migrate
    from siyu.core.config import get_settings

    migrate.upgrade(get_settings().database_url, revision)
    typer.echo(f"database at {revision}")


def _register_domains() -> None:
    for domain in DOMAINS:
        name = f"siyu.{domain}.cli"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(app)


_register_domains()


def main() -> None:
    """Entry point: user-facing errors print their message and exit 2, without a traceback."""
    try:
        app(standalone_mode=False)
    except SiyuError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None
    except (typer.Exit, SystemExit) as exc:
        raise SystemExit(getattr(exc, "exit_code", getattr(exc, "code", 0))) from None
    except typer.Abort:
        raise SystemExit(1) from None
    except Exception as exc:
        # usage errors of typer's bundled click: shown as click would, with their exit code
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        raise
