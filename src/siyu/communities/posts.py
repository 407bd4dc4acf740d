"""Scheduled group posts (群SOP): content sent to chosen customer groups once, or daily / weekly at a
local time of day, each occurrence a row sent at most once per group owner through WeCom group mass
messages (add_msg_template, chat_type group, the owner as sender).

Timers live in the database: `open_due` turns a post whose `next_at` has come into an occurrence row
(unique per post and time) and moves `next_at` on, under the post's row lock; `send_owner` sends one
owner's share of an occurrence under the occurrence's row lock, once per (occurrence, owner). Two
workers, or a worker restarted in between, never send an occurrence twice. These are group posts, not
1:1 messages: they pass no gate of the reach gateway, and each send has its audit row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.communities import service
from siyu.communities.models import GroupPost, GroupPostOccurrence, GroupPostSend
from siyu.core import audit
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.wecom import service as wecom
from siyu.wecom.client import WecomApiError, WecomClient
from siyu.wecom.service.contacts import message_content
from siyu.workspaces import service as workspaces

TARGETS = ("groups", "owners", "tags")
REPEATS = ("once", "daily", "weekly")
# an occurrence the worker reaches this late is recorded as missed, not sent: yesterday's menu at
# tomorrow's lunch helps nobody
GRACE = timedelta(hours=2)
# a cover uploaded more than 2.5 days ago is uploaded again: WeCom forgets a media_id after 3 days
COVER_REFRESH_AFTER = timedelta(days=2, hours=12)
MAX_CHATS = 2000  # add_msg_template takes at most 2000 chat ids


def _zone(session: Session, workspace_id: int) -> ZoneInfo:
    name = workspaces.get_workspace(session, workspace_id=workspace_id).timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def _time_of_day(text: str) -> time:
    try:
        hour, minute = (int(part) for part in text.split(":"))
        return time(hour, minute)
    except ValueError:
        raise ValidationFailed(
            f"{text[:10]!r} is not a time of day", where="time_of_day", hint="HH:MM"
        ) from None


def next_occurrence(
    *, repeat: str, time_of_day: str, weekdays: list[int], first_at: datetime, after: datetime, zone: ZoneInfo
) -> datetime | None:
    """The first occurrence later than `after` and not before `first_at` (UTC), or None: a one-off is
    `first_at` itself; daily and weekly ones are at `time_of_day` in `zone` (on `weekdays`)."""
    if repeat == "once":
        return first_at if first_at > after else None
    at = _time_of_day(time_of_day)
    start = max(after, first_at - timedelta(microseconds=1))
    day: date = start.astimezone(zone).date()
    for _ in range(15):  # a week and a day covers every weekly pattern, and a DST shift
        candidate = datetime.combine(day, at, tzinfo=zone)
        if candidate > start and (repeat == "daily" or candidate.weekday() in weekdays):
            return candidate.astimezone(first_at.tzinfo)
        day += timedelta(days=1)
    return None


@dataclass(frozen=True)
class PostSpec:
    """What a new group post needs. Attachments are WeCom's (`{"msgtype": "image", "image":
    {"pic_url": …}}`, `link`, `miniprogram`); images by URL stay valid, a media_id only 3 days."""

    name: str
    text: str
    attachments: list[dict[str, Any]]
    target: str
    target_values: list[str]
    repeat: str
    time_of_day: str
    weekdays: list[int]
    start_on: date
    # a mini-program card's cover (file name, JPEG or PNG bytes): kept, and uploaded again for an
    # occurrence when its last media_id is older than COVER_REFRESH_AFTER
    cover: tuple[str, bytes] | None = None


def create_post(session: Session, *, actor: Actor, spec: PostSpec, now: datetime | None = None) -> GroupPost:
    """Schedule a group post; its first occurrence is the first `time_of_day` on or after `start_on`
    (in the workspace's time zone) still to come."""
    actor.require(Permission.WRITE)
    current = now or utcnow()
    name = spec.name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("a group post needs a name of up to 200 characters", where="name")
    message_content(spec.text, spec.attachments)  # refused here as WeCom would refuse it
    card = _miniprogram(spec.attachments)
    if spec.cover is not None:
        if card is None:
            raise ValidationFailed("a cover image belongs to a mini-program card", where="cover")
        wecom.image_type(filename=spec.cover[0], content=spec.cover[1], where="cover")
    elif card is not None and not card.get("pic_media_id"):
        raise ValidationFailed(
            "a mini-program card needs its cover image", where="cover", hint="upload a JPG or PNG"
        )
    if spec.target not in TARGETS:
        raise ValidationFailed(f"target {spec.target!r}", where="target", hint="groups, owners or tags")
    values = list(dict.fromkeys(v.strip() for v in spec.target_values if v.strip()))
    if not values:
        raise ValidationFailed(
            "choose the groups, owners or group tags the post goes to", where="target_values"
        )
    if spec.repeat not in REPEATS:
        raise ValidationFailed(f"repeat {spec.repeat!r}", where="repeat", hint="once, daily or weekly")
    weekdays = sorted({int(d) for d in spec.weekdays})
    if spec.repeat == "weekly" and (not weekdays or not all(0 <= d <= 6 for d in weekdays)):
        raise ValidationFailed("a weekly post needs its weekdays", where="weekdays", hint="Monday … Sunday")
    zone = _zone(session, actor.workspace_id)
    first_at = datetime.combine(spec.start_on, _time_of_day(spec.time_of_day), tzinfo=zone).astimezone(
        current.tzinfo
    )
    if spec.repeat == "once" and first_at <= current:
        raise ValidationFailed("the time has passed", where="start_on", hint="choose a time to come")
    post = GroupPost(
        workspace_id=actor.workspace_id,
        name=name,
        text=spec.text,
        attachments=list(spec.attachments),
        target=spec.target,
        target_values=values,
        repeat=spec.repeat,
        time_of_day=_time_of_day(spec.time_of_day).strftime("%H:%M"),
        weekdays=weekdays if spec.repeat == "weekly" else [],
        first_at=first_at,
        is_active=True,
        created_by_user_id=actor.user_id,
        created_at=current,
        cover_image=spec.cover[1] if spec.cover else None,
        cover_filename=(spec.cover[0] or "cover")[:120] if spec.cover else None,
    )
    post.next_at = next_occurrence(
        repeat=post.repeat,
        time_of_day=post.time_of_day,
        weekdays=post.weekdays,
        first_at=first_at,
        after=current,
        zone=zone,
    )
    session.add(post)
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="community.group_post_created",
        target_type="community_group_post",
        target_id=post.id,
        detail={"target": post.target, "values": values, "repeat": post.repeat, "time": post.time_of_day},
    )
    return post


def set_active(
    session: Session, *, actor: Actor, post_id: int, active: bool, now: datetime | None = None
) -> None:
    """Pause a post, or resume it from its next occurrence still to come."""
    actor.require(Permission.WRITE)
    post = get_post(session, workspace_id=actor.workspace_id, post_id=post_id)
    post.is_active = active
    if active:
        post.next_at = next_occurrence(
            repeat=post.repeat,
            time_of_day=post.time_of_day,
            weekdays=post.weekdays,
            first_at=post.first_at,
            after=now or utcnow(),
            zone=_zone(session, post.workspace_id),
        )
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="community.group_post_resumed" if active else "community.group_post_paused",
        target_type="community_group_post",
        target_id=post.id,
        detail={},
    )


def get_post(session: Session, *, workspace_id: int, post_id: int) -> GroupPost:
    post = session.get(GroupPost, post_id)
    if post is None or post.workspace_id != workspace_id:
        raise NotFound(f"group post {post_id} does not exist in this workspace", where="post_id")
    return post


def list_posts(session: Session, *, workspace_id: int) -> list[GroupPost]:
    return list(
        session.scalars(
            select(GroupPost).where(GroupPost.workspace_id == workspace_id).order_by(GroupPost.id.desc())
        )
    )


def plan_for(session: Session, post: GroupPost) -> dict[str, list[str]]:
    """The post's groups now, by owner: chosen groups, every group of chosen owners, or the groups
    carrying one of the chosen group tags; dismissed groups left out."""
    groups = [
        g for g in service.list_groups(session, workspace_id=post.workspace_id) if g.dismissed_at is None
    ]
    wanted = set(post.target_values)
    if post.target == "groups":
        chosen = [g for g in groups if g.chat_id in wanted]
    elif post.target == "owners":
        chosen = [g for g in groups if g.owner in wanted]
    else:
        tagged = {
            chat_id
            for name in wanted
            for chat_id in service.groups_tagged(session, workspace_id=post.workspace_id, name=name)
        }
        chosen = [g for g in groups if g.chat_id in tagged]
    plan: dict[str, list[str]] = {}
    for group in chosen:
        if group.owner:
            plan.setdefault(group.owner, []).append(group.chat_id)
    return {owner: sorted(chats) for owner, chats in sorted(plan.items())}


# --- the worker's verbs ------------------------------------------------------------------------------


def open_due(session: Session, *, workspace_id: int | None = None, now: datetime | None = None) -> list[int]:
    """Turn every active post whose next occurrence has come into an occurrence row (or a missed one,
    past the grace period) and move its `next_at` on; returns the new occurrence ids. Posts are locked
    (skipping those another worker holds), so an occurrence is opened once."""
    current = now or utcnow()
    query = (
        select(GroupPost)
        .where(GroupPost.is_active.is_(True), GroupPost.next_at <= current)
        .order_by(GroupPost.id)
        .with_for_update(skip_locked=True)
    )
    if workspace_id is not None:
        query = query.where(GroupPost.workspace_id == workspace_id)
    opened: list[int] = []
    for post in session.scalars(query):
        occurs_at = post.next_at
        assert occurs_at is not None
        missed = current - occurs_at > GRACE
        plan = {} if missed else plan_for(session, post)
        occurrence = GroupPostOccurrence(
            workspace_id=post.workspace_id,
            post_id=post.id,
            occurs_at=occurs_at,
            status="missed" if missed else ("sending" if plan else "empty"),
            plan=plan,
            created_at=current,
            finished_at=current if missed or not plan else None,
        )
        session.add(occurrence)
        post.next_at = next_occurrence(
            repeat=post.repeat,
            time_of_day=post.time_of_day,
            weekdays=post.weekdays,
            first_at=post.first_at,
            after=max(occurs_at, current - GRACE),
            zone=_zone(session, post.workspace_id),
        )
        session.flush()
        opened.append(occurrence.id)
    return opened


def sending(session: Session, *, workspace_id: int | None = None) -> list[tuple[int, int, list[str]]]:
    """(workspace id, occurrence id, owners still to send) of the occurrences being sent."""
    query = select(GroupPostOccurrence).where(GroupPostOccurrence.status == "sending")
    if workspace_id is not None:
        query = query.where(GroupPostOccurrence.workspace_id == workspace_id)
    found = []
    for occurrence in session.scalars(query.order_by(GroupPostOccurrence.id)):
        done = set(
            session.scalars(select(GroupPostSend.owner).where(GroupPostSend.occurrence_id == occurrence.id))
        )
        found.append((occurrence.workspace_id, occurrence.id, [o for o in occurrence.plan if o not in done]))
    return found


def _miniprogram(attachments: list[dict[str, Any]]) -> dict[str, Any] | None:
    card = next((a for a in attachments if a.get("msgtype") == "miniprogram"), None)
    return None if card is None else dict(card.get("miniprogram") or {})


def attachments_to_send(
    session: Session, post: GroupPost, *, now: datetime, client: WecomClient | None = None
) -> list[dict[str, Any]]:
    """The post's attachments for an occurrence at `now`: a kept mini-program cover is uploaded again
    (media/upload) when its media_id is missing or older than COVER_REFRESH_AFTER — a media_id lasts
    only 3 days, and a daily post must not send a dead one on its fourth day."""
    if post.cover_image is None:
        return list(post.attachments)
    stale = post.cover_uploaded_at is None or now - post.cover_uploaded_at >= COVER_REFRESH_AFTER
    if post.cover_media_id is None or stale:
        uploaded = wecom.upload_temporary_image(
            session,
            workspace_id=post.workspace_id,
            filename=post.cover_filename or "cover",
            content=post.cover_image,
            client=client,
        )
        post.cover_media_id, post.cover_uploaded_at = uploaded.media_id, now
    return [
        {**a, "miniprogram": {**a["miniprogram"], "pic_media_id": post.cover_media_id}}
        if a.get("msgtype") == "miniprogram"
        else a
        for a in post.attachments
    ]


def _request_key(occurrence: GroupPostOccurrence, owner: str) -> str:
    # the mass message's idempotency key: the same (occurrence, owner) never makes a second task
    digest = hashlib.sha256(f"{occurrence.post_id}\0{occurrence.occurs_at.isoformat()}\0{owner}".encode())
    return "gpost:" + digest.hexdigest()[:40]


def send_owner(
    session: Session,
    *,
    workspace_id: int,
    occurrence_id: int,
    owner: str,
    now: datetime | None = None,
    client: WecomClient | None = None,
) -> GroupPostSend | None:
    """Send one owner's share of an occurrence (add_msg_template, chat_type group, the owner as sender,
    the planned chat ids), once: None when it was sent already. A refusal by WeCom is kept as the
    send's error; a network failure raises, and the next poll tries again."""
    occurrence = session.scalar(
        select(GroupPostOccurrence)
        .where(GroupPostOccurrence.id == occurrence_id, GroupPostOccurrence.workspace_id == workspace_id)
        .with_for_update()
    )
    if occurrence is None or occurrence.status != "sending" or owner not in occurrence.plan:
        return None
    earlier = session.scalar(
        select(GroupPostSend).where(
            GroupPostSend.occurrence_id == occurrence.id, GroupPostSend.owner == owner
        )
    )
    if earlier is not None:
        return None
    post = get_post(session, workspace_id=workspace_id, post_id=occurrence.post_id)
    chat_ids = occurrence.plan[owner][:MAX_CHATS]
    send = GroupPostSend(
        workspace_id=workspace_id,
        occurrence_id=occurrence.id,
        owner=owner,
        chat_ids=chat_ids,
        sent_at=now or utcnow(),
    )
    try:
        attachments = attachments_to_send(session, post, now=send.sent_at, client=client)
        message = wecom.send_mass_message(
            session,
            workspace_id=workspace_id,
            actor_user_id=None,
            chat_type="group",
            text=post.text or None,
            attachments=attachments,
            sender=owner,
            chat_ids=chat_ids,
            request_key=_request_key(occurrence, owner),
            client=client,
        )
        send.mass_message_id = message.id
    except WecomApiError as exc:
        if exc.errcode is None:
            raise  # WeCom did not answer: not a refusal, tried again on the next poll
        send.error = str(exc)
    session.add(send)
    session.flush()
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=None,
        action="community.group_post_sent" if send.error is None else "community.group_post_refused",
        target_type="community_group_post_occurrence",
        target_id=occurrence.id,
        detail={"post_id": post.id, "owner": owner, "chat_ids": chat_ids, "error": send.error},
    )
    _finish_if_done(session, occurrence, now or utcnow())
    return send


def _finish_if_done(session: Session, occurrence: GroupPostOccurrence, now: datetime) -> None:
    sends = list(session.scalars(select(GroupPostSend).where(GroupPostSend.occurrence_id == occurrence.id)))
    if {s.owner for s in sends} >= set(occurrence.plan):
        failed = sum(1 for s in sends if s.error)
        occurrence.status = "sent" if not failed else ("failed" if failed == len(sends) else "partial")
        occurrence.finished_at = now


# --- reading -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnerStatus:
    """One owner's part of an occurrence: the groups planned, the mass message's state (not sent yet
    by the owner, sent, refused by WeCom) and each group's result from get_groupmsg_send_result
    (chat id → 0 not sent, 1 sent)."""

    owner: str
    chat_ids: list[str]
    mass_message_id: int | None
    error: str | None
    owner_sent: bool
    groups: dict[str, int]


@dataclass(frozen=True)
class OccurrenceView:
    occurrence: GroupPostOccurrence
    owners: list[OwnerStatus]

    @property
    def groups_reached(self) -> int:
        return sum(1 for o in self.owners for status in o.groups.values() if status == 1)

    @property
    def groups_planned(self) -> int:
        return sum(len(chats) for chats in self.occurrence.plan.values())


def occurrences(
    session: Session, *, workspace_id: int, post_id: int, limit: int = 60
) -> list[OccurrenceView]:
    """A post's occurrences, newest first, with each owner's send and the groups it reached."""
    rows = list(
        session.scalars(
            select(GroupPostOccurrence)
            .where(GroupPostOccurrence.workspace_id == workspace_id, GroupPostOccurrence.post_id == post_id)
            .order_by(GroupPostOccurrence.occurs_at.desc())
            .limit(limit)
        )
    )
    sends: dict[int, dict[str, GroupPostSend]] = {}
    if rows:
        for row_send in session.scalars(
            select(GroupPostSend).where(GroupPostSend.occurrence_id.in_([r.id for r in rows]))
        ):
            sends.setdefault(row_send.occurrence_id, {})[row_send.owner] = row_send
    message_ids = [s.mass_message_id for by in sends.values() for s in by.values() if s.mass_message_id]
    results = wecom.stored_results(session, workspace_id=workspace_id, message_ids=message_ids)
    views = []
    for row in rows:
        owners = []
        for owner, chats in row.plan.items():
            send = sends.get(row.id, {}).get(owner)
            result = results.get(send.mass_message_id) if send and send.mass_message_id else None
            owners.append(
                OwnerStatus(
                    owner=owner,
                    chat_ids=chats,
                    mass_message_id=send.mass_message_id if send else None,
                    error=send.error if send else None,
                    owner_sent=bool(result and result.staff.get(owner) == 1),
                    groups={c: (result.recipients.get(c, 0) if result else 0) for c in chats},
                )
            )
        views.append(OccurrenceView(occurrence=row, owners=owners))
    return views


def local_today(session: Session, *, workspace_id: int, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(_zone(session, workspace_id)).date()


def local_time(session: Session, *, workspace_id: int, at: datetime | None) -> str:
    """A UTC time as the workspace reads it (YYYY-MM-DD HH:MM), or an empty string."""
    if at is None:
        return ""
    return at.astimezone(_zone(session, workspace_id)).strftime("%Y-%m-%d %H:%M")
