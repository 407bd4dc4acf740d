"""The content library (话术库): reusable texts staff copy into chats and templates include by key, and
materials (image, link card, mini-program card) for WeCom attachments; grouped, tagged, searchable."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.content.models import Snippet, SnippetKind
from siyu.content.schemas import SnippetIn
from siyu.core import audit
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# the fields each material needs, and WeCom's attachment it becomes
MATERIAL_FIELDS: dict[str, tuple[str, ...]] = {
    SnippetKind.IMAGE: ("url",),
    SnippetKind.LINK: ("title", "url"),
    SnippetKind.MINIPROGRAM: ("title", "appid", "page"),
}
MAX_TAGS = 20


def _check(body: SnippetIn) -> None:
    if not KEY.match(body.key):
        raise ValidationFailed(
            f"the key {body.key[:70]!r} is not usable",
            where="key",
            hint="lowercase letters, digits, - and _, starting with a letter or digit (e.g. welcome-new)",
        )
    if body.kind not in {k.value for k in SnippetKind}:
        raise ValidationFailed(
            f"kind {body.kind!r} is not known", where="kind", hint="text, image, link or miniprogram"
        )
    if not body.title.strip():
        raise ValidationFailed("give the snippet a title", where="title")
    if body.kind == SnippetKind.TEXT and not body.text.strip():
        raise ValidationFailed("a text snippet needs its text", where="text")
    for name in MATERIAL_FIELDS.get(body.kind, ()):
        if not str(body.fields.get(name) or "").strip():
            raise ValidationFailed(f"a {body.kind} needs {name!r}", where=f"fields.{name}")
    for name in ("url", "picurl"):
        value = body.fields.get(name)
        if value and not re.match(r"^https?://[^\s]+$", value):
            raise ValidationFailed(f"{name} must be an http(s) URL", where=f"fields.{name}")
    if len(body.tags) > MAX_TAGS or any(not t.strip() or len(t) > 32 for t in body.tags):
        raise ValidationFailed(f"at most {MAX_TAGS} tags of 1–32 characters", where="tags")


def _apply(snippet: Snippet, body: SnippetIn) -> None:
    snippet.key = body.key
    snippet.kind = body.kind
    snippet.title = body.title.strip()
    snippet.group_name = body.group_name.strip()
    snippet.tags = sorted({t.strip() for t in body.tags})
    snippet.text = body.text
    snippet.fields = {k: v for k, v in body.fields.items() if v}
    snippet.updated_at = utcnow()


def _unique_key(session: Session, *, workspace_id: int, key: str, own_id: int | None) -> None:
    other = session.scalar(select(Snippet.id).where(Snippet.workspace_id == workspace_id, Snippet.key == key))
    if other is not None and other != own_id:
        raise Conflict(f"another snippet has the key {key!r}", where="key", hint="choose another key")


def create_snippet(session: Session, *, actor: Actor, body: SnippetIn) -> Snippet:
    actor.require(Permission.WRITE)
    _check(body)
    _unique_key(session, workspace_id=actor.workspace_id, key=body.key, own_id=None)
    snippet = Snippet(workspace_id=actor.workspace_id, copy_count=0, created_at=utcnow())
    _apply(snippet, body)
    session.add(snippet)
    session.flush()
    audit.record(
        session, workspace_id=actor.workspace_id, actor_user_id=actor.user_id, action="content.snippet_created",
        target_type="content_snippet", target_id=str(snippet.id), detail={"key": snippet.key},
    )  # fmt: skip
    return snippet


def get_snippet(session: Session, *, workspace_id: int, snippet_id: int) -> Snippet:
    snippet = session.scalar(
        select(Snippet).where(Snippet.workspace_id == workspace_id, Snippet.id == snippet_id)
    )
    if snippet is None:
        raise NotFound(f"no snippet {snippet_id} in this workspace", where="snippet_id")
    return snippet


def update_snippet(session: Session, *, actor: Actor, snippet_id: int, body: SnippetIn) -> Snippet:
    actor.require(Permission.WRITE)
    snippet = get_snippet(session, workspace_id=actor.workspace_id, snippet_id=snippet_id)
    _check(body)
    _unique_key(session, workspace_id=actor.workspace_id, key=body.key, own_id=snippet.id)
    _apply(snippet, body)
    audit.record(
        session, workspace_id=actor.workspace_id, actor_user_id=actor.user_id, action="content.snippet_updated",
        target_type="content_snippet", target_id=str(snippet.id), detail={"key": snippet.key},
    )  # fmt: skip
    return snippet


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def list_snippets(
    session: Session,
    *,
    workspace_id: int,
    query: str = "",
    group: str = "",
    tag: str = "",
    kind: str = "",
    limit: int = 200,
) -> list[Snippet]:
    """Snippets matching a search (title, key or text contains it), a group, a tag and a kind; by group
    and title. The tag filter runs in Python: tags are a JSON list on both databases."""
    statement = select(Snippet).where(Snippet.workspace_id == workspace_id)
    if query.strip():
        pattern = _like(query.strip().lower())
        statement = statement.where(
            or_(
                func.lower(Snippet.title).like(pattern, escape="\\"),
                func.lower(Snippet.key).like(pattern, escape="\\"),
                func.lower(Snippet.text).like(pattern, escape="\\"),
            )
        )
    if group:
        statement = statement.where(Snippet.group_name == group)
    if kind:
        statement = statement.where(Snippet.kind == kind)
    found = list(session.scalars(statement.order_by(Snippet.group_name, Snippet.title, Snippet.id)))
    if tag:
        found = [s for s in found if tag in (s.tags or [])]
    return found[: max(1, min(limit, 1000))]


def groups(session: Session, *, workspace_id: int) -> list[str]:
    return [
        g
        for g in session.scalars(
            select(Snippet.group_name)
            .where(Snippet.workspace_id == workspace_id)
            .distinct()
            .order_by(Snippet.group_name)
        )
        if g
    ]


def copy_snippet(session: Session, *, actor: Actor, snippet_id: int) -> Snippet:
    """A member copied the snippet (to paste into a chat): counted, so the library shows what is used."""
    actor.require(Permission.READ)
    snippet = get_snippet(session, workspace_id=actor.workspace_id, snippet_id=snippet_id)
    session.execute(update(Snippet).where(Snippet.id == snippet.id).values(copy_count=Snippet.copy_count + 1))
    session.refresh(snippet)
    return snippet


def texts_by_key(session: Session, *, workspace_id: int, keys: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = session.execute(
        select(Snippet.key, Snippet.text).where(
            Snippet.workspace_id == workspace_id, Snippet.kind == SnippetKind.TEXT, Snippet.key.in_(wanted)
        )
    )
    return {key: text for key, text in rows}


def materials_by_key(session: Session, *, workspace_id: int, keys: Iterable[str]) -> dict[str, Snippet]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    return {
        s.key: s
        for s in session.scalars(
            select(Snippet).where(
                Snippet.workspace_id == workspace_id,
                Snippet.kind != SnippetKind.TEXT,
                Snippet.key.in_(wanted),
            )
        )
    }


def attachment(snippet: Snippet) -> dict[str, Any]:
    """A material as WeCom's attachment (`msgtype` and its body, the shapes of wecom.service.contacts)."""
    f = snippet.fields or {}
    if snippet.kind == SnippetKind.IMAGE:
        return {"msgtype": "image", "image": {"pic_url": f["url"]}}
    if snippet.kind == SnippetKind.LINK:
        body = {"title": f["title"], "url": f["url"]}
        body.update({k: f[k] for k in ("desc", "picurl") if f.get(k)})
        return {"msgtype": "link", "link": body}
    body = {"title": f["title"], "appid": f["appid"], "page": f["page"]}
    body.update({k: f[k] for k in ("pic_media_id",) if f.get(k)})
    return {"msgtype": "miniprogram", "miniprogram": body}
