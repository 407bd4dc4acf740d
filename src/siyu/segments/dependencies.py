"""What a rule reads, and what each domain event changes: the map that lets live membership re-evaluate
only the segments an event can affect, and that tells which rules depend on time passing.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from siyu.core.domain_events import DomainEventType as E
from siyu.customers import service as customers
from siyu.segments import fields
from siyu.segments.fields import Kind
from siyu.segments.rules import (
    Ago,
    Compare,
    EventMeasure,
    HasConsent,
    HasIdentity,
    HasTag,
    InSegment,
    OrderMeasure,
    Rule,
    RuleError,
    rule_from_json,
    walk,
)


class Family(StrEnum):
    """A group of facts about a customer that rules read and events change."""

    PROFILE = "profile"  # name, city, owner, custom attributes …
    IDENTITY = "identity"  # has(phone), has(wecom_external_userid)
    TAGS = "tags"
    CONSENT = "consent"
    ORDERS = "orders"  # order conditions and the order rollups (order_count, last_order_at …)
    EVENTS = "events"  # event conditions and last_event_at
    RFM = "rfm"
    CLV = "clv"
    LIFECYCLE = "lifecycle"
    SEGMENTS = "segments"  # names another segment (whose families are included as well)
    TIME = "time"  # true or false by the passing of time alone: windows, ago(), scores that age
    ANY = "any"  # an event that may change any rule's answer (a new, merged or erased customer)


# what each event type may change; types not listed change nothing a rule reads
EVENT_FAMILIES: dict[str, frozenset[Family]] = {
    E.CUSTOMER_CREATED: frozenset({Family.ANY}),
    E.CUSTOMER_ERASED: frozenset({Family.ANY}),
    E.IDENTITY_MERGED: frozenset({Family.ANY}),
    E.IDENTITY_UNMERGED: frozenset({Family.ANY}),
    E.CUSTOMER_UPDATED: frozenset({Family.PROFILE}),
    E.OWNER_CHANGED: frozenset({Family.PROFILE}),
    E.IDENTITY_ADDED: frozenset({Family.IDENTITY}),
    E.ORDER_PLACED: frozenset({Family.ORDERS}),
    E.ORDER_UPDATED: frozenset({Family.ORDERS}),
    E.ORDER_REFUNDED: frozenset({Family.ORDERS}),
    E.EVENT_RECORDED: frozenset({Family.EVENTS}),
    E.CONSENT_CHANGED: frozenset({Family.CONSENT}),
    E.TAG_ADDED: frozenset({Family.TAGS}),
    E.TAG_REMOVED: frozenset({Family.TAGS}),
    E.LIFECYCLE_CHANGED: frozenset({Family.LIFECYCLE}),
}
# events about the whole workspace (no customer): the segments reading them are evaluated in full
WORKSPACE_EVENT_FAMILIES: dict[str, frozenset[Family]] = {
    E.RFM_COMPUTED: frozenset({Family.RFM}),
    E.CLV_SCORED: frozenset({Family.CLV}),
}
_SCORE_FAMILIES = {"clv": Family.CLV, "rfm": Family.RFM, "lifecycle": Family.LIFECYCLE}


def _compare_families(rule: Compare) -> set[Family]:
    try:
        spec = fields.field_of(rule.field, at=rule.at)
    except RuleError:
        return {Family.PROFILE}
    found: set[Family] = set()
    if isinstance(rule.value, Ago):
        found.add(Family.TIME)
    if spec.kind in (Kind.SCORE, Kind.LAYER):
        # scores are stored by their runs, which emit events; they also age, so the sweep covers them
        found |= {_SCORE_FAMILIES[spec.column.split(":", 1)[0]], Family.TIME}
    elif spec.kind is Kind.ATTRIBUTE or spec.column in customers.RULE_COLUMNS.profile:
        found.add(Family.PROFILE)
    elif spec.column == "last_event_at":
        found.add(Family.EVENTS)
    else:
        found.add(Family.ORDERS)
    return found


def rule_families(
    rule: Rule, *, segment_rules: Mapping[str, dict[str, Any]], _seen: frozenset[str] = frozenset()
) -> frozenset[Family]:
    """The families a rule reads, including those of the segments it names (`segment_rules`: name →
    canonical JSON of the workspace's segments). A name that is missing or circular adds only SEGMENTS:
    evaluating such a rule fails anyway, and says why."""
    found: set[Family] = set()
    for node in walk(rule):
        match node:
            case Compare():
                found |= _compare_families(node)
            case HasTag():
                found.add(Family.TAGS)
            case HasIdentity():
                found.add(Family.IDENTITY)
            case HasConsent():
                found.add(Family.CONSENT)
            case OrderMeasure():
                found.add(Family.ORDERS)
                if node.within is not None:
                    found.add(Family.TIME)
            case EventMeasure():
                found.add(Family.EVENTS)
                if node.within is not None:
                    found.add(Family.TIME)
            case InSegment():
                found.add(Family.SEGMENTS)
                document = segment_rules.get(node.segment)
                if document is not None and node.segment not in _seen:
                    try:
                        inner = rule_from_json(document)
                    except RuleError:
                        continue
                    found |= rule_families(inner, segment_rules=segment_rules, _seen=_seen | {node.segment})
    return frozenset(found)


def named_segments(document: dict[str, Any]) -> set[str]:
    """The names of the segments a canonical rule names directly."""
    if document.get("type") == "segment":
        return {str(document.get("segment"))}
    children = document.get("rules") or ([document["rule"]] if "rule" in document else [])
    return set().union(*(named_segments(child) for child in children)) if children else set()


def is_time_dependent(families: frozenset[Family]) -> bool:
    """Whether the rule's answer can change with no event at all (the time sweep evaluates it)."""
    return Family.TIME in families
