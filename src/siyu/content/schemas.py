"""Templates, snippets, previews and click counts in and out of the JSON API (the pages build the
same `TemplateIn` / `SnippetIn`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TemplateIn(BaseModel):
    name: str = Field(max_length=100)
    description: str = Field("", max_length=500)
    variants: dict[str, dict[str, Any]] = Field(
        description="Per channel: wecom {text, attachments}, sms {text, sign_name}, email {subject, text, html}."
    )


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    variants: dict[str, dict[str, Any]]
    created_at: datetime
    updated_at: datetime


class SnippetIn(BaseModel):
    key: str = Field(max_length=64, description='What templates include: {% include "key" %}.')
    kind: str = Field("text", description="text, image, link or miniprogram.")
    title: str = Field(max_length=200)
    group_name: str = Field("", max_length=64)
    tags: list[str] = []
    text: str = ""
    fields: dict[str, str] = Field({}, description="image: url; link: title, url, desc, picurl; …")


class SnippetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    kind: str
    title: str
    group_name: str
    tags: list[str]
    text: str
    fields: dict[str, Any]
    copy_count: int
    updated_at: datetime


class PreviewIn(BaseModel):
    customer_id: int
    variants: dict[str, dict[str, Any]] | None = Field(
        None, description="Unsaved variants to preview (the edit page); none: the saved template's."
    )


class ProblemOut(BaseModel):
    message: str
    where: str
    line: int | None = None
    column: int | None = None
    hint: str | None = None


class ChannelPreview(BaseModel):
    channel: str
    content: dict[str, Any] | None = None  # rendered; None when it failed
    problems: list[ProblemOut] = []
    sms: dict[str, Any] | None = None  # encoding, length, parts, per_part; received: the text as received
    links: list[str] = []  # the URLs its tracked links lead to


class PreviewOut(BaseModel):
    customer_id: int
    channels: list[ChannelPreview]


class ClicksOut(BaseModel):
    source: str
    source_ref: str
    links: int  # tracked links rendered (one per message and URL)
    clicked_links: int  # of them, clicked at least once
    clicking_customers: int
    clicks: int  # every visit, repeats included
    by_url: dict[str, int]  # URL → clicked links
