"""Temporary media (临时素材, media/upload) for messages: a JPEG or PNG uploaded for a media_id that WeCom
keeps for 3 days — what a mass message's mini-program card names as its cover (`pic_media_id`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.wecom.client import WecomClient
from siyu.wecom.service.settings import wecom_client

UPLOAD_PATH = "/cgi-bin/media/upload"
MEDIA_LIFETIME = timedelta(days=3)  # WeCom: a temporary media_id is valid for three days
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # WeCom takes images of 6 bytes up to 10 MB, JPG or PNG
_IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


@dataclass(frozen=True)
class UploadedMedia:
    media_id: str
    created_at: datetime


def image_type(*, filename: str, content: bytes, where: str) -> str:
    """The content type of a JPEG or PNG, refusing anything WeCom would refuse, with the file's name."""
    kind = next((t for magic, t in _IMAGE_TYPES.items() if content.startswith(magic)), None)
    if kind is None or len(content) <= 5:
        raise ValidationFailed(f"{filename[:60]!r} is not a JPEG or PNG image", where=where)
    if len(content) > MAX_IMAGE_BYTES:
        raise ValidationFailed(
            f"{filename[:60]!r} is {len(content):,} bytes; WeCom takes images up to 10 MB",
            where=where,
            hint="make the image smaller (a mini-program cover of 520 × 416 pixels is plenty)",
        )
    return kind


def upload_temporary_image(
    session: Session,
    *,
    workspace_id: int,
    filename: str,
    content: bytes,
    client: WecomClient | None = None,
) -> UploadedMedia:
    """Upload an image as temporary media (type image); its media_id lasts `MEDIA_LIFETIME`."""
    kind = image_type(filename=filename, content=content, where="image")
    wecom, own = wecom_client(session, workspace_id, client)
    try:
        answer = wecom.upload(
            UPLOAD_PATH, filename=filename or "image", content=content, content_type=kind, type="image"
        )
    finally:
        if own:
            wecom.close()
    created = answer.get("created_at")
    at = datetime.fromtimestamp(int(created), UTC) if created else utcnow()
    return UploadedMedia(media_id=str(answer["media_id"]), created_at=at)
