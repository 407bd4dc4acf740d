"""Validation: amounts, times, statuses, identities and every reject reason, with row and column."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siyu.core.errors import ValidationFailed
from siyu.customers import identity_values as iv
from siyu.ingest import validation
from siyu.ingest.mapping import detect
from siyu.ingest.reading import read_table
from siyu.ingest.schemas import ImportKind, ValidatedBatch

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
CHANNELS = {"抖音": "douyin", "douyin": "douyin", "美团": "meituan", "meituan": "meituan"}
STORES = {"SH-01", "SH-02"}
ORDER_HEADER = "手机号,订单号,实付金额,退款金额,下单时间,订单状态,渠道,门店"


def _validate(csv: str, kind: ImportKind = ImportKind.ORDERS, **options: Any) -> ValidatedBatch:
    table = read_table(csv.encode(), filename="f.csv")
    return validation.validate(
        table,
        kind,
        detect(table.columns, kind),
        known_channels=options.pop("known_channels", CHANNELS),
        known_stores=options.pop("known_stores", STORES),
        now=NOW,
        **options,
    )


def _one_reject(batch: ValidatedBatch) -> tuple[int, str, str, str]:
    assert len(batch.rejects) == 1, batch.rejects
    r = batch.rejects[0]
    return r.row_number, r.column, r.value, r.reason


GOOD = "13800138001,A1,12.50,,2024-03-05 14:03:00,已支付,抖音,SH-01"


def test_a_good_order_row_is_typed() -> None:
    batch = _validate(f"{ORDER_HEADER}\n{GOOD}\n")
    assert batch.rejects == []
    assert batch.total_rows == 1
    row = batch.rows.row(0, named=True)
    assert row["row_number"] == 2
    assert row["phone"] == "+8613800138001"
    assert row["external_id"] == "A1"
    assert row["paid_cents"] == 1250
    assert row["placed_at"] == datetime(2024, 3, 5, 6, 3, tzinfo=UTC)  # Asia/Shanghai is UTC+8
    assert row["status"] == "paid"
    assert row["channel"] == "douyin"
    assert row["store"] == "SH-01"
    assert row["currency"] == "CNY"
    assert row["line_no"] == 1
    assert batch.rows.schema["placed_at"] == pl.Datetime("us", "UTC")
    assert batch.rows.schema["paid_cents"] == pl.Int64


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("12.50", 1250), ("¥1,234.50", 123450), ("￥ 1,234.5", 123450), ("12元", 1200), ("1234.5", 123450),
        ("0.1", 10), ("0.29", 29), ("1.10", 110), (".5", 50), ("1.500", 150), ("99999999.99", 9999999999),
        ("RMB 8", 800), ("0", 0),
    ],
)  # fmt: skip
def test_amounts_are_exact_cents(text: str, cents: int) -> None:
    values, problems = validation.parse_cents(pl.Series([text]))
    assert values.to_list() == [cents]
    assert problems.to_list() == [None]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("abc", validation.AMOUNT_REASON), ("1.2.3", validation.AMOUNT_REASON), ("1.005", validation.PRECISION_REASON),
        ("-3", validation.NEGATIVE_REASON), ("¥-0.5", validation.NEGATIVE_REASON),
    ],
)  # fmt: skip
def test_bad_amounts(text: str, reason: str) -> None:
    assert validation.parse_cents(pl.Series([text]))[1].to_list() == [reason]


SHANGHAI_1403 = datetime(2024, 3, 5, 6, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05 14:03:00", SHANGHAI_1403),
        ("2024/3/5 14:03", SHANGHAI_1403),
        ("2024-03-05T14:03:00+08:00", SHANGHAI_1403),
        ("2024-03-05T06:03:00Z", SHANGHAI_1403),
        ("2024-03-05 06:03:00.250+00:00", datetime(2024, 3, 5, 6, 3, 0, 250000, tzinfo=UTC)),
        ("2024年3月5日 14:03", SHANGHAI_1403),
        ("2024.3.5 14:03:00", SHANGHAI_1403),
        ("20240305", datetime(2024, 3, 4, 16, 0, tzinfo=UTC)),
        ("2024-03-05", datetime(2024, 3, 4, 16, 0, tzinfo=UTC)),
        ("1709618580", SHANGHAI_1403),  # epoch seconds
        ("1709618580000", SHANGHAI_1403),  # epoch milliseconds
        ("45356.585416666667", SHANGHAI_1403),  # Excel serial, a wall-clock time
    ],
)
def test_times(text: str, expected: datetime) -> None:
    values, problems = validation.parse_times(pl.Series([text]), "Asia/Shanghai")
    assert problems.to_list() == [None]
    parsed = values.to_list()[0]
    assert abs((parsed - expected).total_seconds()) < 0.01


def test_naive_times_use_the_workspace_zone() -> None:
    values, _ = validation.parse_times(pl.Series(["2024-03-05 14:03:00"]), "Europe/London")
    assert values.to_list() == [datetime(2024, 3, 5, 14, 3, tzinfo=UTC)]


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "2024-02-30 10:00", "12", "0000-00-00"])
def test_unparseable_times(text: str) -> None:
    values, problems = validation.parse_times(pl.Series([text]), "Asia/Shanghai")
    assert values.to_list() == [None]
    assert problems.to_list() == [validation.TIME_REASON]


@pytest.mark.parametrize(
    ("status", "refund", "expected_status", "expected_refund"),
    [
        ("已支付", "", "paid", None), ("已付款", "", "paid", None), ("paid", "", "paid", None),
        ("completed", "", "paid", None), ("交易成功", "", "paid", None), ("", "", "paid", None),
        ("已退款", "", "refunded", 1250), ("全额退款", "", "refunded", 1250), ("Refunded", "", "refunded", 1250),
        ("部分退款", "2", "partially_refunded", 200), ("partially refunded", "2", "partially_refunded", 200),
        ("待付款", "", "pending", None), ("unpaid", "", "pending", None), ("pending", "", "pending", None),
        ("已取消", "", "cancelled", None), ("交易关闭", "", "cancelled", None), ("cancelled", "", "cancelled", None),
        ("已支付", "2.50", "partially_refunded", 250), ("已支付", "12.50", "refunded", 1250),
    ],
)  # fmt: skip
def test_statuses(status: str, refund: str, expected_status: str, expected_refund: int | None) -> None:
    batch = _validate(
        f"{ORDER_HEADER}\n13800138001,A1,12.50,{refund},2024-03-05 14:03:00,{status},抖音,SH-01\n"
    )
    assert batch.rejects == []
    row = batch.rows.row(0, named=True)
    assert (row["status"], row["refunded_cents"]) == (expected_status, expected_refund)


BAD_ROWS = [
    ("1234,A1,12.50,,2024-03-05 14:03:00,已支付,抖音,SH-01", "手机号", "1234", "not a valid CN mobile"),
    ("13800138001,,12.50,,2024-03-05 14:03:00,已支付,抖音,SH-01", "订单号", "", "missing order number"),
    ("13800138001,A1,,,2024-03-05 14:03:00,已支付,抖音,SH-01", "实付金额", "", "missing paid amount"),
    ("13800138001,A1,12.50,,,已支付,抖音,SH-01", "下单时间", "", "missing time"),
    ("13800138001,A1,12.50,,next tuesday,已支付,抖音,SH-01", "下单时间", "next tuesday", "unparseable date"),
    (
        "13800138001,A1,12.50,,2024-06-03 12:00:00,已支付,抖音,SH-01",
        "下单时间",
        "2024-06-03 12:00:00",
        "future",
    ),
    ("13800138001,A1,-12.50,,2024-03-05 14:03:00,已支付,抖音,SH-01", "实付金额", "-12.50", "negative amount"),
    ("13800138001,A1,12.50,13,2024-03-05 14:03:00,已支付,抖音,SH-01", "退款金额", "13", "refund larger than"),
    ("13800138001,A1,12.50,,2024-03-05 14:03:00,已支付,快手,SH-01", "渠道", "快手", "douyin, meituan"),
    ("13800138001,A1,12.50,,2024-03-05 14:03:00,已支付,抖音,BJ-09", "门店", "BJ-09", "unknown store"),
    ("13800138001,A1,12.50,,2024-03-05 14:03:00,发货中,抖音,SH-01", "订单状态", "发货中", "unknown status"),
    (
        "13800000000,A1,12.50,,2024-03-05 14:03:00,已支付,抖音,SH-01",
        "手机号",
        "13800000000",
        "no usable identity",
    ),
]


@pytest.mark.parametrize(("line", "column", "value", "reason"), BAD_ROWS)
def test_each_reject_reason_names_row_and_column(line: str, column: str, value: str, reason: str) -> None:
    batch = _validate(f"{ORDER_HEADER}\n{GOOD}\n{line}\n")
    row_number, got_column, got_value, got_reason = _one_reject(batch)
    assert (row_number, got_column, got_value) == (3, column, value)
    assert reason in got_reason
    assert batch.rows["row_number"].to_list() == [2]  # the rejected row is not loaded


def test_a_row_with_several_problems_yields_one_reject_each() -> None:
    batch = _validate(f"{ORDER_HEADER}\n12,,-1,,someday,??,快手,XX\n")
    assert [(r.row_number, r.column) for r in batch.rejects] == [
        (2, "手机号"), (2, "订单号"), (2, "实付金额"), (2, "下单时间"), (2, "订单状态"), (2, "渠道"), (2, "门店"),
    ]  # fmt: skip
    assert batch.rows.height == 0
    assert batch.rejects[0].to_dict()["row"] == 2


def test_lines_of_one_order_are_numbered_in_file_order() -> None:
    header = "手机号,订单号,实付金额,下单时间,商品编码,数量,单价"
    lines = [
        "13800138001,A1,30,2024-03-05 14:03:00,TEA-1,2,10",
        "13800138001,A1,30,2024-03-05 14:03:00,CUP-1,1,10.00",
        "13800138002,B7,8,2024-03-05 15:00:00,TEA-2,1,8",
        "13800138001,A1,30,2024-03-05 14:03:00,LID-1,0,0",
    ]
    batch = _validate(header + "\n" + "\n".join(lines) + "\n")
    assert batch.rejects == []
    got = batch.rows.select("external_id", "line_no", "sku", "quantity", "unit_price_cents").rows()
    assert got == [
        ("A1", 1, "TEA-1", 2, 1000),
        ("A1", 2, "CUP-1", 1, 1000),
        ("B7", 1, "TEA-2", 1, 800),
        ("A1", 3, "LID-1", 0, 0),
    ]
    consecutive = validation.line_numbers(pl.Series(["A", "A", "B", "C", "C", "C"]))
    assert consecutive.to_list() == [1, 2, 1, 1, 2, 3]


def test_identity_denylist_makes_a_value_junk() -> None:
    batch = _validate(f"{ORDER_HEADER}\n{GOOD}\n", identity_denylist=["138-0013-8001"])
    assert _one_reject(batch)[3].startswith("no usable identity")


def test_customers_profile_fields() -> None:
    csv = (
        "手机号,邮箱,姓名,性别,生日,城市,会员等级,短信同意,负责人\n"
        "13800138001, Li@Brand.CN ,李雷,男,1990-05-01,上海,金卡,是,Owner@Brand.cn\n"
        "+44 20 7946 0958,,韩梅梅,F,1992/2/29,北京,,否,\n"
        "null,test@test.com,无名,保密,,,,,\n"
        ",bad-email,坏,女,2030-01-01,,,也许,not-an-email\n"
    )
    batch = _validate(csv, ImportKind.CUSTOMERS)
    rows = batch.rows.select(
        "row_number", "phone", "email", "gender", "birthday", "attr:会员等级", "consent:sms"
    )
    assert rows.rows() == [
        (2, "+8613800138001", "li@brand.cn", "male", date(1990, 5, 1), "金卡", "granted"),
        (3, "+442079460958", None, "female", date(1992, 2, 29), None, "withdrawn"),
    ]
    assert batch.rows["owner_email"].to_list() == ["owner@brand.cn", None]
    assert [(r.row_number, r.column) for r in batch.rejects] == [
        (4, "手机号, 邮箱"),  # only junk identities
        (5, "邮箱"),
        (5, "生日"),
        (5, "短信同意"),
        (5, "负责人"),
    ]
    assert "no usable identity" in batch.rejects[0].reason


def test_events_need_type_and_time_and_json_properties() -> None:
    csv = (
        "openid,事件类型,发生时间,属性,页面\n"
        'oA1,page_view,2024-03-05 14:03:00,"{""ref"": ""ad""}",/menu\n'
        "oA2,,2024-03-05 14:03:00,,/cart\n"
        'oA3,click,,"[1]",\n'
    )
    batch = _validate(csv, ImportKind.EVENTS)
    assert batch.rows.select("wechat_openid", "type", "properties", "prop:页面").rows() == [
        ("oA1", "page_view", '{"ref": "ad"}', "/menu")
    ]
    assert [(r.row_number, r.column) for r in batch.rejects] == [
        (3, "事件类型"),
        (4, "发生时间"),
        (4, "属性"),
    ]


def test_mapping_without_required_fields_or_identity_is_refused() -> None:
    table = read_table(b"order,paid\nA1,3\n", filename="x.csv")
    with pytest.raises(ValidationFailed) as caught:
        validation.validate(
            table,
            ImportKind.ORDERS,
            {"order": "external_id", "paid": "paid_cents"},
            known_channels={},
            known_stores=set(),
        )
    assert "placed_at" in caught.value.message
    table = read_table(b"name\nLi\n", filename="x.csv")
    with pytest.raises(ValidationFailed) as caught:
        validation.validate(
            table, ImportKind.CUSTOMERS, {"name": "name"}, known_channels={}, known_stores=set()
        )
    assert "identity" in caught.value.message


def test_records_accept_cents_or_yuan() -> None:
    common: dict[str, Any] = {"phone": "13800138001", "placed_at": "2024-03-05T14:03:00+08:00"}
    records = [
        {**common, "external_id": "A1", "paid_cents": 1250},
        {**common, "external_id": "A2", "paid_cents": -5},
    ]
    batch = validation.validate_records(
        records, ImportKind.ORDERS, known_channels={}, known_stores=set(), now=NOW
    )
    assert batch.rows.select("row_number", "paid_cents").rows() == [(1, 1250)]
    assert [(r.row_number, r.column, r.value) for r in batch.rejects] == [(2, "paid_cents", "-5")]
    yuan = [
        {**common, "external_id": "A1", "paid": 12.3},
        {**common, "external_id": "A2", "paid_amount": "0.07"},
    ]
    with pytest.raises(ValidationFailed):  # two spellings of one field in one batch
        validation.validate_records(yuan, ImportKind.ORDERS, known_channels={}, known_stores=set(), now=NOW)
    batch = validation.validate_records(
        yuan[:1], ImportKind.ORDERS, known_channels={}, known_stores=set(), now=NOW
    )
    assert batch.rows["paid_cents"].to_list() == [1230]


def test_records_with_nested_identities_and_unknown_keys() -> None:
    records = [{"identities": {"phone": "13800138001", "vip_card": "V1"}, "attributes": {"tier": "gold"}}]
    batch = validation.validate_records(records, ImportKind.CUSTOMERS, known_channels={}, known_stores=set())
    assert batch.rows.select("phone", "identity:vip_card", "attr:tier").rows() == [
        ("+8613800138001", "V1", "gold")
    ]
    with pytest.raises(ValidationFailed) as caught:
        validation.validate_records(
            [{"phone": "1", "nmae": "x"}], ImportKind.CUSTOMERS, known_channels={}, known_stores=set()
        )
    assert caught.value.hint is not None and "'name'" in caught.value.hint


def test_vectorised_phone_rules_agree_with_identity_values() -> None:
    samples = [
        "13800138001", "+86 138-0013-8001", "0086 13800138001", "8613800138001", "13800000000", "13800138000",
        "12345678901", "19876543210", "１３８００１３８００１", "+44 20 7946 0958", "1234", "null", "000", "n/a",
    ]  # fmt: skip
    values, problems = validation.parse_phones(pl.Series(samples))
    assert list(zip(values.to_list(), problems.to_list(), strict=True)) == [
        iv.check("phone", s) for s in samples
    ]
    emails = ["A@B.cn", " x@y.com ", "test@test.com", "王@公司.中国", "bad", "noreply@x.cn"]
    values, problems = validation.parse_emails(pl.Series(emails))
    assert list(zip(values.to_list(), problems.to_list(), strict=True)) == [
        iv.check("email", e) for e in emails
    ]


PHONE_LIKE = st.one_of(
    st.text(alphabet="0123456789+- ()", max_size=18),
    st.from_regex(r"(\+86|0086|86)? ?1[3-9][0-9]{9}", fullmatch=True),
    st.text(max_size=12),
)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(PHONE_LIKE, min_size=1, max_size=30))
def test_vectorised_phones_match_python_rules_on_any_text(values: list[str]) -> None:
    stripped = [v.strip() or None for v in values]  # validation strips cells before parsing
    parsed, problems = validation.parse_phones(pl.Series(stripped, dtype=pl.Utf8))
    expected = [iv.check("phone", v) for v in stripped]
    assert list(zip(parsed.to_list(), problems.to_list(), strict=True)) == expected


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30))
def test_vectorised_ids_match_python_rules_on_any_text(values: list[str]) -> None:
    stripped = [v.strip() or None for v in values]
    parsed, _ = validation.parse_ids(pl.Series(stripped, dtype=pl.Utf8), "wechat_unionid")
    assert parsed.to_list() == [iv.normalize("wechat_unionid", v) for v in stripped]
