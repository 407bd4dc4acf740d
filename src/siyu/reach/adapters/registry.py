"""The adapters of a process, one per channel, built from settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from siyu.core.config import Settings
from siyu.core.errors import ValidationFailed
from siyu.reach.adapters.aliyun_sms import AliyunSmsAdapter, AliyunSmsConfig
from siyu.reach.adapters.base import Adapter, BatchAdapter, OutboundMessage
from siyu.reach.adapters.email import SmtpAdapter, SmtpConfig
from siyu.reach.adapters.log import LogAdapter
from siyu.reach.adapters.webhook import WebhookAdapter
from siyu.reach.adapters.wecom import WecomMassAdapter
from siyu.reach.adapters.wecom_welcome import WecomWelcomeAdapter

if TYPE_CHECKING:
    from siyu.core.db import Database
    from siyu.wecom.client import WecomClient

KINDS = ("smtp", "webhook", "log", "aliyun-sms", "wecom", "wecom-welcome")
WELCOME_CHANNEL = "wecom_welcome"


class Adapters:
    """Channel → adapter; a channel with none configured goes to the log sink (the outbox viewer)."""

    def __init__(
        self,
        by_channel: dict[str, Adapter | BatchAdapter] | None = None,
        default: Adapter | None = None,
    ) -> None:
        self.by_channel = dict(by_channel or {})
        self.default = default or LogAdapter()

    def for_channel(self, channel: str) -> Adapter | BatchAdapter:
        return self.by_channel.get(channel, self.default)


def _wecom_client_factory(database: Database) -> Callable[[int], WecomClient]:
    """The API client of a workspace's corp, from its WeCom settings (read in a short transaction)."""

    def client_for(workspace_id: int) -> WecomClient:
        from siyu.wecom import service as wecom

        with database.reader() as session:
            return wecom.client_for(session, workspace_id=workspace_id)

    return client_for


def welcome_sender(database: Database) -> Callable[[OutboundMessage], None]:
    """`send_welcome_msg` for one welcome message, in a transaction of its own: the welcome code is read
    from the friend relation and marked used together with the call (wecom.service.send_welcome)."""

    def send_welcome(message: OutboundMessage) -> None:
        from siyu.wecom import service as wecom

        content = message.content
        with database.transaction() as session:
            wecom.send_welcome(
                session,
                workspace_id=message.workspace_id,
                wecom_userid=str(content.get("sender") or ""),
                # the add's own external userid: the customer may hold more than one
                external_userid=str(content.get("external_userid") or message.address),
                text=str(content.get("text") or "") or None,
                attachments=list(content.get("attachments") or []) or None,
            )

    return send_welcome


def build_adapters(settings: Settings, *, database: Database | None = None) -> Adapters:
    """The adapters `SIYU_REACH_CHANNELS` names; the wecom adapters read each workspace's WeCom settings
    through `database`. With a database, live codes' welcome messages (channel wecom_welcome) go through
    WeCom's send_welcome_msg unless the mapping names another adapter for them."""
    from siyu.reach import service

    def unsubscribe(message: OutboundMessage) -> str:
        return service.unsubscribe_url(workspace_id=message.workspace_id, customer_id=message.customer_id)

    built: dict[str, Adapter | BatchAdapter] = {}
    for channel, kind in settings.reach_channels.items():
        if kind == "smtp":
            built[channel] = SmtpAdapter(
                SmtpConfig(
                    host=settings.smtp_host,
                    port=settings.smtp_port,
                    security=settings.smtp_security,
                    username=settings.smtp_username,
                    password=settings.smtp_password,
                    sender=settings.smtp_sender,
                ),
                unsubscribe_url=unsubscribe,
            )
        elif kind == "webhook":
            if not settings.reach_webhook_url or not settings.reach_webhook_secret:
                raise ValidationFailed(
                    f"channel {channel!r} uses the webhook adapter, which needs a URL and a secret",
                    where="SIYU_REACH_WEBHOOK_URL / SIYU_REACH_WEBHOOK_SECRET",
                )
            built[channel] = WebhookAdapter(
                url=settings.reach_webhook_url, secret=settings.reach_webhook_secret
            )
        elif kind == "aliyun-sms":
            missing = [
                name
                for name, value in (
                    ("SIYU_ALIYUN_SMS_ACCESS_KEY_ID", settings.aliyun_sms_access_key_id),
                    ("SIYU_ALIYUN_SMS_ACCESS_KEY_SECRET", settings.aliyun_sms_access_key_secret),
                    ("SIYU_ALIYUN_SMS_SIGN_NAME", settings.aliyun_sms_sign_name),
                )
                if not value
            ]
            if missing:
                raise ValidationFailed(
                    f"channel {channel!r} uses Aliyun SMS, which needs {', '.join(missing)}",
                    where=" / ".join(missing),
                    hint="an AccessKey of a RAM user allowed dysms:SendSms, and an approved sign name",
                )
            built[channel] = AliyunSmsAdapter(
                AliyunSmsConfig(
                    access_key_id=settings.aliyun_sms_access_key_id or "",
                    access_key_secret=settings.aliyun_sms_access_key_secret or "",
                    sign_name=settings.aliyun_sms_sign_name or "",
                    template_code=settings.aliyun_sms_template_code,
                    text_param=settings.aliyun_sms_text_param,
                    endpoint=settings.aliyun_sms_endpoint,
                    region_id=settings.aliyun_sms_region_id,
                )
            )
        elif kind == "wecom":
            if database is None:
                raise ValidationFailed(
                    f"channel {channel!r} uses the wecom adapter, which reads each workspace's WeCom "
                    "settings: build the adapters with the database",
                    where="SIYU_REACH_CHANNELS",
                )
            built[channel] = WecomMassAdapter(client_for=_wecom_client_factory(database))
        elif kind == "wecom-welcome":
            if database is None:
                raise ValidationFailed(
                    f"channel {channel!r} uses the wecom-welcome adapter, which reads the welcome codes "
                    "of WeCom's add callbacks: build the adapters with the database",
                    where="SIYU_REACH_CHANNELS",
                )
            built[channel] = WecomWelcomeAdapter(send_welcome=welcome_sender(database))
        elif kind == "log":
            built[channel] = LogAdapter()
        else:
            raise ValidationFailed(
                f"adapter {kind!r} of channel {channel!r} is not known",
                where="SIYU_REACH_CHANNELS",
                hint=", ".join(KINDS),
            )
    if database is not None and WELCOME_CHANNEL not in built:
        # a welcome is a reply WeCom itself carries: there is no other provider to choose
        built[WELCOME_CHANNEL] = WecomWelcomeAdapter(send_welcome=welcome_sender(database))
    return Adapters(built)
