"""Groups for the tests, stored the way a groupchat/get answer is: through wecom.store_group."""

from __future__ import annotations

import io
import uuid
from datetime import datetime
from typing import Any

from PIL import Image
from sqlalchemy.orm import Session

from siyu.wecom import service as wecom


def png() -> bytes:
    """A small real PNG (a stand-in for a group's join QR saved from WeCom)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def chat(
    name: str, members: list[str], *, owner: str = "zhangsan", chat_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A groupchat/get answer: the owner (staff) and external members `wm…` with their join times."""
    return {
        "chat_id": chat_id or "wr" + uuid.uuid4().hex[:12],
        "name": name,
        "owner": owner,
        "member_list": [{"userid": owner, "type": 1, "join_time": 1_700_000_000}]
        + [{"userid": m, "type": 2, "join_time": 1_700_000_000, "join_scene": 3, **extra} for m in members],
    }


def store(session: Session, workspace_id: int, answer: dict[str, Any], at: datetime | None = None) -> str:
    wecom.store_group(session, workspace_id=workspace_id, chat=answer, observed_at=at)
    return str(answer["chat_id"])
