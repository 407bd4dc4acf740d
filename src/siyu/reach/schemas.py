"""Messages, sends, the policy, receipts and opt-outs in and out of the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class MessageOut(BaseModel):
    id: int
    customer_id: int
    source: str
    source_ref: str
    step: str
    idempotency_key: str
    purpose: str
    channel: str | None
    address: str | None
    content: dict[str, Any]
    status: str = Field(description="queued, deferred, sent, delivered, failed or suppressed")
    reason: str | None = Field(description="why it was suppressed (docs/reach.md)")
    explanation: list[dict[str, Any]] = Field(description="each channel tried and what stopped it")
    planned_at: datetime
    due_at: datetime | None
    attempts: int
    last_error: str | None
    provider_message_id: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None


class SendIn(BaseModel):
    customer_ids: list[int] = Field(min_length=1, max_length=10_000)
    channel_preference: list[str] = Field(
        description='channels in order of preference, e.g. ["wecom", "sms"]'
    )
    content: dict[str, dict[str, Any]] = Field(
        description='per channel, e.g. {"sms": {"text": "…"}, "email": {"subject": "…", "text": "…"}}; '
        'a "default" entry serves channels without their own'
    )
    purpose: Literal["marketing", "transactional"] = "marketing"
    source: Literal["staff", "api"] = "api"
    source_ref: str = Field(description="what sends (part of each message's idempotency key)")
    step: str = ""
    idempotency_key: str | None = Field(
        None, description="a key of this request; retries with it decide nothing twice"
    )
    send_at: datetime | None = Field(None, description="schedule the messages for later")
    personalise: bool = Field(
        False, description="render the content's strings as templates for each customer (docs/content.md)"
    )


class ChannelOptionOut(BaseModel):
    channel: str
    address: str | None = Field(description="masked for the staff role")
    reachable: bool
    reason: str | None = Field(description="why the channel cannot reach the customer for the purpose")


class OneToOneIn(BaseModel):
    channel: Literal["wecom", "sms", "email"]
    purpose: Literal["marketing", "transactional"] = "transactional"
    text: str = Field(description="a template: variables and snippets are rendered for the customer")
    subject: str = Field("", description="the email's subject")
    idempotency_key: str = Field(description="8–64 letters, digits, - or _; a retry with it sends once")


class OneToOneOut(BaseModel):
    message: MessageOut
    repeated: bool = Field(description="the key was used before: nothing was decided twice")


class SendOut(BaseModel):
    audience: int
    created: int
    existing: int = Field(description="customers that already had a message under the same key")
    by_status: dict[str, int]
    by_reason: dict[str, int]


class AccountingOut(BaseModel):
    source: str
    source_ref: str
    total: int
    by_status: dict[str, int]
    by_reason: dict[str, int]


class ChannelCap(BaseModel):
    count: int
    days: int


class PolicyIn(BaseModel):
    marketing_budget: int | None = None
    budget_days: int | None = None
    channel_caps: dict[str, ChannelCap] | None = None
    wecom_cap: Literal["month", "week", "day"] | None = None
    quiet_start: str | None = None
    quiet_end: str | None = None
    quiet_hours_off: bool = Field(False, description="true: no quiet hours")
    dedup_hours: int | None = None
    max_attempts: int | None = None
    rate_limits: dict[str, float] | None = None


class PolicyOut(BaseModel):
    marketing_budget: int
    budget_days: int
    channel_caps: dict[str, ChannelCap]
    wecom_cap: str
    quiet_start: str | None
    quiet_end: str | None
    dedup_hours: int
    max_attempts: int
    rate_limits: dict[str, float]


class ReceiptIn(BaseModel):
    provider_message_id: str
    outcome: Literal["delivered", "bounced", "failed"]
    detail: str = ""


class SmsReplyIn(BaseModel):
    phone: str
    text: str


class AliyunSmsReportIn(BaseModel):
    """One item of Aliyun's SmsReport push (a JSON array of them)."""

    model_config = ConfigDict(extra="ignore")

    phone_number: str = ""
    success: bool
    err_code: str = ""
    err_msg: str = ""
    biz_id: str = ""
    out_id: str = ""
    send_time: str = ""
    report_time: str = ""
    sms_size: str = ""


class AliyunSmsUpIn(BaseModel):
    """One item of Aliyun's SmsUp push: a reply a customer sent."""

    model_config = ConfigDict(extra="ignore")

    phone_number: str
    content: str = ""
    send_time: str = ""
    sign_name: str = ""
    dest_code: str = ""
    sequence_id: int | str | None = None


class AliyunPushOut(BaseModel):
    """The answer Aliyun expects: a numeric code (0); anything but HTTP 200 makes it push again."""

    code: int = 0
    msg: str = "接收成功"


class PushUrlsOut(BaseModel):
    aliyun_sms_report: str = Field(description="Aliyun SMS console → 回执消息 → SmsReport, HTTP batch push")
    aliyun_sms_up: str = Field(description="Aliyun SMS console → 回执消息 → SmsUp, HTTP batch push")


class DoNotContactIn(BaseModel):
    do_not_contact: bool
    note: str = ""
