"""`siyu worker`: a reach worker process (any number may run against one database), with the journey
engine and the scheduler beside it; `siyu schedule status`: the scheduler's jobs."""

from __future__ import annotations

import signal
import threading
from datetime import datetime
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
    from siyu.reach.tasks import background_scheduler, scheduler_for, worker_from_settings

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
            ran = scheduler_for(database).run_due() if settings.schedule_enabled else []
            typer.echo(f"scheduled jobs run {len(ran)}, failed {sum(not o.ok for o in ran)}")
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
        scheduler = background_scheduler(database)
        if scheduler is not None:
            scheduler.start()
        try:
            worker.run(stop)
        finally:
            if scheduler is not None:
                scheduler.close()
            journeys.close()
    finally:
        database.dispose()


schedule_app = typer.Typer(help="The worker's scheduled jobs.", no_args_is_help=True)


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


@schedule_app.command("status")
def schedule_status(
    workspace: str | None = typer.Option(None, "--workspace", help="Workspace slug (default: every one)."),
) -> None:
    """Print every job: workspace, last run, duration, result, next run, last error (tab-separated)."""
    from siyu.core import schedule
    from siyu.core.db import get_database
    from siyu.workspaces import service as workspaces

    with get_database().reader() as session:
        workspace_id = workspaces.get_workspace_by_slug(session, slug=workspace).id if workspace else None
        slugs = {w.id: w.slug for w in workspaces.list_workspaces(session)}
        jobs = schedule.statuses(session, workspace_id=workspace_id)
    if not jobs:
        typer.echo("no scheduled jobs yet: they appear when a worker (siyu worker, siyu serve) starts")
        return
    typer.echo("job\tworkspace\tschedule\tlast run\tduration\tresult\tnext run\tlast error")
    for job in jobs:
        duration = f"{job.last_duration_ms} ms" if job.last_duration_ms is not None else "-"
        result = "running" if job.running else (job.last_status or "never run")
        if job.last_status == "ok" and job.last_result:
            result = f"ok: {job.last_result}"
        error = job.last_error or "-"
        if job.last_error and job.failures == 0:
            error = f"(before) {error}"
        typer.echo(
            "\t".join(
                [
                    job.name,
                    slugs.get(job.workspace_id, str(job.workspace_id)),
                    job.schedule,
                    _when(job.last_started_at),
                    duration,
                    result,
                    _when(job.next_run_at),
                    error.replace("\n", " "),
                ]
            )
        )


def register(app: typer.Typer) -> None:
    app.command("worker")(worker_command)
    app.add_typer(schedule_app, name="schedule")
