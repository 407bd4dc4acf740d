"""In chromium: write a template on its page, pick a customer, and see the live preview render the
customer's fields, count the SMS parts and flag what fails; then save it.

SQLite only (browser tests are deselected on PostgreSQL by tests/web/conftest.py's hook); skipped, with
the reason, when chromium or playwright is missing.
"""

from __future__ import annotations

from typing import Any

import pytest

from siyu.auth.models import Role
from siyu.core.db import Database
from tests.factories import make_customer
from tests.web.conftest import make_login
from tests.web.test_browser import _log_in, _shot

pytestmark = pytest.mark.browser


def test_edit_a_template_pick_a_customer_and_see_the_preview(
    page: Any, live_server: str, db: Database, workspace_id: int
) -> None:
    owner = make_login(db, workspace_id, Role.OWNER, name="运营")
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id, name="陈晓", city="杭州")
        nameless = make_customer(session, workspace_id=workspace_id, name=None)
    _log_in(page, live_server, owner.email, owner.password)

    page.click("nav >> text=内容")
    page.click("#new-template")
    page.fill("input[name=name]", "秋季上新")
    page.fill("input[name=sms_sign_name]", "小鹿咖啡")
    page.fill(
        "textarea[name=sms_text]",
        '{{ name }}，{{ city }}门店秋季新品上市 {{ link("https://shop.example.com/autumn") }}',
    )
    page.select_option("#preview-customer", str(customer.id))
    sms = page.locator("#preview-body [data-channel=sms]")
    sms.locator("pre[data-field=text]").wait_for()
    assert (
        sms.locator("pre[data-field=text]").inner_text().startswith("【小鹿咖啡】陈晓，杭州门店秋季新品上市 ")
    )
    assert "1" in sms.locator(".sms-count").inner_text() and "UCS2" in sms.locator(".sms-count").inner_text()
    assert "https://shop.example.com/autumn" in sms.inner_text()
    _shot(page, "content-template-preview")

    # typing updates the preview; a long text needs two parts
    page.fill("textarea[name=sms_text]", "{{ name }}" + "好" * 70)
    page.wait_for_function(
        "document.querySelector('#preview-body [data-channel=sms] .sms-count')?.textContent.includes('2')"
    )
    # a customer without a name: the strict variable fails, and the preview says where
    page.select_option("#preview-customer", str(nameless.id))
    page.locator("#preview-body [data-channel=sms] .problems").wait_for()
    assert "sms.text" in page.inner_text("#preview-body [data-channel=sms] .problems")
    _shot(page, "content-template-problem")

    page.fill("textarea[name=sms_text]", '{{ name | default("朋友") }}，秋季新品上市')
    page.click("#save-template")
    page.wait_for_url(f"{live_server}/content/templates/*?saved=1")
    assert page.input_value("textarea[name=sms_text]") == '{{ name | default("朋友") }}，秋季新品上市'
    page.goto(f"{live_server}/content/templates")
    assert "秋季上新" in page.inner_text("#templates")
