"""`siyu worker`: a reach worker process (any number may run against one database)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer

from siyu.core.config import get_settings
from siyu.core.db import Database


def worker_command(
    database_url: str | None = typer.Option(
        None, "--database-url", help="Database (default: SIYU_DATABASE_URL)."
    ),
    once: bool = typer.Option(
        False, "--once", help="Send what is due now, read open WeCom mass-message results, then exit."
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Messages claimed at once."),
) -> None:
    """Claim due messages from the database and send them, and run the journey engine, until stopped
    (SIGTERM or Ctrl-C)."""
    from siyu.reach.tasks import worker_from_settings

    settings = get_settings()
    database = Database(database_url or settings.database_url, pool_size=3)
    try:
        worker = worker_from_settings(database)
        if batch_size:
            worker.batch_size = batch_size
        # the journey engine runs beside the reach worker: the journeys' sends land in this outbox
        from siyu.journeys.tasks import BackgroundEngine, JourneyEngine

        engine = JourneyEngine(database)
        if once:
            steps = engine.run_once()
            claimed = worker.drain()
            typer.echo(f"journey steps {steps}; claimed {claimed}: {worker.stats.by_status}")
            polled = worker.poll_results()
            if polled is not None:
                typer.echo(
                    f"WeCom mass messages polled {polled.batches}: delivered {polled.delivered}, "
                    f"failed {polled.failed}, waiting {polled.waiting}, refused {len(polled.failures)}"
                )
            return
        stop = threading.Event()

        def _stop(signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        typer.echo(
            f"reach worker {worker.name} on {database.engine.url.render_as_string(hide_password=True)}"
        )
        journeys = BackgroundEngine(engine)
        journeys.start()
        try:
            worker.run(stop)
        finally:
            journeys.close()
    finally:
        database.dispose()


def register(app: typer.Typer) -> None:
    app.command("worker")(worker_command)
