"""The page a member writes to one customer on (/customers/{id}/message): channels with why one cannot
reach the customer, the preview, the send and the gateway's outcome, the customer's reach history,
staff refused for another member's customer, and a double submit sending once — in both languages."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from siyu.auth.models import Role
from siyu.auth.service import actor_for
from siyu.core.db import Database
from siyu.reach import service
from siyu.web import i18n
from tests.reach.test_one_to_one import _customer, _quiet_hours_off
from tests.web.conftest import csrf_of, log_in, make_login

_FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def _form(page: str) -> dict[str, str]:
    found = _FORM_TOKEN.search(page)
    assert found, "the write form carries no token"
    return {"csrf_token": csrf_of(page), "form_token": found.group(1)}


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh-CN", ["给 王小明 发消息", "非企微好友", "已通过发送网关", "触达记录"]),
        (
            "en",
            ["Write to 王小明", "Not a WeCom friend", "Queued: the gateway let it through", "Reach history"],
        ),
    ],
)
def test_owner_writes_previews_sends_and_sees_it_in_the_history(
    client: TestClient, db: Database, workspace_id: int, lang: str, words: list[str]
) -> None:
    with db.transaction() as session:
        customer = _customer(session, workspace_id=workspace_id, wecom=False)
    log_in(client, make_login(db, workspace_id))
    client.cookies.set(i18n.LANG_COOKIE, lang)
    detail = client.get(f"/customers/{customer}")
    assert f'href="/customers/{customer}/message"' in detail.text
    page = client.get(f"/customers/{customer}/message")
    assert page.status_code == 200, page.text[:400]
    assert words[0] in page.text and words[1] in page.text
    assert 'value="wecom" disabled' in page.text and 'value="sms" checked' in page.text
    form = {
        **_form(page.text),
        "purpose": "transactional",
        "channel": "sms",
        "text": "{{ name }}，已为您退款",
    }
    preview = client.post(f"/customers/{customer}/message", data={**form, "action": "preview"})
    assert preview.status_code == 200 and "王小明，已为您退款" in preview.text
    assert form["form_token"] in preview.text  # the same form, its token kept
    sent = client.post(
        f"/customers/{customer}/message", data={**form, "action": "send"}, follow_redirects=False
    )
    assert sent.status_code == 303, sent.text[:400]
    outcome = client.get(sent.headers["location"])
    assert 'data-status="queued"' in outcome.text and words[2] in outcome.text
    history = client.get(f"/customers/{customer}")
    assert words[3] in history.text and "王小明，已为您退款" in history.text


def test_a_double_submit_sends_once(client: TestClient, db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        customer = _customer(session, workspace_id=workspace_id)
    login = make_login(db, workspace_id)
    log_in(client, login)
    form = {
        **_form(client.get(f"/customers/{customer}/message").text),
        "purpose": "transactional",
        "channel": "sms",
        "text": "您的包裹已到店",
        "action": "send",
    }
    first = client.post(f"/customers/{customer}/message", data=form, follow_redirects=False)
    second = client.post(f"/customers/{customer}/message", data=form, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert "repeated=true" in second.headers["location"] and "repeated" not in first.headers["location"]
    assert first.headers["location"] == second.headers["location"].replace("&repeated=true", "")
    assert 'id="repeated"' in client.get(second.headers["location"]).text
    with db.reader() as session:
        actor = actor_for(session, user_id=login.user_id, workspace_id=workspace_id)
        assert len(service.list_messages(session, actor=actor, customer_id=customer)) == 1


def test_a_suppressed_message_shows_the_gateways_reason(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    login = make_login(db, workspace_id)
    with db.transaction() as session:
        owner = actor_for(session, user_id=login.user_id, workspace_id=workspace_id)
        _quiet_hours_off(session, owner, channel_caps={"sms": {"count": 1, "days": 7}})
        customer = _customer(session, workspace_id=workspace_id)
        service.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref=f"spring-{customer}",
            customer_ids=[customer], content={"sms": {"text": "春季上新"}}, purpose="marketing",
            channel_preference=["sms"],
        )  # fmt: skip
    log_in(client, login)
    page = client.get(f"/customers/{customer}/message", params={"purpose": "marketing"})
    # email has no marketing consent: offered, but not to be chosen
    assert 'value="email" disabled' in page.text and "未授权营销" in page.text
    form = {
        **_form(page.text),
        "purpose": "marketing",
        "channel": "sms",
        "text": "会员日专享",
        "action": "send",
    }
    outcome = client.post(f"/customers/{customer}/message", data=form)
    assert outcome.status_code == 200
    assert 'data-status="suppressed"' in outcome.text and 'data-reason="channel_cap"' in outcome.text
    assert "未发送：超出渠道频次" in outcome.text


def test_staff_cannot_write_to_another_members_customer(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    staff = make_login(db, workspace_id, Role.STAFF)
    other = make_login(db, workspace_id, Role.STAFF)
    with db.transaction() as session:
        mine = _customer(session, workspace_id=workspace_id, owner_user_id=staff.user_id)
        theirs = _customer(session, workspace_id=workspace_id, owner_user_id=other.user_id)
    log_in(client, staff)
    client.cookies.set(i18n.LANG_COOKIE, "en")
    page = client.get(f"/customers/{mine}/message")
    assert page.status_code == 200 and "139****" in page.text  # staff see the phone masked
    refused = client.get(f"/customers/{theirs}/message")
    assert refused.status_code == 403 and "is not assigned to you" in refused.text
    form = {
        **_form(page.text),
        "purpose": "transactional",
        "channel": "sms",
        "text": "你好",
        "action": "send",
    }
    posted = client.post(f"/customers/{theirs}/message", data=form, follow_redirects=False)
    assert posted.status_code == 403 and "is not assigned to you" in posted.text
    no_csrf = client.post(
        f"/customers/{mine}/message", data={k: v for k, v in form.items() if k != "csrf_token"}
    )
    assert no_csrf.status_code == 403
    with db.reader() as session:
        actor = actor_for(session, user_id=other.user_id, workspace_id=workspace_id)
        assert service.list_messages(session, actor=actor, customer_id=theirs) == []
    sent = client.post(f"/customers/{mine}/message", data=form)
    assert 'data-status="queued"' in sent.text


def test_a_snippet_of_the_library_goes_into_the_message(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    from siyu.content import service as content
    from siyu.content.schemas import SnippetIn

    login = make_login(db, workspace_id)
    with db.transaction() as session:
        owner = actor_for(session, user_id=login.user_id, workspace_id=workspace_id)
        snippet = content.create_snippet(
            session,
            actor=owner,
            body=SnippetIn(key="refund-done", title="退款完成", text="退款已原路返回，请留意。"),
        )
        customer = _customer(session, workspace_id=workspace_id)
    log_in(client, login)
    page = client.get(f"/customers/{customer}/message")
    assert "退款完成" in page.text
    form = {**_form(page.text), "purpose": "transactional", "channel": "sms", "text": "您好，"}
    inserted = client.post(
        f"/customers/{customer}/message", data={**form, "snippet_id": str(snippet.id), "action": "snippet"}
    )
    assert "您好，\n退款已原路返回，请留意。</textarea>" in inserted.text
    empty = client.post(f"/customers/{customer}/message", data={**form, "text": " ", "action": "preview"})
    assert empty.status_code == 422 and "write the message first" in empty.text
