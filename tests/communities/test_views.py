"""The JSON API and the pages: sync through the API against the fake WeCom, group figures, tags and QR
upload, the group page in both languages with its CSV downloads, group codes created from the form,
and the public landing `/g/{token}` handing out the join QR (hostile tokens all answer 404)."""

from __future__ import annotations

import csv
import io
import time

import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image

from siyu.auth.models import Role
from siyu.core.config import Settings
from siyu.core.db import Database
from siyu.core.ratelimit import RateLimits
from siyu.web.app import create_app
from tests.communities.helpers import chat, png
from tests.factories import api_client, make_customer, make_order
from tests.web.conftest import csrf_of, log_in, make_login
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import FakeWecom


def _setup(db: Database, corp: Corp, fake: FakeWecom) -> tuple[TestClient, str]:
    with db.transaction() as session:
        buyer = make_customer(
            session, workspace_id=corp.workspace_id, identities={"wecom_external_userid": "wmV1"}
        )
        make_order(session, workspace_id=corp.workspace_id, customer_id=buyer.id, paid_cents=8800)
    answer = chat("会员福利群", ["wmV1", "wmV2"])
    answer["member_list"][1]["join_time"] = int(time.time()) - 86400 * 3
    chat_id = answer.pop("chat_id")
    fake.group_chats[chat_id] = answer
    client = api_client(db)
    synced = client.post("/api/communities/sync", headers=corp.owner.headers)
    assert synced.status_code == 200 and synced.json()["created"] == 1
    return client, chat_id


def test_the_api_lists_groups_with_figures_tags_and_qr(db: Database, corp: Corp, fake: FakeWecom) -> None:
    client, chat_id = _setup(db, corp, fake)
    h = corp.owner.headers
    assert client.post(f"/api/communities/groups/{chat_id}/tags", json={"name": "VIP"}, headers=h).json() == [
        "VIP"
    ]
    bad = client.post(f"/api/communities/groups/{chat_id}/tags", json={"name": ""}, headers=h)
    assert bad.status_code == 422 and "name" in bad.text
    assert (
        client.put(
            f"/api/communities/groups/{chat_id}/qr", files={"image": ("q.png", png(), "image/png")}, headers=h
        ).status_code
        == 204
    )
    refused = client.put(
        f"/api/communities/groups/{chat_id}/qr", files={"image": ("q.gif", b"GIF89a", "image/gif")}, headers=h
    )
    assert refused.status_code == 422 and "PNG" in refused.text
    assert client.get(f"/api/communities/groups/{chat_id}/qr", headers=h).content == png()
    [group] = client.get("/api/communities/groups", headers=h).json()
    assert (group["members"], group["customers"], group["tags"], group["has_qr"]) == (3, 1, ["VIP"], True)
    assert (group["member_orders"], group["member_gmv_cents"]) == (1, 8800)  # placed after the buyer joined
    detail = client.get(f"/api/communities/groups/{chat_id}", headers=h).json()
    assert len(detail["growth"]) == 30 and detail["orders"]["members"]["customers"] == 1
    members = client.get(f"/api/communities/groups/{chat_id}/members", headers=h).json()
    assert [m["member_id"] for m in members] == ["zhangsan", "wmV2", "wmV1"]  # by when they joined
    assert client.get("/api/communities/groups/wrNOPE", headers=h).status_code == 404
    code = client.post("/api/communities/codes", json={"name": "入群码", "chat_ids": [chat_id]}, headers=h)
    assert code.status_code == 201 and code.json()["groups"][0]["open"] is True
    image = client.get(f"/api/communities/codes/{code.json()['id']}/qr.png?size=screen", headers=h)
    [symbol] = zxingcpp.read_barcodes(Image.open(io.BytesIO(image.content)))
    assert symbol.text.endswith(code.json()["landing_path"])
    off = client.post(f"/api/communities/codes/{code.json()['id']}/active", json={"active": False}, headers=h)
    assert off.json()["is_active"] is False
    assert client.get(code.json()["landing_path"]).status_code == 404


def test_pages_in_both_languages_with_csv_and_forms(db: Database, corp: Corp, fake: FakeWecom) -> None:
    _, chat_id = _setup(db, corp, fake)
    who = make_login(db, corp.workspace_id, Role.OWNER)
    client = TestClient(create_app(database=db))
    csrf = log_in(client, who)
    for lang, words in (
        ("zh-CN", ["社群（客户群）", "已匹配客户"]),
        ("en", ["Communities (客户群)", "Matched customers"]),
    ):
        client.cookies.set("lang", lang)
        page = client.get("/communities")
        assert page.status_code == 200 and all(w in page.text for w in words) and "会员福利群" in page.text
        group = client.get(f"/communities/groups/{chat_id}")
        assert group.status_code == 200 and 'id="community-chart"' in group.text and "wmV2" in group.text
    growth = client.get(f"/communities/groups/{chat_id}/data.csv?chart=growth")
    rows = list(csv.reader(io.StringIO(growth.content.decode("utf-8-sig"))))
    assert rows[0] == ["day", "joins", "leaves", "net", "members"] and len(rows) == 31
    assert int(rows[-1][4]) == 2  # two external members at the end of today
    orders = list(
        csv.reader(
            io.StringIO(
                client.get(f"/communities/groups/{chat_id}/data.csv?chart=orders").content.decode("utf-8-sig")
            )
        )
    )
    assert [r[0] for r in orders[1:]] == ["members", "non_members"]
    assert client.get(f"/communities/groups/{chat_id}/data.csv?chart=nope").status_code == 422
    added = client.post(
        f"/communities/groups/{chat_id}/tags",
        data={"name": "门店群", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert added.status_code == 303
    refused = client.post(
        f"/communities/groups/{chat_id}/qr",
        data={"csrf_token": csrf},
        files={"image": ("q.txt", b"hello", "text/plain")},
    )
    assert refused.status_code == 422 and "PNG" in refused.text
    uploaded = client.post(
        f"/communities/groups/{chat_id}/qr",
        data={"csrf_token": csrf},
        files={"image": ("q.png", png(), "image/png")},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303
    codes_page = client.get("/communities/codes")
    assert codes_page.status_code == 200 and chat_id in codes_page.text
    empty = client.post("/communities/codes", data={"name": "x", "csrf_token": csrf_of(codes_page.text)})
    assert empty.status_code == 422 and "chat_ids" in empty.text
    made = client.post(
        "/communities/codes",
        data={"name": "门店入群", "cap": "4", "chat_ids": chat_id, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert made.status_code == 303
    detail = client.get(made.headers["location"])
    assert "门店入群" in detail.text and 'id="code-qr"' in detail.text
    landing_path = detail.text.split('id="landing-url"')[0].rsplit('href="', 1)[1].split('"')[0]
    public = TestClient(create_app(database=db))
    first = public.get(landing_path)
    assert first.status_code == 200 and "会员福利群" in first.text and "data:image/png;base64," in first.text
    for _ in range(3):
        assert 'id="join-qr"' in public.get(landing_path).text
    assert 'id="landing-full"' in public.get(landing_path).text  # four handed out: the cap


def test_the_landing_refuses_hostile_tokens_alike_and_rate_limits(db: Database) -> None:
    app = create_app(database=db, settings=Settings(env="development", secret_key="x" * 40))  # type: ignore[call-arg]
    app.state.rate_limits = RateLimits(rates={"group_code.landing": "5/minute"})
    client = TestClient(app)
    answers = [client.get(f"/g/{token}") for token in ["A" * 22, "short", "%00" * 8, "群" * 22, "x" * 5000]]
    assert [a.status_code for a in answers] == [404] * 5
    # nothing tells a malformed token from an unknown one (the page differs only in its own address)
    assert len({a.text[a.text.index("<main") :] for a in answers}) == 1
    limited = client.get("/g/" + "B" * 22)
    assert limited.status_code == 429 and limited.headers["Retry-After"]
