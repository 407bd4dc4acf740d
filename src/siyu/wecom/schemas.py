"""Pydantic shapes of the WeCom settings (the secret goes in, never out) and the staff mapping."""

from __future__ import annotations

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
