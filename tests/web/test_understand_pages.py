"""The pages of understanding customers: tag management (counts and sources, rename, a deletion confirmed
with its count, bulk tagging from an uploaded list with its rejects), the lifecycle page (stages, funnel,
flows, each chart as CSV) and the segment builder; in both languages, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from siyu.auth.service import actor_for
from siyu.core.db import Database
from siyu.lifecycle import service as lifecycle
from siyu.segments import service as segments
from siyu.tags import service as tags
from siyu.web import i18n
from tests.factories import make_customer, make_order, make_tag
from tests.web.conftest import log_in, make_login


def _builder_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="builder-data">(.*?)</script>', html, re.S)
    assert found, "the builder page carries no data"
    return dict(json.loads(found.group(1)))


@pytest.mark.parametrize(("lang", "word"), [("zh-CN", "标签管理"), ("en", "Tags")])
def test_tag_page_shows_counts_sources_and_segments(
    client: TestClient, db: Database, workspace_id: int, lang: str, word: str
) -> None:
    login = make_login(db, workspace_id)
    with db.transaction() as session:
        actor = actor_for(session, user_id=login.user_id, workspace_id=workspace_id)
        vip = make_tag(session, actor=actor, name="VIP", group="等级")
        people = [make_customer(session, workspace_id=workspace_id) for _ in range(2)]
        tags.tag_customers(session, actor=actor, tag_id=vip.id, customer_ids=[p.id for p in people])
        segments.create_segment(session, actor=actor, name="贵宾客", rule='tag("VIP")')
    log_in(client, login)
    client.cookies.set(i18n.LANG_COOKIE, lang)
    page = client.get("/tags")
    assert page.status_code == 200, page.text[:300]
    assert word in page.text and "等级" in page.text and "贵宾客" in page.text
    assert f'data-tag-id="{vip.id}"' in page.text and 'data-source="manual"' in page.text


def test_rename_delete_with_confirmation_and_bulk_upload(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    login = make_login(db, workspace_id)
    with db.transaction() as session:
        actor = actor_for(session, user_id=login.user_id, workspace_id=workspace_id)
        tag = make_tag(session, actor=actor, name="旧名", group="口味")
        known = make_customer(session, workspace_id=workspace_id, phone="+8613811112222")
    token = log_in(client, login)
    client.cookies.set(i18n.LANG_COOKIE, "en")
    renamed = client.post(
        f"/tags/{tag.id}/rename", data={"name": "奶茶控", "csrf_token": token}, follow_redirects=False
    )
    assert renamed.status_code == 303
    # an upload: one phone found, one nobody's, one empty row
    upload = client.post(
        "/tags/bulk",
        data={"csrf_token": token, "tag_id": str(tag.id), "action": "add", "target": "file", "kind": "phone"},
        files={"file": ("list.csv", "手机号,备注\n13811112222,a\n13900000000,b\n,c\n".encode(), "text/csv")},
    )
    assert upload.status_code == 200, upload.text[:300]
    assert 'data-changed="1"' in upload.text and 'data-rejected="2"' in upload.text
    assert (
        'data-row="2" data-code="not_found"' in upload.text
        and 'data-row="3" data-code="empty"' in upload.text
    )
    confirm = client.get(f"/tags/{tag.id}/delete")
    assert 'data-customers="1"' in confirm.text and "1 customers will lose it" in confirm.text
    # a confirmation for another count deletes nothing
    stale = client.post(f"/tags/{tag.id}/delete", data={"csrf_token": token, "expected_customers": "5"})
    assert stale.status_code == 409 and "1 customers carry it now, not the 5 confirmed" in stale.text
    done = client.post(
        f"/tags/{tag.id}/delete",
        data={"csrf_token": token, "expected_customers": "1"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/tags?deleted=1"
    with db.reader() as session:
        assert tags.tags_of_customer(session, workspace_id=workspace_id, customer_id=known.id) == []


def test_tag_api_counts_impact_rename_and_upload(client: TestClient, db: Database, workspace_id: int) -> None:
    from tests.factories import api_client, member

    owner = member(db, workspace_id)
    with db.transaction() as session:
        tag = make_tag(session, actor=owner.actor, name="A", group="G")
        person = make_customer(session, workspace_id=workspace_id, phone="+8613822223333")
    api = api_client(db)
    uploaded = api.post(
        f"/api/tags/{tag.id}/customers/upload",
        data={"kind": "phone"},
        files={"file": ("l.csv", b"phone\n13822223333\n13822223333\n", "text/csv")},
        headers=owner.headers,
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["result"]["changed"] == 1 and uploaded.json()["rejects"][0]["code"] == "repeated"
    counts = api.get("/api/tags/counts", headers=owner.headers).json()
    assert counts == [{"tag_id": tag.id, "customers": 1, "by_source": {"import": 1}}]
    assert api.get(f"/api/tags/{tag.id}/impact", headers=owner.headers).json() == {
        "customers": 1,
        "segments": [],
    }
    assert api.patch(f"/api/tags/{tag.id}", json={"name": "B"}, headers=owner.headers).json()["name"] == "B"
    gone = api.delete(f"/api/tags/{tag.id}", params={"expected_customers": 1}, headers=owner.headers)
    assert gone.json() == {"customers": 1}
    assert person.id


@pytest.mark.parametrize(
    ("lang", "words"),
    [("zh-CN", ["客户生命周期", "阶段流转"]), ("en", ["Customer lifecycle", "Moves between stages"])],
)
def test_lifecycle_page_and_its_csv(
    client: TestClient, db: Database, workspace_id: int, lang: str, words: list[str]
) -> None:
    login = make_login(db, workspace_id)
    now = datetime.now(UTC)
    with db.transaction() as session:
        actor = actor_for(session, user_id=login.user_id, workspace_id=workspace_id)
        for purchases in (0, 1, 2, 4):
            customer = make_customer(session, workspace_id=workspace_id)
            for i in range(purchases):
                make_order(
                    session,
                    workspace_id=workspace_id,
                    customer_id=customer.id,
                    placed_at=now - timedelta(days=10 + i),
                )
        lifecycle.sweep(session, actor=actor, now=now - timedelta(days=5))
        lifecycle.sweep(session, actor=actor, now=now + timedelta(days=200))  # everyone who bought churns
    log_in(client, login)
    client.cookies.set(i18n.LANG_COOKIE, lang)
    page = client.get(
        "/lifecycle",
        params={
            "start": (now - timedelta(days=30)).date().isoformat(),
            "end": (now + timedelta(days=365)).date().isoformat(),
        },
    )
    assert page.status_code == 200, page.text[:300]
    for word in words:
        assert word in page.text
    assert 'id="lifecycle-flow-chart"' in page.text and 'id="lifecycle-funnel-chart"' in page.text
    funnel = list(
        csv.reader(
            io.StringIO(client.get("/lifecycle/data.csv", params={"chart": "funnel"}).text.lstrip("\ufeff"))
        )
    )
    assert funnel == [
        ["stage", "customers", "share_of_leads"],
        ["lead", "4", "1.0000"],
        ["new", "3", "0.7500"],
        ["active", "2", "0.5000"],
        ["loyal", "1", "0.2500"],
    ]
    stages = dict(
        csv.reader(
            io.StringIO(client.get("/lifecycle/data.csv", params={"chart": "stages"}).text.lstrip("\ufeff"))
        )
    )
    assert stages["churned"] == "3" and stages["lead"] == "1"
    flows = client.get(
        "/lifecycle/data.csv",
        params={
            "chart": "flows",
            "start": (now - timedelta(days=30)).date().isoformat(),
            "end": (now + timedelta(days=365)).date().isoformat(),
        },
    ).text
    rows = list(csv.reader(io.StringIO(flows.lstrip("\ufeff"))))
    moved = {(r[0], r[1]): int(r[2]) for r in rows[1:]}
    assert (
        moved[("loyal", "churned")] == 1
        and moved[("active", "churned")] == 1
        and moved[("new", "churned")] == 1
    )
    assert client.get("/lifecycle/data.csv", params={"chart": "nope"}).status_code == 404
    assert client.get("/lifecycle", params={"start": "2026-02-01", "end": "2026-01-01"}).status_code == 422


def test_builder_page_carries_the_catalog_and_the_rule(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    login = make_login(db, workspace_id)
    with db.transaction() as session:
        actor = actor_for(session, user_id=login.user_id, workspace_id=workspace_id)
        make_tag(session, actor=actor, name="VIP", group="等级")
        saved = segments.create_segment(session, actor=actor, name="买过两次", rule="order_count >= 2")
    log_in(client, login)
    new = client.get("/segments/new")
    assert new.status_code == 200
    assert "等级/VIP" in _builder_data(new.text)["catalog"]["tags"]
    edit = client.get(f"/segments/{saved.id}/edit")
    data = _builder_data(edit.text)
    assert (data["name"], data["segment_id"]) == ("买过两次", saved.id)
    assert data["rule"] == {"type": "field", "field": "order_count", "op": ">=", "value": 2}
    catalog = client.get("/api/segments/catalog").json()
    assert (
        "等级/VIP" in catalog["tags"]
        and {"name": "order_count", "kind": "count"}.items() <= catalog["fields"][6].items()
    )
