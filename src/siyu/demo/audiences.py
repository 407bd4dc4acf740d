"""The demo brand understood: RFM layers, lifecycle stages and predicted value scored at the demo's fixed
"today", and a handful of live segments an operations team of a tea-drink chain would keep — all through
the domains' own verbs, so that the RFM, lifecycle, CLV and segment pages open on figures.

The demo's data ends on `generator.WINDOW_END`; these runs are dated at `generator.ANCHOR_DATE` (midnight
in the workspace's zone) so that recency and stages read as they would on that day. Time windows relative
to the real clock (`orders(within="30d")`) would be empty on a brand whose data stopped in 2025, so the
segments below use scores, stages, rollups and categories instead. The worker's scheduled runs use the
real clock (docs/segments.md): left running past 03:00 the demo's RFM and stages move to that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from siyu.auth.service import Actor
from siyu.clv import service as clv
from siyu.demo.generator import ANCHOR_DATE
from siyu.lifecycle import service as lifecycle
from siyu.rfm import service as rfm
from siyu.segments import service as segments
from siyu.workspaces import service as workspaces

# (name, rule): each reads what the runs above computed, or the rollups the imports keep
SEGMENTS: tuple[tuple[str, str], ...] = (
    ("重要挽留客户", 'rfm.layer = "重要挽留"'),
    ("重要价值客户", 'rfm.layer = "重要价值"'),
    ("沉睡老客", 'lifecycle.stage = "dormant" and order_count >= 2'),
    ("预测高价值 Top10%", "clv.percentile >= 90"),
    ("奶茶复购客", 'categories contains "奶茶" and order_count >= 3'),
    ("可短信营销的忠诚客", 'lifecycle.stage = "loyal" and consent(channel="sms")'),
)


@dataclass(frozen=True)
class Audiences:
    rfm_scored: int
    stages: int
    clv_scored: int
    segments: dict[str, int]  # name → members after the backfill


def demo_today(session: Session, *, workspace_id: int) -> datetime:
    zone = ZoneInfo(workspaces.get_workspace(session, workspace_id=workspace_id).timezone)
    return datetime(ANCHOR_DATE.year, ANCHOR_DATE.month, ANCHOR_DATE.day, tzinfo=zone)


def build(session: Session, *, owner: Actor) -> Audiences:
    """Score the brand at the demo's "today" and define its segments (backfilled on creation)."""
    today = demo_today(session, workspace_id=owner.workspace_id)
    scored = rfm.compute_rfm(session, actor=owner, now=today).scored
    swept = lifecycle.sweep(session, actor=owner, now=today).customers
    valued = clv.score_workspace(session, actor=owner, as_of=today).scored
    for name, rule in SEGMENTS:
        segments.create_segment(session, actor=owner, name=name, rule=rule)
    sizes = {status.name: status.members for status in segments.segment_statuses(session, actor=owner)}
    return Audiences(rfm_scored=scored, stages=swept, clv_scored=valued, segments=sizes)
