"""Community inputs and outputs: groups with their figures, members matched to the pool, growth by day,
members' orders against everyone else's, group live codes and their hand-outs."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class GroupSummary(BaseModel):
    chat_id: str
    name: str
    owner: str
    members: int
    external_members: int
    customers: int  # external members matched to a customer of the pool
    joins: int  # in the period
    leaves: int
    net_growth: int
    member_orders: int  # purchases of the matched members in the period, since they joined
    member_gmv_cents: int
    tags: list[str]
    dismissed: bool
    has_qr: bool
    qr_expires_at: datetime | None


class Member(BaseModel):
    member_id: str
    member_type: int  # 1 staff, 2 external contact
    joined_at: datetime
    join_scene: int | None
    customer_id: int | None


class GrowthDay(BaseModel):
    day: date
    joins: int
    leaves: int
    net: int
    members: int  # at the end of the day


class OrderFigures(BaseModel):
    customers: int  # customers in the cohort
    buyers: int
    orders: int
    gmv_cents: int
    repurchase_rate: float | None  # buyers with two purchases or more / buyers


class MemberOrders(BaseModel):
    """What the group brings: its matched members' purchases (since each joined) against customers in
    no group, over one period."""

    start: date
    end: date
    members: OrderFigures
    non_members: OrderFigures


class GroupDetail(BaseModel):
    summary: GroupSummary
    growth: list[GrowthDay]
    orders: MemberOrders


class TagIn(BaseModel):
    name: str = Field(max_length=200)


class GroupCodeIn(BaseModel):
    name: str = Field(max_length=400)
    chat_ids: list[str] = Field(max_length=100)
    cap: int = 200


class CodeGroupOut(BaseModel):
    chat_id: str
    name: str
    position: int
    handed_out: int
    members: int
    qr_expires_at: datetime | None
    open: bool  # below the cap and with a QR not expired


class GroupCodeOut(BaseModel):
    id: int
    name: str
    token: str
    landing_path: str
    cap: int
    is_active: bool
    created_at: datetime
    groups: list[CodeGroupOut]
    handed_out: int
    turned_away: int  # visits when every group was full or expired


class HandOut(BaseModel):
    """The group a visitor of a code's landing page is sent to (none: every group is full or expired)."""

    code_id: int
    chat_id: str | None
    group_name: str | None
    qr_id: int | None


class ActivityFigures(BaseModel):
    """Activity (群活跃度) from WeCom's daily group figures, summed over the days it covers: messages,
    group-days and member-days in all, and those with messages; a share is with-messages / all (None
    when there is nothing to divide)."""

    messages: int
    groups: int  # sum of each day's groups
    groups_with_messages: int
    group_share: float | None  # 活跃群占比
    members: int  # sum of each day's members
    members_who_spoke: int
    member_share: float | None  # 活跃成员占比


class ActivityDay(ActivityFigures):
    day: date


class ActivityOwner(ActivityFigures):
    owner: str  # the groups' owner (userid)


class Activity(BaseModel):
    start: date
    end: date
    total: ActivityFigures
    days: list[ActivityDay]  # every day of the period, zeros where WeCom gave nothing
    owners: list[ActivityOwner]  # most messages first
