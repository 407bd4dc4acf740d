"""The demo brand's engagement after its imports: live codes (活码) with scans and adds, coupons issued
and redeemed, points and tiers, and customer groups (客户群) with members joining and leaving over eight
weeks plus a group live code — all written through the domains' own verbs, so the pages show them.

Kept small and seeded (a few hundred rows per domain) so that it adds little to `siyu demo`'s time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.auth.service import Actor
from siyu.channels import service as channels
from siyu.communities import codes as community_codes
from siyu.communities import service as communities
from siyu.communities.schemas import GroupCodeIn
from siyu.core.timeutil import utcnow
from siyu.coupons import service as coupons
from siyu.coupons.schemas import TemplateIn
from siyu.customers.models import IdentityKind
from siyu.customers.service import facts as customer_facts
from siyu.demo import generator
from siyu.livecodes import attribution, qr, scans
from siyu.livecodes import service as livecodes
from siyu.livecodes.schemas import LiveCodeIn, StaffIn
from siyu.membership import service as membership
from siyu.membership.schemas import TierIn
from siyu.wecom import service as wecom

LIVE_CODES = (
    ("门店桌贴 · 静安店", "store_table", 80_000),
    ("外卖包裹卡", "parcel_insert", 150_000),
    ("新品海报 · 地铁", "poster", 600_000),
    ("夏日市集活动", "event", 200_000),
)
GROUPS = (
    ("茶山集 · 静安福利群", "门店群"),
    ("茶山集 · 徐汇福利群", "门店群"),
    ("新品尝鲜群", "新品群"),
    ("会员专享群", "VIP"),
    ("外卖老客群", "外卖"),
    ("夏日市集群", "活动"),
)
LIVE_CODE_CHANNEL = "wecom_livecode"  # the demo brand's WeCom live-code channel (generator.CHANNELS)
SCANS_PER_CODE = 40
WEEKS = 8


@dataclass(frozen=True)
class Engagement:
    live_codes: int
    scans: int
    adds: int
    new_customers: int  # customers the live codes' adds brought into the pool
    coupons_issued: int
    coupons_redeemed: int
    points_members: int
    groups: int
    group_members: int


def staff_wecom_userid(user_id: int) -> str:
    """The WeCom userid the demo gives a staff member (the demo has no WeCom corp to map them from)."""
    return f"demo-staff-{user_id}"


def record_wecom_friends(session: Session, *, workspace_id: int, path: Path, owner_user_id: int) -> int:
    """The brand's WeCom friendships from the generated `wecom_friends.csv`, through wecom's bulk verb;
    the number recorded."""
    members = auth.member_ids_by_email(session, workspace_id=workspace_id)
    frame = pl.read_csv(path, infer_schema=False)

    def utc(column: str) -> pl.Expr:
        return (
            pl.col(column)
            .str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S")
            .dt.replace_time_zone(generator.TIMEZONE)
            .dt.convert_time_zone("UTC")
        )

    rows = frame.select(
        "external_userid",
        pl.col("staff_email").str.to_lowercase().replace_strict(members, default=None, return_dtype=pl.Int64),
        utc("added_at"),
        utc("removed_at"),
        "removed_by",
    )
    return wecom.record_friendships(
        session,
        workspace_id=workspace_id,
        friendships=[
            wecom.FriendshipRecord(
                wecom_userid=staff_wecom_userid(user_id if user_id is not None else owner_user_id),
                external_userid=external,
                added_at=added,
                removed_at=removed,
                removed_by=by,
            )
            for external, user_id, added, removed, by in rows.iter_rows()
        ],
        actor_user_id=owner_user_id,
    )


def _qr_image(text: str) -> bytes:
    """A stand-in for a group's join QR saved from WeCom: a real QR image of `text`."""
    return qr.png(text, size="screen")


def _customers(session: Session, *, workspace_id: int, kind: str, limit: int) -> list[tuple[int, str]]:
    rows = customer_facts.identities(workspace_id=workspace_id, kinds=(kind,)).subquery()
    return [
        (int(c), str(v))
        for c, v in session.execute(
            select(rows.c.customer_id, rows.c.value).order_by(rows.c.value).limit(limit)
        )
    ]


def _top_buyers(session: Session, *, workspace_id: int, limit: int) -> list[int]:
    rows = customer_facts.purchase_rollups(workspace_id=workspace_id).subquery()
    return list(
        session.scalars(
            select(rows.c.customer_id)
            .where(rows.c.order_count > 0)
            .order_by(rows.c.order_count.desc(), rows.c.customer_id)
            .limit(limit)
        )
    )


def _live_codes(
    session: Session, *, owner: Actor, staff: list[int], rng: random.Random, now: datetime
) -> tuple[int, int, int]:
    externals = _customers(
        session, workspace_id=owner.workspace_id, kind=IdentityKind.WECOM_EXTERNAL_USERID.value, limit=200
    )
    channel_id = channels.channel_ids(session, workspace_id=owner.workspace_id).get(LIVE_CODE_CHANNEL)
    scans_made = adds = new = 0
    follows: list[wecom.FriendshipRecord] = []
    for index, (name, placement, cost) in enumerate(LIVE_CODES):
        members = staff[index % len(staff) :] + staff[: index % len(staff)]
        code = livecodes.create_live_code(
            session,
            actor=owner,
            spec=LiveCodeIn(
                name=name,
                placement=placement,
                channel_id=channel_id,
                strategy="weighted" if index % 2 else "round_robin",
                staff=[StaffIn(user_id=u, weight=1 + (i % 3)) for i, u in enumerate(members[:3])],
                welcome_text="欢迎加入茶山集！回复「福利」领取新人券。",
                cost_cents=cost,
            ),
        )
        for n in range(SCANS_PER_CODE):
            at = now - timedelta(days=rng.uniform(0, 29), seconds=rng.uniform(0, 3600))
            scan = scans.scan(
                session,
                token=code.token,
                client_ip=f"10.{index}.{n // 250}.{n % 250}",
                user_agent="Mozilla/5.0 (iPhone) MicroMessenger/8.0",
                now=at,
                rng=rng,
            )
            scans_made += 1
            if scan.staff_user_id is None or rng.random() > 0.55:
                continue
            # most scanners are customers already in the pool (WeCom contacts); some are new to the brand
            known = rng.random() < 0.7 and externals
            external_userid = externals.pop()[1] if known else f"wmdemo{index}x{n:04d}"
            staff_userid = staff_wecom_userid(scan.staff_user_id)
            added_at = at + timedelta(minutes=rng.uniform(1, 30))
            added = attribution.record_add(
                session,
                workspace_id=owner.workspace_id,
                state=code.state,
                external_userid=external_userid,
                staff_userid=staff_userid,
                staff_user_id=scan.staff_user_id,
                occurred_at=added_at,
            )
            # the callback path records the friendship in wecom too; here it is the bulk verb, once
            follows.append(wecom.FriendshipRecord(staff_userid, external_userid, added_at, state=code.state))
            adds += 1
            new += added.add.is_new_customer
    wecom.record_friendships(
        session, workspace_id=owner.workspace_id, friendships=follows, actor_user_id=owner.user_id
    )
    return scans_made, adds, new


def _coupons(
    session: Session, *, owner: Actor, buyers: list[int], rng: random.Random, now: datetime
) -> tuple[int, int]:
    templates = [
        coupons.create_template(
            session,
            actor=owner,
            body=TemplateIn(
                name="满50减8", type="amount_off", threshold_cents=5_000, discount_cents=800, valid_days=30
            ),
        ),
        coupons.create_template(
            session,
            actor=owner,
            body=TemplateIn(
                name="新品八折券", type="percent_off", percent_off=20, cap_cents=2_000, valid_days=14
            ),
        ),
    ]
    issued = redeemed = 0
    for i, customer_id in enumerate(buyers[:160]):
        template = templates[i % 2]
        coupon = coupons.issue(
            session,
            workspace_id=owner.workspace_id,
            template_id=template.id,
            customer_id=customer_id,
            source_kind="staff",
            source_ref="demo",
            idempotency_key=f"demo-{template.id}-{customer_id}",
            at=now - timedelta(days=rng.uniform(3, 12)),
        )
        issued += 1
        if rng.random() < 0.35:
            coupons.redeem(
                session,
                workspace_id=owner.workspace_id,
                code=coupon.code,
                customer_id=customer_id,
                order_ref=f"demo-redeem-{coupon.id}",
                amount_cents=rng.randrange(5_000, 16_000, 100),
                at=now - timedelta(days=rng.uniform(0, 2)),
            )
            redeemed += 1
    return issued, redeemed


def _membership(
    session: Session, *, owner: Actor, buyers: list[int], rng: random.Random, now: datetime
) -> int:
    for name, threshold in (("银卡", 30_000), ("金卡", 100_000), ("黑金卡", 300_000)):
        membership.create_tier(session, actor=owner, body=TierIn(name=name, threshold=threshold))
    for customer_id in buyers[:200]:
        membership.earn_for_action(
            session,
            workspace_id=owner.workspace_id,
            customer_id=customer_id,
            action="custom",
            source_ref=f"demo-welcome-{customer_id}",
            points=rng.randrange(50, 2_000, 10),
            at=now - timedelta(days=rng.uniform(1, 60)),
        )
    membership.evaluate_tiers(session, workspace_id=owner.workspace_id, at=now)
    return min(len(buyers), 200)


def _groups(
    session: Session, *, owner: Actor, owners: list[str], rng: random.Random, now: datetime
) -> tuple[int, int]:
    people = _customers(
        session, workspace_id=owner.workspace_id, kind=IdentityKind.WECOM_EXTERNAL_USERID.value, limit=2_000
    )
    external_ids = [value for _customer, value in people]
    rng.shuffle(external_ids)
    pool = iter(external_ids)
    made = iter(range(10**9))

    def contact() -> str:
        """A customer of the pool who is a WeCom contact, else (a small demo ran out) one not in the pool."""
        return next(pool, None) or f"wmdemoguest{next(made):06d}"

    chats: list[dict[str, Any]] = []
    for index, (name, _tag) in enumerate(GROUPS):
        staff = owners[index % len(owners)]
        start = now - timedelta(weeks=WEEKS + 2)
        members = [{"userid": staff, "type": 1, "join_time": int(start.timestamp())}]
        for _ in range(rng.randrange(40, 90)):
            joined = start + timedelta(days=rng.uniform(0, 14))
            members.append(
                {
                    "userid": contact(),
                    "type": 2,
                    "join_time": int(joined.timestamp()),
                    "join_scene": rng.choice((1, 2, 3, 3)),
                }
            )
        chats.append(
            {
                "chat_id": f"wrdemo{index:02d}",
                "name": name,
                "owner": staff,
                "create_time": int(start.timestamp()),
                "member_list": members,
            }
        )
    total = 0
    # one sync a week: some members leave, new ones join (mostly by QR)
    for week in range(WEEKS + 1):
        seen = now - timedelta(weeks=WEEKS - week)
        for index, chat in enumerate(chats):
            if week:
                chat["member_list"] = [
                    m for m in chat["member_list"] if m["type"] == 1 or rng.random() > 0.06
                ]
                for _ in range(rng.randrange(3, 20 + 4 * index)):
                    joined = seen - timedelta(days=rng.uniform(0, 7))
                    chat["member_list"].append(
                        {
                            "userid": contact(),
                            "type": 2,
                            "join_time": int(joined.timestamp()),
                            "join_scene": rng.choice((2, 3, 3, 3)),
                        }
                    )
            wecom.store_group(session, workspace_id=owner.workspace_id, chat=chat, observed_at=seen)
    for (_name, tag), chat in zip(GROUPS, chats, strict=True):
        communities.add_tag(session, actor=owner, chat_id=chat["chat_id"], name=tag)
        communities.save_qr(
            session,
            actor=owner,
            chat_id=chat["chat_id"],
            image=_qr_image(f"https://weixin.qq.com/g/demo-{chat['chat_id']}"),
        )
        total += len(chat["member_list"])
    code = community_codes.create_code(
        session,
        actor=owner,
        spec=GroupCodeIn(name="门店入群码", chat_ids=[c["chat_id"] for c in chats[:2]], cap=200),
    )
    for _ in range(60):
        community_codes.hand_out(session, token=code.token)
    return len(chats), total


def _group_stats(session: Session, *, workspace_id: int, rng: random.Random, now: datetime) -> int:
    """WeCom's daily group figures (群聊数据统计) of the demo groups' owners for the last eight weeks, as
    the daily job would have fetched them: busier at weekends, a fifth of members speaking on a day."""
    by_owner: dict[str, list[int]] = {}
    for group in wecom.list_groups(session, workspace_id=workspace_id):
        by_owner.setdefault(group.owner, []).append(group.external_member_count + 1)
    yesterday = wecom.wecom_yesterday(now)
    rows = 0
    for day in wecom.day_range(yesterday - timedelta(weeks=WEEKS) + timedelta(days=1), yesterday):
        lively = 1.4 if day.weekday() >= 5 else 1.0
        items = []
        for staff, sizes in sorted(by_owner.items()):
            members = sum(sizes)
            spoke = min(members, int(members * rng.uniform(0.08, 0.3) * lively))
            items.append(
                {
                    "owner": staff,
                    "data": {
                        "new_chat_cnt": 0,
                        "chat_total": len(sizes),
                        "chat_has_msg_cnt": min(len(sizes), rng.randint(1, len(sizes) + 1)),
                        "new_member_cnt": rng.randrange(0, 6),
                        "member_total": members,
                        "member_has_msg_cnt": spoke,
                        "msg_total": int(spoke * rng.uniform(2, 7)),
                        "migrate_trainee_chat_cnt": 0,
                    },
                }
            )
        rows += wecom.store_group_stats(
            session, workspace_id=workspace_id, day=day, items=items, fetched_at=now
        )
    return rows


def build(session: Session, *, workspace_id: int, owner_user_id: int, seed: int = 7) -> Engagement:
    """Everything above for the demo workspace, in the caller's transaction."""
    rng = random.Random(seed)
    now = utcnow()
    owner = auth.actor_for(session, user_id=owner_user_id, workspace_id=workspace_id, via="cli")
    members = auth.list_members(session, workspace_id=workspace_id)
    staff = [m.user_id for m in members if m.role == Role.STAFF.value] or [owner_user_id]
    scans_made, adds, new = _live_codes(session, owner=owner, staff=staff, rng=rng, now=now)
    buyers = _top_buyers(session, workspace_id=workspace_id, limit=200)
    issued, redeemed = _coupons(session, owner=owner, buyers=buyers, rng=rng, now=now)
    points = _membership(session, owner=owner, buyers=buyers, rng=rng, now=now)
    groups, group_members = _groups(
        session, owner=owner, owners=[staff_wecom_userid(u) for u in staff], rng=rng, now=now
    )
    # a generator of its own, so the figures above stay what they were
    _group_stats(session, workspace_id=workspace_id, rng=random.Random(seed + 1), now=now)
    return Engagement(
        live_codes=len(LIVE_CODES),
        scans=scans_made,
        adds=adds,
        new_customers=new,
        coupons_issued=issued,
        coupons_redeemed=redeemed,
        points_members=points,
        groups=groups,
        group_members=group_members,
    )
