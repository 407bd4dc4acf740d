"""The pages through an in-process client: every page in zh-CN and English, login, CSRF, staff visibility,
customer search, the import flow with its reject report, and the channels forms.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from siyu.auth.models import Role
from siyu.channels import service as channels
from siyu.core.db import Database
from siyu.web import i18n
from siyu.web.templating import money
from tests.factories import make_channel, make_customer, make_event, make_order
from tests.web.conftest import Login, csrf_of, log_in, make_login

BAD_ORDERS_CSV = (
    "订单号,手机号,实付金额,下单时间,商品名称,数量\n"
    "P-1,13912345601,32.50,2026-01-05 12:00,杨枝甘露,1\n"
    "P-2,12345,18.00,2026-01-06 12:00,柠檬茶,1\n"
    "P-3,13912345603,-5,2026-01-07 12:00,柠檬茶,1\n"
)


def _seed(db: Database, workspace_id: int, owner: Login) -> tuple[int, str]:
    """One customer with a channel order of ¥88.80 (lines), an event; returns (customer id, phone)."""
    with db.transaction() as session:
        channel = make_channel(session, workspace_id=workspace_id, key="douyin-x", name="抖音旗舰店")
        customer = make_customer(
            session, workspace_id=workspace_id, name="王小明", owner_user_id=owner.user_id, city="杭州"
        )
        make_order(
            session,
            workspace_id=workspace_id,
            customer_id=customer.id,
            paid_cents=8880,
            channel_id=channel.id,
            external_id="DY-20260101-1",
            lines=[
                {"sku": "T1", "name": "杨枝甘露", "category": "tea", "quantity": 2, "unit_price_cents": 4440}
            ],
        )
        make_event(session, workspace_id=workspace_id, customer_id=customer.id, type="coupon_redeemed")
        phone = next(i.value for i in _identities(session, customer.id))
        return customer.id, phone


def _identities(session, customer_id):  # type: ignore[no-untyped-def]
    from siyu.customers.models import Identity

    return session.query(Identity).filter(Identity.customer_id == customer_id, Identity.kind == "phone").all()


def _use_language(client: TestClient, lang: str) -> None:
    client.cookies.set(i18n.LANG_COOKIE, lang)


# --- language -----------------------------------------------------------------------------------


def test_language_comes_from_cookie_then_browser_then_default(client: TestClient) -> None:
    assert "登录" in client.get("/login").text  # no preference at all: zh-CN
    english = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
    assert "Log in" in english.text and 'lang="en"' in english.text
    chinese = client.get("/login", headers={"Accept-Language": "fr;q=1, zh-CN;q=0.8, en;q=0.7"})
    assert 'lang="zh-CN"' in chinese.text
    switched = client.get("/lang/en?next=/login", follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/login"
    assert switched.cookies.get(i18n.LANG_COOKIE) == "en"
    _use_language(client, "en")
    assert "Log in" in client.get("/login", headers={"Accept-Language": "zh-CN"}).text


def test_language_switch_refuses_other_sites(client: TestClient) -> None:
    response = client.get("/lang/en?next=//evil.example/x", follow_redirects=False)
    assert response.headers["location"] == "/overview"


def test_every_message_has_both_languages() -> None:
    for key in i18n.catalogue_keys():
        assert i18n.translate(key, "zh-CN") and i18n.translate(key, "en"), key
    assert i18n.from_accept_language("en-US;q=0.2, zh-TW;q=0.9") == "zh-CN"
    assert i18n.from_accept_language("de, fr") is None


def test_money_is_formatted_from_cents() -> None:
    assert money(123450) == "¥1,234.50"
    assert money(-5) == "-¥0.05"
    assert money(0) == "¥0.00"
    assert money(100, "USD") == "$1.00"


# --- login --------------------------------------------------------------------------------------


def test_login_works_and_wrong_password_is_refused(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    who = make_login(db, workspace_id)
    assert (
        client.get("/overview", headers={"Accept": "text/html"}, follow_redirects=False)
        .headers["location"]
        .startswith("/login")
    )
    token = csrf_of(client.get("/login").text)
    refused = client.post(
        "/login", data={"email": who.email, "password": "wrong-password", "csrf_token": token}
    )
    assert refused.status_code == 401
    assert "邮箱或密码错误" in refused.text
    assert client.get("/overview", headers={"Accept": "text/html"}, follow_redirects=False).status_code == 303
    log_in(client, who)
    page = client.get("/overview")
    assert page.status_code == 200 and "概览" in page.text


def test_login_without_csrf_token_is_refused(client: TestClient, db: Database, workspace_id: int) -> None:
    who = make_login(db, workspace_id)
    client.get("/login")
    response = client.post("/login", data={"email": who.email, "password": who.password})
    assert response.status_code == 403
    assert client.get("/overview", headers={"Accept": "text/html"}, follow_redirects=False).status_code == 303


def test_logout_ends_the_session(client: TestClient, db: Database, workspace_id: int) -> None:
    token = log_in(client, make_login(db, workspace_id))
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.get("/overview", headers={"Accept": "text/html"}, follow_redirects=False).status_code == 303


# --- every page in both languages -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh-CN", ["概览", "各渠道月度净收入", "客户", "身份标识", "字段映射", "添加成本", "被拒绝的行"]),
        (
            "en",
            [
                "Overview",
                "Net revenue by channel per month",
                "Customers",
                "Identities",
                "Column mapping",
                "Add a cost",
                "Rejected rows",
            ],
        ),
    ],
)
def test_every_page_renders_in_both_languages(
    client: TestClient, db: Database, workspace_id: int, lang: str, words: list[str]
) -> None:
    owner = make_login(db, workspace_id)
    customer_id, _ = _seed(db, workspace_id, owner)
    token = log_in(client, owner)
    _use_language(client, lang)
    pages = {
        "overview": client.get("/overview"),
        "customers": client.get("/customers"),
        "c360": client.get(f"/customers/{customer_id}"),
        "imports": client.get("/imports"),
        "channels": client.get("/channels"),
    }
    preview = client.post(
        "/imports/preview",
        data={"kind": "orders", "csrf_token": token},
        files={"file": ("orders.csv", BAD_ORDERS_CSV.encode(), "text/csv")},
    )
    job_url = _start_import(client, token, preview.text)
    pages.update(preview=preview, job=client.get(job_url))
    for name, response in pages.items():
        assert response.status_code == 200, (name, response.text[:500])
        assert f'lang="{lang}"' in response.text, name
    text = " ".join(r.text for r in pages.values())
    for word in words:
        assert word in text, word
    assert "王小明" in pages["customers"].text
    assert "¥88.80" in pages["c360"].text and "DY-20260101-1" in pages["c360"].text
    assert "抖音旗舰店" in pages["overview"].text  # the chart's table names the channel


def test_overview_shows_figures_chart_data_and_table(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    owner = make_login(db, workspace_id)
    _seed(db, workspace_id, owner)
    log_in(client, owner)
    page = client.get("/overview").text
    assert 'id="revenue-chart"' in page and "/static/vendor/echarts.min.js" in page
    assert '"data": [' in page or '"data":[' in page
    assert "88.8" in page  # the chart series in yuan
    assert page.count("¥88.80") >= 2  # the card and the table
    assert client.get("/static/vendor/echarts.min.js").status_code == 200
    assert client.get("/overview?months=99").status_code == 422


# --- customers ------------------------------------------------------------------------------------


def test_search_by_phone_name_and_next_page(client: TestClient, db: Database, workspace_id: int) -> None:
    owner = make_login(db, workspace_id)
    customer_id, phone = _seed(db, workspace_id, owner)
    with db.transaction() as session:
        for n in range(55):
            make_customer(session, workspace_id=workspace_id, name=f"顾客{n:02d}")
        wecom = make_customer(
            session,
            workspace_id=workspace_id,
            name="企微好友",
            identities={"wecom_external_userid": "wmQ9xTEST"},
        ).id
    log_in(client, owner)
    by_identity = client.get("/customers", params={"q": "wmQ9xTEST"}).text
    assert f"/customers/{wecom}" in by_identity and by_identity.count('href="/customers/') == 1
    national = phone.removeprefix("+86")
    found = client.get("/customers", params={"q": national}).text
    assert f"/customers/{customer_id}" in found and found.count('href="/customers/') == 1
    assert f"/customers/{customer_id}" in client.get("/customers", params={"q": "小明"}).text
    first = client.get("/customers").text
    assert first.count("<tr>") == 51  # header + 50 rows
    next_link = first.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = client.get(next_link).text
    assert second.count("<tr>") == 1 + 7  # 57 customers in all
    assert 'rel="next"' not in second


def test_staff_cannot_open_another_staff_members_customer(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    alice = make_login(db, workspace_id, Role.STAFF, name="Alice")
    bob = make_login(db, workspace_id, Role.STAFF, name="Bob")
    with db.transaction() as session:
        mine = make_customer(
            session,
            workspace_id=workspace_id,
            name="Alice的客户",
            phone="+8613911112222",
            owner_user_id=alice.user_id,
        ).id
        theirs = make_customer(
            session, workspace_id=workspace_id, name="Bob的客户", owner_user_id=bob.user_id
        ).id
    log_in(client, alice)
    own = client.get(f"/customers/{mine}")
    assert own.status_code == 200 and "139****2222" in own.text and "13911112222" not in own.text
    other = client.get(f"/customers/{theirs}")
    assert other.status_code == 404
    assert "Bob的客户" not in other.text and "找不到" in other.text
    listing = client.get("/customers").text
    assert "Alice的客户" in listing and "Bob的客户" not in listing
    assert client.get("/imports", headers={"Accept": "text/html"}).status_code == 403  # staff may not import


# --- imports ------------------------------------------------------------------------------------


def _start_import(client: TestClient, token: str, preview_html: str, **changes: str) -> str:
    """Submit the mapping form of a preview page as shown (plus `changes`); wait; return the job's URL."""
    upload = preview_html.split('name="upload" value="')[1].split('"')[0]
    form: dict[str, str] = {"csrf_token": token, "upload": upload, "kind": "orders"}
    for part in preview_html.split('name="column.')[1:]:
        index, rest = part.split('"', 1)
        column = rest.split('value="')[1].split('"')[0]
        select = preview_html.split(f'name="target.{index}"')[1].split("</select>")[0]
        chosen = select.split("selected")[0].rsplit('value="', 1)[1].split('"')[0]
        form[f"column.{index}"] = column
        form[f"target.{index}"] = changes.get(column, chosen)
    started = client.post("/imports/start", data=form, follow_redirects=False)
    assert started.status_code == 303, started.text
    run_url = started.headers["location"]
    assert client.get(run_url).status_code == 200
    deadline = time.monotonic() + 30
    while True:
        state = client.get(f"{run_url}/progress").json()
        if state["status"] != "running":
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    assert state["result_url"], state["error"]
    return str(state["result_url"])


def test_import_with_bad_rows_reports_them(client: TestClient, db: Database, workspace_id: int) -> None:
    token = log_in(client, make_login(db, workspace_id))
    preview = client.post(
        "/imports/preview",
        data={"kind": "orders", "csrf_token": token},
        files={"file": ("orders.csv", BAD_ORDERS_CSV.encode("gb18030"), "text/csv")},
    )
    assert preview.status_code == 200
    assert '<option value="external_id" selected>' in preview.text  # 订单号 recognised
    job_url = _start_import(client, token, preview.text)
    job = client.get(job_url).text
    rejects = job.split('id="reject-table"')[1]
    assert '<td class="num">3</td>' in rejects and '<td class="num">4</td>' in rejects
    assert '<td class="num">2</td>' not in rejects  # the good row landed
    assert '<div class="value" id="inserted">1</div>' in job
    report = client.get(f"{job_url}/rejects.csv")
    assert report.headers["content-type"].startswith("text/csv")
    lines = report.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "row,column,value,reason"
    assert [line.split(",")[0] for line in lines[1:]] == ["3", "4"]


def test_changed_mapping_is_used_and_a_wrong_one_is_refused(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    token = log_in(client, make_login(db, workspace_id))
    preview = client.post(
        "/imports/preview",
        data={"kind": "orders", "csrf_token": token},
        files={"file": ("orders.csv", BAD_ORDERS_CSV.encode(), "text/csv")},
    ).text
    # read as member ids, the numbers are no longer phones: row 3's "12345" is accepted, row 4 still refused
    job = client.get(_start_import(client, token, preview, **{"手机号": "shop_member_id"})).text
    rejects = job.split('id="reject-table"')[1]
    assert '<td class="num">4</td>' in rejects and '<td class="num">3</td>' not in rejects
    upload = preview.split('name="upload" value="')[1].split('"')[0]
    refused = client.post(
        "/imports/start",
        data={
            "csrf_token": token,
            "upload": upload,
            "kind": "orders",
            "column.0": "订单号",
            "target.0": "nonsense",
        },
    )
    assert refused.status_code == 422 and "nonsense" in refused.text
    assert (
        client.post(
            "/imports/start",
            data={"csrf_token": token, "upload": "../../etc/passwd-xxxxxxxxxxx", "kind": "orders"},
        ).status_code
        == 404
    )


def test_upload_of_another_format_is_refused(client: TestClient, db: Database, workspace_id: int) -> None:
    token = log_in(client, make_login(db, workspace_id))
    response = client.post(
        "/imports/preview",
        data={"kind": "orders", "csrf_token": token},
        files={"file": ("orders.pdf", b"%PDF-1.4", "application/pdf")},
    )
    assert response.status_code == 422 and "orders.pdf" in response.text


# --- channels -----------------------------------------------------------------------------------


def test_add_channel_and_cost_with_csrf(client: TestClient, db: Database, workspace_id: int) -> None:
    token = log_in(client, make_login(db, workspace_id))
    form = {"key": "meituan-x", "name": "美团外卖", "source_type": "meituan", "aliases": "mt|美团"}
    without = client.post("/channels", data=form)
    assert without.status_code == 403
    with db.reader() as session:
        assert channels.list_channels(session, workspace_id=workspace_id) == []
    added = client.post("/channels", data={**form, "csrf_token": token}, follow_redirects=False)
    assert added.status_code == 303
    with db.reader() as session:
        (channel,) = channels.list_channels(session, workspace_id=workspace_id)
    cost = {
        "period_start": "2026-01-01",
        "period_end": "2026-01-31",
        "amount": "1,234.50",
        "csrf_token": token,
    }
    assert client.post(f"/channels/{channel.id}/costs", data=cost, follow_redirects=False).status_code == 303
    with db.reader() as session:
        (saved,) = channels.list_costs(session, workspace_id=workspace_id)
    assert saved.amount_cents == 123450
    page = client.get("/channels").text
    assert "美团外卖" in page and "¥1,234.50" in page
    overlapping = client.post(f"/channels/{channel.id}/costs", data={**cost, "amount": "10"})
    assert overlapping.status_code == 409 and "overlaps" in overlapping.text
    too_precise = client.post(
        f"/channels/{channel.id}/costs",
        data={**cost, "period_start": "2026-02-01", "period_end": "2026-02-02", "amount": "1.234"},
    )
    assert too_precise.status_code == 422


def test_analyst_sees_channels_but_cannot_add(client: TestClient, db: Database, workspace_id: int) -> None:
    token = log_in(client, make_login(db, workspace_id, Role.ANALYST))
    page = client.get("/channels")
    assert page.status_code == 200 and 'id="add-channel"' not in page.text
    refused = client.post(
        "/channels", data={"key": "x1", "name": "X", "source_type": "ads", "csrf_token": token}
    )
    assert refused.status_code == 403


def test_workspace_switcher(client: TestClient, db: Database, workspace_id: int) -> None:
    from siyu.auth import service as auth
    from siyu.workspaces import service as workspaces

    who = make_login(db, workspace_id)
    with db.transaction() as session:
        other = workspaces.create_workspace(
            session, slug=f"other-{datetime.now(UTC).strftime('%H%M%S%f')}", name="第二品牌"
        )
        auth.add_member(session, workspace_id=other.id, user_id=who.user_id, role=Role.ANALYST)
        make_customer(session, workspace_id=other.id, name="第二品牌的客户")
        stranger = workspaces.create_workspace(
            session, slug=f"stranger-{datetime.now(UTC).strftime('%H%M%S%f')}", name="Stranger"
        )
    token = log_in(client, who)
    assert 'id="workspace-switch"' in client.get("/overview").text
    switched = client.post(
        "/workspace", data={"workspace_id": other.id, "csrf_token": token}, follow_redirects=False
    )
    assert switched.status_code == 303
    assert "第二品牌的客户" in client.get("/customers").text
    refused = client.post("/workspace", data={"workspace_id": stranger.id, "csrf_token": token})
    assert refused.status_code == 403


def test_names_are_escaped_in_pages_and_chart_data(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    owner = make_login(db, workspace_id)
    with db.transaction() as session:
        channel = make_channel(session, workspace_id=workspace_id, key="evil", name="</script><b>x</b>")
        customer = make_customer(session, workspace_id=workspace_id, name="<img src=x onerror=alert(1)>")
        make_order(session, workspace_id=workspace_id, customer_id=customer.id, channel_id=channel.id)
    log_in(client, owner)
    listing = client.get("/customers").text
    assert "<img src=x" not in listing and "&lt;img src=x" in listing
    page = client.get("/overview").text
    assert "</script><b>" not in page
