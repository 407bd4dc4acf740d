"""The metrics routes: a date range of the workspace's calendar, both days included; one workspace's
figures never count another's orders; bad ranges get a 422 that says why."""

from __future__ import annotations

from datetime import UTC, datetime

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.workspaces import service as workspaces
from tests.factories import api_client, make_channel, make_customer, make_member, make_order, member, unique


def test_metrics_count_only_the_callers_workspace_by_its_calendar(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        analyst = make_member(session, workspace_id=workspace_id, role=Role.ANALYST)
        channel = make_channel(session, workspace_id=workspace_id)
        buyer = make_customer(
            session, workspace_id=workspace_id, identities={"wecom_external_userid": unique("w")}
        )
        # 2026-03-31 16:30 UTC is 1 April 00:30 in Shanghai: outside "1 to 31 March"
        for at in (
            datetime(2026, 3, 2, 4, tzinfo=UTC),
            datetime(2026, 3, 20, 4, tzinfo=UTC),
            datetime(2026, 3, 31, 16, 30, tzinfo=UTC),
        ):
            make_order(
                session, workspace_id=workspace_id, customer_id=buyer.id, channel_id=channel.id, placed_at=at
            )
        other = workspaces.create_workspace(session, slug=unique("b"), name="B").id
        theirs = make_customer(session, workspace_id=other)
        their_channel = make_channel(session, workspace_id=other)
        for day in (3, 4):
            make_order(
                session,
                workspace_id=other,
                customer_id=theirs.id,
                channel_id=their_channel.id,
                placed_at=datetime(2026, 3, day, tzinfo=UTC),
            )
    client = api_client(db)
    march = {"start": "2026-03-01", "end": "2026-03-31"}
    repurchase = client.get("/api/metrics/repurchase", params=march, headers=analyst.headers)
    assert repurchase.status_code == 200, repurchase.text
    body = repurchase.json()
    assert (body["buyers"], body["repeat_buyers"], body["purchases"]) == (1, 1, 2)
    share = client.get("/api/metrics/private-domain", params=march, headers=analyst.headers).json()
    assert share["private"]["buyers"] == 1 and share["others"]["buyers"] == 0 and share["gmv_share"] == 1.0
    roi = client.get("/api/metrics/channel-roi", params=march, headers=analyst.headers).json()
    assert [(r["channel_id"], r["attributed_revenue_cents"], r["new_customers"]) for r in roi] == [
        (channel.id, 6400, 1)
    ]
    filtered = client.get(
        "/api/metrics/repurchase", params={**march, "channel_id": their_channel.id}, headers=analyst.headers
    ).json()
    assert filtered["buyers"] == 0 and filtered["rate"] is None


def test_bad_ranges_are_refused_with_the_reason(db: Database, workspace_id: int) -> None:
    analyst = member(db, workspace_id, Role.ANALYST)
    client = api_client(db)
    backwards = client.get(
        "/api/metrics/repurchase",
        params={"start": "2026-03-31", "end": "2026-03-01"},
        headers=analyst.headers,
    )
    assert backwards.status_code == 422 and "before it starts" in backwards.json()["message"]
    wrong = client.get(
        "/api/metrics/channel-roi",
        params={"start": "2026-03-01", "end": "2026-03-31", "attribution": "linear"},
        headers=analyst.headers,
    )
    assert wrong.status_code == 422
    assert (
        client.get("/api/metrics/repurchase", params={"start": "2026-03-01", "end": "2026-03-31"}).status_code
        == 401
    )
