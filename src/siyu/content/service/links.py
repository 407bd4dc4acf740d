"""Tracked short links: stored when a message is rendered (one per message and URL), followed by the
public `/s/{token}`, the first visit recorded as a `reach.clicked` event; counts per source."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from siyu.content.models import ShortLink
from siyu.content.schemas import ClicksOut
from siyu.core import domain_events
from siyu.core.timeutil import utcnow

TOKEN = re.compile(r"^[A-Za-z0-9_-]{22}$")
CLICKED = "reach.clicked"
_CHUNK = 1000


@dataclass(frozen=True)
class LinkRow:
    """A tracked link of a message, as the gateway hands it over once the message has its id."""

    token: str
    message_id: int
    customer_id: int
    source: str
    source_ref: str
    url: str


def store_links(session: Session, *, workspace_id: int, links: Iterable[LinkRow]) -> int:
    """Store the tracked links of messages just written, in the caller's transaction."""
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "workspace_id": workspace_id, "token": link.token, "message_id": link.message_id,
            "customer_id": link.customer_id, "source": link.source, "source_ref": link.source_ref,
            "url": link.url, "created_at": now, "clicks": 0,
        }
        for link in links
    ]  # fmt: skip
    for start in range(0, len(rows), _CHUNK):
        session.execute(insert(ShortLink), rows[start : start + _CHUNK])
    return len(rows)


def follow(session: Session, *, token: str) -> str | None:
    """Where a short link leads (only a URL stored when its message was rendered), or None for a token
    that names no link. Every visit is counted; the first records `reach.clicked` (message, customer,
    URL) — once per message and link, even when two visits race (the conditional update decides)."""
    if not TOKEN.match(token):
        return None
    link = session.scalar(select(ShortLink).where(ShortLink.token == token))
    if link is None:
        return None
    now = utcnow()
    session.execute(update(ShortLink).where(ShortLink.id == link.id).values(clicks=ShortLink.clicks + 1))
    first = session.execute(
        update(ShortLink)
        .where(ShortLink.id == link.id, ShortLink.first_clicked_at.is_(None))
        .values(first_clicked_at=now)
    )
    if first.rowcount == 1:  # type: ignore[attr-defined]
        domain_events.record(
            session,
            workspace_id=link.workspace_id,
            type=CLICKED,
            customer_id=link.customer_id,
            payload={
                "message_id": link.message_id, "url": link.url, "link_id": link.id,
                "source": link.source, "source_ref": link.source_ref,
            },
            occurred_at=now,
        )  # fmt: skip
    return link.url


def clicks(session: Session, *, workspace_id: int, source: str, source_ref: str) -> ClicksOut:
    """Click counts of one source (a broadcast, a journey): links rendered, links clicked (each once),
    customers who clicked, all visits, and clicked links per URL."""
    where = (
        ShortLink.workspace_id == workspace_id,
        ShortLink.source == source,
        ShortLink.source_ref == source_ref,
    )
    links, clicked, people, visits = session.execute(
        select(
            func.count(ShortLink.id),
            func.count(ShortLink.first_clicked_at),
            func.count(func.distinct(ShortLink.customer_id)).filter(ShortLink.first_clicked_at.is_not(None)),
            func.coalesce(func.sum(ShortLink.clicks), 0),
        ).where(*where)
    ).one()
    by_url: dict[str, int] = {
        url: count
        for url, count in session.execute(
            select(ShortLink.url, func.count(ShortLink.id))
            .where(*where, ShortLink.first_clicked_at.is_not(None))
            .group_by(ShortLink.url)
        )
    }
    return ClicksOut(
        source=source, source_ref=source_ref, links=links, clicked_links=clicked,
        clicking_customers=people, clicks=int(visits), by_url=by_url,
    )  # fmt: skip
