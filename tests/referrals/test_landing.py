"""The public referral landing `/r/{token}` with hostile input: unknown, malformed and closed links
answer alike, every accepted phone gets the same page (no customer enumeration), bad phones are
refused without writing, and the rate limit answers 429."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from siyu.core.config import Settings
from siyu.core.db import Database
from siyu.core.ratelimit import RateLimits
from siyu.customers.models import Customer
from siyu.referrals import service
from siyu.referrals.models import ReferralInvite
from siyu.referrals.schemas import TierIn
from siyu.web.app import create_app
from tests.factories import make_customer, member, next_phone
from tests.referrals.helpers import campaign, inviter, link


def _client(db: Database, rate: str = "1000/minute") -> TestClient:
    app = create_app(database=db, settings=Settings(env="test", secret_key="x" * 40))  # type: ignore[call-arg]
    app.state.rate_limits = RateLimits(rates={"referral.landing": rate, "referral.join": rate})
    return TestClient(app)


def _invites(db: Database, campaign_id: int) -> list[tuple[str, str]]:
    with db.reader() as session:
        rows = session.scalars(select(ReferralInvite).where(ReferralInvite.campaign_id == campaign_id))
        return sorted((r.status, r.reason) for r in rows)


def _page_body(text: str) -> str:
    return re.sub(r'next=[^"]*"', 'next="', re.sub(r'action="/r/[^"]*"', 'action=""', text))


def test_a_friend_joins_through_the_link(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    found = campaign(db, owner, [TierIn(threshold=1, points=30)], title="邀好友喝奶茶")
    who = inviter(db, workspace_id, name="王小美")
    mine = link(db, workspace_id, found.id, who)
    client = _client(db)
    page = client.get(f"/r/{mine.token}")
    assert page.status_code == 200 and "邀好友喝奶茶" in page.text
    assert "王**" in page.text and "王小美" not in page.text  # the landing shows a masked name only
    done = client.post(f"/r/{mine.token}", data={"phone": "138 0013 8123"})
    assert done.status_code == 200 and 'id="thanks"' in done.text
    assert _invites(db, found.id) == [("qualified", "")]


def test_every_accepted_phone_gets_the_same_answer(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    found = campaign(db, owner, [TierIn(threshold=5, points=30)])
    own = next_phone()
    who = inviter(db, workspace_id, phone=own)
    known = next_phone()
    with db.transaction() as session:
        make_customer(session, workspace_id=workspace_id, phone=known)
    mine = link(db, workspace_id, found.id, who)
    client = _client(db)
    bodies = {client.post(f"/r/{mine.token}", data={"phone": p}).text for p in (next_phone(), own, known)}
    assert len(bodies) == 1  # new, self and already-a-customer cannot be told apart
    assert _invites(db, found.id) == [("existing", "in_pool"), ("qualified", ""), ("rejected", "self_invite")]


def test_unknown_malformed_and_closed_links_answer_alike(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    ended = campaign(
        db,
        owner,
        [TierIn(threshold=1, points=1)],
        starts_at=datetime.now(UTC) - timedelta(days=9),
        ends_at=datetime.now(UTC) - timedelta(days=1),
    )
    closed = link(db, workspace_id, ended.id, inviter(db, workspace_id))
    client = _client(db)
    hostile = [
        closed.token,
        "A" * 22,
        closed.token[:-1] + ("A" if closed.token[-1] != "A" else "B"),
        "x",
        "裂变裂变裂变裂变裂变裂变裂变裂变裂变",
        "%00" * 8,
        "' OR 1=1 --",
        "<script>alert(1)</script>",
        "a" * 5000,
    ]
    bodies = set()
    for token in hostile:
        for response in (client.get(f"/r/{token}"), client.post(f"/r/{token}", data={"phone": next_phone()})):
            assert response.status_code == 404, token
            assert "<script>alert" not in response.text
            if "/" not in token:  # with a slash it is another path: the router's own 404
                bodies.add(_page_body(response.text))
    assert len(bodies) == 1
    assert _invites(db, ended.id) == []


def test_hostile_phones_are_refused_and_write_nothing(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    found = campaign(db, owner, [TierIn(threshold=1, points=1)])
    mine = link(db, workspace_id, found.id, inviter(db, workspace_id))
    client = _client(db)
    with db.reader() as session:
        before = session.scalar(select(func.count(Customer.id)).where(Customer.workspace_id == workspace_id))
    for phone in (
        "",
        "12345",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "13800000000",
        "１３８",
        "+1 202 555 0100" * 3,
    ):
        response = client.post(f"/r/{mine.token}", data={"phone": phone})
        assert response.status_code == 422, phone
        assert 'id="phone-error"' in response.text and "<script>alert" not in response.text
    too_long = client.post(f"/r/{mine.token}", data={"phone": "1" * 41})  # no phone number is that long
    assert too_long.status_code == 422 and 'id="phone-error"' in too_long.text
    with db.reader() as session:
        after = session.scalar(select(func.count(Customer.id)).where(Customer.workspace_id == workspace_id))
    assert before == after and _invites(db, found.id) == []


def test_rate_limit_answers_429_with_retry_after(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    found = campaign(db, owner, [TierIn(threshold=1, points=1)])
    mine = link(db, workspace_id, found.id, inviter(db, workspace_id))
    client = _client(db, rate="2/minute")
    assert [client.get(f"/r/{mine.token}").status_code for _ in range(3)] == [200, 200, 429]
    assert int(client.get("/r/" + "B" * 22).headers["retry-after"]) >= 1  # guessing is throttled too
    posts = [client.post(f"/r/{mine.token}", data={"phone": next_phone()}).status_code for _ in range(3)]
    assert posts == [200, 200, 429]
    with db.reader() as session:
        assert len(service.list_invites(session, workspace_id=workspace_id, campaign_id=found.id)) == 2
