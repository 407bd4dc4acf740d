"""The adapters of a process, one per channel, built from settings."""

from __future__ import annotations

from siyu.core.config import Settings
from siyu.core.errors import ValidationFailed
from siyu.reach.adapters.base import Adapter, OutboundMessage
from siyu.reach.adapters.email import SmtpAdapter, SmtpConfig
from siyu.reach.adapters.log import LogAdapter
from siyu.reach.adapters.webhook import WebhookAdapter

KINDS = ("smtp", "webhook", "log")


class Adapters:
    """Channel → adapter; a channel with none configured goes to the log sink (the outbox viewer)."""

    def __init__(self, by_channel: dict[str, Adapter] | None = None, default: Adapter | None = None) -> None:
        self.by_channel = dict(by_channel or {})
        self.default = default or LogAdapter()

    def for_channel(self, channel: str) -> Adapter:
        return self.by_channel.get(channel, self.default)


def build_adapters(settings: Settings) -> Adapters:
    from siyu.reach import service

    def unsubscribe(message: OutboundMessage) -> str:
        return service.unsubscribe_url(workspace_id=message.workspace_id, customer_id=message.customer_id)

    built: dict[str, Adapter] = {}
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
        elif kind == "log":
            built[channel] = LogAdapter()
        else:
            raise ValidationFailed(
                f"adapter {kind!r} of channel {channel!r} is not known",
                where="SIYU_REACH_CHANNELS",
                hint=", ".join(KINDS),
            )
    return Adapters(built)
