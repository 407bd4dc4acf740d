"""The demo generator: deterministic files, auto-mappable headers, and a believable brand inside them."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from siyu.demo import generator
from siyu.demo.generator import DemoFiles
from siyu.ingest import mapping
from siyu.ingest.schemas import ImportKind


@pytest.fixture(scope="module")
def brand(tmp_path_factory: pytest.TempPathFactory) -> DemoFiles:
    return generator.generate(tmp_path_factory.mktemp("brand"), customers=2000, seed=11)


def _orders(files: DemoFiles) -> pl.DataFrame:
    """The good rows of orders.csv (dirty rows have order numbers starting with X)."""
    frame = pl.read_csv(files.orders_csv, infer_schema=False)
    return frame.filter(~pl.col("订单号").str.starts_with("X"))


def _events(files: DemoFiles) -> list[dict[str, object]]:
    with files.events_jsonl.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    first = generator.generate(tmp_path / "a", customers=300, seed=3)
    second = generator.generate(tmp_path / "b", customers=300, seed=3)
    other = generator.generate(tmp_path / "c", customers=300, seed=4)
    for name in (
        generator.CUSTOMERS_FILE,
        generator.ORDERS_FILE,
        generator.EVENTS_FILE,
        generator.WECOM_FRIENDS_FILE,
    ):
        assert (first.directory / name).read_bytes() == (second.directory / name).read_bytes(), name
        assert (first.directory / name).read_bytes() != (other.directory / name).read_bytes(), name
    assert (first.orders, first.events) == (second.orders, second.events)


def test_headers_are_chinese_and_auto_mapped(brand: DemoFiles) -> None:
    orders = pl.read_csv(brand.orders_csv, n_rows=1, infer_schema=False).columns
    detected = mapping.detect(orders, ImportKind.ORDERS)
    assert detected["订单号"] == "external_id"
    assert detected["实付金额"] == "paid_cents"
    assert detected["下单时间"] == "placed_at"
    assert detected["渠道"] == "channel"
    assert detected["手机号"] == "phone"
    assert detected["unionid"] == "wechat_unionid"
    assert detected["品类"] == "category"
    assert set(orders) == set(detected), "every order column is understood"
    customers = pl.read_csv(brand.customers_csv, n_rows=1, infer_schema=False).columns
    detected = mapping.detect(customers, ImportKind.CUSTOMERS)
    assert detected["负责人"] == "owner_email"
    assert detected["短信同意"] == "consent:sms" and detected["同意时间"] == "consent_at"
    assert detected["会员号"] == "shop_member_id"
    assert detected["会员等级"] == "attr:会员等级"
    first_event = _events(brand)[0]
    detected = mapping.detect(list(first_event), ImportKind.EVENTS)
    assert detected["事件类型"] == "type" and detected["发生时间"] == "occurred_at"


def test_two_years_ending_the_day_before_the_fixed_anchor(brand: DemoFiles) -> None:
    assert generator.WINDOW_END == date(2025, 6, 30) == generator.ANCHOR_DATE - timedelta(days=1)
    assert (generator.WINDOW_END - generator.WINDOW_START).days + 1 == 731
    times = _orders(brand)["下单时间"].str.to_datetime("%Y-%m-%d %H:%M:%S")
    assert times.min() >= datetime(2023, 7, 1)  # type: ignore[operator]
    assert times.max() <= datetime(2025, 6, 30, 23, 59, 59)  # type: ignore[operator]
    assert times.max() >= datetime(2025, 6, 1)  # type: ignore[operator]
    hours = times.dt.hour()
    assert hours.min() >= 9 and hours.max() <= 21  # type: ignore[operator]


def test_sizes_and_repeat_buying(brand: DemoFiles) -> None:
    orders = _orders(brand)
    assert brand.persons == 2000
    assert orders["订单号"].n_unique() == brand.orders
    assert orders.height == brand.order_rows
    per_person = (
        orders.unique("订单号")
        .with_columns(who=pl.coalesce("手机号", "unionid"))
        .group_by("who")
        .len()["len"]
    )
    repeat_share = (per_person >= 2).mean()
    assert 0.4 <= repeat_share <= 0.9  # type: ignore[operator]
    assert 2.5 <= brand.orders / brand.persons <= 8
    assert per_person.max() > 15  # type: ignore[operator]  # gamma-distributed rates: a loyal tail


def test_summer_weekends_and_holidays_are_busier(brand: DemoFiles) -> None:
    days = (
        _orders(brand)
        .unique("订单号")
        .select(day=pl.col("下单时间").str.slice(0, 10).str.to_date())
        .group_by("day")
        .len()
    )
    per_month = days.group_by(pl.col("day").dt.strftime("%Y-%m")).agg(pl.col("len").mean())
    by_month = dict(per_month.iter_rows())
    # the customer base grows all along, so compare within one year: July's iced-drink peak vs January
    assert by_month["2024-07"] > 1.25 * by_month["2024-01"]
    weekday = (
        days.with_columns(weekend=pl.col("day").dt.weekday() >= 6)
        .group_by("weekend")
        .agg(pl.col("len").mean())
    )
    means = dict(weekday.iter_rows())
    assert means[True] > 1.1 * means[False]


def test_lines_prices_and_refunds(brand: DemoFiles) -> None:
    orders = _orders(brand).with_columns(
        pl.col("实付金额", "退款金额", "订单金额", "优惠金额", "小计", "单价").cast(pl.Float64),
        pl.col("数量").cast(pl.Int64),
    )
    assert set(orders["品类"].unique()) == {"奶茶", "果茶", "咖啡", "纯茶", "小料", "周边"}
    assert (orders["小计"] == orders["单价"] * orders["数量"]).all()
    per_order = orders.group_by("订单号").agg(
        pl.col("小计").sum().round(2).alias("lines"),
        pl.col("订单金额").first(),
        pl.col("优惠金额").first(),
        pl.col("实付金额").first(),
        pl.col("退款金额").first(),
        pl.col("订单状态").first(),
    )
    assert (per_order["lines"] == per_order["订单金额"]).all()
    assert ((per_order["订单金额"] - per_order["优惠金额"]).round(2) == per_order["实付金额"]).all()
    assert (per_order["实付金额"] > 0).all()
    full = per_order.filter(pl.col("订单状态") == "已退款")
    partial = per_order.filter(pl.col("订单状态") == "部分退款")
    assert (full["退款金额"] == full["实付金额"]).all()
    assert ((partial["退款金额"] > 0) & (partial["退款金额"] < partial["实付金额"])).all()
    share = (full.height + partial.height) / per_order.height
    assert 0.015 <= share <= 0.035
    assert (full.height, partial.height) == (brand.refunded_orders, brand.partially_refunded_orders)
    assert full.height > partial.height > 0
    revenue = round(float((per_order["实付金额"] - per_order["退款金额"]).sum()) * 100)
    assert revenue == brand.revenue_cents


def test_every_order_row_carries_an_identity_for_its_channel(brand: DemoFiles) -> None:
    orders = _orders(brand)
    assert (
        orders.filter(pl.all_horizontal(pl.col("手机号", "unionid", "会员号", "抖音openid").is_null())).height
        == 0
    )
    mini = orders.filter(pl.col("渠道") == "小程序")
    assert mini["unionid"].null_count() == 0 and mini["手机号"].null_count() == mini.height
    douyin = orders.filter(pl.col("渠道") == "抖音团购")
    assert douyin["抖音openid"].null_count() == 0
    assert set(orders["渠道"].unique()) == {"门店", "小程序", "美团外卖", "抖音团购"}
    assert set(orders["门店编码"].unique()) <= {s.code for s in generator.STORES}


def test_split_people_are_linked_only_by_a_later_binding_event(brand: DemoFiles) -> None:
    events = _events(brand)
    binds = [e for e in events if e.get("事件类型") == "member_bind"]
    assert len(binds) == brand.split_persons > 0
    customers = pl.read_csv(brand.customers_csv, infer_schema=False)
    orders = _orders(brand)
    for bind in binds[:20]:
        phone, unionid = bind["手机号"], bind["unionid"]
        row = customers.filter(pl.col("手机号") == phone)
        assert row.height == 1 and row["unionid"][0] is None and row["会员号"][0] is None
        first_mini = orders.filter(pl.col("unionid") == unionid)["下单时间"].min()
        assert first_mini is not None and str(bind["发生时间"]) > str(first_mini)
        assert orders.filter((pl.col("unionid") == unionid) & pl.col("手机号").is_not_null()).height == 0


def test_dirty_rows_are_few_and_of_each_kind(brand: DemoFiles) -> None:
    assert brand.dirty_rows == {"customers.csv": 3, "orders.csv": 12, "events.jsonl": 3}
    dirty = pl.read_csv(brand.orders_csv, infer_schema=False).filter(pl.col("订单号").str.starts_with("X"))
    assert dirty.height == 12
    assert dirty.filter(pl.col("渠道") == "拼多多").height == 1
    assert dirty.filter(pl.col("实付金额").str.starts_with("-")).height == 3
    assert dirty.filter(pl.col("下单时间").str.starts_with("209")).height == 3
    events = _events(brand)
    assert sum(str(e["发生时间"]).startswith("2099") for e in events) == 2
    assert len(events) == brand.events + 3


def test_staff_owners_consent_and_costs(brand: DemoFiles) -> None:
    customers = pl.read_csv(brand.customers_csv, infer_schema=False)
    owners = set(customers["负责人"].drop_nulls())
    staff = {s.email("demo.siyu.local") for s in generator.STAFF if s.role == "staff"}
    assert owners and owners <= staff
    assert 8 <= len(generator.STAFF) <= 15
    assert set(customers["短信同意"].drop_nulls()) == {"是", "否"}
    assert len(generator.STORES) == 20 and len({s.city for s in generator.STORES}) == 5
    costs = generator.channel_costs(customers=2000, seed=11)
    assert len(costs) == 24 * len(generator.CHANNELS)
    assert all(c.amount_cents > 0 and c.period_start <= c.period_end for c in costs)
    assert costs == generator.channel_costs(customers=2000, seed=11)


def test_too_small_a_brand_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 50"):
        generator.generate(tmp_path, customers=10)


def test_consent_is_dated_from_joining_and_wecom_contacts_befriend_their_staff(brand: DemoFiles) -> None:
    customers = pl.read_csv(brand.customers_csv, infer_schema=False).filter(
        pl.col("姓名").str.starts_with("测试").not_()
    )
    assert (customers["短信同意"].is_null() == customers["同意时间"].is_null()).all()
    times = customers.drop_nulls("同意时间").select(
        "短信同意",
        (pl.col("同意时间").str.to_datetime() - pl.col("创建时间").str.to_datetime()).alias("after"),
        (pl.col("同意时间") == "2025-06-30 23:59:59").alias(
            "at_the_end"
        ),  # later ones wait for the window end
    )
    assert (times["after"] >= timedelta(0)).all()
    granted = times.filter(pl.col("短信同意") == "是")["after"]
    assert (granted < timedelta(minutes=10)).mean() > 0.6  # most agree when they sign up
    withdrawn = times.filter(pl.col("短信同意") == "否")
    assert ((withdrawn["after"] >= timedelta(days=3)) | withdrawn["at_the_end"]).all()

    friends = pl.read_csv(brand.wecom_friends_csv, infer_schema=False)
    assert tuple(friends.columns) == generator.WECOM_FRIEND_HEADERS and friends.height == brand.friendships
    contacts = set(customers["企微外部联系人ID"].drop_nulls())
    assert set(friends["external_userid"]) <= contacts and friends.height > len(contacts) // 2
    staff = {s.email("demo.siyu.local") for s in generator.STAFF if s.role == "staff"}
    assert set(friends["staff_email"]) <= staff
    ended = friends.drop_nulls("removed_at")
    assert ended.height == brand.ended_friendships and 0.1 < ended.height / friends.height < 0.6
    assert set(ended["removed_by"]) == {"customer", "staff"}
    assert (ended["removed_at"].str.to_datetime() > ended["added_at"].str.to_datetime()).all()
    assert friends["added_at"].str.to_datetime().max() < datetime(2025, 7, 1)  # type: ignore[operator]


def test_repeat_scale_makes_the_benchmark_brand_buy_about_ten_times(brand: DemoFiles, tmp_path: Path) -> None:
    loyal = generator.generate(tmp_path, customers=2000, seed=11, repeat_scale=2.0)
    assert loyal.persons == brand.persons
    assert 8 <= loyal.orders / loyal.persons <= 13
    assert loyal.orders > 1.8 * brand.orders
    with pytest.raises(ValueError, match="repeat_scale 9"):
        generator.generate(tmp_path, customers=2000, repeat_scale=9)
