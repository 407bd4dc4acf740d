"""`siyu metrics …`: every metric as JSON, computed on the store or, with `--engine spark`, by the same
statements on Apache Spark over a Parquet export (docs/analytics-engines.md)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import typer
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.service import Actor
from siyu.core.config import get_settings
from siyu.core.db import get_database
from siyu.core.errors import ValidationFailed
from siyu.metrics import service as metrics
from siyu.overview import service as overview
from siyu.workspaces import service as workspaces

metrics_app = typer.Typer(
    help="The metrics (docs/metrics.md) as JSON, on the store or on Spark over a Parquet export.",
    no_args_is_help=True,
)

WORKSPACE = typer.Option(None, "--workspace", help="Workspace slug (default: the only one).")
ENGINE = typer.Option("store", "--engine", help="store (the database) or spark (over --parquet).")
PARQUET = typer.Option(None, "--parquet", help="The export's folder or URL (siyu analytics export).")
MASTER = typer.Option(
    None, "--spark-master", help="local[2] or sc://host:15002 (default: SIYU_SPARK_MASTER)."
)
START = typer.Option(
    ..., "--start", help="Window start: a date (midnight in the workspace's zone) or ISO time."
)
END = typer.Option(..., "--end", help="Window end (exclusive), as --start.")


@dataclasses.dataclass(frozen=True)
class Engine:
    name: str
    parquet: str | None
    master: str | None
    workspace: str | None


@contextmanager
def _reading(engine: Engine) -> Iterator[tuple[Session, Actor]]:
    """A read-only session on the chosen engine and the actor the metrics run as."""
    if engine.name == "store":
        with get_database().reader() as session:
            found = workspaces.workspace_for_command(session, slug=engine.workspace)
            yield session, auth.command_line_actor(session, workspace_id=found.id)
        return
    if engine.name != "spark":
        raise ValidationFailed(f"unknown engine {engine.name!r}", where="--engine", hint="store or spark")
    if engine.parquet is None:
        raise ValidationFailed("--engine spark reads an export", where="--parquet", hint="--parquet DIR")
    from siyu.analytics import service as analytics

    settings = get_settings()
    master = engine.master or settings.spark_master
    analytics.spark_session(master, conf=settings.spark_conf)
    store = analytics.SparkStore(engine.parquet, master=master)
    if engine.workspace and engine.workspace != store.manifest.workspace_slug:
        raise ValidationFailed(
            f"the export is of {store.manifest.workspace_slug!r}, not {engine.workspace!r}",
            where="--workspace",
        )
    try:
        with store.reader() as session:
            yield session, store.actor()
    finally:
        store.dispose()


def _moment(text: str, *, zone: ZoneInfo, where: str) -> datetime:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=zone)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a date or time", where=where, hint="2026-06-01") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _day(text: str, *, where: str) -> date:
    try:
        return date.fromisoformat(text if len(text) == 10 else f"{text}-01")
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a date", where=where, hint="2026-06-01 or 2026-06") from None


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value == float("inf"):
        return None
    return value


def _run(engine: Engine, compute: Callable[[Session, Actor, ZoneInfo], Any]) -> None:
    with _reading(engine) as (session, actor):
        zone = ZoneInfo(workspaces.get_workspace(session, workspace_id=actor.workspace_id).timezone)
        result = compute(session, actor, zone)
    typer.echo(json.dumps(_plain(result), ensure_ascii=False, indent=2))


@metrics_app.command("repurchase")
def repurchase_command(
    start: str = START,
    end: str = END,
    workspace: str | None = WORKSPACE,
    engine: str = ENGINE,
    parquet: str | None = PARQUET,
    spark_master: str | None = MASTER,
) -> None:
    """Repurchase rate (复购率) and the intervals between purchases."""
    _run(
        Engine(engine, parquet, spark_master, workspace),
        lambda s, a, z: metrics.repurchase(
            s, actor=a, start=_moment(start, zone=z, where="--start"), end=_moment(end, zone=z, where="--end")
        ),
    )


@metrics_app.command("share")
def share_command(
    start: str = START,
    end: str = END,
    workspace: str | None = WORKSPACE,
    engine: str = ENGINE,
    parquet: str | None = PARQUET,
    spark_master: str | None = MASTER,
) -> None:
    """The private domain's share of GMV and its buyers' purchase frequency against the others."""
    _run(
        Engine(engine, parquet, spark_master, workspace),
        lambda s, a, z: metrics.private_domain_share(
            s, actor=a, start=_moment(start, zone=z, where="--start"), end=_moment(end, zone=z, where="--end")
        ),
    )


@metrics_app.command("roi")
def roi_command(
    start: str = START,
    end: str = END,
    attribution: str = typer.Option("last_touch", "--attribution", help="first_touch or last_touch."),
    window_days: int = typer.Option(30, "--window-days", help="First touch: purchases within N days."),
    workspace: str | None = WORKSPACE,
    engine: str = ENGINE,
    parquet: str | None = PARQUET,
    spark_master: str | None = MASTER,
) -> None:
    """Channel ROI and CAC per channel under first- or last-touch attribution."""
    if attribution not in ("first_touch", "last_touch"):
        raise ValidationFailed(
            f"unknown attribution {attribution!r}", where="--attribution", hint="first_touch or last_touch"
        )
    _run(
        Engine(engine, parquet, spark_master, workspace),
        lambda s, a, z: metrics.channel_roi(
            s,
            actor=a,
            start=_moment(start, zone=z, where="--start"),
            end=_moment(end, zone=z, where="--end"),
            attribution=attribution,  # type: ignore[arg-type]  # checked above
            window_days=window_days,
        ),
    )


@metrics_app.command("ltv")
def ltv_command(
    first_month: str = typer.Option(..., "--first-month", help="First cohort month, 2026-01."),
    last_month: str = typer.Option(..., "--last-month", help="Last cohort month."),
    horizon: int = typer.Option(12, "--horizon", help="Months after acquisition."),
    by: str = typer.Option("month", "--by", help="month or channel."),
    today: str | None = typer.Option(None, "--today", help="Which months are complete (default: today)."),
    workspace: str | None = WORKSPACE,
    engine: str = ENGINE,
    parquet: str | None = PARQUET,
    spark_master: str | None = MASTER,
) -> None:
    """LTV (cumulative net revenue per customer) by acquisition month or channel."""
    _run(
        Engine(engine, parquet, spark_master, workspace),
        lambda s, a, z: metrics.ltv_by_cohort(
            s,
            actor=a,
            first_month=_day(first_month, where="--first-month"),
            last_month=_day(last_month, where="--last-month"),
            horizon=horizon,
            by=by,  # type: ignore[arg-type]  # the service refuses another value by name
            today=_day(today, where="--today") if today else None,
        ),
    )


@metrics_app.command("conversion")
def conversion_command(
    start: str = START,
    end: str = END,
    window_days: int = typer.Option(30, "--window-days", help="Goal reached within N days of joining."),
    goal: str = typer.Option("purchase", "--goal", help="purchase, or an event type."),
    retained_days: int | None = typer.Option(None, "--retained-days", help="Of those reachable N days on."),
    workspace: str | None = WORKSPACE,
    engine: str = ENGINE,
    parquet: str | None = PARQUET,
    spark_master: str | None = MASTER,
) -> None:
    """Conversion (转化率) of the customers who joined in the window."""
    _run(
        Engine(engine, parquet, spark_master, workspace),
        lambda s, a, z: metrics.conversion(
            s,
            actor=a,
            start=_moment(start, zone=z, where="--start"),
            end=_moment(end, zone=z, where="--end"),
            window_days=window_days,
            goal=goal,
            retained_days=retained_days,
        ),
    )


@metrics_app.command("pass-through")
def pass_through_command(
    start: str = START,
    end: str = END,
    window_days: int = typer.Option(7, "--window-days", help="Reachable within N days of joining."),
    workspace: str | None = WORKSPACE,
    engine: str = ENGINE,
    parquet: str | None = PARQUET,
    spark_master: str | None = MASTER,
) -> None:
    """Pass-through rate (通过率) per channel and per live code (活码)."""
    _run(
        Engine(engine, parquet, spark_master, workspace),
        lambda s, a, z: metrics.pass_through(
            s,
            actor=a,
            start=_moment(start, zone=z, where="--start"),
            end=_moment(end, zone=z, where="--end"),
            window_days=window_days,
        ),
    )


@metrics_app.command("cohorts")
def cohorts_command(
    first: str = typer.Option(..., "--first", help="A day in the first cohort's week or month."),
    last: str = typer.Option(..., "--last", help="A day in the last cohort's week or month."),
    period: str = typer.Option("month", "--period", help="week or month."),
    horizon: int = typer.Option(8, "--horizon", help="Marks per cohort."),
    now: str | None = typer.Option(None, "--now", help="Which marks have passed (ISO time; default: now)."),
    workspace: str | None = WORKSPACE,
    engine: str = ENGINE,
    parquet: str | None = PARQUET,
    spark_master: str | None = MASTER,
) -> None:
    """Retention (留存率) cohort table: reachable and active N days after joining."""
    _run(
        Engine(engine, parquet, spark_master, workspace),
        lambda s, a, z: metrics.cohort_table(
            s,
            actor=a,
            period=period,  # type: ignore[arg-type]  # the service refuses another value by name
            first=_day(first, where="--first"),
            last=_day(last, where="--last"),
            horizon=horizon,
            now=_moment(now, zone=z, where="--now") if now else None,
        ),
    )


@metrics_app.command("retention")
def retention_command(
    first_month: str = typer.Option(..., "--first-month", help="First cohort month, 2026-01."),
    last_month: str = typer.Option(..., "--last-month", help="Last cohort month."),
    horizon: int = typer.Option(6, "--horizon", help="Months after joining."),
    activity: str = typer.Option("purchase", "--activity", help="purchase or any."),
    today: str | None = typer.Option(None, "--today", help="Which months are complete (default: today)."),
    workspace: str | None = WORKSPACE,
    engine: str = ENGINE,
    parquet: str | None = PARQUET,
    spark_master: str | None = MASTER,
) -> None:
    """Monthly retention cohorts (留存): the share of each month's joiners active in the months after."""
    _run(
        Engine(engine, parquet, spark_master, workspace),
        lambda s, a, z: metrics.retention(
            s,
            actor=a,
            first_month=_day(first_month, where="--first-month"),
            last_month=_day(last_month, where="--last-month"),
            horizon=horizon,
            activity=activity,  # type: ignore[arg-type]  # the service refuses another value by name
            today=_day(today, where="--today") if today else None,
        ),
    )


@metrics_app.command("reactivation")
def reactivation_command(
    start: str = START,
    end: str = END,
    days: int = typer.Option(30, "--days", help="A purchase within N days of the reach."),
    workspace: str | None = WORKSPACE,
    engine: str = ENGINE,
    parquet: str | None = PARQUET,
    spark_master: str | None = MASTER,
) -> None:
    """Dormant reactivation rate: of the dormant (沉睡) customers reached, the share who bought."""
    _run(
        Engine(engine, parquet, spark_master, workspace),
        lambda s, a, z: metrics.dormant_reactivation(
            s,
            actor=a,
            start=_moment(start, zone=z, where="--start"),
            end=_moment(end, zone=z, where="--end"),
            days=days,
        ),
    )


@metrics_app.command("funnel")
def funnel_command(
    steps: str = typer.Option(..., "--steps", help="Event types (or purchase) in order, comma-separated."),
    start: str = START,
    end: str = END,
    window_days: float = typer.Option(7, "--window-days", help="Each step within N days of the one before."),
    breakdown: str | None = typer.Option(None, "--breakdown", help="channel or owner."),
    workspace: str | None = WORKSPACE,
    engine: str = ENGINE,
    parquet: str | None = PARQUET,
    spark_master: str | None = MASTER,
) -> None:
    """An ordered funnel over event types and purchases."""
    _run(
        Engine(engine, parquet, spark_master, workspace),
        lambda s, a, z: metrics.funnel(
            s,
            actor=a,
            steps=steps.split(","),
            start=_moment(start, zone=z, where="--start"),
            end=_moment(end, zone=z, where="--end"),
            window_days=window_days,
            breakdown=breakdown,  # type: ignore[arg-type]  # the service refuses another value by name
        ),
    )


@metrics_app.command("trend")
def trend_command(
    last: str = typer.Option(..., "--last", help="A day in the last week or month."),
    period: str = typer.Option("month", "--period", help="week or month."),
    points: int = typer.Option(12, "--points", help="How many weeks or months."),
    now: str | None = typer.Option(None, "--now", help="Which marks have passed (ISO time; default: now)."),
    workspace: str | None = WORKSPACE,
    engine: str = ENGINE,
    parquet: str | None = PARQUET,
    spark_master: str | None = MASTER,
) -> None:
    """The four headline metrics per week or month."""
    _run(
        Engine(engine, parquet, spark_master, workspace),
        lambda s, a, z: metrics.trend(
            s,
            actor=a,
            period=period,  # type: ignore[arg-type]  # the service refuses another value by name
            last=_day(last, where="--last"),
            points=points,
            now=_moment(now, zone=z, where="--now") if now else None,
        ),
    )


@metrics_app.command("overview")
def overview_command(
    months: int = typer.Option(12, "--months", help="Calendar months up to this one."),
    today: str | None = typer.Option(None, "--today", help="The overview as of this day (default: today)."),
    workspace: str | None = WORKSPACE,
    engine: str = ENGINE,
    parquet: str | None = PARQUET,
    spark_master: str | None = MASTER,
) -> None:
    """The overview's figures (概览): revenue by channel per month and the headline metrics."""
    _run(
        Engine(engine, parquet, spark_master, workspace),
        lambda s, a, z: overview.get_overview(
            s, actor=a, months=months, today=_day(today, where="--today") if today else None
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(metrics_app, name="metrics")
