"""Pydantic shapes of the WeCom settings (the secret goes in, never out), the staff mapping and moments."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class SettingsIn(BaseModel):
    corp_id: str = Field(description="企业ID, e.g. ww1436e0e65a779aee.")
    secret: str | None = Field(
        None, description="The customer-contact secret (客户联系 → API → Secret); empty keeps the saved one."
    )
    token: str = Field(description="The callback Token set in WeCom (letters and digits, at most 32).")
    encoding_aes_key: str = Field(description="The callback EncodingAESKey set in WeCom (43 characters).")
    agent_id: str | None = Field(None, description="AgentID of the app, if callbacks come from an app.")
    api_base_url: str | None = Field(
        None,
        description="WeCom's API address, or a forward proxy on a trusted IP; default qyapi.weixin.qq.com.",
    )


class SettingsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    corp_id: str
    agent_id: str | None
    token: str
    encoding_aes_key: str
    has_secret: bool = Field(description="Whether a secret is saved (its value is never shown).")
    callback_path: str = Field(description="Set this path on siyu's public address as WeCom's callback URL.")
    callback_url: str
    api_base_url: str


class StaffIn(BaseModel):
    wecom_userid: str = Field(description="The member's userid in WeCom (账号).")
    user_id: int | None = Field(None, description="The siyu user they are; null: no siyu account.")


class StaffOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    wecom_userid: str
    user_id: int | None
    name: str


class MomentLinkIn(BaseModel):
    title: str = Field("", max_length=64, description="The link's title; empty: its URL.")
    url: str = Field(description="Where the link leads.")
    image_url: str = Field(
        description="The picture's http(s) URL: fetched by the server, JPEG or PNG, ≤ 10 MB."
    )


class MomentIn(BaseModel):
    text: str | None = Field(None, max_length=2000)
    image_urls: list[str] = Field(
        default_factory=list,
        max_length=9,
        description="http(s) URLs of up to 9 images, fetched by the server (JPEG or PNG by their first "
        "bytes, ≤ 10 MB each) and uploaded to WeCom; refused with the URL and the reason.",
    )
    link: MomentLinkIn | None = None
    sender_userids: list[str] = Field(
        default_factory=list, description="WeCom userids of the staff who post it."
    )
    visible_tag_ids: list[int] = Field(
        default_factory=list, description="siyu tags (synced corp tags) of the customers who see it."
    )
    scheduled_for: datetime | None = Field(None, description="Submit it then (with a time zone); null: now.")
    request_key: str | None = Field(
        None,
        max_length=64,
        description="A key of this request: a retry with it creates (and fetches) nothing.",
    )


class MomentOut(BaseModel):
    id: int
    state: str = Field(description="scheduled, submitted or published")
    jobid: str | None
    job_status: int
    moment_id: str | None
    scheduled_for: datetime | None
    created_at: datetime
    request: dict[str, object] = Field(
        description="The add_moment_task body as sent (media ids, visible range)."
    )
