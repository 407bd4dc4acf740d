"""Workspace isolation for every route: a member of workspace A can neither see nor change B's rows.

Routes are read from the app itself, so a new route is covered (or this test fails, asking for a value
for its new path parameter) without anyone remembering to add it here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.routing import BaseRoute, Route

from siyu.auth.models import ApiToken, Role
from siyu.broadcasts import service as broadcasts
from siyu.channels import service as channels
from siyu.communities import codes as community_codes
from siyu.communities import posts as community_posts
from siyu.communities import service as communities
from siyu.communities.schemas import GroupCodeIn
from siyu.content import service as content
from siyu.content.schemas import SnippetIn
from siyu.content.schemas import TemplateIn as MessageTemplateIn
from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.coupons import service as coupons
from siyu.coupons.schemas import TemplateIn
from siyu.customers import identity
from siyu.customers import service as customers
from siyu.customers.models import IdentityReview
from siyu.experiments import service as experiments
from siyu.ingest import views as ingest_views
from siyu.ingest import webhooks
from siyu.ingest.models import ImportJob
from siyu.ingest.schemas import ImportKind
from siyu.journeys import service as journeys
from siyu.livecodes import service as livecodes
from siyu.livecodes.schemas import LiveCodeIn, StaffIn
from siyu.membership import service as membership
from siyu.membership.models import EntryKind
from siyu.membership.schemas import TierIn
from siyu.reach import service as reach
from siyu.reach.adapters.base import SendResult
from siyu.referrals import service as referrals
from siyu.referrals.schemas import AgentIn, CampaignIn
from siyu.referrals.schemas import TierIn as ReferralTierIn
from siyu.segments import service as segments
from siyu.tags import service as tags
from siyu.wecom import service as wecom
from siyu.workspaces import service as workspaces
from tests.communities import helpers as community_helpers
from tests.factories import (
    Member,
    api_client,
    make_channel,
    make_customer,
    make_event,
    make_member,
    make_order,
    make_store,
)

# Routes that take no workspace data by path, with why they are exempt from the generic check.
PUBLIC = {
    "/api/health": "no data",
    "/api/openapi.json": "schema only",
    "/api/docs": "schema only",
    "/docs/oauth2-redirect": "schema only",
    "/redoc": "schema only",
    "/login": "before any workspace",
    "/logout": "ends the session",
    "/lang/{code}": "language cookie",
    "/workspace": "switcher: refuses non-members (auth.actor_for), tested with the web shell",
    "/api/hooks/{workspace_slug}/{kind}": "signed by the workspace secret: test_webhook_secret_is_per_workspace",
    "/api/imports/{kind}": "writes only into the caller's workspace: test_import_never_attaches_to_other_workspace",
    "/wecom/callback/{callback_key}": "WeCom's callback, signed and encrypted with the workspace's own token and "
    "key: tests/wecom/test_callbacks.py and test_wecom_callback_key_is_per_workspace",
    "/api/public/{workspace_slug}/coupons/check": "public by design, one answer for any code not the "
    "caller's: tests/coupons/test_api.py",
    "/reach/unsubscribe/{token}": "signed link naming one customer: tests/reach/test_api.py",
    "/api/reach/push/{token}/aliyun-sms/report": "Aliyun's push, authorised by the workspace's signed token: "
    "tests/reach/test_aliyun_sms.py::test_push_urls_are_per_workspace_and_refuse_a_forged_token",
    "/api/reach/push/{token}/aliyun-sms/up": "Aliyun's push, authorised by the workspace's signed token: "
    "tests/reach/test_aliyun_sms.py::test_push_urls_are_per_workspace_and_refuse_a_forged_token",
    "/l/{token}": "public live-code landing: unguessable token, no customer data (tests/livecodes/test_landing.py)",
    "/l/{token}/demo-add": "public demo add, signed per scan (tests/livecodes/test_landing.py)",
    "/s/{token}": "public tracked link: unguessable token, redirects to its stored URL (tests/content/test_api.py)",
    "/r/{token}": "public referral landing: unguessable token, one answer for every phone "
    "(tests/referrals/test_landing.py)",
    "/g/{token}": "public group-code landing: unguessable token, shows one group's join QR "
    "(tests/communities/test_views.py)",
}
_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")


def flat_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route, descending into included routers."""
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            context = getattr(route, "include_context", None)
            yield from flat_routes(original.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif isinstance(route, Route):
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    yield method, prefix + route.path
        elif hasattr(route, "routes"):
            yield from flat_routes(route.routes, prefix + getattr(route, "path", ""))


@dataclass
class Other:
    """Workspace B's rows, and text that appears only in them."""

    owner: Member
    ids: dict[str, Any]
    markers: list[str]


def _workspace_b(db: Database) -> Other:
    tag = uuid.uuid4().hex[:8]
    with db.transaction() as session:
        ws = workspaces.create_workspace(session, slug=f"iso-b-{tag}", name="B").id
        owner = make_member(session, workspace_id=ws, role=Role.OWNER, name=f"bowner{tag}")
        channel = make_channel(session, workspace_id=ws, key=f"bch{tag}", name=f"B渠道{tag}")
        store = make_store(session, workspace_id=ws, code=f"BST{tag}")
        cost = channels.add_cost(
            session,
            workspace_id=ws,
            channel_id=channel.id,
            period_start=utcnow().date(),
            period_end=utcnow().date(),
            amount_cents=123,
            note=f"bcost{tag}",
        )
        phone = f"+86137{uuid.uuid4().int % 10**8:08d}"
        customer = make_customer(
            session,
            workspace_id=ws,
            name=f"乙{tag}",
            phone=phone,
            city=f"B城{tag}",
            owner_user_id=owner.user_id,
        )
        twin = make_customer(session, workspace_id=ws, name=f"乙二{tag}", phone="")
        order = make_order(session, workspace_id=ws, customer_id=customer.id, external_id=f"BORD{tag}")
        event = make_event(session, workspace_id=ws, customer_id=customer.id, type=f"bevt{tag}")
        review = IdentityReview(
            workspace_id=ws,
            customer_a_id=customer.id,
            customer_b_id=twin.id,
            reason=f"breview{tag}",
            evidence={},
        )
        job = ImportJob(
            workspace_id=ws, kind="orders", source="file", filename=f"bjob{tag}.csv", status="done"
        )
        session.add_all([review, job])
        session.flush()
        customers.record_consent(
            session,
            actor=owner.actor,
            customer_id=customer.id,
            contact_channel="sms",
            purpose="marketing",
            status="granted",
            source=f"bconsent{tag}",
        )
        third = make_customer(session, workspace_id=ws, name=f"乙三{tag}", phone="")
        merge = identity.merge_customers(
            session,
            workspace_id=ws,
            survivor_id=twin.id,
            merged_id=third.id,
            reason=f"bmerge{tag}",
            actor_user_id=owner.user_id,
        )
        group = tags.create_group(session, actor=owner.actor, name=f"B组{tag}")
        b_tag = tags.create_tag(session, actor=owner.actor, group_id=group.id, name=f"B标签{tag}")
        tags.tag_customer(session, actor=owner.actor, customer_id=customer.id, tag_id=b_tag.id)
        segment = segments.create_segment(
            session, actor=owner.actor, name=f"B分群{tag}", rule=f'city = "B城{tag}"'
        )
        experiment = experiments.create_experiment(
            session, actor=owner.actor, key=f"bexp{tag}", name=f"B实验{tag}", variants={"a": 1, "b": 1}
        )
        wecom_view = wecom.save_settings(
            session,
            actor=owner.actor,
            corp_id=f"wwb{tag}",
            secret=f"bsecret{tag}",
            token=f"btoken{tag}",
            encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        )
        wecom.map_staff(session, actor=owner.actor, wecom_userid=f"bstaff{tag}", user_id=owner.user_id)
        template = coupons.create_template(
            session,
            actor=owner.actor,
            body=TemplateIn(name=f"B券{tag}", type="no_threshold", discount_cents=100, valid_days=30),
        )
        coupon = coupons.issue(
            session,
            workspace_id=ws,
            template_id=template.id,
            customer_id=customer.id,
            source_kind="staff",
            source_ref=f"bsrc{tag}",
            idempotency_key=f"bkey{tag}",
        )
        membership.apply(
            session,
            workspace_id=ws,
            customer_id=customer.id,
            kind=EntryKind.EARN,
            points=77,
            source_kind="test",
            source_ref=f"bpoints{tag}",
        )
        membership.create_tier(session, actor=owner.actor, body=TierIn(name=f"B卡{tag}", threshold=1))
        reach.send(
            session,
            workspace_id=ws,
            source="broadcast",
            source_ref=f"bsend{tag}",
            customer_ids=[customer.id],
            content={"sms": {"text": f"B短信{tag}"}},
            purpose="transactional",  # no quiet hours: claimed at once whatever the time of day
            channel_preference=["sms"],
        )
        session.flush()
        [claimed] = reach.claim(session, limit=1, workspace_id=ws)
        reach.complete(
            session,
            message_id=claimed.message.message_id,
            lease_token=claimed.lease_token,
            result=SendResult.sent(f"bprov{tag}"),
        )
        live_code = livecodes.create_live_code(
            session,
            actor=owner.actor,
            spec=LiveCodeIn(
                name=f"B活码{tag}",
                placement="poster",
                staff=[StaffIn(user_id=owner.user_id)],
                welcome_text=f"b{tag}",
            ),
        )
        message_template = content.create_template(
            session,
            actor=owner.actor,
            body=MessageTemplateIn(
                name=f"B模板{tag}", variants={"sms": {"text": f"B模板短信{tag} {{{{ name }}}}"}}
            ),
        )
        snippet = content.create_snippet(
            session, actor=owner.actor, body=SnippetIn(key=f"b{tag}", title=f"B话术{tag}", text=f"B话术{tag}")
        )
        referral = referrals.create_campaign(
            session,
            actor=owner.actor,
            spec=CampaignIn(
                name=f"B裂变{tag}",
                title=f"B海报{tag}",
                tiers=[ReferralTierIn(threshold=9, points=1)],
                invites_per_hour=1,
            ),
        )
        referral_link = referrals.link_for(
            session, workspace_id=ws, campaign_id=referral.id, inviter_customer_id=customer.id
        )
        referrals.record_invite(session, link=referral_link, phone=f"+86136{uuid.uuid4().int % 10**8:08d}")
        held = referrals.record_invite(
            session, link=referral_link, phone=f"+86136{uuid.uuid4().int % 10**8:08d}"
        )
        agent = referrals.make_agent(
            session, actor=owner.actor, spec=AgentIn(customer_id=customer.id, rate_percent=5)
        )
        broadcast = broadcasts.create_broadcast(
            session,
            actor=owner.actor,
            name=f"B群发{tag}",
            purpose="transactional",
            channel_preference=["sms"],
            content={"sms": {"text": f"B群发{tag}"}},
            customer_ids=[customer.id],
        )
        broadcasts.start_broadcast(session, actor=owner.actor, broadcast_id=broadcast.id)
        chat_id = f"wrB{tag}"
        wecom.store_group(
            session,
            workspace_id=ws,
            chat={
                "chat_id": chat_id,
                "name": f"B群{tag}",
                "owner": f"bstaff{tag}",
                "member_list": [{"userid": f"wmB{tag}", "type": 2, "join_time": 1_700_000_000}],
            },
        )
        communities.add_tag(session, actor=owner.actor, chat_id=chat_id, name=f"B群标签{tag}")
        communities.save_qr(session, actor=owner.actor, chat_id=chat_id, image=community_helpers.png())
        group_code = community_codes.create_code(
            session, actor=owner.actor, spec=GroupCodeIn(name=f"B群码{tag}", chat_ids=[chat_id])
        )
        group_post = community_posts.create_post(
            session,
            actor=owner.actor,
            spec=community_posts.PostSpec(
                name=f"B群SOP{tag}",
                text="B",
                attachments=[],
                target="groups",
                target_values=[chat_id],
                repeat="daily",
                time_of_day="11:00",
                weekdays=[],
                start_on=date(2030, 1, 1),
            ),
        )
        moment = wecom.create_moment(
            session,
            workspace_id=ws,
            actor_user_id=owner.user_id,
            text=f"B朋友圈{tag}",
            scheduled_for=utcnow() + timedelta(days=30),
        )
        journey = journeys.create_journey(
            session,
            actor=owner.actor,
            name=f"B旅程{tag}",
            definition={
                "trigger": {"kind": "event", "type": "order.placed"},
                "steps": [{"id": f"b{tag}", "kind": "exit"}],
            },
        )
        task = journeys.create_task(
            session, actor=owner.actor, customer_id=customer.id, title=f"B任务{tag}", due_at=utcnow()
        )
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.user_id == owner.user_id))
        ids = {
            "workspace_id": ws,
            "customer_id": customer.id,
            "order_id": order.id,
            "event_id": event.id,
            "channel_id": channel.id,
            "store_id": store.id,
            "cost_id": cost.id,
            "token_id": token_id,
            "merge_log_id": merge.id,
            "review_id": review.id,
            "job_id": job.id,
            "group_id": group.id,
            "tag_id": b_tag.id,
            "segment_id": segment.id,
            "experiment_id": experiment.id,
            "template_id": template.id,
            "coupon_id": coupon.id,
            "coupon_code": coupon.code,
            "message_id": claimed.message.message_id,
            "provider_message_id": f"bprov{tag}",
            "send_ref": f"bsend{tag}",
            "live_code_id": live_code.id,
            "message_template_id": message_template.id,
            "snippet_id": snippet.id,
            "campaign_id": referral.id,
            "invite_id": held.invite.id,
            "agent_id": agent.id,
            "broadcast_id": broadcast.id,
            "chat_id": chat_id,
            "code_id": group_code.id,
            "post_id": group_post.id,
            "moment_id": moment.id,
            "journey_id": journey.id,
            "task_id": task.id,
            "user_id": owner.user_id,
            "extension": "png",
            "segment_name": segment.name,
            "external_id": order.external_id,
            "phone": phone,
            "callback_key": wecom_view.callback_path.rsplit("/", 1)[-1],
        }
    markers = [tag, phone[3:]]
    return Other(owner=owner, ids=ids, markers=markers)


# request bodies for writes, so that a refusal is about the row, not about a malformed body
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/customers/{customer_id}"): {"json": {"city": "hacked"}},
    ("PUT", "/api/customers/{customer_id}/owner"): {"json": {"owner_user_id": None}},
    ("POST", "/api/customers/{customer_id}/consents"): {
        "json": {"contact_channel": "sms", "purpose": "marketing", "status": "withdrawn"}
    },
    ("POST", "/api/customers/{customer_id}/merge"): {"json": {"merged_id": 0}},
    ("POST", "/api/reach/customers/{customer_id}/messages"): {
        "json": {"channel": "sms", "text": "hacked", "idempotency_key": "isolation-check-1"}
    },
    ("PATCH", "/api/channels/{channel_id}"): {"json": {"name": "hacked"}},
    ("POST", "/api/channels/{channel_id}/costs"): {
        "json": {"period_start": "2020-01-01", "period_end": "2020-01-02", "amount_cents": 1}
    },
    ("POST", "/api/identity-reviews/{review_id}/resolve"): {"json": {"decision": "dismiss"}},
    ("POST", "/api/tag-groups/{group_id}/tags"): {"json": {"name": "hacked"}},
    ("PATCH", "/api/segments/{segment_id}"): {"json": {"text": "has(phone)"}},
    ("POST", "/api/segments/{segment_id}/tag"): {"json": {"tag_id": 0}},
    ("PUT", "/api/segments/{segment_id}/rule-tag"): {"json": {"tag_id": None}},
    ("POST", "/api/tags/{tag_id}/customers"): {"json": {"customer_ids": [0]}},
    ("POST", "/api/experiments/{experiment_id}/assign"): {"json": {"customer_id": 0}},
    ("PUT", "/api/live-codes/{live_code_id}"): {
        "json": {"name": "hacked", "placement": "poster", "staff": [{"user_id": 0}]}
    },
    ("POST", "/api/live-codes/{live_code_id}/active"): {"json": {"active": False}},
    ("PUT", "/api/live-codes/{live_code_id}/staff/{user_id}/online"): {"json": {"online": False}},
    ("POST", "/api/live-codes/{live_code_id}/qr-logo.png"): {"files": {"logo": ("l.png", b"x", "image/png")}},
    ("POST", "/live-codes/{live_code_id}/edit"): {"data": {"name": "hacked", "placement": "poster"}},
    ("POST", "/live-codes/{live_code_id}/active"): {"data": {"active": "0"}},
    ("POST", "/live-codes/{live_code_id}/staff/{user_id}/online"): {"data": {"online": "0"}},
    ("POST", "/api/tags/{tag_id}/customers/remove"): {"json": {"customer_ids": [0]}},
    ("POST", "/api/referral-campaigns/{campaign_id}/links"): {"json": {"customer_id": 0}},
    ("POST", "/api/referral-campaigns/{campaign_id}/poster-image"): {
        "files": {"image": ("b.png", b"x", "image/png")}
    },
    ("POST", "/api/referral-invites/{invite_id}/review"): {"json": {"decision": "approve"}},
    ("POST", "/referrals/{campaign_id}/links"): {"data": {"customer_id": "1"}},
    ("POST", "/referrals/{campaign_id}/poster-image"): {"data": {"clear": "1"}},
    ("POST", "/referrals/invites/{invite_id}/review"): {"data": {"decision": "approve"}},
    ("POST", "/api/communities/groups/{chat_id}/tags"): {"json": {"name": "hacked"}},
    ("POST", "/api/communities/groups/{chat_id}/tags/remove"): {"json": {"name": "hacked"}},
    ("PUT", "/api/communities/groups/{chat_id}/qr"): {"files": {"image": ("q.png", b"x", "image/png")}},
    ("POST", "/api/communities/codes/{code_id}/active"): {"json": {"active": False}},
    ("POST", "/communities/groups/{chat_id}/tags"): {"data": {"name": "hacked"}},
    ("POST", "/communities/groups/{chat_id}/tags/remove"): {"data": {"name": "hacked"}},
    ("POST", "/communities/groups/{chat_id}/qr"): {"files": {"image": ("q.png", b"x", "image/png")}},
    ("POST", "/communities/codes/{code_id}/active"): {"data": {"active": "0"}},
    ("POST", "/group-posts/{post_id}/active"): {"data": {"active": "0"}},
    ("PATCH", "/api/tags/{tag_id}"): {"json": {"name": "hacked"}},
    ("PATCH", "/api/tag-groups/{group_id}"): {"json": {"name": "hacked"}},
    ("POST", "/api/tags/{tag_id}/customers/upload"): {
        "data": {"kind": "phone"},
        "files": {"file": ("l.csv", b"phone\n13800000000\n", "text/csv")},
    },
    ("POST", "/api/segments/{segment_id}/untag"): {"json": {"tag_id": 0}},
    ("POST", "/tag-groups/{group_id}/tags"): {"data": {"name": "hacked"}},
    ("POST", "/tag-groups/{group_id}/rename"): {"data": {"name": "hacked"}},
    ("POST", "/tags/{tag_id}/rename"): {"data": {"name": "hacked"}},
    ("POST", "/tags/{tag_id}/delete"): {"data": {"expected_customers": "1"}},
    ("POST", "/tag-groups/{group_id}/delete"): {"data": {"expected_customers": "1"}},
    ("POST", "/api/coupon-templates/{template_id}/issue"): {
        "json": {"customer_id": 0, "idempotency_key": "x"}
    },
    ("POST", "/api/customers/{customer_id}/points/adjust"): {
        "json": {"points": -1, "reason": "hacked", "idempotency_key": "x"}
    },
    ("POST", "/api/customers/{customer_id}/points/actions"): {
        "json": {"action": "custom", "source_ref": "x", "points": 5}
    },
    ("PUT", "/api/reach/contacts/{customer_id}/do-not-contact"): {"json": {"do_not_contact": True}},
    ("PUT", "/api/content/templates/{message_template_id}"): {
        "json": {"name": "hacked", "variants": {"sms": {"text": "hacked"}}}
    },
    ("POST", "/api/content/templates/{message_template_id}/preview"): {"json": {"customer_id": 0}},
    ("POST", "/content/templates/{message_template_id}"): {"data": {"name": "hacked", "sms_text": "x"}},
    ("PUT", "/api/content/snippets/{snippet_id}"): {"json": {"key": "hacked", "title": "x", "text": "y"}},
    ("POST", "/content/library/{snippet_id}"): {"data": {"key": "hacked", "title": "x", "text": "y"}},
    ("PUT", "/api/journeys/{journey_id}/definition"): {
        "json": {
            "definition": {
                "trigger": {"kind": "event", "type": "order.placed"},
                "steps": [{"id": "x", "kind": "exit"}],
            },
            "in_flight": "exit",
        }
    },
    ("POST", "/api/staff-tasks/{task_id}/complete"): {"json": {"outcome": "hacked"}},
    ("POST", "/journeys/{journey_id}/definition"): {
        "data": {
            "definition": '{"trigger": {"kind": "event", "type": "order.placed"}, "steps": [{"id": "x", "kind": "exit"}]}',
            "in_flight": "exit",
        }
    },
    ("POST", "/tasks/{task_id}/complete"): {"data": {"outcome": "hacked"}},
    ("POST", "/channels/{channel_id}/costs"): {
        "data": {"period_start": "2020-01-01", "period_end": "2020-01-02", "amount": "1"}
    },
}
# query strings for lists: required parameters, and filters naming B's rows
QUERIES: dict[str, dict[str, Any]] = {
    "/api/orders/revenue-by-channel": {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"},
    "/api/costs/by-channel": {"start": "2000-01-01", "end": "2100-01-01"},
    "/clv/data.csv": {"chart": "top"},
    "/lifecycle/data.csv": {"chart": "flows", "start": "2000-01-01", "end": "2100-01-01"},
    "/api/lifecycle/flows": {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"},
    "/metrics/data.csv": {"chart": "roi", "start": "2000-01-01", "end": "2100-01-01"},
    "/overview/data.csv": {"chart": "roi", "months": "24"},
    "/communities": {"start": "2026-01-01", "end": "2026-12-31"},
    "/api/communities/groups": {"start": "2026-01-01", "end": "2026-12-31"},
    "/api/customers/lookup": {"phone": "{phone}"},
    # B's channel as the filter: A's figures for it are empty, and none of B's data shows
    "/api/metrics/repurchase": {"start": "2000-01-01", "end": "2100-01-01", "channel_id": "{channel_id}"},
    "/api/metrics/private-domain": {"start": "2000-01-01", "end": "2100-01-01", "channel_id": "{channel_id}"},
    "/api/metrics/channel-roi": {"start": "2000-01-01", "end": "2100-01-01"},
    "/api/metrics/conversion": {"start": "2000-01-01", "end": "2100-01-01", "channel_id": "{channel_id}"},
    "/api/metrics/funnel": {
        "start": "2000-01-01",
        "end": "2100-01-01",
        "steps": ["page_view", "purchase"],
        "breakdown": "channel",
    },
    "/api/metrics/retention": {"first_month": "2000-01-01", "last_month": "2099-12-01", "activity": "any"},
    "/api/metrics/ltv-cohorts": {"first_month": "2000-01-01", "last_month": "2099-12-01", "by": "channel"},
    "/api/metrics/pass-through": {"start": "2000-01-01", "end": "2100-01-01", "channel_id": "{channel_id}"},
    "/api/metrics/cohorts": {"first": "2026-01-01", "last": "2026-12-31", "period": "month"},
    "/api/metrics/trend": {"last": "2026-06-30", "period": "month", "points": "3"},
    "/api/metrics/dormant-reactivation": {"start": "2000-01-01", "end": "2100-01-01"},
    "/metrics/overview": {"period": "month", "channel_id": "{channel_id}"},
    "/metrics/overview.csv": {"period": "month", "channel_id": "{channel_id}"},
    "/metrics/cohorts": {"period": "month", "channel_id": "{channel_id}"},
    "/metrics/cohorts.csv": {"period": "month", "channel_id": "{channel_id}"},
    # a rule that matches everyone A may see: B's customers must not be among them
    "/api/segments/count": {"text": "all"},
    "/api/segments/sample": {"text": "all"},
    "/api/segments/explain": {"text": "all"},
    "/api/reach/accounting": {"source": "broadcast", "source_ref": "{send_ref}"},
    "/api/reach/messages": {"source_ref": "{send_ref}"},
    "/api/content/clicks": {"source": "broadcast", "source_ref": "{send_ref}"},
    "/api/content/snippets": {"q": "B话术"},
    "/api/referral-board": {"campaign_id": "{campaign_id}"},
}
# lists fetched with POST (a body of filters): checked like GET lists
POST_LISTS: dict[str, dict[str, Any]] = {"/api/customers/export": {"json": {}}}
# lists filtered by one of B's ids, checked in addition to the plain list
FILTERED_LISTS = [
    ("/api/orders", "customer_id"),
    ("/api/events", "customer_id"),
    ("/api/merges", "customer_id"),
    ("/api/customers/{customer_id}/timeline", None),
]


def _fill(path: str, ids: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in ids, (
            f"route {path}: give B's value for path parameter {name!r} in this test (or list it in PUBLIC)"
        )
        return str(ids[name])

    return _PARAM.sub(value, path)


def _assert_no_markers(response_text: str, other: Other, what: str, sent: tuple[str, ...] = ()) -> None:
    """No text of B's rows in the response (except what the request itself sent, echoed in a message)."""
    for marker in other.markers:
        if any(marker in value for value in sent):
            continue
        assert marker not in response_text, f"{what} shows workspace B's data ({marker!r})"


def _routes(client: TestClient) -> list[tuple[str, str]]:
    routes = sorted(set(flat_routes(client.app.routes)))  # type: ignore[attr-defined]
    assert ("GET", "/api/customers/{customer_id}") in routes  # the walk found the included routers
    return routes


def _import_run_of_b(db: Database, other: Other, folder: Path) -> str:
    """An import in progress (or just finished) of workspace B, as the import page shows it."""
    csv_file = folder / "b.csv"
    csv_file.write_text("手机号,姓名\n13912340000,乙\n", encoding="utf-8")
    return ingest_views.start_import(
        db,
        actor=other.owner.actor,
        kind=ImportKind.CUSTOMERS,
        path=csv_file,
        mapping_overrides={},
        strict=False,
    )


def test_every_route_keeps_workspaces_apart(db: Database, workspace_id: int, tmp_path: Path) -> None:
    other = _workspace_b(db)
    other.ids["run_id"] = _import_run_of_b(db, other, tmp_path)
    with db.transaction() as session:
        a = make_member(session, workspace_id=workspace_id, role=Role.OWNER)
        mine = make_customer(session, workspace_id=workspace_id, name="甲")
        make_order(session, workspace_id=workspace_id, customer_id=mine.id)
    client = api_client(db)
    checked: list[str] = []
    for method, path in _routes(client):
        if path in PUBLIC or path.startswith("/static"):
            continue
        has_params = bool(_PARAM.search(path))
        if has_params:
            url = _fill(path, other.ids)
            response = client.request(method, url, headers=a.headers, **BODIES.get((method, path), {}))
            assert response.status_code in (403, 404), (
                f"{method} {url} with A's token gave {response.status_code}"
            )
            _assert_no_markers(response.text, other, f"{method} {path}", sent=(url,))
            checked.append(f"{method} {path}")
        elif method == "POST" and path in POST_LISTS:
            response = client.post(path, headers=a.headers, **POST_LISTS[path])
            assert response.status_code == 200, f"POST {path} gave {response.status_code}"
            _assert_no_markers(response.text, other, f"POST {path}")
            checked.append(f"POST {path}")
        elif method == "GET":
            params = {
                k: v if isinstance(v, list) else str(v).format(**other.ids)
                for k, v in QUERIES.get(path, {}).items()
            }
            response = client.get(path, params=params, headers=a.headers)
            assert response.status_code in (200, 404), (
                f"GET {path} gave {response.status_code}: {response.text[:200]}"
            )
            sent = tuple(v for v in params.values() if isinstance(v, str))
            _assert_no_markers(response.text, other, f"GET {path}", sent=sent)
            checked.append(f"GET {path}")
    for path, param in FILTERED_LISTS:
        url = _fill(path, other.ids)
        params = {param: other.ids[param]} if param else {}
        response = client.get(url, params=params, headers=a.headers)
        assert response.status_code == 404 or (response.status_code == 200 and "[]" in response.text), url
        _assert_no_markers(response.text, other, f"GET {url}")
    # a write naming B's customer in its body
    merge = client.post(
        f"/api/customers/{mine.id}/merge", json={"merged_id": other.ids["customer_id"]}, headers=a.headers
    )
    assert merge.status_code == 404
    # A's own customer with B's tag, and B's customer in the body of a bulk tagging with A's own tag
    assert (
        client.put(f"/api/customers/{mine.id}/tags/{other.ids['tag_id']}", headers=a.headers).status_code
        == 404
    )
    with db.transaction() as session:
        own_group = tags.create_group(session, actor=a.actor, name="甲组")
        own_tag = tags.create_tag(session, actor=a.actor, group_id=own_group.id, name="甲标签")
    bulk = client.post(
        f"/api/tags/{own_tag.id}/customers",
        json={"customer_ids": [other.ids["customer_id"]]},
        headers=a.headers,
    )
    assert bulk.status_code == 200 and bulk.json()["changed"] == 0
    by_phone = client.post(
        f"/api/tags/{own_tag.id}/customers",
        json={"identity_kind": "phone", "values": [other.ids["phone"]]},
        headers=a.headers,
    )
    assert by_phone.json()["changed"] == 0
    # B's segment is not a name A's rules can use
    named = client.get(
        "/api/segments/count", params={"text": f'segment("{other.ids["segment_name"]}")'}, headers=a.headers
    )
    assert named.status_code == 422 and "no segment is called" in named.json()["message"]
    # the bulk tag form naming B's tag, or A's tag with B's segment
    for form in (
        {"tag_id": other.ids["tag_id"], "action": "add", "target": "ids", "customer_ids": "1"},
        {"tag_id": own_tag.id, "action": "add", "target": "segment", "segment_id": other.ids["segment_id"]},
    ):
        refused = client.post("/tags/bulk", data=form, headers={**a.headers, "Accept": "text/html"})
        assert refused.status_code == 404, form
        _assert_no_markers(refused.text, other, "POST /tags/bulk")
    assert client.get("/api/segments/count", params={"text": "all"}, headers=a.headers).json()["count"] == 1
    # B's coupon code with B's customer, redeemed by A: the same refusal as no coupon at all
    redeem = client.post(
        "/api/coupons/redeem",
        json={
            "code": other.ids["coupon_code"],
            "customer_id": other.ids["customer_id"],
            "order_ref": "X",
            "amount_cents": 100,
        },
        headers=a.headers,
    )
    assert redeem.status_code == 404
    with db.transaction() as session:
        own_template = coupons.create_template(
            session,
            actor=a.actor,
            body=TemplateIn(name="甲券", type="no_threshold", discount_cents=100, valid_days=3),
        )
        own_coupon = coupons.issue_by_actor(
            session, actor=a.actor, template_id=own_template.id, customer_id=mine.id, idempotency_key="a"
        )
    redeem = client.post(
        "/api/coupons/redeem",
        json={
            "code": other.ids["coupon_code"],
            "customer_id": mine.id,
            "order_ref": "X",
            "amount_cents": 100,
        },
        headers=a.headers,
    )
    assert redeem.status_code == 409 and redeem.json()["reason"] == "not_found"
    assert own_coupon.code != other.ids["coupon_code"]
    # reach: B's customer in a send, B's provider id in a receipt, B's phone in an SMS reply
    send = {"customer_ids": [other.ids["customer_id"]], "channel_preference": ["sms"],
            "content": {"sms": {"text": "x"}}, "source_ref": "iso"}  # fmt: skip
    assert client.post("/api/reach/sends", json=send, headers=a.headers).status_code == 404
    receipt = {"provider_message_id": other.ids["provider_message_id"], "outcome": "bounced"}
    assert client.post("/api/reach/receipts", json=receipt, headers=a.headers).status_code == 404
    reply = client.post(
        "/api/reach/sms-replies", json={"phone": other.ids["phone"], "text": "T"}, headers=a.headers
    )
    assert reply.json() == {"unsubscribed": False}
    assert client.get("/api/reach/accounting", params={"source": "broadcast", "source_ref": other.ids["send_ref"]},
                      headers=a.headers).json()["total"] == 0  # fmt: skip
    assert len(checked) >= 30

    # and nothing of B changed
    b = other.owner.headers
    view = client.get(f"/api/customers/{other.ids['customer_id']}", headers=b).json()
    assert (
        view["profile"]["city"].startswith("B城") and view["profile"]["owner_user_id"] == other.owner.user_id
    )
    assert [c["status"] for c in view["consents"]] == ["granted"]
    channel = client.get(f"/api/channels/{other.ids['channel_id']}", headers=b).json()
    assert channel["archived_at"] is None and channel["name"].startswith("B渠道")
    assert len(client.get(f"/api/channels/{other.ids['channel_id']}/costs", headers=b).json()) == 1
    assert client.get("/api/me", headers=b).status_code == 200  # B's token was not revoked
    held = client.get(
        f"/api/referral-campaigns/{other.ids['campaign_id']}/invites", params={"status": "held"}, headers=b
    )
    assert [i["id"] for i in held.json()] == [other.ids["invite_id"]]  # still waiting for B's review
    assert client.get("/api/identity-reviews", headers=b).json()[0]["status"] == "open"
    assert client.get("/api/merges", headers=b).json()[0]["undone_at"] is None
    assert client.get(f"/api/orders/{other.ids['order_id']}", headers=b).status_code == 200
    b_tags = client.get(f"/api/customers/{other.ids['customer_id']}/tags", headers=b).json()
    assert [t["tag_id"] for t in b_tags] == [other.ids["tag_id"]]
    [b_group] = client.get("/api/tag-groups", headers=b).json()
    assert b_group["tags"][0]["name"].startswith("B标签")
    b_segment = client.get(f"/api/segments/{other.ids['segment_id']}", headers=b).json()
    assert b_segment["deleted_at"] is None and b_segment["rule_text"].startswith('city = "B城')
    assert client.get(f"/api/segments/{other.ids['segment_id']}/count", headers=b).json()["count"] == 1
    b_points = client.get(f"/api/customers/{other.ids['customer_id']}/points", headers=b).json()
    assert b_points["balance"] == 77
    b_coupons = client.get(f"/api/customers/{other.ids['customer_id']}/coupons", headers=b).json()
    assert [c["status"] for c in b_coupons] == ["issued"]
    assert (
        client.get(f"/api/coupon-templates/{other.ids['template_id']}", headers=b).json()["status"]
        == "active"
    )
    b_message = client.get(f"/api/reach/messages/{other.ids['message_id']}", headers=b).json()
    assert b_message["status"] == "sent"
    b_code = client.get(f"/api/live-codes/{other.ids['live_code_id']}", headers=b).json()
    assert b_code["is_active"] and b_code["name"].startswith("B活码") and b_code["staff"][0]["is_online"]


def test_lists_contain_only_own_ids(db: Database, workspace_id: int) -> None:
    other = _workspace_b(db)
    with db.transaction() as session:
        a = make_member(session, workspace_id=workspace_id, role=Role.OWNER)
        mine = make_customer(session, workspace_id=workspace_id)
        order = make_order(session, workspace_id=workspace_id, customer_id=mine.id)
        event = make_event(session, workspace_id=workspace_id, customer_id=mine.id)
    client = api_client(db)
    assert [c["id"] for c in client.get("/api/customers", headers=a.headers).json()["items"]] == [mine.id]
    assert [o["id"] for o in client.get("/api/orders", headers=a.headers).json()["items"]] == [order.id]
    assert [e["id"] for e in client.get("/api/events", headers=a.headers).json()["items"]] == [event.id]
    assert client.get("/api/channels", headers=a.headers).json() == []
    assert client.get("/api/stores", headers=a.headers).json() == []
    assert client.get("/api/imports", headers=a.headers).json() == []
    assert client.get("/api/merges", headers=a.headers).json() == []
    assert client.get("/api/identity-reviews", headers=a.headers).json() == []
    assert client.get("/api/live-codes", headers=a.headers).json() == []
    assert client.get("/api/tag-groups", headers=a.headers).json() == []
    assert client.get("/api/segments", headers=a.headers).json() == []
    assert {t["user_id"] for t in client.get("/api/tokens", headers=a.headers).json()} == {a.user_id}
    assert client.get("/api/me", headers=a.headers).json()["workspace_id"] == workspace_id
    lookup = client.get("/api/customers/lookup", params={"phone": other.ids["phone"]}, headers=a.headers)
    assert lookup.status_code == 404


def test_webhook_secret_is_per_workspace(db: Database, workspace_id: int) -> None:
    other = _workspace_b(db)
    with db.reader() as session:
        mine = workspaces.get_workspace(session, workspace_id=workspace_id)
        theirs = workspaces.get_workspace(session, workspace_id=other.ids["workspace_id"])
        secret, their_slug = mine.webhook_secret, theirs.slug
    body = b'{"records": []}'
    stamp = int(utcnow().timestamp())
    response = api_client(db).post(
        f"/api/hooks/{their_slug}/orders",
        content=body,
        headers={
            "X-Siyu-Timestamp": str(stamp),
            "X-Siyu-Signature": webhooks.sign(secret=secret, timestamp=stamp, body=body),
        },
    )
    assert response.status_code == 401 and response.json()["message"] == "wrong signature"


def test_wecom_callback_key_is_per_workspace(db: Database, workspace_id: int) -> None:
    """A callback signed and encrypted for workspace A's corp is refused at workspace B's callback URL."""
    from siyu.wecom.crypto import MessageCrypt, signature

    other = _workspace_b(db)
    with db.transaction() as session:
        a = make_member(session, workspace_id=workspace_id, role=Role.OWNER)
        wecom.save_settings(
            session,
            actor=a.actor,
            corp_id="wwacorp",
            secret="asecret",
            token="atoken",
            encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        )
    crypt = MessageCrypt(
        token="atoken", encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", receive_id="wwacorp"
    )
    encrypt = crypt.encrypt("<xml><Event>change_external_contact</Event></xml>")
    stamp = str(int(utcnow().timestamp()))
    response = api_client(db).post(
        f"/wecom/callback/{other.ids['callback_key']}",
        params={"msg_signature": signature("atoken", stamp, "1", encrypt), "timestamp": stamp, "nonce": "1"},
        content=f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>",
    )
    assert response.status_code == 401 and response.json()["message"] == "wrong msg_signature"


def test_import_never_attaches_to_other_workspace(db: Database, workspace_id: int) -> None:
    other = _workspace_b(db)
    with db.transaction() as session:
        a = make_member(session, workspace_id=workspace_id, role=Role.OPERATOR)
    client = api_client(db)
    record = {
        "external_id": other.ids["external_id"],  # the same order number as B's order
        "phone": other.ids["phone"],  # and B's customer's phone
        "paid_cents": 1,
        "placed_at": "2025-01-01T00:00:00Z",
    }
    response = client.post("/api/imports/orders", json={"records": [record]}, headers=a.headers)
    assert response.status_code == 201 and response.json()["result"]["inserted"] == 1
    theirs = client.get(f"/api/orders/{other.ids['order_id']}", headers=other.owner.headers).json()
    assert theirs["paid_cents"] == 3200 and theirs["customer_id"] == other.ids["customer_id"]
    b_view = client.get(f"/api/customers/{other.ids['customer_id']}", headers=other.owner.headers).json()
    assert b_view["rollup"]["order_count"] == 1
    mine = client.get("/api/customers/lookup", params={"phone": other.ids["phone"]}, headers=a.headers).json()
    assert mine["id"] != other.ids["customer_id"] and mine["net_revenue_cents"] == 1
