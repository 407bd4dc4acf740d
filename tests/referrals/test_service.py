"""Campaign rules, invites and their anti-fraud verdicts, the review queue, tiers and the reward cap,
first-order qualification, and the reports (progress, tree, KOC board)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from siyu.core.db import Database
from siyu.core.errors import NotFound, ValidationFailed
from siyu.coupons.models import Coupon
from siyu.customers import identity
from siyu.customers import service as customers
from siyu.customers.models import IdentityReview
from siyu.membership import service as membership
from siyu.referrals import service
from siyu.referrals.models import InviteStatus, ReferralReward
from siyu.referrals.schemas import TierIn
from tests.factories import make_customer, member, next_phone
from tests.referrals.helpers import campaign, import_orders, invite, inviter, link, process, template


def _coupons_of(db: Database, customer_id: int) -> list[int]:
    with db.reader() as session:
        return list(session.scalars(select(Coupon.template_id).where(Coupon.customer_id == customer_id)))


def _points(db: Database, workspace_id: int, customer_id: int) -> int:
    with db.reader() as session:
        return membership.balance(session, workspace_id=workspace_id, customer_id=customer_id)


def test_campaign_refusals_say_what_and_where(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with pytest.raises(ValidationFailed) as refused:
        campaign(db, owner, [TierIn(threshold=3, points=10), TierIn(threshold=3, points=20)])
    assert refused.value.where == "tiers[1].threshold"
    with pytest.raises(ValidationFailed) as refused:
        campaign(db, owner, [TierIn(threshold=3)])
    assert refused.value.where == "tiers[0]" and "rewards nothing" in refused.value.message
    with pytest.raises(ValidationFailed) as refused:
        campaign(db, owner, [TierIn(threshold=1, points=1)], qualification="first_order")
    assert refused.value.where == "min_order_cents"
    other_ws = member(db, _other_workspace(db))
    foreign = template(db, other_ws)
    with pytest.raises(NotFound):
        campaign(db, owner, [TierIn(threshold=1, coupon_template_id=foreign)])


def _other_workspace(db: Database) -> int:
    import uuid

    from siyu.workspaces import service as workspaces

    with db.transaction() as session:
        return workspaces.create_workspace(session, slug=f"ref-{uuid.uuid4().hex[:8]}", name="Other").id


def test_tiers_reward_once_with_coupons_and_points(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    coupon_a, coupon_b = template(db, owner), template(db, owner)
    found = campaign(
        db,
        owner,
        [
            TierIn(threshold=2, coupon_template_id=coupon_a),
            TierIn(threshold=3, coupon_template_id=coupon_b, points=500),
        ],
    )
    who = inviter(db, workspace_id)
    mine = link(db, workspace_id, found.id, who)
    assert link(db, workspace_id, found.id, who).token == mine.token and len(mine.token) >= 22
    first = invite(db, mine, next_phone())
    assert first.created and first.invite.status == InviteStatus.QUALIFIED
    assert _coupons_of(db, who) == []
    invite(db, mine, next_phone())
    assert _coupons_of(db, who) == [coupon_a]
    invite(db, mine, next_phone())
    assert sorted(_coupons_of(db, who)) == sorted([coupon_a, coupon_b])
    assert _points(db, workspace_id, who) == 500
    # a fourth friend and a re-run of the grant change nothing
    invite(db, mine, next_phone())
    with db.transaction() as session:
        again = service.grant_rewards(
            session, workspace_id=workspace_id, campaign_id=found.id, inviter_customer_id=who
        )
    assert again.granted == [] and len(_coupons_of(db, who)) == 2 and _points(db, workspace_id, who) == 500


def test_new_friends_become_customers_of_the_campaign_channel(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    from tests.factories import make_channel

    with db.transaction() as session:
        channel_id = make_channel(session, workspace_id=workspace_id, source_type="referral").id
    found = campaign(db, owner, [TierIn(threshold=5, points=10)], channel_id=channel_id)
    mine = link(db, workspace_id, found.id, inviter(db, workspace_id))
    phone = next_phone()
    result = invite(db, mine, phone[3:])  # typed without +86
    with db.reader() as session:
        summary = customers.lookup_by_identity(session, actor=owner.actor, kind="phone", value=phone)
    assert summary.id == result.invite.invitee_customer_id and summary.first_channel_id == channel_id
    with pytest.raises(ValidationFailed) as refused:
        invite(db, mine, "12345")
    assert refused.value.where == "phone"


def test_anti_fraud_self_existing_and_same_person(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    found = campaign(db, owner, [TierIn(threshold=1, points=100)])
    own_phone = next_phone()
    who = inviter(db, workspace_id, phone=own_phone)
    mine = link(db, workspace_id, found.id, who)
    # self-invite, under the inviter's own phone
    self_invite = invite(db, mine, own_phone)
    assert (self_invite.invite.status, self_invite.invite.reason) == ("rejected", service.Reason.SELF_INVITE)
    # a friend already in the pool is recorded, not counted; asking again returns the same invite
    known_phone = next_phone()
    with db.transaction() as session:
        known = make_customer(session, workspace_id=workspace_id, phone=known_phone).id
    existing = invite(db, mine, known_phone)
    assert (existing.invite.status, existing.invite.reason) == ("existing", service.Reason.IN_POOL)
    again = invite(db, mine, known_phone)
    assert not again.created and again.invite.id == existing.invite.id
    # the same person under another identity: an open identity review links them to the inviter
    twin_phone = next_phone()
    with db.transaction() as session:
        twin = make_customer(session, workspace_id=workspace_id, phone=twin_phone).id
        session.add(
            IdentityReview(
                workspace_id=workspace_id,
                customer_a_id=who,
                customer_b_id=twin,
                reason="shared unionid",
                evidence={},
            )
        )
    same = invite(db, mine, twin_phone)
    assert (same.invite.status, same.invite.reason) == ("rejected", service.Reason.SAME_PERSON)
    assert _points(db, workspace_id, who) == 0 and known != twin


def test_a_merge_after_the_invite_rejects_it(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    found = campaign(db, owner, [TierIn(threshold=2, points=100)])
    who = inviter(db, workspace_id)
    mine = link(db, workspace_id, found.id, who)
    friend = invite(db, mine, next_phone()).invite
    assert friend.status == "qualified"
    with db.transaction() as session:
        identity.merge_customers(
            session,
            workspace_id=workspace_id,
            survivor_id=who,
            merged_id=friend.invitee_customer_id,
            reason="same unionid",
            actor_user_id=owner.user_id,
        )
    assert process(db, workspace_id) >= 1
    with db.reader() as session:
        [row] = service.list_invites(session, workspace_id=workspace_id, campaign_id=found.id)
    assert (row.status, row.reason) == ("rejected", service.Reason.SAME_PERSON)
    invite(db, mine, next_phone())  # one qualified invite left: the tier of 2 is not reached
    assert _points(db, workspace_id, who) == 0


def test_velocity_and_same_client_hold_for_review(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    found = campaign(db, owner, [TierIn(threshold=3, points=300)], invites_per_hour=2)
    who = inviter(db, workspace_id)
    mine = link(db, workspace_id, found.id, who)
    statuses = [invite(db, mine, next_phone()).invite.status for _ in range(4)]
    assert statuses == ["qualified", "qualified", "held", "held"]
    with db.reader() as session:
        queue = service.review_queue(session, workspace_id=workspace_id, campaign_id=found.id)
    assert [i.reason for i in queue] == [service.Reason.VELOCITY_HOUR] * 2
    with db.transaction() as session:
        approved = service.review(session, actor=owner.actor, invite_id=queue[0].id, decision="approve")
        rejected = service.review(session, actor=owner.actor, invite_id=queue[1].id, decision="reject")
    assert (approved.status, rejected.status) == ("qualified", "rejected")
    assert _points(db, workspace_id, who) == 300  # the approval reached the tier
    with db.transaction() as session, pytest.raises(ValidationFailed):
        service.review(session, actor=owner.actor, invite_id=queue[0].id, decision="maybe")

    other = link(db, workspace_id, campaign(db, owner, [TierIn(threshold=9, points=1)]).id, who)
    client = "c" * 32
    held = [invite(db, other, next_phone(), client=client).invite.status for _ in range(4)]
    assert held == ["qualified"] * 3 + ["held"]


def test_reward_cap_of_the_campaign(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    found = campaign(db, owner, [TierIn(threshold=1, points=50)], reward_cap=1)
    a, b = inviter(db, workspace_id), inviter(db, workspace_id)
    invite(db, link(db, workspace_id, found.id, a), next_phone())
    invite(db, link(db, workspace_id, found.id, b), next_phone())
    assert (_points(db, workspace_id, a), _points(db, workspace_id, b)) == (50, 0)
    with db.transaction() as session:
        result = service.grant_rewards(
            session, workspace_id=workspace_id, campaign_id=found.id, inviter_customer_id=b
        )
    assert result.capped and result.granted == []


def test_closed_campaigns_and_unknown_tokens(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    soon = datetime.now(UTC) + timedelta(days=1)
    found = campaign(db, owner, [TierIn(threshold=1, points=1)], starts_at=soon)
    mine = link(db, workspace_id, found.id, inviter(db, workspace_id))
    with pytest.raises(service.CampaignClosed):
        invite(db, mine, next_phone())
    with db.reader() as session:
        assert service.link_by_token(session, token=mine.token) is not None
        for hostile in ("", "x" * 33, "../etc/passwd", "' OR 1=1 --", mine.token[:-1] + "!"):
            assert service.link_by_token(session, token=hostile) is None


def test_first_order_qualifies_on_a_large_enough_paid_order(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    found = campaign(
        db, owner, [TierIn(threshold=1, points=80)], qualification="first_order", min_order_cents=5000
    )
    who = inviter(db, workspace_id)
    phone = next_phone()
    joined = invite(db, link(db, workspace_id, found.id, who), phone).invite
    assert joined.status == "joined"
    placed = datetime.now(UTC).isoformat()
    import_orders(
        db,
        workspace_id,
        [
            {
                "external_id": "SMALL1",
                "phone": phone,
                "paid_cents": 4999,
                "placed_at": placed,
                "status": "paid",
            }
        ],
    )
    process(db, workspace_id)
    assert _points(db, workspace_id, who) == 0
    import_orders(
        db,
        workspace_id,
        [{"external_id": "BIG1", "phone": phone, "paid_cents": 8800, "placed_at": placed, "status": "paid"}],
    )
    process(db, workspace_id)
    assert _points(db, workspace_id, who) == 80
    with db.reader() as session:
        [row] = service.list_invites(session, workspace_id=workspace_id, campaign_id=found.id)
    assert (row.status, row.qualifying_order_ref) == ("qualified", "BIG1")


def test_progress_tree_and_board(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    found = campaign(db, owner, [TierIn(threshold=2, points=10), TierIn(threshold=5, points=20)])
    root = inviter(db, workspace_id, name="根")
    phones = [next_phone() for _ in range(3)]
    children = [
        invite(db, link(db, workspace_id, found.id, root), p).invite.invitee_customer_id for p in phones
    ]
    grandchild_phone = next_phone()
    grandchild = invite(db, link(db, workspace_id, found.id, children[0]), grandchild_phone).invite
    with db.reader() as session:
        nodes = service.tree(session, actor=owner.actor, campaign_id=found.id)
        progress = service.progress(session, actor=owner.actor, campaign_id=found.id)
    assert [(n.customer_id, n.depth) for n in nodes] == [
        (root, 0),
        (children[0], 1),
        (grandchild.invitee_customer_id, 2),
        (children[1], 1),
        (children[2], 1),
    ]
    top = progress[0]
    assert (top.inviter_customer_id, top.qualified, top.rewards, top.next_threshold, top.to_next) == (
        root,
        3,
        1,
        5,
        2,
    )
    placed = datetime.now(UTC).isoformat()
    import_orders(
        db,
        workspace_id,
        [
            {
                "external_id": "G1",
                "phone": grandchild_phone,
                "paid_cents": 90000,
                "placed_at": placed,
                "status": "paid",
            },
            {
                "external_id": "C1",
                "phone": phones[1],
                "paid_cents": 1000,
                "placed_at": placed,
                "status": "paid",
            },
            {
                "external_id": "C2",
                "phone": phones[2],
                "paid_cents": 2000,
                "placed_at": placed,
                "status": "paid",
                "refunded_cents": 500,
            },
        ],
    )
    with db.reader() as session:
        rows = service.board(session, actor=owner.actor, campaign_id=found.id)
    assert [(r.rank, r.inviter_customer_id, r.invitees, r.downstream_net_cents) for r in rows] == [
        (1, root, 3, 2500),
        (2, children[0], 1, 90000),
    ]


def test_rewards_are_granted_once_under_concurrent_retries(db: Database, workspace_id: int) -> None:
    import threading

    owner = member(db, workspace_id)
    coupon_a = template(db, owner)
    found = campaign(db, owner, [TierIn(threshold=1, coupon_template_id=coupon_a, points=70)])
    who = inviter(db, workspace_id)
    friend = inviter(db, workspace_id, name="朋友")
    # the invite is written without its grant, then eight workers retry the grant at once
    with db.transaction() as session:
        from siyu.referrals.models import ReferralInvite

        session.add(
            ReferralInvite(
                workspace_id=workspace_id,
                campaign_id=found.id,
                inviter_customer_id=who,
                invitee_customer_id=friend,
                status="qualified",
                invited_at=datetime.now(UTC),
                qualified_at=datetime.now(UTC),
            )
        )
    barrier = threading.Barrier(8)
    granted: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            with db.transaction() as session:
                result = service.grant_rewards(
                    session, workspace_id=workspace_id, campaign_id=found.id, inviter_customer_id=who
                )
                granted.append(len(result.granted))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(granted) == [0] * 7 + [1]
    with db.reader() as session:
        rewards = session.scalar(
            select(func.count(ReferralReward.id)).where(ReferralReward.campaign_id == found.id)
        )
    assert rewards == 1 and _coupons_of(db, who) == [coupon_a] and _points(db, workspace_id, who) == 70


def test_concurrent_retries_of_one_invite_record_it_once(db: Database, workspace_id: int) -> None:
    import threading

    owner = member(db, workspace_id)
    found = campaign(db, owner, [TierIn(threshold=1, points=40)])
    who = inviter(db, workspace_id)
    mine = link(db, workspace_id, found.id, who)
    phone = next_phone()
    barrier = threading.Barrier(6)
    ids: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            ids.append(invite(db, mine, phone).invite.id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(ids) == 6 and len(set(ids)) == 1
    assert _points(db, workspace_id, who) == 40


def test_one_new_phone_through_two_campaigns_at_once(db: Database, workspace_id: int) -> None:
    import threading

    owner = member(db, workspace_id)
    links = [
        link(
            db,
            workspace_id,
            campaign(db, owner, [TierIn(threshold=1, points=10)]).id,
            inviter(db, workspace_id),
        )
        for _ in range(2)
    ]
    phone = next_phone()
    barrier = threading.Barrier(2)
    statuses: list[str] = []
    errors: list[BaseException] = []

    def run(target: object) -> None:
        barrier.wait()
        try:
            statuses.append(invite(db, target, phone).invite.status)  # type: ignore[arg-type]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(target,)) for target in links]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the friend is new to the pool once: the other campaign sees a customer from before its invite
    assert errors == [] and sorted(statuses) == ["existing", "qualified"]


def test_an_order_paid_later_qualifies_too(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    found = campaign(
        db, owner, [TierIn(threshold=1, points=60)], qualification="first_order", min_order_cents=1000
    )
    who = inviter(db, workspace_id)
    phone = next_phone()
    invite(db, link(db, workspace_id, found.id, who), phone)
    order = {
        "external_id": "LATER1",
        "phone": phone,
        "paid_cents": 3000,
        "placed_at": datetime.now(UTC).isoformat(),
    }
    import_orders(db, workspace_id, [{**order, "status": "pending"}])
    process(db, workspace_id)
    assert _points(db, workspace_id, who) == 0
    import_orders(db, workspace_id, [{**order, "status": "paid"}])
    process(db, workspace_id)
    assert _points(db, workspace_id, who) == 60
