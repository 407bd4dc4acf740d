"""Webhook signatures: the documented worked example, and each way a delivery is refused."""

from __future__ import annotations

import pytest

from siyu.core.db import Database
from siyu.core.errors import NotFound, Unauthorized
from siyu.ingest import webhooks
from siyu.workspaces import service as workspaces

# the worked example of the siyu.ingest.webhooks docstring (checked with openssl dgst -sha256 -hmac)
SECRET = "whsec_example"
TIMESTAMP = 1700000000
BODY = (
    b'{"records":[{"external_id":"A1001","phone":"13912345678","paid_cents":3200,'
    b'"placed_at":"2023-11-14T22:13:20Z"}]}'
)
SIGNATURE = "sha256=b2f813a7eff8009c44c1ea8dc725783c9276581f6f575bb8e2a476ff4b5c82a6"


def test_worked_example_vector() -> None:
    assert webhooks.sign(secret=SECRET, timestamp=TIMESTAMP, body=BODY) == SIGNATURE
    assert BODY.decode() in (webhooks.__doc__ or "") and SIGNATURE in (webhooks.__doc__ or "")
    webhooks.verify(
        secret=SECRET,
        timestamp=str(TIMESTAMP),
        signature=SIGNATURE,
        body=BODY,
        tolerance_seconds=300,
        now=TIMESTAMP,
    )


@pytest.mark.parametrize(
    ("timestamp", "signature", "body", "now", "message"),
    [
        (None, SIGNATURE, BODY, TIMESTAMP, "missing X-Siyu-Timestamp"),
        (str(TIMESTAMP), None, BODY, TIMESTAMP, "missing X-Siyu-Signature"),
        ("yesterday", SIGNATURE, BODY, TIMESTAMP, "not unix seconds"),
        (str(TIMESTAMP), SIGNATURE, BODY, TIMESTAMP + 301, "stale delivery"),
        (str(TIMESTAMP), SIGNATURE, BODY, TIMESTAMP - 301, "stale delivery"),
        (str(TIMESTAMP), SIGNATURE, BODY + b" ", TIMESTAMP, "wrong signature"),
        (str(TIMESTAMP + 1), SIGNATURE, BODY, TIMESTAMP, "wrong signature"),
        (str(TIMESTAMP), SIGNATURE.replace("sha256=", ""), BODY, TIMESTAMP, "wrong signature"),
    ],
)
def test_refusals_say_what_was_wrong(
    timestamp: str | None, signature: str | None, body: bytes, now: int, message: str
) -> None:
    with pytest.raises(Unauthorized) as raised:
        webhooks.verify(
            secret=SECRET, timestamp=timestamp, signature=signature, body=body, tolerance_seconds=300, now=now
        )
    assert message in raised.value.message
    assert raised.value.status_code == 401


def test_within_tolerance_is_accepted() -> None:
    webhooks.verify(
        secret=SECRET,
        timestamp=str(TIMESTAMP),
        signature=SIGNATURE,
        body=BODY,
        tolerance_seconds=300,
        now=TIMESTAMP + 300,
    )


def test_verify_delivery_uses_the_workspace_secret(db: Database, workspace_id: int) -> None:
    with db.reader() as session:
        workspace = workspaces.get_workspace(session, workspace_id=workspace_id)
        good = webhooks.sign(secret=workspace.webhook_secret, timestamp=TIMESTAMP, body=BODY)
        assert (
            webhooks.verify_delivery(
                session,
                workspace_slug=workspace.slug,
                timestamp=str(TIMESTAMP),
                signature=good,
                body=BODY,
                tolerance_seconds=300,
                now=TIMESTAMP,
            )
            == workspace_id
        )
        with pytest.raises(Unauthorized):  # another workspace's secret (here: the example's) does not verify
            webhooks.verify_delivery(
                session,
                workspace_slug=workspace.slug,
                timestamp=str(TIMESTAMP),
                signature=SIGNATURE,
                body=BODY,
                tolerance_seconds=300,
                now=TIMESTAMP,
            )
        with pytest.raises(NotFound):
            webhooks.verify_delivery(
                session,
                workspace_slug="no-such-workspace-x",
                timestamp=str(TIMESTAMP),
                signature=good,
                body=BODY,
                tolerance_seconds=300,
                now=TIMESTAMP,
            )
