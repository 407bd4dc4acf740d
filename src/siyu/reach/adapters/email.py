"""Email over SMTP (implicit TLS, STARTTLS or plain; optional AUTH) with smtplib.

Marketing mail carries a one-click List-Unsubscribe (RFC 8058). A 5xx refusal of the recipient is a hard
bounce: the result says so and the gateway blocks the address. 4xx replies and lost connections retry.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from siyu.reach.adapters.base import OutboundMessage, SendResult

IDEMPOTENCY_HEADER = "X-Siyu-Idempotency-Key"


@dataclass
class SmtpConfig:
    host: str
    port: int = 587
    security: str = "starttls"  # starttls | tls | none
    username: str | None = None
    password: str | None = None
    sender: str = "siyu <no-reply@localhost>"
    timeout_seconds: float = 30.0
    ssl_context: ssl.SSLContext | None = None  # default: the system's trust store, hostname checked


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


class SmtpAdapter:
    """Sends each message in its own SMTP session (simple, and one failure cannot poison the next)."""

    kind = "smtp"

    def __init__(
        self, config: SmtpConfig, *, unsubscribe_url: Callable[[OutboundMessage], str] | None = None
    ) -> None:
        self.config = config
        self.unsubscribe_url = unsubscribe_url

    def build(self, message: OutboundMessage) -> EmailMessage:
        """The email as it goes on the wire (exposed for tests and the outbox viewer)."""
        content = message.content
        mail = EmailMessage()
        mail["From"] = self.config.sender
        mail["To"] = message.address
        mail["Subject"] = str(content.get("subject", ""))
        domain = self.config.sender.rsplit("@", 1)[-1].strip("> ") or "localhost"
        mail["Message-ID"] = make_msgid(idstring=f"m{message.message_id}", domain=domain)
        mail[IDEMPOTENCY_HEADER] = message.idempotency_key
        if message.purpose == "marketing" and self.unsubscribe_url is not None:
            mail["List-Unsubscribe"] = f"<{self.unsubscribe_url(message)}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(str(content.get("text", "")))
        if content.get("html"):
            mail.add_alternative(str(content["html"]), subtype="html")
        return mail

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        context = config.ssl_context or ssl.create_default_context()
        client: smtplib.SMTP
        if config.security == "tls":
            client = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_seconds, context=context
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
            if config.security == "starttls":
                client.starttls(context=context)
        if config.username:
            client.login(config.username, config.password or "")
        return client

    def send(self, message: OutboundMessage) -> SendResult:
        mail = self.build(message)
        try:
            client = self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            return SendResult.retry(f"SMTP login refused ({exc.smtp_code}): check the SMTP user and password")
        except (OSError, smtplib.SMTPException) as exc:
            return SendResult.retry(f"SMTP connection to {self.config.host}:{self.config.port} failed: {exc}")
        try:
            refused = client.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            text = f"recipient refused ({code} {reply.decode(errors='replace')})"
            if _is_permanent(code):
                return SendResult.failed(text, address_rejected=True)
            return SendResult.retry(text)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raw: bytes | str = exc.smtp_error
            detail = raw if isinstance(raw, str) else raw.decode(errors="replace")
            text = f"SMTP refused the message ({exc.smtp_code} {detail})"
            return SendResult.failed(text) if _is_permanent(exc.smtp_code) else SendResult.retry(text)
        except (OSError, smtplib.SMTPException) as exc:
            return SendResult.retry(f"SMTP session failed: {exc}")
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()
        if refused:
            code, reply = next(iter(refused.values()))
            return SendResult.failed(
                f"recipient refused ({code} {reply!r})", address_rejected=_is_permanent(code)
            )
        return SendResult.sent(str(mail["Message-ID"]))
