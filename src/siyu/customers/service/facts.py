"""Selectables of per-customer facts for the analytical domains (metrics), which aggregate them in
SQL: the caller composes them into its own statements and never reads the customer tables itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select

from siyu.customers.models import (
    Consent,
    ConsentPurpose,
    ConsentStatus,
    Customer,
    CustomerRollup,
    Identity,
    IdentityKind,
)

# Identities that make a customer reachable at no cost through a channel the brand owns: a WeCom
# friend (external_userid) or a follower of the official account (openid).
PRIVATE_DOMAIN_KINDS = (IdentityKind.WECOM_EXTERNAL_USERID.value, IdentityKind.WECHAT_OPENID.value)


def acquisitions(*, workspace_id: int) -> Select[Any]:
    """Live buyers with when and where they were acquired: `customer_id`, `acquired_at` (their first
    purchase, from the rollup) and `channel_id` (the customer's first channel, else the channel of
    that first purchase)."""
    return (
        select(
            Customer.id.label("customer_id"),
            CustomerRollup.first_order_at.label("acquired_at"),
            func.coalesce(Customer.first_channel_id, CustomerRollup.first_channel_id).label("channel_id"),
        )
        .join(CustomerRollup, CustomerRollup.customer_id == Customer.id)
        .where(
            Customer.workspace_id == workspace_id,
            CustomerRollup.workspace_id == workspace_id,
            Customer.merged_into_id.is_(None),
            Customer.erased_at.is_(None),
            CustomerRollup.first_order_at.is_not(None),
        )
    )


def private_domain_members(*, workspace_id: int) -> Select[Any]:
    """`customer_id` of the live customers who are in the private domain (see PRIVATE_DOMAIN_KINDS)."""
    return (
        select(Identity.customer_id.label("customer_id"))
        .join(Customer, Customer.id == Identity.customer_id)
        .where(
            Identity.workspace_id == workspace_id,
            Identity.kind.in_(PRIVATE_DOMAIN_KINDS),
            Customer.merged_into_id.is_(None),
            Customer.erased_at.is_(None),
        )
        .distinct()
    )


def joins(*, workspace_id: int) -> Select[Any]:
    """Live customers with when they joined the pool and their first purchase, if any: `customer_id`,
    `joined_at` (the record's creation), `first_purchase_at` (from the rollup) and `channel_id` (the
    customer's first channel)."""
    return (
        select(
            Customer.id.label("customer_id"),
            Customer.created_at.label("joined_at"),
            CustomerRollup.first_order_at.label("first_purchase_at"),
            Customer.first_channel_id.label("channel_id"),
        )
        .outerjoin(CustomerRollup, CustomerRollup.customer_id == Customer.id)
        .where(
            Customer.workspace_id == workspace_id,
            Customer.merged_into_id.is_(None),
            Customer.erased_at.is_(None),
        )
    )


def dimensions(*, workspace_id: int) -> Select[Any]:
    """What a metric may be broken down by, per live customer: `customer_id`, `channel_id` (the first
    channel) and `owner_user_id` (the staff member the customer is assigned to)."""
    return select(
        Customer.id.label("customer_id"),
        Customer.first_channel_id.label("channel_id"),
        Customer.owner_user_id.label("owner_user_id"),
    ).where(
        Customer.workspace_id == workspace_id, Customer.merged_into_id.is_(None), Customer.erased_at.is_(None)
    )


def purchase_rollups(*, workspace_id: int) -> Select[Any]:
    """Per live customer: `customer_id`, `order_count`, `first_order_at`, `last_order_at` (from the
    rollup; 0 and NULL for customers who never bought)."""
    return (
        select(
            Customer.id.label("customer_id"),
            func.coalesce(CustomerRollup.order_count, 0).label("order_count"),
            CustomerRollup.first_order_at.label("first_order_at"),
            CustomerRollup.last_order_at.label("last_order_at"),
        )
        .outerjoin(CustomerRollup, CustomerRollup.customer_id == Customer.id)
        .where(
            Customer.workspace_id == workspace_id,
            Customer.merged_into_id.is_(None),
            Customer.erased_at.is_(None),
        )
    )


def marketing_consent_spans(*, workspace_id: int) -> Select[Any]:
    """Every span in which a live customer's marketing consent on one contact channel was granted:
    (`customer_id`, `from_at` the grant, `until_at` the next decision on that channel and purpose, NULL
    while the grant is in force). The newest decision is the one in force, as the reach gateway reads it."""
    decisions = (
        select(
            Consent.customer_id.label("customer_id"),
            Consent.status.label("status"),
            Consent.occurred_at.label("from_at"),
            func.lead(Consent.occurred_at)
            .over(
                partition_by=(Consent.customer_id, Consent.contact_channel),
                order_by=(Consent.occurred_at, Consent.id),
            )
            .label("until_at"),
        )
        .join(Customer, Customer.id == Consent.customer_id)
        .where(
            Consent.workspace_id == workspace_id,
            Consent.purpose == ConsentPurpose.MARKETING.value,
            Customer.merged_into_id.is_(None),
            Customer.erased_at.is_(None),
        )
        .subquery()
    )
    return select(decisions.c.customer_id, decisions.c.from_at, decisions.c.until_at).where(
        decisions.c.status == ConsentStatus.GRANTED.value
    )


def identities(*, workspace_id: int, kinds: tuple[str, ...]) -> Select[Any]:
    """Identities of live customers of the given kinds: `customer_id`, `kind`, `value` (one row per
    identity; a value names one customer per workspace)."""
    return (
        select(
            Identity.customer_id.label("customer_id"),
            Identity.kind.label("kind"),
            Identity.value.label("value"),
        )
        .join(Customer, Customer.id == Identity.customer_id)
        .where(
            Identity.workspace_id == workspace_id,
            Identity.kind.in_(kinds),
            Customer.merged_into_id.is_(None),
            Customer.erased_at.is_(None),
        )
    )
