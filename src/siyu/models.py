"""Imports every table so that metadata (Alembic, tests) sees the whole schema."""

from siyu.auth.models import ApiToken, Membership, User
from siyu.broadcasts.models import Broadcast, BroadcastRecipient
from siyu.channels.models import Channel, ChannelCost, Store
from siyu.clv.models import CustomerScore
from siyu.communities.models import (
    GroupCode,
    GroupCodeGroup,
    GroupCodeJoin,
    GroupPost,
    GroupPostOccurrence,
    GroupPostSend,
    GroupQr,
    GroupTag,
)
from siyu.content.models import MessageTemplate, ShortLink, Snippet
from siyu.core.audit import AuditEntry
from siyu.core.db import Base
from siyu.core.domain_events import DomainEvent, DomainEventCursor
from siyu.core.schedule import ScheduledJob
from siyu.coupons.models import Coupon, CouponRedemption, CouponTemplate
from siyu.customers.models import Consent, Customer, CustomerRollup, Identity, IdentityReview, MergeLog
from siyu.events.models import CustomerEvent
from siyu.experiments.models import Experiment, ExperimentVariant, Exposure
from siyu.ingest.models import ImportJob, ImportReject
from siyu.journeys.models import Journey, JourneyEnrolment, JourneyStepRun, JourneyVersion, StaffTask
from siyu.lifecycle.models import CustomerStage, LifecycleSettings, StageTransition
from siyu.livecodes.models import LiveCode, LiveCodeAdd, LiveCodeScan, LiveCodeStaff
from siyu.membership.models import (
    CustomerTier,
    PointsAccount,
    PointsEntry,
    PointsRules,
    Tier,
    TierChange,
)
from siyu.orders.models import Order, OrderLine
from siyu.reach.models import BlockedAddress, RateBucket, ReachContact, ReachMessage, ReachPolicy
from siyu.referrals.models import (
    CommissionEntry,
    ReferralAgent,
    ReferralCampaign,
    ReferralInvite,
    ReferralLink,
    ReferralReward,
    ReferralTier,
)
from siyu.rfm.models import CustomerRfm
from siyu.segments.models import Segment, SegmentMembership
from siyu.tags.models import CustomerTag, Tag, TagGroup
from siyu.wecom.models import (
    WecomCallback,
    WecomContactWay,
    WecomCorpTag,
    WecomFollow,
    WecomGroupChat,
    WecomGroupMember,
    WecomGroupMemberChange,
    WecomMassMessage,
    WecomMassMessageResult,
    WecomMoment,
    WecomMomentStaff,
    WecomSettings,
    WecomStaff,
)
from siyu.workspaces.models import Workspace

__all__ = [
    "ApiToken",
    "AuditEntry",
    "Base",
    "BlockedAddress",
    "Broadcast",
    "BroadcastRecipient",
    "Channel",
    "ChannelCost",
    "CommissionEntry",
    "Consent",
    "Coupon",
    "CouponRedemption",
    "CouponTemplate",
    "Customer",
    "CustomerEvent",
    "CustomerRfm",
    "CustomerRollup",
    "CustomerScore",
    "CustomerStage",
    "CustomerTag",
    "CustomerTier",
    "DomainEvent",
    "DomainEventCursor",
    "Experiment",
    "ExperimentVariant",
    "Exposure",
    "GroupCode",
    "GroupCodeGroup",
    "GroupCodeJoin",
    "GroupPost",
    "GroupPostOccurrence",
    "GroupPostSend",
    "GroupQr",
    "GroupTag",
    "Identity",
    "IdentityReview",
    "ImportJob",
    "ImportReject",
    "Journey",
    "JourneyEnrolment",
    "JourneyStepRun",
    "JourneyVersion",
    "LifecycleSettings",
    "LiveCode",
    "LiveCodeAdd",
    "LiveCodeScan",
    "LiveCodeStaff",
    "Membership",
    "MergeLog",
    "MessageTemplate",
    "Order",
    "OrderLine",
    "PointsAccount",
    "PointsEntry",
    "PointsRules",
    "RateBucket",
    "ReachContact",
    "ReachMessage",
    "ReachPolicy",
    "ReferralAgent",
    "ReferralCampaign",
    "ReferralInvite",
    "ReferralLink",
    "ReferralReward",
    "ReferralTier",
    "ScheduledJob",
    "Segment",
    "SegmentMembership",
    "ShortLink",
    "Snippet",
    "StaffTask",
    "StageTransition",
    "Store",
    "Tag",
    "TagGroup",
    "Tier",
    "TierChange",
    "User",
    "WecomCallback",
    "WecomContactWay",
    "WecomCorpTag",
    "WecomFollow",
    "WecomGroupChat",
    "WecomGroupMember",
    "WecomGroupMemberChange",
    "WecomMassMessage",
    "WecomMassMessageResult",
    "WecomMoment",
    "WecomMomentStaff",
    "WecomSettings",
    "WecomStaff",
    "Workspace",
]
