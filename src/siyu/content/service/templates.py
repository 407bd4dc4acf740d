"""Message templates: saved per-channel variants, checked when saved (syntax with line and column,
unknown variables, snippets, each channel's rules), compiled for a send, and previewed for a customer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.content.models import MessageTemplate
from siyu.content.schemas import ChannelPreview, PreviewOut, ProblemOut, TemplateIn
from siyu.content.service import library
from siyu.content.service.contexts import render_contexts
from siyu.content.service.rendering import (
    Compiled,
    Links,
    Problem,
    RenderFailed,
    compile_content,
    includes,
    sms_length,
    sms_text,
)
from siyu.core import audit
from siyu.core.config import get_settings
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers

# what each channel's variant needs; other channels of reach (webhook, official account…) need a text
REQUIRED: dict[str, tuple[str, ...]] = {"sms": ("text",), "email": ("subject", "text")}
CHANNELS = ("wecom", "sms", "email", "webhook", "official_account", "mini_program", "default")
MAX_ATTACHMENTS = 9  # WeCom's limit
ATTACHMENT_KINDS = ("image", "link", "miniprogram", "video", "file")
MAX_SIGN = 16


def channel_problems(variants: Mapping[str, Any]) -> list[Problem]:
    """What is wrong with the variants' shape, channel by channel (before any template is compiled)."""
    problems: list[Problem] = []
    if not variants:
        problems.append(Problem("give at least one channel's variant", where="variants", hint="e.g. sms"))
    for channel, body in variants.items():
        if channel not in CHANNELS:
            problems.append(
                Problem(f"channel {channel!r} is not known", where=channel, hint=", ".join(CHANNELS))
            )
            continue
        if not isinstance(body, Mapping):
            problems.append(Problem("a variant is an object of fields", where=channel, channel=channel))
            continue
        needed = REQUIRED.get(channel, () if channel == "wecom" else ("text",))
        for name in needed:
            if not str(body.get(name) or "").strip():
                problems.append(
                    Problem(f"{channel} needs {name!r}", where=f"{channel}.{name}", channel=channel)
                )
        if channel == "wecom":
            attachments = body.get("attachments") or []
            if not str(body.get("text") or "").strip() and not attachments:
                problems.append(
                    Problem("wecom needs a text or an attachment", where="wecom.text", channel="wecom")
                )
            if not isinstance(attachments, list) or len(attachments) > MAX_ATTACHMENTS:
                problems.append(
                    Problem(
                        f"at most {MAX_ATTACHMENTS} attachments", where="wecom.attachments", channel="wecom"
                    )
                )
            else:
                for index, item in enumerate(attachments):
                    ok = isinstance(item, Mapping) and (
                        isinstance(item.get("snippet"), str)
                        or (
                            item.get("msgtype") in ATTACHMENT_KINDS
                            and isinstance(item.get(item.get("msgtype")), Mapping)
                        )
                    )
                    if not ok:
                        problems.append(
                            Problem(
                                f"attachment {index + 1} is not one WeCom knows",
                                where=f"wecom.attachments[{index}]",
                                hint='{"snippet": "a material key"} or {"msgtype": "link", "link": {…}}',
                                channel="wecom",
                            )
                        )
        sign = body.get("sign_name")
        if channel == "sms" and sign is not None and len(str(sign).strip("【】")) > MAX_SIGN:
            problems.append(
                Problem(
                    f"the sign name is longer than {MAX_SIGN} characters",
                    where="sms.sign_name",
                    channel="sms",
                )
            )
    return problems


def _expand(
    session: Session, *, workspace_id: int, variants: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str], list[Problem]]:
    """The variants with WeCom material attachments (`{"snippet": key}`) replaced by the material, and
    the text snippets they include (followed through snippets including snippets)."""
    problems: list[Problem] = []
    content: dict[str, Any] = {k: v for k, v in variants.items() if isinstance(v, Mapping)}
    wecom = content.get("wecom")
    if isinstance(wecom, Mapping) and isinstance(wecom.get("attachments"), list):
        keys = [
            a["snippet"]
            for a in wecom["attachments"]
            if isinstance(a, Mapping) and isinstance(a.get("snippet"), str)
        ]
        materials = library.materials_by_key(session, workspace_id=workspace_id, keys=keys)
        expanded = []
        for index, item in enumerate(wecom["attachments"]):
            if isinstance(item, Mapping) and isinstance(item.get("snippet"), str):
                found = materials.get(item["snippet"])
                if found is None:
                    problems.append(
                        Problem(
                            f"no material has the key {item['snippet']!r}",
                            where=f"wecom.attachments[{index}]",
                            channel="wecom",
                        )
                    )
                    continue
                expanded.append(library.attachment(found))
            else:
                expanded.append(item)
        content["wecom"] = {**wecom, "attachments": expanded}
    snippets: dict[str, str] = {}
    wanted = includes(content)
    for _depth in range(8):
        missing = wanted - set(snippets)
        if not missing:
            break
        found_texts = library.texts_by_key(session, workspace_id=workspace_id, keys=missing)
        if not found_texts:
            break
        snippets.update(found_texts)
        wanted |= includes({"s": dict(found_texts)})
    return content, snippets, problems


def check_variants(session: Session, *, workspace_id: int, variants: Mapping[str, Any]) -> Compiled:
    """Every problem of the variants, or the compiled content; `ValidationFailed` lists them all."""
    problems = channel_problems(variants)
    content, snippets, more = _expand(session, workspace_id=workspace_id, variants=variants)
    compiled = compile_content(content, snippets)
    problems = problems + more + compiled.problems
    if problems:
        first = problems[0]
        raise ValidationFailed(
            "; ".join(
                f"{p.where}: {p.message}" + (f" (line {p.line}, column {p.column})" if p.line else "")
                for p in problems[:5]
            ),
            where=first.where
            if first.line is None
            else f"{first.where}, line {first.line}, column {first.column}",
            hint=first.hint,
            details={"problems": [p.as_dict() for p in problems]},
        )
    return compiled


def compile_for_send(session: Session, *, workspace_id: int, content: Mapping[str, Any]) -> Compiled:
    """Content of a send, compiled once for all its customers (refused whole if any field is wrong)."""
    content_expanded, snippets, problems = _expand(session, workspace_id=workspace_id, variants=content)
    compiled = compile_content(content_expanded, snippets)
    problems = problems + compiled.problems
    if problems:
        first = problems[0]
        raise ValidationFailed(
            f"the content cannot be personalised: {first.message}",
            where=f"content.{first.where}" + (f", line {first.line}" if first.line else ""),
            hint=first.hint,
            details={"problems": [p.as_dict() for p in problems]},
        )
    return compiled


def short_link_base() -> str:
    return get_settings().public_base_url.rstrip("/")


def _template_of(session: Session, *, workspace_id: int, template_id: int) -> MessageTemplate:
    found = session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.workspace_id == workspace_id, MessageTemplate.id == template_id
        )
    )
    if found is None:
        raise NotFound(f"no template {template_id} in this workspace", where="template_id")
    return found


def get_template(session: Session, *, workspace_id: int, template_id: int) -> MessageTemplate:
    return _template_of(session, workspace_id=workspace_id, template_id=template_id)


def list_templates(session: Session, *, workspace_id: int) -> list[MessageTemplate]:
    return list(
        session.scalars(
            select(MessageTemplate)
            .where(MessageTemplate.workspace_id == workspace_id)
            .order_by(MessageTemplate.name)
        )
    )


def _unique_name(session: Session, *, workspace_id: int, name: str, own_id: int | None) -> None:
    other = session.scalar(
        select(MessageTemplate.id).where(
            MessageTemplate.workspace_id == workspace_id, MessageTemplate.name == name
        )
    )
    if other is not None and other != own_id:
        raise Conflict(f"another template is named {name!r}", where="name", hint="choose another name")


def _name(body: TemplateIn) -> str:
    name = body.name.strip()
    if not name:
        raise ValidationFailed("give the template a name", where="name")
    return name


def create_template(session: Session, *, actor: Actor, body: TemplateIn) -> MessageTemplate:
    """Save a new template, checked first: nothing is saved while a field has a problem."""
    actor.require(Permission.WRITE)
    name = _name(body)
    check_variants(session, workspace_id=actor.workspace_id, variants=body.variants)
    _unique_name(session, workspace_id=actor.workspace_id, name=name, own_id=None)
    now = utcnow()
    template = MessageTemplate(
        workspace_id=actor.workspace_id, name=name, description=body.description, variants=body.variants,
        created_by_user_id=actor.user_id, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(template)
    session.flush()
    audit.record(
        session, workspace_id=actor.workspace_id, actor_user_id=actor.user_id, action="content.template_created",
        target_type="content_template", target_id=str(template.id), detail={"name": name, "channels": sorted(body.variants)},
    )  # fmt: skip
    return template


def update_template(session: Session, *, actor: Actor, template_id: int, body: TemplateIn) -> MessageTemplate:
    actor.require(Permission.WRITE)
    template = _template_of(session, workspace_id=actor.workspace_id, template_id=template_id)
    name = _name(body)
    check_variants(session, workspace_id=actor.workspace_id, variants=body.variants)
    _unique_name(session, workspace_id=actor.workspace_id, name=name, own_id=template.id)
    template.name, template.description, template.variants = name, body.description, dict(body.variants)
    template.updated_at = utcnow()
    audit.record(
        session, workspace_id=actor.workspace_id, actor_user_id=actor.user_id, action="content.template_updated",
        target_type="content_template", target_id=str(template.id), detail={"name": name, "channels": sorted(body.variants)},
    )  # fmt: skip
    return template


def preview(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    variants: Mapping[str, Any] | None = None,
    template_id: int | None = None,
) -> PreviewOut:
    """Each channel rendered for one customer the actor can see — its text, the SMS length and parts,
    where its tracked links lead, or its problems. Nothing is stored (links show a placeholder)."""
    actor.require(Permission.READ)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    if variants is None:
        if template_id is None:
            raise ValidationFailed("give variants or a template to preview", where="variants")
        variants = _template_of(session, workspace_id=actor.workspace_id, template_id=template_id).variants
    shape = channel_problems(variants)
    content, snippets, more = _expand(session, workspace_id=actor.workspace_id, variants=variants)
    compiled = compile_content(content, snippets)
    context = render_contexts(session, workspace_id=actor.workspace_id, customer_ids=[customer_id]).get(
        customer_id, {}
    )
    out: list[ChannelPreview] = []
    for channel in content:
        problems = [p for p in shape + more + compiled.problems if p.channel == channel]
        item = ChannelPreview(channel=channel)
        if not problems:
            links = Links(base_url=short_link_base(), preview=True)
            try:
                item.content = compiled.render(channel, context, links)
            except RenderFailed as error:
                problems.append(
                    Problem(error.message, where=error.where or channel, hint=error.hint, channel=channel)
                )
            item.links = list(links.tokens)
        item.problems = [ProblemOut(**{k: v for k, v in p.as_dict().items()}) for p in problems]
        body = item.content if item.content is not None else content.get(channel, {})
        if channel == "sms" and isinstance(body, Mapping):
            text, sign = str(body.get("text") or ""), body.get("sign_name")
            item.sms = {**sms_length(text, sign).as_dict(), "received": sms_text(text, sign)}
        out.append(item)
    return PreviewOut(customer_id=customer_id, channels=out)
