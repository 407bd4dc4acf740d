"""The public landing page `/l/{token}` with hostile input: bad and huge tokens, unicode, enumeration
(unknown and disabled codes answer alike), the rate limit's 429, and the demo add's forged forms."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from siyu.core.config import Settings
from siyu.core.db import Database
from siyu.core.ratelimit import RateLimits
from siyu.livecodes import service
from siyu.livecodes.models import LiveCodeAdd, LiveCodeScan
from siyu.web.app import create_app
from tests.factories import member
from tests.livecodes.helpers import make_code, staff_members

_SCAN = re.compile(r'name="scan_id" value="(\d+)"')
_SIG = re.compile(r'name="signature" value="([0-9a-f]+)"')


def _client(db: Database, *, env: str = "development", rate: str = "1000/minute") -> TestClient:
    app = create_app(database=db, settings=Settings(env=env, secret_key="x" * 40))  # type: ignore[call-arg]
    app.state.rate_limits = RateLimits(rates={"livecode.landing": rate, "livecode.demo_add": rate})
    return TestClient(app)


def _scans(db: Database, live_code_id: int) -> int:
    with db.reader() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(LiveCodeScan)
                .where(LiveCodeScan.live_code_id == live_code_id)
            )
            or 0
        )


def test_a_scan_shows_the_staff_member_and_the_state(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    staff = staff_members(db, workspace_id, 2)
    code = make_code(db, owner, staff)
    client = _client(db)
    first = client.get(f"/l/{code.token}")
    second = client.get(f"/l/{code.token}")
    assert first.status_code == 200 and code.state in first.text
    assert "导购0" in first.text and "导购1" in second.text  # round robin
    assert 'id="contact-qr"' in first.text and "data:image/svg+xml;base64," in first.text
    assert _scans(db, code.id) == 2


def test_unknown_malformed_and_disabled_codes_answer_alike(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    code = make_code(db, owner, staff_members(db, workspace_id, 1))
    client = _client(db)
    with db.transaction() as session:
        service.set_active(session, actor=owner.actor, live_code_id=code.id, active=False)
    hostile = [
        code.token,  # disabled
        "A" * 22,  # well-formed, unknown
        code.token[:-1] + ("A" if code.token[-1] != "A" else "B"),  # one character off
        "x",
        "活码活码活码活码活码活码活码活码活码活码活码",
        "%00" * 8,
        "' OR 1=1 --",
        "<script>alert(1)</script>",
        "a" * 5000,
        "😀" * 22,
    ]
    bodies = set()
    for token in hostile:
        response = client.get(f"/l/{token}")
        assert response.status_code == 404, token
        assert "<script>alert" not in response.text
        # the page links back to itself for the language switch: take that out before comparing
        if "/" not in token:  # with a slash it is another path: the router's own 404
            bodies.add(re.sub(r'next=[^"]*"', 'next="', response.text))
    assert len(bodies) == 1  # nothing tells a disabled code from one that never existed
    # a token with slashes is another path altogether: no landing route, no scan
    assert client.get("/l/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert _scans(db, code.id) == 0


def test_rate_limit_answers_429_with_retry_after(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    code = make_code(db, owner, staff_members(db, workspace_id, 1))
    client = _client(db, rate="3/minute")
    statuses = [client.get(f"/l/{code.token}").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    limited = client.get(f"/l/{code.token}")
    assert int(limited.headers["retry-after"]) >= 1
    assert _scans(db, code.id) == 3  # refused visits are not scans
    # unknown tokens count against the same budget: guessing is throttled too
    assert client.get("/l/" + "B" * 22).status_code == 429


def test_demo_add_attributes_the_customer_to_code_and_staff(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    [seller] = staff_members(db, workspace_id, 1)
    code = make_code(db, owner, [seller], welcome_text="欢迎")
    client = _client(db)
    page = client.get(f"/l/{code.token}").text
    scan_id, signature = _SCAN.search(page).group(1), _SIG.search(page).group(1)  # type: ignore[union-attr]
    added = client.post(f"/l/{code.token}/demo-add", data={"scan_id": scan_id, "signature": signature})
    assert added.status_code == 200 and "导购0" in added.text and "欢迎" in added.text
    with db.reader() as session:
        [add] = session.scalars(select(LiveCodeAdd).where(LiveCodeAdd.live_code_id == code.id)).all()
    assert (
        add.staff_user_id == seller.user_id
        and add.is_new_customer
        and add.external_userid.startswith("demo-")
    )
    # forged forms: another scan id with the same signature, a bad signature, junk
    for data in (
        {"scan_id": str(int(scan_id) + 1), "signature": signature},
        {"scan_id": scan_id, "signature": "0" * 32},
        {"scan_id": "-1", "signature": signature},
        {"scan_id": "9" * 19, "signature": signature},
        {},
    ):
        assert client.post(f"/l/{code.token}/demo-add", data=data).status_code == 404
    assert (
        client.post(
            "/l/" + "C" * 22 + "/demo-add", data={"scan_id": scan_id, "signature": signature}
        ).status_code
        == 404
    )


def test_no_demo_add_in_production(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    code = make_code(db, owner, staff_members(db, workspace_id, 1))
    client = _client(db, env="production")
    page = client.get(f"/l/{code.token}").text
    assert 'id="demo-add"' not in page
    scan_id = _scans(db, code.id)
    assert scan_id == 1
    assert (
        client.post(f"/l/{code.token}/demo-add", data={"scan_id": "1", "signature": "x"}).status_code == 404
    )


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_landing_speaks_both_languages(db: Database, workspace_id: int, lang: str) -> None:
    owner = member(db, workspace_id)
    code = make_code(db, owner, staff_members(db, workspace_id, 1))
    client = _client(db)
    page = client.get(f"/l/{code.token}", headers={"accept-language": lang}).text
    assert (
        "模拟在企业微信添加该员工" if lang == "zh-CN" else "Simulate adding this staff member on WeCom"
    ) in page
