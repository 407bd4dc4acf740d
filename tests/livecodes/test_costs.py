"""A live code's cost is money spent on its channel: it reaches the channel's cost records, so channel
ROI and CAC count it; changing the cost or the channel moves the record, a cost of 0 removes it."""

from __future__ import annotations

from datetime import timedelta

from siyu.auth.service import Actor
from siyu.channels import service as channels
from siyu.channels.models import SourceType
from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.livecodes import service
from siyu.livecodes.schemas import LiveCodeIn, StaffIn
from siyu.metrics import service as metrics
from tests.factories import make_channel, member


def _roi_cost(db: Database, actor: Actor, channel_id: int) -> int:
    now = utcnow()
    with db.reader() as session:
        rows = metrics.channel_roi(
            session, actor=actor, start=now - timedelta(days=3), end=now + timedelta(days=3)
        )
    return sum(r.cost_cents for r in rows if r.channel_id == channel_id)


def test_a_codes_cost_reaches_channel_roi(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    spec = LiveCodeIn(
        name="海报", placement="poster", staff=[StaffIn(user_id=owner.user_id)], cost_cents=50_000
    )
    with db.transaction() as session:
        code = service.create_live_code(session, actor=owner.actor, spec=spec)
        other = service.create_live_code(
            session, actor=owner.actor, spec=spec.model_copy(update={"cost_cents": 20_000})
        )
        channel_id = code.channel_id
        # money booked by hand for the same channel and day is another item: both count
        channels.add_cost(
            session,
            workspace_id=workspace_id,
            channel_id=channel_id,
            period_start=utcnow().date(),
            period_end=utcnow().date(),
            amount_cents=1_000,
        )
    assert other.channel_id == channel_id
    assert _roi_cost(db, owner.actor, channel_id) == 71_000
    with db.transaction() as session:
        service.update_live_code(
            session,
            actor=owner.actor,
            live_code_id=code.id,
            spec=spec.model_copy(update={"cost_cents": 30_000}),
        )
        service.update_live_code(
            session, actor=owner.actor, live_code_id=other.id, spec=spec.model_copy(update={"cost_cents": 0})
        )
    assert _roi_cost(db, owner.actor, channel_id) == 31_000
    with db.transaction() as session:
        moved_to = make_channel(
            session, workspace_id=workspace_id, key="poster-ads", source_type=SourceType.WECOM_LIVE_CODE
        )
        service.update_live_code(
            session,
            actor=owner.actor,
            live_code_id=code.id,
            spec=spec.model_copy(update={"cost_cents": 30_000, "channel_id": moved_to.id}),
        )
        records = channels.list_costs(session, workspace_id=workspace_id, channel_id=moved_to.id)
        assert [(c.amount_cents, c.source_key) for c in records] == [(30_000, f"live_code:{code.id}")]
    assert _roi_cost(db, owner.actor, channel_id) == 1_000
    assert _roi_cost(db, owner.actor, moved_to.id) == 30_000
