"""Helpers of the reach tests: reachable customers (identities and consent given through the customers
service) and a fixed clock at noon in Shanghai, outside the default quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from siyu.customers import service as customers
from tests.factories import make_customer, unique

NOON = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
CONTENT: dict[str, Any] = {
    "sms": {"text": "新品上市"},
    "email": {"subject": "新品", "text": "新品上市"},
    "wecom": {"text": "新品上市"},
    "webhook": {"text": "新品上市"},
}


def reachable(
    session: Session,
    *,
    workspace_id: int,
    grants: tuple[str, ...] = ("sms", "email", "wecom", "webhook"),
    wecom: bool = True,
    email: bool = True,
    attributes: dict[str, Any] | None = None,
) -> int:
    """A customer with a phone, an email, a WeCom external userid, and marketing consent on `grants`."""
    identities = {}
    if email:
        identities["email"] = f"{unique('e')}@example.com"
    if wecom:
        identities["wecom_external_userid"] = unique("wm")
    customer = make_customer(session, workspace_id=workspace_id, identities=identities, attributes=attributes)
    for channel in grants:
        customers.record_system_consent(
            session,
            workspace_id=workspace_id,
            customer_id=customer.id,
            contact_channel=channel,
            purpose="marketing",
            status="granted",
            source="test",
        )
    return customer.id


def content(tag: str) -> dict[str, Any]:
    """Content that differs from any other tag's (de-duplication compares content)."""
    return {channel: {k: f"{v} {tag}" for k, v in body.items()} for channel, body in CONTENT.items()}
