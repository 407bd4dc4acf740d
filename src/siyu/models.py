"""Imports every table so that metadata (Alembic, tests) sees the whole schema."""

from siyu.auth.models import ApiToken, Membership, User
from siyu.channels.models import Channel, ChannelCost, Store
from siyu.clv.models import CustomerScore
from siyu.core.audit import AuditEntry
from siyu.core.db import Base
from siyu.core.domain_events import DomainEvent
from siyu.customers.models import Consent, Customer, CustomerRollup, Identity, IdentityReview, MergeLog
from siyu.events.models import CustomerEvent
from siyu.experiments.models import Experiment, ExperimentVariant, Exposure
from siyu.ingest.models import ImportJob, ImportReject
from siyu.lifecycle.models import CustomerStage, LifecycleSettings, StageTransition
from siyu.livecodes.models import LiveCode, LiveCodeAdd, LiveCodeScan, LiveCodeStaff
from siyu.orders.models import Order, OrderLine
from siyu.rfm.models import CustomerRfm
from siyu.segments.models import Segment
from siyu.tags.models import CustomerTag, Tag, TagGroup
from siyu.workspaces.models import Workspace

__all__ = [
    "ApiToken",
    "AuditEntry",
    "Base",
    "Channel",
    "ChannelCost",
    "Consent",
    "Customer",
    "CustomerEvent",
    "CustomerRfm",
    "CustomerRollup",
    "CustomerScore",
    "CustomerStage",
    "CustomerTag",
    "DomainEvent",
    "Experiment",
    "ExperimentVariant",
    "Exposure",
    "Identity",
    "IdentityReview",
    "ImportJob",
    "ImportReject",
    "LifecycleSettings",
    "LiveCode",
    "LiveCodeAdd",
    "LiveCodeScan",
    "LiveCodeStaff",
    "Membership",
    "MergeLog",
    "Order",
    "OrderLine",
    "Segment",
    "StageTransition",
    "Store",
    "Tag",
    "TagGroup",
    "User",
    "Workspace",
]
