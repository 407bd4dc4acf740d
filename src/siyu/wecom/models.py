"""WeCom (企业微信) tables: a workspace's settings and cached access token, staff, friend relations,
received callbacks, mass messages (群发) with their results, contact ways (活码), moments (朋友圈) and
customer groups (客户群) with their members and every join and leave, and the groups' daily figures
(群聊数据统计) by owner."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, JsonDoc, UTCDateTime
from siyu.core.timeutil import utcnow


class WecomSettings(Base):
    """One workspace's WeCom app: corp id and the customer-contact secret (for the API), the callback's
    token and EncodingAESKey, and the unguessable key in its callback URL."""

    __tablename__ = "wecom_settings"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    corp_id: Mapped[str] = mapped_column(String(64))
    secret: Mapped[str] = mapped_column(String(128))
    token: Mapped[str] = mapped_column(String(64))
    encoding_aes_key: Mapped[str] = mapped_column(String(43))
    agent_id: Mapped[str | None] = mapped_column(String(32))
    callback_key: Mapped[str] = mapped_column(String(64), unique=True)
    # WeCom answers API calls only from the corp's trusted IPs (企业可信IP): a forward proxy may stand here
    api_base_url: Mapped[str] = mapped_column(String(200), default="https://qyapi.weixin.qq.com")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WecomStaff(Base):
    """A WeCom member (成员) by userid, mapped to a siyu user when they have an account."""

    __tablename__ = "wecom_staff"
    __table_args__ = (UniqueConstraint("workspace_id", "wecom_userid"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    wecom_userid: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WecomFollow(Base):
    """A staff member has the customer as a WeCom friend (外部联系人) since `added_at`, until `removed_at`
    (either side deleted the other). One row per staff and external contact; a re-add reopens it."""

    __tablename__ = "wecom_follow"
    __table_args__ = (
        UniqueConstraint("workspace_id", "wecom_userid", "external_userid"),
        Index("ix_wecom_follow_ws_customer", "workspace_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    wecom_userid: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    state: Mapped[str | None] = mapped_column(String(30))
    contact_way_id: Mapped[int | None] = mapped_column(BigId)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_by: Mapped[str | None] = mapped_column(String(16))  # staff | customer
    welcome_code: Mapped[str | None] = mapped_column(String(128))
    welcome_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WecomCallback(Base):
    """A callback received, once: WeCom retries a callback it got no answer to within 5 seconds, and the
    retry finds its key here and changes nothing."""

    __tablename__ = "wecom_callback"
    __table_args__ = (UniqueConstraint("workspace_id", "dedupe_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64))
    change_type: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WecomMassMessage(Base):
    """A mass message task (企业群发) created through add_msg_template; staff confirm it in WeCom."""

    __tablename__ = "wecom_mass_message"
    __table_args__ = (
        UniqueConstraint("workspace_id", "msgid"),
        UniqueConstraint("workspace_id", "request_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    msgid: Mapped[str] = mapped_column(String(128))
    # the caller's idempotency key: a retried request returns the task created the first time
    request_key: Mapped[str | None] = mapped_column(String(64))
    chat_type: Mapped[str] = mapped_column(String(8))  # single | group
    sender: Mapped[str | None] = mapped_column(String(64))
    request: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    fail_list: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    created_by_user_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WecomMassMessageResult(Base):
    """Per staff and recipient (customer or group): whether the staff member sent it (the send-result API;
    status 0 not sent, 1 sent, 2 not a friend, 3 the customer got another mass message)."""

    __tablename__ = "wecom_mass_message_result"
    __table_args__ = (UniqueConstraint("message_id", "wecom_userid", "recipient"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("wecom_mass_message.id", ondelete="CASCADE"))
    wecom_userid: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(64))  # external_userid or chat_id; "" for the staff task
    status: Mapped[int] = mapped_column(Integer)
    send_time: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WecomContactWay(Base):
    """A contact way (联系我 / 活码) kept in sync with add_contact_way / update_contact_way."""

    __tablename__ = "wecom_contact_way"
    __table_args__ = (
        UniqueConstraint("workspace_id", "state"),
        UniqueConstraint("workspace_id", "config_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    config_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(30))
    type: Mapped[int] = mapped_column(Integer)  # 1 one staff member, 2 several
    scene: Mapped[int] = mapped_column(Integer)  # 1 mini program, 2 QR code
    users: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    remark: Mapped[str] = mapped_column(String(30), default="")
    skip_verify: Mapped[bool] = mapped_column(Boolean, default=True)
    qr_code: Mapped[str | None] = mapped_column(Text)
    channel_id: Mapped[int | None] = mapped_column(BigId)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WecomMoment(Base):
    """A moments post (朋友圈) created by add_moment_task: its async job, then its moment id."""

    __tablename__ = "wecom_moment"
    __table_args__ = (
        UniqueConstraint("workspace_id", "jobid"),
        UniqueConstraint("workspace_id", "request_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    jobid: Mapped[str | None] = mapped_column(String(128))  # None until submitted (a scheduled post)
    request_key: Mapped[str | None] = mapped_column(String(64))
    job_status: Mapped[int] = mapped_column(
        Integer, default=0
    )  # 0 not submitted, 1 started, 2 running, 3 done
    moment_id: Mapped[str | None] = mapped_column(String(128))
    request: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the worker's last poll
    created_by_user_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WecomMomentStaff(Base):
    """Whether one staff member has published the moment (get_moment_task: 0 not yet, 1 published)."""

    __tablename__ = "wecom_moment_staff"
    __table_args__ = (UniqueConstraint("moment_id", "wecom_userid"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    moment_id: Mapped[int] = mapped_column(ForeignKey("wecom_moment.id", ondelete="CASCADE"))
    wecom_userid: Mapped[str] = mapped_column(String(64))
    publish_status: Mapped[int] = mapped_column(Integer)


class WecomGroupChat(Base):
    """A customer group (客户群) as groupchat/get describes it, kept current by sync and callbacks."""

    __tablename__ = "wecom_group_chat"
    __table_args__ = (UniqueConstraint("workspace_id", "chat_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    chat_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100), default="")
    owner: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[int] = mapped_column(Integer, default=0)
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    external_member_count: Mapped[int] = mapped_column(Integer, default=0)
    members: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    wecom_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WecomGroupMember(Base):
    """A member of a customer group now: a staff member (type 1, `member_id` their userid) or an
    external contact (type 2, `member_id` their external_userid, with the unionid when WeCom gives it)."""

    __tablename__ = "wecom_group_member"
    __table_args__ = (
        UniqueConstraint("workspace_id", "chat_id", "member_id"),
        Index("ix_wecom_group_member_ws_member", "workspace_id", "member_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    chat_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[str] = mapped_column(String(64))
    member_type: Mapped[int] = mapped_column(Integer)
    unionid: Mapped[str | None] = mapped_column(String(64))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    join_scene: Mapped[int | None] = mapped_column(Integer)


class WecomGroupMemberChange(Base):
    """A join or leave of a customer group, from the member-list difference at a sync or a callback
    (`source`); `scene` is WeCom's join_scene (1 invited, 2 invitation link, 3 QR code) for a join and
    quit_scene (0 left, 1 removed by the owner) for a leave, when known."""

    __tablename__ = "wecom_group_member_change"
    __table_args__ = (
        Index("ix_wecom_group_member_change_ws_chat_time", "workspace_id", "chat_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    chat_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[str] = mapped_column(String(64))
    member_type: Mapped[int] = mapped_column(Integer)
    unionid: Mapped[str | None] = mapped_column(String(64))
    change: Mapped[str] = mapped_column(String(8))  # join | leave
    scene: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))  # sync | callback
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WecomCorpTag(Base):
    """A WeCom corp tag (企业客户标签) and the siyu tag it is kept as (get_corp_tag_list → tags)."""

    __tablename__ = "wecom_corp_tag"
    __table_args__ = (UniqueConstraint("workspace_id", "wecom_tag_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    wecom_tag_id: Mapped[str] = mapped_column(String(64))
    wecom_group_id: Mapped[str] = mapped_column(String(64))
    group_name: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    tag_id: Mapped[int | None] = mapped_column(ForeignKey("tag.id", ondelete="SET NULL"))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WecomGroupStat(Base):
    """One day of one owner's customer groups as groupchat/statistic counts it (群聊数据统计): groups and
    members (totals, new, and those with messages that day), messages, and groups handed over from
    departed staff. `day` is a day of WeCom's calendar (China Standard Time); a re-fetch overwrites."""

    __tablename__ = "wecom_group_stat"
    __table_args__ = (UniqueConstraint("workspace_id", "day", "owner"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    owner: Mapped[str] = mapped_column(String(64))  # the group owner's userid
    new_chat_cnt: Mapped[int] = mapped_column(Integer, default=0)
    chat_total: Mapped[int] = mapped_column(Integer, default=0)
    chat_has_msg_cnt: Mapped[int] = mapped_column(Integer, default=0)
    new_member_cnt: Mapped[int] = mapped_column(Integer, default=0)
    member_total: Mapped[int] = mapped_column(Integer, default=0)
    member_has_msg_cnt: Mapped[int] = mapped_column(Integer, default=0)
    msg_total: Mapped[int] = mapped_column(Integer, default=0)
    migrate_trainee_chat_cnt: Mapped[int] = mapped_column(Integer, default=0)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
