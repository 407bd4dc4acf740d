"""Moments posts (朋友圈, add_moment_task): text with images, a link or a video, visible to customers by
tag, submitted now or when scheduled; the async job's result and each staff member's publish status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from siyu.core import audit, fetch
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.wecom.client import WecomClient
from siyu.wecom.models import WecomMassMessage, WecomMoment, WecomMomentStaff
from siyu.wecom.service.contacts import wecom_tag_ids
from siyu.wecom.service.settings import wecom_client

MAX_MOMENT_IMAGES = 9
PAGE = 1000
JOB_DONE = 3
# media uploaded for a moment (upload_attachment) is valid for 3 days: a post scheduled later than that
# would be submitted with a media_id WeCom no longer knows
MEDIA_LIFETIME = timedelta(days=3)
MAX_IMAGE_BYTES = 10 * 1024 * 1024
FOLLOW_FOR = timedelta(days=3)  # staff publish a moment within days, if ever
JOB_POLL_EVERY = timedelta(seconds=30)  # the async job is done within seconds to minutes
STAFF_POLL_EVERY = timedelta(minutes=5)
_IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
# WeCom's documented media limits: a video is an MP4 up to 10 MB, and every file is larger than 5 bytes
MAX_VIDEO_BYTES = 10 * 1024 * 1024
MIN_MEDIA_BYTES = 6


def _is_mp4(content: bytes) -> bool:
    # an MP4 (ISO base media file) opens with its `ftyp` box: 4 bytes of size, then b"ftyp"
    return len(content) >= 12 and content[4:8] == b"ftyp"


def upload_moment_video(
    session: Session,
    *,
    workspace_id: int,
    filename: str,
    content: bytes,
    client: WecomClient | None = None,
) -> str:
    """Upload an MP4 for a moment (media/upload_attachment, media_type video, attachment_type 1) and
    return its media_id, valid for three days."""
    if len(content) < MIN_MEDIA_BYTES or not _is_mp4(content):
        raise ValidationFailed(
            f"{filename[:60]!r} is not an MP4 video", where="video", hint="WeCom takes MP4"
        )
    if len(content) > MAX_VIDEO_BYTES:
        raise ValidationFailed(
            f"{filename[:60]!r} is {len(content)} bytes; WeCom takes videos up to 10 MB", where="video"
        )
    wecom, own = wecom_client(session, workspace_id, client)
    try:
        answer = wecom.upload(
            "/cgi-bin/media/upload_attachment",
            filename=filename or "video.mp4",
            content=content,
            content_type="video/mp4",
            media_type="video",
            attachment_type=1,
        )
    finally:
        if own:
            wecom.close()
    return str(answer["media_id"])


def upload_moment_image(
    session: Session,
    *,
    workspace_id: int,
    filename: str,
    content: bytes,
    client: WecomClient | None = None,
) -> str:
    """Upload a JPEG or PNG for a moment (media/upload_attachment, media_type image, attachment_type 1
    for moments) and return its media_id, valid for three days."""
    kind = _image_type(content)
    if kind is None:
        raise ValidationFailed(f"{filename[:60]!r} is not a JPEG or PNG image", where="images")
    if len(content) > MAX_IMAGE_BYTES:
        raise ValidationFailed(
            f"{filename[:60]!r} is {len(content)} bytes; WeCom takes images up to 10 MB", where="images"
        )
    wecom, own = wecom_client(session, workspace_id, client)
    try:
        answer = wecom.upload(
            "/cgi-bin/media/upload_attachment",
            filename=filename or "image",
            content=content,
            content_type=kind,
            media_type="image",
            attachment_type=1,
        )
    finally:
        if own:
            wecom.close()
    return str(answer["media_id"])


@dataclass(frozen=True)
class FetchedImage:
    url: str
    filename: str
    content: bytes


def _image_type(content: bytes) -> str | None:
    return next((t for magic, t in _IMAGE_TYPES.items() if content.startswith(magic)), None)


def fetch_moment_image(
    url: str, *, where: str = "image_urls", transport: httpx.BaseTransport | None = None
) -> FetchedImage:
    """Fetch an image for a moment from a URL (siyu.core.fetch: http(s), public addresses unless
    SIYU_FETCH_ALLOW_PRIVATE, the settings' timeout, at most 10 MB) and check that it is a JPEG or PNG by
    its first bytes, whatever its content type says. Refusals name the URL and the reason."""
    fetched = fetch.fetch(url, max_bytes=MAX_IMAGE_BYTES, where=where, transport=transport)
    if _image_type(fetched.content) is None:
        said = fetched.content_type.split(";", 1)[0].strip() or "no content type"
        raise ValidationFailed(
            f"{url[:200]}: not a JPEG or PNG image (the server sent {len(fetched.content)} bytes of {said})",
            where=where,
            hint="give the URL of the image itself, a .jpg or .png",
        )
    name = unquote(urlsplit(fetched.final_url).path.rsplit("/", 1)[-1])[:100]
    return FetchedImage(url=url, filename=name or "image", content=fetched.content)


def upload_moment_image_from_url(
    session: Session,
    *,
    workspace_id: int,
    url: str,
    where: str = "image_urls",
    client: WecomClient | None = None,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """Fetch an image by URL (`fetch_moment_image`) and upload it as `upload_moment_image` does;
    returns its media_id, valid for three days."""
    image = fetch_moment_image(url, where=where, transport=transport)
    return upload_moment_image(
        session, workspace_id=workspace_id, filename=image.filename, content=image.content, client=client
    )


def moment_content(
    *,
    text: str | None,
    image_media_ids: list[str] | None,
    link: dict[str, str] | None,
    video_media_id: str | None,
) -> dict[str, Any]:
    """The text and attachments of a moment: up to 9 images, or one link, or one video."""
    images = list(image_media_ids or [])
    kinds = sum(bool(x) for x in (images, link, video_media_id))
    if kinds > 1:
        raise ValidationFailed(
            "a moment carries images, or a link, or a video — not several kinds", where="attachments"
        )
    if len(images) > MAX_MOMENT_IMAGES:
        raise ValidationFailed(
            f"{len(images)} images; a moment takes at most {MAX_MOMENT_IMAGES}", where="images"
        )
    attachments: list[dict[str, Any]] = [{"msgtype": "image", "image": {"media_id": m}} for m in images]
    if link:
        if not link.get("url", "").startswith(("http://", "https://")) or not link.get("media_id"):
            raise ValidationFailed(
                "a link needs its url (http/https) and a media_id for its picture", where="link"
            )
        attachments.append(
            {"msgtype": "link", "link": {k: link[k] for k in ("title", "url", "media_id") if k in link}}
        )
    if video_media_id:
        attachments.append({"msgtype": "video", "video": {"media_id": video_media_id}})
    body: dict[str, Any] = {}
    if text and text.strip():
        body["text"] = {"content": text}
    if attachments:
        body["attachments"] = attachments
    if not body:
        raise ValidationFailed(
            "the moment is empty", where="text", hint="give a text, images, a link or a video"
        )
    return body


def moment_by_request_key(session: Session, *, workspace_id: int, request_key: str) -> WecomMoment | None:
    """The moment created before under this request key, if any (a retried request)."""
    return session.scalar(
        select(WecomMoment).where(
            WecomMoment.workspace_id == workspace_id, WecomMoment.request_key == request_key
        )
    )


def create_moment(
    session: Session,
    *,
    workspace_id: int,
    actor_user_id: int | None,
    text: str | None = None,
    image_media_ids: list[str] | None = None,
    link: dict[str, str] | None = None,
    video_media_id: str | None = None,
    sender_userids: list[str] | None = None,
    visible_tag_ids: list[int] | None = None,
    scheduled_for: datetime | None = None,
    request_key: str | None = None,
    now: datetime | None = None,
    client: WecomClient | None = None,
) -> WecomMoment:
    """A moments post for the staff to publish, visible to the customers carrying the given tags (siyu
    tag ids of synced WeCom corp tags).

    Submitted now (add_moment_task → jobid), or kept until `scheduled_for` and submitted by
    `publish_due_moments`. Poll the job with `poll_moment_result`.
    """
    if request_key:
        earlier = moment_by_request_key(session, workspace_id=workspace_id, request_key=request_key)
        if earlier is not None:
            return earlier
    body = moment_content(
        text=text, image_media_ids=image_media_ids, link=link, video_media_id=video_media_id
    )
    visible: dict[str, Any] = {}
    if sender_userids:
        visible["sender_list"] = {"user_list": list(sender_userids)}
    if visible_tag_ids:
        mapping = wecom_tag_ids(
            session, workspace_id=workspace_id, tag_ids=visible_tag_ids, where="visible_tag_ids"
        )
        visible["external_contact_list"] = {"tag_list": [mapping[t] for t in visible_tag_ids]}
    if visible:
        body["visible_range"] = visible
    current = now or utcnow()
    if scheduled_for is not None and scheduled_for.tzinfo is None:
        raise ValidationFailed("scheduled_for needs a time zone", where="scheduled_for")
    has_media = bool(image_media_ids or video_media_id or link)
    if has_media and scheduled_for is not None and scheduled_for > current + MEDIA_LIFETIME:
        raise ValidationFailed(
            "the images, video or link picture expire 3 days after upload, before the scheduled time",
            where="scheduled_for",
            hint="schedule a post with attachments within 3 days, or upload them closer to the day",
        )
    moment = WecomMoment(
        workspace_id=workspace_id,
        request_key=request_key,
        request=body,
        job_status=0,
        scheduled_for=scheduled_for,
        created_by_user_id=actor_user_id,
        created_at=current,
    )
    session.add(moment)
    session.flush()
    if scheduled_for is None or scheduled_for <= current:
        _submit(session, moment, client)
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="wecom.moment_created",
        target_type="wecom_moment",
        target_id=moment.id,
        detail={"scheduled_for": scheduled_for.isoformat() if scheduled_for else None, "jobid": moment.jobid},
    )
    return moment


def _submit(session: Session, moment: WecomMoment, client: WecomClient | None) -> None:
    wecom, own = wecom_client(session, moment.workspace_id, client)
    try:
        answer = wecom.post("/cgi-bin/externalcontact/add_moment_task", moment.request)
    finally:
        if own:
            wecom.close()
    moment.jobid, moment.job_status = answer["jobid"], 1
    moment.submitted_at = utcnow()
    session.flush()


def publish_due_moments(
    session: Session, *, workspace_id: int, now: datetime | None = None, client: WecomClient | None = None
) -> list[WecomMoment]:
    """Submit the scheduled moments whose time has come. The rows are locked (skipping those another
    worker holds), so two workers never submit one moment twice."""
    due = list(
        session.scalars(
            select(WecomMoment)
            .where(
                WecomMoment.workspace_id == workspace_id,
                WecomMoment.jobid.is_(None),
                WecomMoment.scheduled_for <= (now or utcnow()),
            )
            .with_for_update(skip_locked=True)
        )
    )
    for moment in due:
        _submit(session, moment, client)
    return due


def get_moment(session: Session, *, workspace_id: int, moment_id: int) -> WecomMoment:
    moment = session.get(WecomMoment, moment_id)
    if moment is None or moment.workspace_id != workspace_id:
        raise NotFound(f"moment {moment_id} does not exist in this workspace", where="moment_id")
    return moment


def poll_moment_result(
    session: Session,
    *,
    workspace_id: int,
    moment_id: int,
    now: datetime | None = None,
    client: WecomClient | None = None,
) -> WecomMoment:
    """Read the async job (get_moment_task_result); once done, each staff member's publish status
    (get_moment_task). Safe to repeat."""
    moment = get_moment(session, workspace_id=workspace_id, moment_id=moment_id)
    if moment.jobid is None:
        return moment  # scheduled, not submitted yet
    wecom, own = wecom_client(session, workspace_id, client)
    try:
        if moment.job_status != JOB_DONE:
            answer = wecom.get("/cgi-bin/externalcontact/get_moment_task_result", jobid=moment.jobid)
            moment.job_status = int(answer.get("status", 1))
            moment.result = answer.get("result") or {}
            moment.moment_id = moment.result.get("moment_id") or moment.moment_id
        if moment.job_status == JOB_DONE and moment.moment_id:
            cursor = ""
            while True:
                page = wecom.post(
                    "/cgi-bin/externalcontact/get_moment_task",
                    {"moment_id": moment.moment_id, "cursor": cursor, "limit": PAGE},
                )
                for task in page.get("task_list") or []:
                    row = session.scalar(
                        select(WecomMomentStaff).where(
                            WecomMomentStaff.moment_id == moment.id,
                            WecomMomentStaff.wecom_userid == task["userid"],
                        )
                    )
                    if row is None:
                        row = WecomMomentStaff(
                            workspace_id=workspace_id, moment_id=moment.id, wecom_userid=task["userid"]
                        )
                        session.add(row)
                    row.publish_status = int(task.get("publish_status", 0))
                cursor = page.get("next_cursor") or ""
                if not cursor:
                    break
    finally:
        if own:
            wecom.close()
    moment.polled_at = now or utcnow()
    session.flush()
    return moment


def mark_moment_polled(session: Session, *, workspace_id: int, moment_id: int, now: datetime) -> None:
    """Record a poll WeCom refused or did not answer, so the next try waits its turn."""
    get_moment(session, workspace_id=workspace_id, moment_id=moment_id).polled_at = now


def moments_to_poll(session: Session, *, workspace_id: int, now: datetime) -> list[int]:
    """The submitted moments to ask WeCom about now: a running job every 30 seconds, a done one's
    staff every 5 minutes while staff may still publish it (3 days after submission)."""
    return list(
        session.scalars(
            select(WecomMoment.id)
            .where(
                WecomMoment.workspace_id == workspace_id,
                WecomMoment.jobid.is_not(None),
                WecomMoment.submitted_at >= now - FOLLOW_FOR,
                or_(
                    WecomMoment.polled_at.is_(None),
                    and_(WecomMoment.job_status != JOB_DONE, WecomMoment.polled_at <= now - JOB_POLL_EVERY),
                    and_(WecomMoment.job_status == JOB_DONE, WecomMoment.polled_at <= now - STAFF_POLL_EVERY),
                ),
            )
            .order_by(WecomMoment.id)
        )
    )


@dataclass(frozen=True)
class MomentRow:
    """A moment as the list shows it: its state (scheduled, submitted, published) and how many of its
    staff published it."""

    moment: WecomMoment
    state: str
    staff_total: int
    staff_published: int


def moment_state(moment: WecomMoment) -> str:
    if moment.jobid is None:
        return "scheduled"
    return "published" if moment.job_status == JOB_DONE and moment.moment_id else "submitted"


def list_moments(session: Session, *, workspace_id: int, limit: int = 200) -> list[MomentRow]:
    """The workspace's moments, newest first, with their staff counts."""
    counts = dict(
        (row[0], (row[1], row[2]))
        for row in session.execute(
            select(
                WecomMomentStaff.moment_id,
                func.count(),
                func.sum(WecomMomentStaff.publish_status),
            )
            .where(WecomMomentStaff.workspace_id == workspace_id)
            .group_by(WecomMomentStaff.moment_id)
        )
    )
    moments = session.scalars(
        select(WecomMoment)
        .where(WecomMoment.workspace_id == workspace_id)
        .order_by(WecomMoment.id.desc())
        .limit(limit)
    )
    return [
        MomentRow(
            moment=m,
            state=moment_state(m),
            staff_total=int(counts.get(m.id, (0, 0))[0]),
            staff_published=int(counts.get(m.id, (0, 0))[1] or 0),
        )
        for m in moments
    ]


def moment_staff(session: Session, *, workspace_id: int, moment_id: int) -> dict[str, int]:
    """Publish status per staff userid (0 not yet, 1 published)."""
    moment = get_moment(session, workspace_id=workspace_id, moment_id=moment_id)
    return dict(
        session.execute(
            select(WecomMomentStaff.wecom_userid, WecomMomentStaff.publish_status).where(
                WecomMomentStaff.moment_id == moment.id
            )
        )
        .tuples()
        .all()
    )


def open_tasks(session: Session, *, workspace_id: int, since: datetime) -> tuple[list[int], list[int]]:
    """(mass message ids created since `since`, moment ids submitted but not done): what polling follows."""
    messages = list(
        session.scalars(
            select(WecomMassMessage.id).where(
                WecomMassMessage.workspace_id == workspace_id, WecomMassMessage.created_at >= since
            )
        )
    )
    moments = list(
        session.scalars(
            select(WecomMoment.id).where(
                WecomMoment.workspace_id == workspace_id,
                WecomMoment.jobid.is_not(None),
                WecomMoment.created_at >= since,
            )
        )
    )
    return messages, moments
