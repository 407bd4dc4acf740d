"""The demo brand's outreach: message templates and a content library (话术库), a referral campaign (裂变)
with invites, the welcome SOP journey live, and a broadcast (群发) decided for the best buyers — written
through the domains' own verbs, so that the content, referral, journey and broadcast pages show them.

Kept small (a few hundred rows) so that it adds little to `siyu demo`'s time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor
from siyu.broadcasts import service as broadcasts
from siyu.content import service as content
from siyu.content.schemas import SnippetIn, TemplateIn
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.customers.service import facts as customer_facts
from siyu.journeys import service as journeys
from siyu.referrals import service as referrals
from siyu.referrals.schemas import CampaignIn, TierIn

TEMPLATES = (
    (
        "新品上市通知",
        {
            "wecom": {
                "text": "{{ name | default('亲') }}，新品「桂花乌龙」今天上市，到店报暗号「桂花」第二杯半价。"
            },
            "sms": {
                "text": "{{ name | default('亲') }}，新品桂花乌龙上市，第二杯半价，详情 {{ link('https://example.com/new') }}"
            },
        },
    ),
    (
        "会员日提醒",
        {
            "wecom": {
                "text": "{{ name | default('亲') }}，本周五会员日，积分双倍，你现在有 {{ points | default(0) }} 积分。"
            },
            "sms": {"text": "本周五会员日积分双倍，你现有{{ points | default(0) }}积分，退订回T"},
        },
    ),
)
SNIPPETS = (
    ("opening", "开场白", "你好，我是茶山集的专属顾问，有任何问题都可以找我～", "话术"),
    ("menu", "本周菜单", "本周推荐：桂花乌龙、白桃乌龙、杨枝甘露。", "话术"),
    ("complaint", "客诉安抚", "非常抱歉给你带来不好的体验，我马上为你处理。", "客服"),
)
INVITES = 24


@dataclass(frozen=True)
class Outreach:
    templates: int
    snippets: int
    referral_invites: int
    new_customers: int  # the friends the referral invites brought into the pool
    journeys: int
    broadcast_audience: int


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


def _live_count(session: Session, *, workspace_id: int) -> int:
    live = customers.live_customer_ids(workspace_id).subquery()
    return int(session.scalar(select(func.count()).select_from(live)) or 0)


def _referrals(
    session: Session, *, owner: Actor, inviters: list[int], rng: random.Random, now: datetime
) -> int:
    campaign = referrals.create_campaign(
        session,
        actor=owner,
        spec=CampaignIn(
            name="老带新 · 邀 3 位好友",
            title="邀3位好友得200积分",
            tiers=[TierIn(threshold=3, points=200), TierIn(threshold=10, points=1000)],
            invites_per_day=20,
        ),
    )
    invites = 0
    for position, inviter in enumerate(inviters):
        link = referrals.link_for(
            session, workspace_id=owner.workspace_id, campaign_id=campaign.id, inviter_customer_id=inviter
        )
        for _ in range(rng.randint(1, 4) if position < 6 else 0):
            phone = f"+86139{rng.randrange(10**8):08d}"
            referrals.record_invite(session, link=link, phone=phone, client_hash=f"demo-{invites}")
            invites += 1
            if invites >= INVITES:
                return invites
    return invites


def build(session: Session, *, owner: Actor, seed: int = 11) -> Outreach:
    """Everything above for the demo workspace, in the caller's transaction."""
    rng = random.Random(seed)
    now = utcnow()
    for name, variants in TEMPLATES:
        content.create_template(session, actor=owner, body=TemplateIn(name=name, variants=variants))
    for key, title, text, group in SNIPPETS:
        content.create_snippet(
            session, actor=owner, body=SnippetIn(key=key, title=title, text=text, group_name=group)
        )
    buyers = _top_buyers(session, workspace_id=owner.workspace_id, limit=200)
    before = _live_count(session, workspace_id=owner.workspace_id)
    invites = _referrals(session, owner=owner, inviters=buyers[:10], rng=rng, now=now)
    new_customers = _live_count(session, workspace_id=owner.workspace_id) - before
    welcome = journeys.create_journey(
        session,
        actor=owner,
        name="新客欢迎 SOP",
        definition=journeys.template_definition("welcome"),
        template_key="welcome",
    )
    journeys.set_status(session, actor=owner, journey_id=welcome.id, action="start")
    broadcast = broadcasts.create_broadcast(
        session,
        actor=owner,
        name="新品上市 · 老客优先",
        purpose="marketing",
        channel_preference=["wecom", "sms"],
        content=dict(TEMPLATES[0][1]),
        customer_ids=buyers,
    )
    broadcasts.start_broadcast(session, actor=owner, broadcast_id=broadcast.id, now=now)
    while broadcasts.decide_next(
        session, workspace_id=owner.workspace_id, broadcast_id=broadcast.id, now=now
    ):
        pass
    return Outreach(
        templates=len(TEMPLATES),
        snippets=len(SNIPPETS),
        referral_invites=invites,
        new_customers=new_customers,
        journeys=1,
        broadcast_audience=len(buyers),
    )
