"""Column mapping: every header alias family, fallbacks per kind, overrides and their errors."""

from __future__ import annotations

import pytest

from siyu.core.errors import ValidationFailed
from siyu.ingest.mapping import apply_overrides, detect, ignored_columns
from siyu.ingest.schemas import ImportKind

ORD, C, E = ImportKind.ORDERS, ImportKind.CUSTOMERS, ImportKind.EVENTS

FAMILIES: list[tuple[ImportKind, str, list[str]]] = [
    (ORD, "phone", ["手机号", "手机", "手机号码", "联系电话", "电话", "mobile", "Phone", "TEL", " 手机号 "]),
    (C, "email", ["邮箱", "email", "E-mail", "EMAIL"]),
    (ORD, "external_id", ["订单号", "订单编号", "order_id", "Order No", "order no.", "ORDER_ID"]),
    (ORD, "paid_cents", ["实付金额", "实付", "支付金额", "paid", "amount_paid", "Amount Paid"]),
    (ORD, "total_cents", ["订单金额", "商品总价", "total"]),
    (ORD, "discount_cents", ["优惠", "优惠金额", "discount"]),
    (ORD, "refunded_cents", ["退款金额", "refund"]),
    (ORD, "placed_at", ["下单时间", "创建时间", "支付时间", "order time", "placed_at", "created_at"]),
    (ORD, "status", ["订单状态", "状态", "status"]),
    (ORD, "channel", ["渠道", "来源", "来源渠道", "channel", "source"]),
    (C, "channel", ["渠道", "来源", "channel", "Source"]),
    (E, "source", ["渠道", "来源", "channel", "source"]),
    (ORD, "store", ["门店", "门店编码", "store"]),
    (ORD, "sku", ["商品编码", "SKU", "sku"]),
    (ORD, "product_name", ["商品名称", "product"]),
    (ORD, "category", ["品类", "类目", "category"]),
    (ORD, "quantity", ["数量", "qty", "quantity"]),
    (ORD, "unit_price_cents", ["单价", "price"]),
    (C, "name", ["姓名", "昵称", "name"]),
    (C, "gender", ["性别", "gender"]),
    (C, "birthday", ["生日", "birthday"]),
    (C, "city", ["城市", "city"]),
    (C, "shop_member_id", ["会员号", "会员卡号", "member_id"]),
    (C, "wechat_unionid", ["unionid", "UnionID"]),
    (C, "wechat_openid", ["openid", "OpenID"]),
    (C, "wecom_external_userid", ["external_userid", "外部联系人ID", "外部联系人id"]),
    (C, "douyin_open_id", ["抖音openid", "抖音OpenID"]),
    (E, "type", ["事件", "事件类型", "event", "type"]),
    (E, "occurred_at", ["发生时间", "时间", "time", "occurred_at"]),
    (C, "owner_email", ["负责人", "归属员工", "owner"]),
    (C, "consent:sms", ["短信同意", "sms_consent"]),
]


@pytest.mark.parametrize(
    ("kind", "field", "header"), [(k, f, h) for k, f, headers in FAMILIES for h in headers]
)
def test_header_aliases(kind: ImportKind, field: str, header: str) -> None:
    assert detect([header], kind) == {header: field}


def test_unknown_columns_fall_back_per_kind() -> None:
    assert detect(["手机号", "会员等级"], C) == {"手机号": "phone", "会员等级": "attr:会员等级"}
    assert detect(["openid", "事件", "页面"], E) == {
        "openid": "wechat_openid",
        "事件": "type",
        "页面": "prop:页面",
    }
    columns = ["手机号", "订单号", "备注"]
    detected = detect(columns, ORD)
    assert detected == {"手机号": "phone", "订单号": "external_id"}
    assert ignored_columns(columns, detected) == ["备注"]


def test_prefixed_headers_are_taken_literally() -> None:
    assert detect(["attr:tier", "identity:vip_card", "consent:email"], C) == {
        "attr:tier": "attr:tier",
        "identity:vip_card": "identity:vip_card",
        "consent:email": "consent:email",
    }


def test_two_columns_for_one_field_the_better_alias_wins() -> None:
    detected = detect(["支付时间", "下单时间", "订单号"], ORD)
    assert detected == {"下单时间": "placed_at", "订单号": "external_id"}  # 支付时间 is dropped for orders
    assert detect(["电话", "手机号"], C) == {"电话": "attr:电话", "手机号": "phone"}


def test_overrides_choose_fields_and_drop_columns() -> None:
    columns = ["手机号", "订单号", "备注", "支付时间"]
    detected = detect(columns, ORD)
    result = apply_overrides(
        detected, {"备注": "sku", "手机号": "ignore", "支付时间": "placed_at"}, columns=columns, kind=ORD
    )
    assert result == {"订单号": "external_id", "备注": "sku", "支付时间": "placed_at"}
    assert apply_overrides(detected, {"订单号": ""}, columns=columns, kind=ORD) == {
        "手机号": "phone",
        "支付时间": "placed_at",
    }


def test_override_of_a_column_not_in_the_file_suggests_one() -> None:
    with pytest.raises(ValidationFailed) as caught:
        apply_overrides({"订单号": "external_id"}, {"订单编号": "external_id"}, columns=["订单号"], kind=ORD)
    assert "not in the file" in caught.value.message
    assert caught.value.hint == "did you mean '订单号'?"


def test_override_naming_an_unknown_field_suggests_one() -> None:
    with pytest.raises(ValidationFailed) as caught:
        apply_overrides({}, {"备注": "phnoe"}, columns=["备注"], kind=ORD)
    assert "'phnoe' is not a field" in caught.value.message
    assert caught.value.where == "mapping['备注']"
    assert caught.value.hint is not None and caught.value.hint.startswith("did you mean 'phone'?")


def test_override_field_of_another_kind_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        apply_overrides({}, {"x": "occurred_at"}, columns=["x"], kind=ORD)
    with pytest.raises(ValidationFailed):
        apply_overrides({}, {"x": "identity:Bad Kind"}, columns=["x"], kind=C)


def test_two_overrides_to_one_field_are_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        apply_overrides({}, {"a": "phone", "b": "phone"}, columns=["a", "b"], kind=C)
    assert "both mapped to 'phone'" in caught.value.message
