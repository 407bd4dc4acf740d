"""The JSON API and pages of content: templates checked when saved, previews for a customer, the
library, and the public short-link redirect (only to stored URLs, rate-limited)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from siyu.auth.models import Role
from siyu.content.models import ShortLink
from siyu.core.db import Database
from siyu.reach import service as reach
from siyu.workspaces import service as workspaces
from tests.factories import Member, api_client, make_customer, make_member, unique
from tests.reach.conftest import NOON, reachable

VARIANTS: dict[str, Any] = {
    "sms": {
        "text": '{{ name | default("朋友") }}，春季新品上市 {{ link("https://shop.example.com/") }}',
        "sign_name": "小鹿咖啡",
    },
    "email": {
        "subject": "{{ name }}，新品",
        "text": "见 {{ link('https://shop.example.com/') }}",
        "html": "<p>{{ name }}</p>",
    },
    "wecom": {"text": '{% include "greet" %}'},
}


def _setup(db: Database, workspace_id: int) -> tuple[TestClient, Member]:
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id, role=Role.OWNER)
    return api_client(db), owner


def test_templates_are_checked_saved_and_previewed(db: Database, workspace_id: int) -> None:
    client, owner = _setup(db, workspace_id)
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id, name="<林>")
    h = owner.headers
    greet = client.post(
        "/api/content/snippets", headers=h, json={"key": "greet", "title": "问候", "text": "{{ name }}，您好"}
    )
    assert greet.status_code == 201, greet.text
    refused = client.post(
        "/api/content/templates", headers=h,
        json={"name": "坏模板", "variants": {"sms": {"text": "{{ nmae }}\n{% if %}"}, "email": {"subject": "x"}}},
    )  # fmt: skip
    assert refused.status_code == 422
    problems = refused.json()["details"]["problems"]
    assert {p["where"] for p in problems} == {"email.text", "sms.text"}
    assert any(p["line"] == 2 and p["message"].startswith("syntax error") for p in problems)
    saved = client.post(
        "/api/content/templates", headers=h, json={"name": unique("春季"), "variants": VARIANTS}
    )
    assert saved.status_code == 201, saved.text
    template_id = saved.json()["id"]
    assert client.get("/api/content/templates", headers=h).json()[0]["id"] == template_id
    preview = client.post(
        f"/api/content/templates/{template_id}/preview", headers=h, json={"customer_id": customer.id}
    )
    assert preview.status_code == 200, preview.text
    by_channel = {c["channel"]: c for c in preview.json()["channels"]}
    sms = by_channel["sms"]
    assert sms["content"]["text"].startswith("<林>，春季新品上市 ") and "/s/preview" in sms["content"]["text"]
    assert (
        sms["sms"]["encoding"] == "ucs2"
        and sms["sms"]["parts"] == 1
        and sms["links"] == ["https://shop.example.com/"]
    )
    assert by_channel["email"]["content"]["html"] == "<p>&lt;林&gt;</p>"
    assert by_channel["wecom"]["content"]["text"] == "<林>，您好" and by_channel["wecom"]["problems"] == []
    # unsaved variants (the edit page's live preview): a customer without a name fails strict variables
    with db.transaction() as session:
        nameless = make_customer(session, workspace_id=workspace_id, name=None)
    live = client.post(
        "/api/content/preview", headers=h,
        json={"customer_id": nameless.id, "variants": {"sms": {"text": "{{ name }}" + "好" * 80}}},
    )  # fmt: skip
    [channel] = live.json()["channels"]
    assert channel["content"] is None and "'name' is undefined" in channel["problems"][0]["message"]
    assert channel["sms"]["parts"] == 2  # counted on the template text when it cannot render
    # no preview for a customer of another workspace (or of nobody)
    with db.transaction() as session:
        other = workspaces.create_workspace(session, slug=unique("other"), name="B").id
        theirs = make_customer(session, workspace_id=other, name=unique("乙")).id
    for customer_id in (theirs, 10**9):
        body = {"customer_id": customer_id, "variants": VARIANTS}
        refused = client.post("/api/content/preview", headers=h, json=body)
        assert refused.status_code == 404 and "乙" not in refused.text


def test_library_search_groups_tags_and_copy(db: Database, workspace_id: int) -> None:
    client, owner = _setup(db, workspace_id)
    h = owner.headers
    for body in (
        {
            "key": "after-sale",
            "title": "售后安抚",
            "group_name": "售后",
            "tags": ["退款"],
            "text": "非常抱歉给您带来不便",
        },
        {
            "key": "new-coffee",
            "title": "新品介绍",
            "group_name": "营销",
            "tags": ["新品", "咖啡"],
            "text": "本周新品：桂花拿铁",
        },
        {
            "key": "menu-card",
            "title": "菜单",
            "kind": "link",
            "group_name": "营销",
            "fields": {"title": "菜单", "url": "https://shop.example.com/menu"},
        },
    ):
        assert client.post("/api/content/snippets", headers=h, json=body).status_code == 201
    assert (
        client.post(
            "/api/content/snippets", headers=h, json={"key": "Bad Key", "title": "x", "text": "y"}
        ).status_code
        == 422
    )
    assert (
        client.post(
            "/api/content/snippets", headers=h, json={"key": "after-sale", "title": "x", "text": "y"}
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/content/snippets",
            headers=h,
            json={"key": "img", "kind": "image", "title": "x", "fields": {"url": "javascript:alert(1)"}},
        ).status_code
        == 422
    )
    titles = lambda **q: [s["title"] for s in client.get("/api/content/snippets", headers=h, params=q).json()]  # noqa: E731
    assert titles(q="拿铁") == ["新品介绍"]
    assert titles(group="营销") == ["新品介绍", "菜单"]
    assert titles(tag="退款") == ["售后安抚"]
    assert titles(kind="link") == ["菜单"]
    assert titles(q="100%") == []
    snippet_id = client.get("/api/content/snippets", headers=h, params={"q": "拿铁"}).json()[0]["id"]
    assert client.post(f"/api/content/snippets/{snippet_id}/copy", headers=h).json()["copy_count"] == 1
    assert client.post(f"/api/content/snippets/{snippet_id}/copy", headers=h).json()["copy_count"] == 2
    # a material becomes a WeCom attachment of a template
    preview = client.post(
        "/api/content/preview", headers=h,
        json={"customer_id": _customer(db, workspace_id), "variants": {"wecom": {"text": "看看", "attachments": [{"snippet": "menu-card"}]}}},
    )  # fmt: skip
    [wecom] = preview.json()["channels"]
    assert wecom["content"]["attachments"] == [
        {"msgtype": "link", "link": {"title": "菜单", "url": "https://shop.example.com/menu"}}
    ]


def _customer(db: Database, workspace_id: int) -> int:
    with db.transaction() as session:
        return make_customer(session, workspace_id=workspace_id).id


def test_short_link_redirects_only_to_the_stored_url(db: Database, workspace_id: int) -> None:
    client, owner = _setup(db, workspace_id)
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id, grants=("sms",))
        ref = unique("link")
        reach.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref=ref, customer_ids=[customer],
            content={"sms": {"text": "{{ link('https://shop.example.com/p?a=1&b=2') }}"}}, purpose="marketing",
            channel_preference=["sms"], personalise=True, now=NOON,
        )  # fmt: skip
        token = session.scalars(select(ShortLink.token).where(ShortLink.source_ref == ref)).one()
    first = client.get(f"/s/{token}", follow_redirects=False)
    assert first.status_code == 302 and first.headers["location"] == "https://shop.example.com/p?a=1&b=2"
    assert first.headers["cache-control"] == "no-store"
    # a URL in the request changes nothing: the redirect goes only where the message pointed
    hostile = client.get(
        f"/s/{token}?url=https://evil.example.com&next=//evil.example.com", follow_redirects=False
    )
    assert hostile.headers["location"] == "https://shop.example.com/p?a=1&b=2"
    for bad in (
        "nope",
        "A" * 22,
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        "..%2F..%2Fetc",
        "x" * 300,
    ):
        response = client.get(f"/s/{bad}", follow_redirects=False)
        assert response.status_code == 404 and "location" not in response.headers
    counts = client.get(
        "/api/content/clicks", headers=owner.headers, params={"source": "broadcast", "source_ref": ref}
    ).json()
    assert (counts["links"], counts["clicked_links"], counts["clicks"]) == (1, 1, 2)


def test_short_links_are_rate_limited_per_client(db: Database) -> None:
    client = api_client(db)
    statuses = [client.get("/s/" + "A" * 22, follow_redirects=False).status_code for _ in range(61)]
    assert statuses[:60] == [404] * 60 and statuses[60] == 429


def test_pages_list_edit_and_library(db: Database, workspace_id: int) -> None:
    client, owner = _setup(db, workspace_id)
    h = {**owner.headers, "Accept": "text/html"}
    saved = client.post(
        "/api/content/templates",
        headers=owner.headers,
        json={"name": "页面模板", "variants": VARIANTS | {"wecom": {"text": "hi"}}},
    )
    template_id = saved.json()["id"]
    for path in (
        "/content/templates",
        f"/content/templates/{template_id}",
        "/content/templates/new",
        "/content/library",
    ):
        page = client.get(path, headers=h)
        assert page.status_code == 200, path
    assert "页面模板" in client.get("/content/templates", headers=h).text
    refused = client.post(
        "/content/templates",
        headers=h,
        data={"name": "表单模板", "sms_text": "{{ nmae }}", "email_subject": "x"},
    )
    assert refused.status_code == 422
    assert "unknown variable(s): nmae" in refused.text and "email.text" in refused.text
    created = client.post(
        "/content/templates",
        headers=h,
        data={"name": "表单模板", "sms_text": "{{ name }}"},
        follow_redirects=False,
    )
    assert created.status_code == 303
    library = client.post(
        "/content/library", headers=h, follow_redirects=False,
        data={"title": "欢迎语", "key": "welcome", "kind": "text", "group_name": "新客", "tags": "新客，欢迎", "text": "欢迎！"},
    )  # fmt: skip
    assert library.status_code == 303
    page = client.get("/content/library", headers=h, params={"tag": "欢迎"}).text
    assert "欢迎语" in page and "新客" in page
    snippet_id = int(library.headers["location"].rsplit("=", 1)[1])
    assert 'value="welcome"' in client.get(f"/content/library/{snippet_id}", headers=h).text
    edited = client.post(
        f"/content/library/{snippet_id}", headers=h, follow_redirects=False,
        data={"title": "欢迎语（新）", "key": "welcome", "kind": "text", "text": "欢迎光临！"},
    )  # fmt: skip
    assert edited.status_code == 303
    assert (
        client.get(f"/api/content/snippets/{snippet_id}", headers=owner.headers).json()["text"]
        == "欢迎光临！"
    )
    english = client.get(f"/content/templates/{template_id}", headers={**h, "Cookie": "lang=en"}).text
    assert "Preview for customer" in english and "SMS text" in english


def test_a_personalised_api_send_shows_rendered_content_in_the_outbox(
    db: Database, workspace_id: int
) -> None:
    client, owner = _setup(db, workspace_id)
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id, grants=(), email=False, wecom=False)
    ref = unique("api")
    sent = client.post(
        "/api/reach/sends", headers=owner.headers,
        json={
            "customer_ids": [customer], "channel_preference": ["sms"], "purpose": "transactional",
            "source_ref": ref, "personalise": True,
            "content": {"sms": {"text": '{{ name | default("朋友") }}，您的订单已发货'}},
        },
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    [message] = client.get("/api/reach/messages", headers=owner.headers, params={"source_ref": ref}).json()
    assert message["content"] == {"text": "张三，您的订单已发货"}
