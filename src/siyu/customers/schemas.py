"""Pydantic shapes of customers: list pages, the 360 view, profile/owner/consent changes.

The customers service returns these, so pages and the JSON API show the same (masked) data.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from siyu.customers.models import ConsentPurpose, ConsentStatus, ContactChannel, Gender
from siyu.orders.schemas import OrderOut


class CustomerFilter(BaseModel):
    """Conditions a listed customer must all meet (absent ones are ignored)."""

    channel_id: int | None = Field(None, description="First channel of the customer.")
    owner_user_id: int | None = None
    city: str | None = None
    has_identity_kind: str | None = Field(None, description="e.g. wecom_external_userid")
    created_from: datetime | None = None
    created_to: datetime | None = Field(None, description="Exclusive.")
    last_order_from: datetime | None = None
    last_order_to: datetime | None = Field(None, description="Exclusive.")
    min_orders: int | None = Field(None, ge=0)


class IdentityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    value: str = Field(description="Phones are masked (138****1234) for the staff role.")
    source: str
    created_at: datetime


class RollupOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    first_order_at: datetime | None
    last_order_at: datetime | None
    order_count: int
    gross_revenue_cents: int
    refunded_cents: int
    net_revenue_cents: int
    avg_order_value_cents: int
    categories: list[str]
    first_channel_id: int | None
    last_channel_id: int | None
    last_event_at: datetime | None


class CustomerSummary(BaseModel):
    """One row of a customer list."""

    id: int
    name: str | None
    gender: str
    city: str | None
    phone: str | None = Field(description="The first phone; masked for the staff role.")
    owner_user_id: int | None
    first_channel_id: int | None
    created_at: datetime
    order_count: int
    net_revenue_cents: int
    last_order_at: datetime | None


class CustomerPage(BaseModel):
    items: list[CustomerSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null at the end.")


class CustomerProfile(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str | None
    gender: str
    birthday: date | None
    city: str | None
    attributes: dict[str, Any]
    owner_user_id: int | None
    first_channel_id: int | None
    created_at: datetime
    updated_at: datetime


class OwnerOut(BaseModel):
    user_id: int
    display_name: str


class ConsentState(BaseModel):
    """The consent in force for one contact channel and purpose (the newest decision)."""

    contact_channel: str
    purpose: str
    status: str
    source: str
    occurred_at: datetime


class TimelineItem(BaseModel):
    """One entry of a customer's timeline: an order, an event or a consent decision."""

    kind: Literal["order", "event", "consent"]
    id: int
    occurred_at: datetime
    title: str = Field(description="Order status, event type, or 'channel/purpose: status'.")
    detail: dict[str, Any] = Field(default_factory=dict)


class Customer360(BaseModel):
    profile: CustomerProfile
    identities: list[IdentityOut]
    rollup: RollupOut | None
    recent_orders: list[OrderOut]
    timeline: list[TimelineItem]
    timeline_cursor: str | None = Field(None, description="Pass as `timeline_cursor` for older entries.")
    consents: list[ConsentState]
    owner: OwnerOut | None


class ProfileUpdate(BaseModel):
    """Fields to change; fields left out stay as they are, `attributes` keys set to null are removed."""

    name: str | None = None
    gender: Gender | None = None
    birthday: date | None = None
    city: str | None = None
    attributes: dict[str, Any] | None = None


class OwnerIn(BaseModel):
    owner_user_id: int | None = Field(description="A member of the workspace, or null to unassign.")


class ConsentIn(BaseModel):
    contact_channel: ContactChannel
    purpose: ConsentPurpose
    status: ConsentStatus
    source: str = "api"
    occurred_at: datetime | None = Field(None, description="When the person decided; default now.")


class TimelinePage(BaseModel):
    items: list[TimelineItem]
    next_cursor: str | None = None


class MergeIn(BaseModel):
    merged_id: int = Field(description="The customer that disappears into the one in the path.")
    reason: str = Field("manual", max_length=200)


class MergeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    survivor_id: int
    merged_id: int
    reason: str
    actor_user_id: int | None
    created_at: datetime
    undone_at: datetime | None


class ReviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_a_id: int
    customer_b_id: int
    reason: str
    evidence: dict[str, Any]
    status: str
    created_at: datetime
    resolved_at: datetime | None


class ReviewDecision(BaseModel):
    decision: Literal["merge", "dismiss"]


class ErasureOut(BaseModel):
    customer_id: int
    identities: int
    consents: int
    events: int
    orders_kept: int
