"""What the gateway needs to know of the messages already decided for a customer, to apply the caps and
the de-duplication: answered from the messages themselves (listed), or counted by the database for the
one planned time of this decision (PostgreSQL, one statement per chunk of customers).

Both answer the same four questions, with the same bounds (docs/reach.md): "at most N in any window of
D" holds if every new message sees fewer than N others strictly closer than D on either side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from siyu.core.db import among, among_chunk, integer_array, integer_array_parameter
from siyu.reach.models import COUNTED_STATUSES, ReachMessage
from siyu.reach.service.policy import calendar_period

STAFF_SOURCE = "staff"  # a member's 1:1 message: not an enterprise mass message, outside the platform cap
COUNTED = [s.value for s in COUNTED_STATUSES]


class History(Protocol):
    """The questions `decide` asks of a customer's earlier messages (queued, deferred, held, sent…)."""

    def duplicate(self, digest: str, planned: datetime, window: timedelta) -> bool:
        """Is a message with this content closer than `window` to `planned`?"""
        ...

    def marketing_near(self, planned: datetime, window: timedelta) -> int:
        """How many marketing messages are closer than `window` to `planned`."""
        ...

    def channel_near(self, channel: str, planned: datetime, window: timedelta) -> int:
        """How many marketing messages on `channel` are closer than `window` to `planned`."""
        ...

    def mass_wecom(self, start: datetime, end: datetime) -> int:
        """How many WeCom mass messages (any source but a member's 1:1) are planned in [start, end)."""
        ...


@dataclass(frozen=True)
class Past:
    """A message already decided for the customer that counts against caps."""

    planned_at: datetime
    channel: str | None
    purpose: str
    source: str
    content_hash: str


def _near(past: Iterable[Past], at: datetime, window: timedelta) -> list[Past]:
    return [p for p in past if abs(p.planned_at - at) < window]


@dataclass
class ListedHistory:
    """The answers, from the customer's messages around the decision."""

    past: list[Past] = field(default_factory=list)

    def duplicate(self, digest: str, planned: datetime, window: timedelta) -> bool:
        return any(p.content_hash == digest for p in _near(self.past, planned, window))

    def marketing_near(self, planned: datetime, window: timedelta) -> int:
        return len(_near((p for p in self.past if p.purpose == "marketing"), planned, window))

    def channel_near(self, channel: str, planned: datetime, window: timedelta) -> int:
        marketing = (p for p in self.past if p.purpose == "marketing" and p.channel == channel)
        return len(_near(marketing, planned, window))

    def mass_wecom(self, start: datetime, end: datetime) -> int:
        return sum(
            1
            for p in self.past
            if p.channel == "wecom" and p.source != STAFF_SOURCE and start <= p.planned_at < end
        )


@dataclass(slots=True)
class CountedHistory:
    """The answers for one planned time, counted by the database (`count_history`); asked about another
    time or window than it was counted for, it refuses rather than answer wrongly."""

    planned: datetime
    digest: str
    dedup_window: timedelta
    budget_window: timedelta
    period: tuple[datetime, datetime]
    duplicates: bool
    marketing: int
    mass: int
    channels: dict[str, tuple[timedelta, int]]  # capped channel → (window, marketing messages on it)

    def _check(self, planned: datetime) -> None:
        if planned != self.planned:
            raise ValueError(f"counted for {self.planned.isoformat()}, asked about {planned.isoformat()}")

    def duplicate(self, digest: str, planned: datetime, window: timedelta) -> bool:
        self._check(planned)
        if (digest, window) != (self.digest, self.dedup_window):
            raise ValueError("counted for another content or window")
        return self.duplicates

    def marketing_near(self, planned: datetime, window: timedelta) -> int:
        self._check(planned)
        if window != self.budget_window:
            raise ValueError("counted for another budget window")
        return self.marketing

    def channel_near(self, channel: str, planned: datetime, window: timedelta) -> int:
        self._check(planned)
        counted_window, count = self.channels[channel]
        if window != counted_window:
            raise ValueError(f"counted for another window of {channel}")
        return count

    def mass_wecom(self, start: datetime, end: datetime) -> int:
        if (start, end) != self.period:
            raise ValueError("counted for another calendar period")
        return self.mass


def wecom_period(planned: datetime, zone: ZoneInfo, mode: str) -> tuple[datetime, datetime, int]:
    """The WeCom platform cap's calendar period around `planned` (day, week or month in the workspace's
    zone) as UTC instants [start, end), and how many mass messages a customer may receive in it."""
    first, after, limit = calendar_period(planned, zone, mode)
    return (
        datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC),
        datetime.combine(after, time(0), tzinfo=zone).astimezone(UTC),
        limit,
    )


def list_history(
    session: Session, *, workspace_id: int, customer_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, ListedHistory]:
    """Each customer's counted messages planned in (start, end), as listed histories."""
    past: dict[int, ListedHistory] = {}
    size = among_chunk(session)
    message = ReachMessage.__table__.c
    connection = session.connection()
    for offset in range(0, len(customer_ids), size):
        chunk = customer_ids[offset : offset + size]
        for customer_id, planned_at, channel, purpose, source, digest in connection.execute(
            select(
                message.customer_id,
                message.planned_at,
                message.channel,
                message.purpose,
                message.source,
                message.content_hash,
            ).where(
                message.workspace_id == workspace_id,
                among(session, message.customer_id, chunk),
                message.planned_at > start,
                message.planned_at < end,
                message.status.in_(COUNTED),
            )
        ).all():
            past.setdefault(customer_id, ListedHistory()).past.append(
                Past(planned_at, channel, purpose, source, digest)
            )
    return past


@dataclass(frozen=True)
class Question:
    """What to count for one customer: around `planned`, and in the WeCom period [start, end)."""

    customer_id: int
    planned: datetime
    period: tuple[datetime, datetime]


def count_history(
    session: Session,
    *,
    workspace_id: int,
    questions: Sequence[Question],
    digest: str,
    dedup_window: timedelta,
    budget_window: timedelta,
    channel_windows: dict[str, timedelta],
    start: datetime,
    end: datetime,
) -> dict[int, CountedHistory]:
    """The four answers for each customer at its planned time, counted by PostgreSQL: one statement per
    chunk of customers, one row back per customer, over the index on (workspace, customer, planned)."""
    capped = sorted(channel_windows)
    cap_columns = "".join(
        f", count(*) FILTER (WHERE m.purpose = 'marketing' AND m.channel = :channel_{i}"
        f" AND m.planned_at > t.planned - :window_{i} AND m.planned_at < t.planned + :window_{i})"
        for i in range(len(capped))
    )
    # the chunk's messages are read once, by customer id (MATERIALIZED keeps it one scan): a plan per
    # customer (a LATERAL) walks the whole table when the planner believes it empty, as after a bulk
    # load; a join without the id list scans the workspace's whole window
    statement = text(
        "WITH m AS MATERIALIZED ("
        "  SELECT customer_id, planned_at, channel, purpose, source, content_hash FROM reach_message"
        "  WHERE workspace_id = :workspace_id AND customer_id = ANY(:ids)"
        "    AND planned_at > :start AND planned_at < :end AND status = ANY(CAST(:counted AS VARCHAR[])))"
        " SELECT q.id,"
        "   coalesce(bool_or(m.content_hash = :digest"
        "     AND m.planned_at > t.planned - :dedup AND m.planned_at < t.planned + :dedup), false),"
        "   count(*) FILTER (WHERE m.purpose = 'marketing'"
        "     AND m.planned_at > t.planned - :budget AND m.planned_at < t.planned + :budget),"
        "   count(*) FILTER (WHERE m.channel = 'wecom' AND m.source <> :staff"
        "     AND m.planned_at >= t.period_start AND m.planned_at < t.period_end)"
        f"  {cap_columns}"
        # each customer names its slot: the few distinct planned times (and their periods) of the chunk
        " FROM unnest(:ids, CAST(:slots AS BIGINT[])) AS q(id, slot)"
        " JOIN unnest(CAST(:planned AS TIMESTAMPTZ[]), CAST(:period_starts AS TIMESTAMPTZ[]),"
        "   CAST(:period_ends AS TIMESTAMPTZ[])) WITH ORDINALITY AS t(planned, period_start, period_end, slot)"
        "   ON t.slot = q.slot"
        " LEFT JOIN m ON m.customer_id = q.id"
        " GROUP BY q.id"
    ).bindparams(integer_array_parameter("ids"))
    base = {
        "workspace_id": workspace_id,
        "digest": digest,
        "dedup": dedup_window,
        "budget": budget_window,
        "staff": STAFF_SOURCE,
        "start": start,
        "end": end,
        "counted": COUNTED,
        **{f"channel_{i}": channel for i, channel in enumerate(capped)},
        **{f"window_{i}": channel_windows[channel] for i, channel in enumerate(capped)},
    }
    by_id = {q.customer_id: q for q in questions}
    counted: dict[int, CountedHistory] = {}
    size = among_chunk(session)
    for offset in range(0, len(questions), size):
        chunk = questions[offset : offset + size]
        slots: dict[tuple[datetime, tuple[datetime, datetime]], int] = {}
        for q in chunk:
            slots.setdefault((q.planned, q.period), len(slots) + 1)
        parameters = {
            **base,
            "ids": integer_array(q.customer_id for q in chunk),
            "slots": integer_array(slots[(q.planned, q.period)] for q in chunk),
            "planned": [planned for planned, _ in slots],
            "period_starts": [period[0] for _, period in slots],
            "period_ends": [period[1] for _, period in slots],
        }
        for row in session.execute(statement, parameters).all():
            question = by_id[row[0]]
            counted[row[0]] = CountedHistory(
                planned=question.planned,
                digest=digest,
                dedup_window=dedup_window,
                budget_window=budget_window,
                period=question.period,
                duplicates=bool(row[1]),
                marketing=int(row[2]),
                mass=int(row[3]),
                channels={
                    channel: (channel_windows[channel], int(row[4 + i])) for i, channel in enumerate(capped)
                },
            )
    return counted
