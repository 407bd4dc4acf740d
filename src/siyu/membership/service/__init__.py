"""Membership verbs: points rules, the points ledger (earn, spend, reverse, expire, adjust — each source
once, the balance never below zero), points from orders read from the outbox, and tiers.

The ledger is append-only: `PointsEntry` rows are inserted, never updated or deleted; the account's
balance is their sum, kept in step under the account row's lock. docs/membership.md states the rules."""

from siyu.membership.service.actions import adjust, earn_for_action, earn_for_action_by_actor, spend
from siyu.membership.service.ledger import apply, balance, expire_points, ledger
from siyu.membership.service.members import customer_ledger, member_facts, member_view
from siyu.membership.service.orders import process_order_events, record_order
from siyu.membership.service.rules import (
    InsufficientPoints,
    add_months,
    get_rules,
    points_for_amount,
    rules_out,
    set_rules,
)
from siyu.membership.service.tiers import (
    ROLLING,
    basis_value,
    create_tier,
    evaluate_tier,
    evaluate_tiers,
    list_tiers,
)

__all__ = [
    "ROLLING",
    "InsufficientPoints",
    "add_months",
    "adjust",
    "apply",
    "balance",
    "basis_value",
    "create_tier",
    "customer_ledger",
    "earn_for_action",
    "earn_for_action_by_actor",
    "evaluate_tier",
    "evaluate_tiers",
    "expire_points",
    "get_rules",
    "ledger",
    "list_tiers",
    "member_facts",
    "member_view",
    "points_for_amount",
    "process_order_events",
    "record_order",
    "rules_out",
    "set_rules",
    "spend",
]
