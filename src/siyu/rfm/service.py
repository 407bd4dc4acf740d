"""Computing RFM for a workspace, inside the database: per buyer of the window, recency (days since
their last purchase), frequency (purchases) and monetary value (net revenue); scores 1–5 by quintiles
(the cumulative distribution, so equal values always get equal scores) or by the brand's own
thresholds; and the eight layers, each score compared with the average score of the buyers or with a
score the brand chooses (a score ≥ the cut is high).

Recency ages with time: a run at a later `now` moves scores and layers without any new order, so the
daily run is the time sweep. One run replaces the previous scores in one transaction. A workspace keeps
its own settings (`update_settings`); the daily run, "score now" and `siyu rfm` use them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Integer, case, cast, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events
from siyu.core.db import UTCDateTime, days_between
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.orders import service as orders
from siyu.rfm.models import CustomerRfm, RfmSettings

Method = Literal["quintile", "threshold"]

# (R high, F high, M high) → layer, in the names the trade uses (重要价值客户 …)
LAYERS: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): "重要价值",
    (True, False, True): "重要发展",
    (False, True, True): "重要保持",
    (False, False, True): "重要挽留",
    (True, True, False): "一般价值",
    (True, False, False): "一般发展",
    (False, True, False): "一般保持",
    (False, False, False): "一般挽留",
}
LAYER_NAMES = tuple(LAYERS.values())


@dataclass(frozen=True)
class Thresholds:
    """A brand's own cut points, four ascending numbers each: recency in days (≤ the first: R = 5),
    frequency in purchases and monetary value in yuan (≤ the first: 1; above the last: 5)."""

    recency_days: tuple[float, float, float, float] = (15, 30, 60, 90)
    frequency: tuple[float, float, float, float] = (1, 2, 3, 5)
    monetary_yuan: tuple[float, float, float, float] = (50, 100, 200, 500)


@dataclass(frozen=True)
class RfmConfig:
    """How a workspace scores: purchases of the last `window_days`, scored by quintiles or by the cut
    points in `thresholds`; a score is "high" for the layers above the buyers' mean score, or at least
    `layer_cut` when one is set (e.g. 3: scores 3–5 are high)."""

    window_days: int = 365
    method: Method = "quintile"
    thresholds: Thresholds = field(default_factory=Thresholds)
    layer_cut: float | None = None


@dataclass(frozen=True)
class LayerCount:
    layer: str
    customers: int
    monetary_cents: int
    mean_recency_days: float | None


@dataclass(frozen=True)
class RfmRun:
    scored: int
    method: str
    window_days: int
    now: datetime
    layers: list[LayerCount] = field(default_factory=list)
    layer_cut: float | None = None


def _check(thresholds: Thresholds) -> None:
    for name in ("recency_days", "frequency", "monetary_yuan"):
        cuts = getattr(thresholds, name)
        if len(cuts) != 4 or any(b <= a for a, b in itertools.pairwise(cuts)):
            raise ValidationFailed(
                f"the {name} thresholds {list(cuts)} are not four rising numbers", where=f"thresholds.{name}"
            )


def _check_config(config: RfmConfig) -> None:
    if not 7 <= config.window_days <= 3650:
        raise ValidationFailed(
            f"a window of {config.window_days} days is out of range", where="window_days", hint="7 to 3650"
        )
    if config.method not in ("quintile", "threshold"):
        raise ValidationFailed(
            f"unknown scoring method {config.method!r}", where="method", hint="quintile or threshold"
        )
    _check(config.thresholds)
    if config.layer_cut is not None and not 1 < config.layer_cut <= 5:
        raise ValidationFailed(
            f"a layer cut of {config.layer_cut} splits no scores",
            where="layer_cut",
            hint="a score above 1 and at most 5 (scores at or above it are high), or none for the mean",
        )


def settings_of(session: Session, *, workspace_id: int) -> RfmConfig:
    """The workspace's RFM settings (the defaults while it has saved none)."""
    row = session.get(RfmSettings, workspace_id)
    if row is None:
        return RfmConfig()
    return RfmConfig(
        window_days=row.window_days,
        method=row.method,  # type: ignore[arg-type]  # only valid methods are saved
        thresholds=Thresholds(
            recency_days=tuple(row.recency_cuts),  # type: ignore[arg-type]
            frequency=tuple(row.frequency_cuts),  # type: ignore[arg-type]
            monetary_yuan=tuple(row.monetary_cuts_yuan),  # type: ignore[arg-type]
        ),
        layer_cut=row.layer_cut,
    )


def update_settings(session: Session, *, actor: Actor, config: RfmConfig) -> RfmConfig:
    """Save the workspace's RFM settings (audited); the next run uses them. Nothing is saved when any
    value is out of range."""
    actor.require(Permission.MANAGE)
    _check_config(config)
    row = session.get(RfmSettings, actor.workspace_id)
    if row is None:
        row = RfmSettings(workspace_id=actor.workspace_id)
        session.add(row)
    row.window_days, row.method, row.layer_cut = config.window_days, config.method, config.layer_cut
    row.recency_cuts = [float(v) for v in config.thresholds.recency_days]
    row.frequency_cuts = [float(v) for v in config.thresholds.frequency]
    row.monetary_cuts_yuan = [float(v) for v in config.thresholds.monetary_yuan]
    row.updated_at = utcnow()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="rfm.settings",
        target_type="workspace",
        target_id=actor.workspace_id,
        detail=settings_detail(config),
    )
    return config


def settings_detail(config: RfmConfig) -> dict[str, Any]:
    """The settings as plain JSON (the API's and the CLI's form)."""
    return {
        "window_days": config.window_days,
        "method": config.method,
        "recency_days": list(config.thresholds.recency_days),
        "frequency": list(config.thresholds.frequency),
        "monetary_yuan": list(config.thresholds.monetary_yuan),
        "layer_cut": config.layer_cut,
    }


def _by_cuts(value: Any, cuts: tuple[float, ...], *, high_is_low: bool) -> Any:
    """1–5 from four cut points (each bound inclusive); reversed for recency (fewer days, higher score)."""
    scores = (5, 4, 3, 2) if high_is_low else (1, 2, 3, 4)
    return case(
        *[(value <= cut, literal(score)) for cut, score in zip(cuts, scores, strict=True)],
        else_=literal(1 if high_is_low else 5),
    )


def _quintile(order_by: Any) -> Any:
    # ceil(5 · cume_dist): equal values share a score; the top value always scores 5
    distribution = func.cume_dist().over(order_by=order_by)
    return cast(func.ceil(distribution * 5 - 1e-9), Integer)


def compute_rfm(
    session: Session,
    *,
    actor: Actor,
    now: datetime | None = None,
    window_days: int | None = None,
    method: Method | None = None,
    thresholds: Thresholds | None = None,
    config: RfmConfig | None = None,
) -> RfmRun:
    """Score every customer who bought in (now − window_days, now] and store their scores and layer.

    `config` defaults to the workspace's settings; `window_days`, `method` and `thresholds` override it.
    """
    actor.require(Permission.WRITE)
    config = config or settings_of(session, workspace_id=actor.workspace_id)
    overrides = {
        name: value
        for name, value in (("window_days", window_days), ("method", method), ("thresholds", thresholds))
        if value is not None
    }
    config = replace(config, **overrides)  # type: ignore[arg-type]
    _check_config(config)
    window_days, method, thresholds = config.window_days, config.method, config.thresholds
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValidationFailed("give `now` with a time zone", where="now")
    workspace_id = actor.workspace_id
    bought = orders.purchases(
        workspace_id=workspace_id, start=now - timedelta(days=window_days), end=now
    ).subquery()
    last = func.max(bought.c.placed_at)
    recency = days_between(session, literal(now, UTCDateTime()), last)
    base = (
        select(
            bought.c.customer_id,
            recency.label("recency_days"),
            func.count().label("frequency"),
            func.sum(bought.c.net_cents).label("monetary_cents"),
        )
        .group_by(bought.c.customer_id)
        .subquery()
    )
    if method == "quintile":
        r = _quintile(base.c.recency_days.desc())
        f = _quintile(base.c.frequency)
        m = _quintile(base.c.monetary_cents)
    else:
        r = _by_cuts(base.c.recency_days, thresholds.recency_days, high_is_low=True)
        f = _by_cuts(base.c.frequency, thresholds.frequency, high_is_low=False)
        m = _by_cuts(
            base.c.monetary_cents, tuple(c * 100 for c in thresholds.monetary_yuan), high_is_low=False
        )
    scored = select(base, r.label("r"), f.label("f"), m.label("m")).subquery()
    rows = session.execute(select(scored)).all()
    session.execute(delete(CustomerRfm).where(CustomerRfm.workspace_id == workspace_id))
    count = max(len(rows), 1)
    if config.layer_cut is None:  # a score is high above the buyers' mean score
        split_r = sum(row.r for row in rows) / count
        split_f = sum(row.f for row in rows) / count
        split_m = sum(row.m for row in rows) / count
    else:  # high at or above the cut: scores are whole numbers, so "above just under the cut"
        split_r = split_f = split_m = config.layer_cut - 1e-9
    computed_at = utcnow()
    records: list[dict[str, Any]] = [
        {
            "customer_id": int(row.customer_id),
            "workspace_id": workspace_id,
            "recency_days": float(row.recency_days),
            "frequency": int(row.frequency),
            "monetary_cents": int(row.monetary_cents or 0),
            "r": int(row.r),
            "f": int(row.f),
            "m": int(row.m),
            "layer": LAYERS[(row.r > split_r, row.f > split_f, row.m > split_m)],
            "computed_at": computed_at,
        }
        for row in rows
    ]
    for start in range(0, len(records), 5000):
        session.execute(insert(CustomerRfm), records[start : start + 5000])
    layers = []
    for name in LAYER_NAMES:
        mine = [rec for rec in records if rec["layer"] == name]
        layers.append(
            LayerCount(
                layer=name,
                customers=len(mine),
                monetary_cents=sum(rec["monetary_cents"] for rec in mine),
                mean_recency_days=sum(rec["recency_days"] for rec in mine) / len(mine) if mine else None,
            )
        )
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor.user_id,
        action="rfm.compute",
        target_type="workspace",
        target_id=workspace_id,
        detail={"scored": len(records), **settings_detail(config)},
    )
    domain_events.record(
        session,
        workspace_id=workspace_id,
        type="rfm.computed",
        customer_id=None,
        payload={
            "scored": len(records),
            "method": method,
            "window_days": window_days,
            "layer_cut": config.layer_cut,
            "now": now.isoformat(),
        },
    )
    return RfmRun(
        scored=len(records),
        method=method,
        window_days=window_days,
        now=now,
        layers=layers,
        layer_cut=config.layer_cut,
    )


RFM_COLUMNS = {"r": CustomerRfm.r, "f": CustomerRfm.f, "m": CustomerRfm.m, "layer": CustomerRfm.layer}


def rfm_column(name: str, *, customer_id: Any) -> Any:
    """A correlated scalar subquery of the customer's RFM score or layer from the last run (NULL for a
    customer it did not score), for segment rules."""
    return select(RFM_COLUMNS[name]).where(CustomerRfm.customer_id == customer_id).scalar_subquery()


def layer_summary(session: Session, *, actor: Actor) -> list[LayerCount]:
    """The eight layers as the last run left them: customers, money in the window, mean recency."""
    actor.require(Permission.READ)
    rows = {
        layer: (int(n), int(cents or 0), float(days) if days is not None else None)
        for layer, n, cents, days in session.execute(
            select(
                CustomerRfm.layer,
                func.count(),
                func.sum(CustomerRfm.monetary_cents),
                func.avg(CustomerRfm.recency_days),
            )
            .where(CustomerRfm.workspace_id == actor.workspace_id)
            .group_by(CustomerRfm.layer)
        )
    }
    return [
        LayerCount(
            layer=name,
            customers=rows.get(name, (0, 0, None))[0],
            monetary_cents=rows.get(name, (0, 0, None))[1],
            mean_recency_days=rows.get(name, (0, 0, None))[2],
        )
        for name in LAYER_NAMES
    ]


def last_run_at(session: Session, *, workspace_id: int) -> datetime | None:
    value = session.scalar(
        select(func.max(CustomerRfm.computed_at)).where(CustomerRfm.workspace_id == workspace_id)
    )
    return value
