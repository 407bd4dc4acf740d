"""Each adapter against a real local server following the provider's contract: SMTP with STARTTLS and
AUTH (aiosmtpd, certificates from trustme), and an HTTP server that verifies the webhook signature."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from siyu.reach.adapters.base import OutboundMessage, Outcome
from siyu.reach.adapters.email import SmtpAdapter, SmtpConfig
from siyu.reach.adapters.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookAdapter,
    sign,
)
from tests.web.conftest import _free_port

SECRET = "whsec-test"


def _message(**kwargs: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "message_id": 7, "workspace_id": 1, "customer_id": 42, "channel": "email", "address": "li@example.com",
        "purpose": "marketing", "content": {"subject": "新品", "text": "春茶上新"}, "idempotency_key": "broadcast:b1:42",
    }  # fmt: skip
    values.update(kwargs)
    return OutboundMessage(**values)


class Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        if address.startswith("busy@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK queued"


def _authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"siyu"
        and auth_data.password == b"s3cret"
    )
    return AuthResult(success=ok)


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[Controller, Sink, trustme.CA]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    import ssl

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(tls)
    sink = Sink()
    controller = Controller(
        sink, hostname="127.0.0.1", port=_free_port(), tls_context=tls, require_starttls=True,
        authenticator=_authenticator, auth_required=True,
    )  # fmt: skip
    controller.start()
    yield controller, sink, ca
    controller.stop()


def _adapter(server: tuple[Controller, Sink, trustme.CA], **kwargs: Any) -> SmtpAdapter:
    import ssl

    controller, _, ca = server
    context = ssl.create_default_context()
    ca.configure_trust(context)
    config = SmtpConfig(host="127.0.0.1", port=controller.port, security="starttls", username="siyu",
                        password="s3cret", sender="茶山集 <news@chashanji.example>", ssl_context=context)  # fmt: skip
    for key, value in kwargs.items():
        setattr(config, key, value)
    return SmtpAdapter(
        config, unsubscribe_url=lambda m: f"https://brand.example/reach/unsubscribe/t{m.customer_id}"
    )


def test_email_over_starttls_with_auth_and_one_click_unsubscribe(smtp_server) -> None:  # type: ignore[no-untyped-def]
    result = _adapter(smtp_server).send(_message())
    assert result.outcome is Outcome.SENT and result.provider_message_id
    _, sink, _ = smtp_server
    mail_from, rcpt, raw = sink.messages[-1]
    assert mail_from == "news@chashanji.example"
    assert rcpt == ["li@example.com"]
    mail = message_from_bytes(raw)
    assert mail["List-Unsubscribe"] == "<https://brand.example/reach/unsubscribe/t42>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["X-Siyu-Idempotency-Key"] == "broadcast:b1:42"
    assert mail["Message-ID"] == result.provider_message_id
    transactional = _adapter(smtp_server).send(_message(purpose="transactional"))
    assert transactional.outcome is Outcome.SENT
    assert "List-Unsubscribe" not in message_from_bytes(sink.messages[-1][2])


def test_email_hard_bounce_soft_failure_and_bad_login(smtp_server) -> None:  # type: ignore[no-untyped-def]
    bounce = _adapter(smtp_server).send(_message(address="nobody@example.com"))
    assert bounce.outcome is Outcome.FAILED and bounce.address_rejected and "550" in (bounce.error or "")
    soft = _adapter(smtp_server).send(_message(address="busy@example.com"))
    assert soft.outcome is Outcome.RETRY and not soft.address_rejected
    wrong = _adapter(smtp_server, password="wrong", timeout_seconds=3).send(_message())
    assert wrong.outcome is Outcome.RETRY  # a configuration error: retried, then a dead letter to requeue
    assert len(smtp_server[1].messages) == 0 or all(
        rcpt != ["nobody@example.com"] for _, rcpt, _ in smtp_server[1].messages
    )
    untrusted = _adapter(smtp_server, ssl_context=None).send(_message())  # the test CA is not trusted
    assert untrusted.outcome is Outcome.RETRY


class Receiver(BaseHTTPRequestHandler):
    """A brand's endpoint: verifies the signature, answers as the test sets."""

    answers: list[int] = []
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        timestamp, signature = self.headers[TIMESTAMP_HEADER], self.headers[SIGNATURE_HEADER]
        if signature != sign(secret=SECRET, timestamp=timestamp, body=body):
            self.send_response(401)
            self.end_headers()
            return
        status = self.answers.pop(0) if self.answers else 200
        self.received.append(
            {"key": self.headers[IDEMPOTENCY_HEADER], "body": json.loads(body), "status": status}
        )
        reply = json.dumps({"id": f"hook-{len(self.received)}"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.answers, Receiver.received = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_webhook_is_signed_and_carries_the_idempotency_key(receiver: str) -> None:
    adapter = WebhookAdapter(url=receiver, secret=SECRET)
    result = adapter.send(_message(channel="webhook", address="42", content={"text": "hi"}))
    assert result.outcome is Outcome.SENT and result.provider_message_id == "hook-1"
    [got] = Receiver.received
    assert got["key"] == "broadcast:b1:42" and got["body"]["content"] == {"text": "hi"}
    forged = WebhookAdapter(url=receiver, secret="other").send(_message())
    assert forged.outcome is Outcome.FAILED and "401" in (forged.error or "")


@pytest.mark.parametrize(
    ("status", "outcome"), [(500, Outcome.RETRY), (429, Outcome.RETRY), (400, Outcome.FAILED)]
)
def test_webhook_status_decides_retry_or_failure(receiver: str, status: int, outcome: Outcome) -> None:
    Receiver.answers = [status]
    assert WebhookAdapter(url=receiver, secret=SECRET).send(_message()).outcome is outcome


def test_webhook_unreachable_retries() -> None:
    result = WebhookAdapter(
        url=f"http://127.0.0.1:{_free_port()}/hook", secret=SECRET, timeout_seconds=2
    ).send(_message())
    assert result.outcome is Outcome.RETRY
