"""Importing files end to end through `import_file` and `siyu import`: customers, orders, events, identity.

Each test writes a small file in the formats a brand really sends (Chinese headers, GBK, .xlsx, JSONL),
imports it into a fresh workspace and checks exactly what landed, what was refused, and that importing
the same file again changes nothing.
"""

from __future__ import annotations

import csv
import itertools
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl
from sqlalchemy import select
from typer.testing import CliRunner

from siyu.auth import service as auth
from siyu.auth.models import Role, User
from siyu.channels.models import Channel
from siyu.cli import app
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.customers import identity, rollups
from siyu.customers.models import Consent, Customer, CustomerRollup, Identity
from siyu.events.models import CustomerEvent
from siyu.ingest import service
from siyu.ingest.models import ImportJob
from siyu.orders.models import Order
from siyu.workspaces.models import Workspace
from tests.factories import make_channel, make_member, make_store, unique
from tests.ingest.test_loader import counts

runner = CliRunner()
_imports = itertools.count(1)
ROLLUP_COLUMNS = [c.name for c in CustomerRollup.__table__.columns if c.name != "updated_at"]
BAD_PHONE_REASON = (
    "not a valid CN mobile or E.164 phone number: "
    "expected 11 digits starting with 1[3-9], or +<country><number>"
)
OWNER_REASON = "owner is not a member of this workspace: invite them first or fix the email"
NEGATIVE_REASON = "negative amount: amounts must be 0 or more (put refunds in the refund column)"


# --- helpers ----------------------------------------------------------------------------------------


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def run_import(
    db: Database, workspace_id: int, kind: str, path: Path, *, strict: bool = False
) -> tuple[ImportJob, list[dict[str, str]]]:
    """Import through the service; returns the finished job and the rows of its reject file."""
    reject_file = path.with_name(f"{path.stem}-{next(_imports)}-rejects.csv")
    job = service.import_file(
        db, workspace_id=workspace_id, kind=kind, path=path, strict=strict, reject_file=reject_file
    )
    return job, read_rejects(reject_file)


def read_rejects(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def slug_of(db: Database, workspace_id: int) -> str:
    with db.reader() as session:
        return str(session.scalar(select(Workspace.slug).where(Workspace.id == workspace_id)))


def cli_import(db: Database, workspace_id: int, kind: str, path: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["import", kind, str(path), "--workspace", slug_of(db, workspace_id), *extra])
    return result.exit_code, result.output


def events_of(db: Database, workspace_id: int, type_: str) -> list[DomainEvent]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(DomainEvent)
                .where(DomainEvent.workspace_id == workspace_id, DomainEvent.type == type_)
                .order_by(DomainEvent.id)
            )
        )


def customer_of(db: Database, workspace_id: int, kind: str, value: str) -> int:
    with db.reader() as session:
        found = session.scalar(
            select(Identity.customer_id).where(
                Identity.workspace_id == workspace_id, Identity.kind == kind, Identity.value == value
            )
        )
    assert found is not None, f"no customer holds {kind}={value}"
    return int(found)


def live_customers(db: Database, workspace_id: int) -> list[int]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(Customer.id)
                .where(Customer.workspace_id == workspace_id, Customer.merged_into_id.is_(None))
                .order_by(Customer.id)
            )
        )


def rollup_rows(db: Database, workspace_id: int) -> dict[int, tuple[Any, ...]]:
    with db.reader() as session:
        rows = session.scalars(select(CustomerRollup).where(CustomerRollup.workspace_id == workspace_id))
        return {r.customer_id: tuple(getattr(r, c) for c in ROLLUP_COLUMNS) for r in rows}


def rollup(db: Database, customer_id: int) -> CustomerRollup:
    with db.reader() as session:
        row = session.get(CustomerRollup, customer_id)
        assert row is not None
        return row


def shanghai(text: str) -> datetime:
    """A wall-clock time in Asia/Shanghai (the default workspace zone) as the UTC instant stored."""
    naive = datetime.fromisoformat(text)
    return naive.replace(tzinfo=UTC) - (datetime(2000, 1, 1, 8) - datetime(2000, 1, 1))


# --- 1 and 2: customers from CSV and from Excel -----------------------------------------------------

CUSTOMER_HEADER = ["手机号", "姓名", "性别", "生日", "城市", "渠道", "负责人", "会员等级", "短信同意"]


def customer_setup(db: Database, workspace_id: int) -> tuple[str, int, int]:
    """An owner (email, user id) and the douyin channel (alias 抖音) in the workspace."""
    with db.transaction() as session:
        email = f"{unique('li.na.')}@brand.cn"
        user = auth.create_user(session, email=email, password="password-123", display_name="李娜")
        auth.add_member(session, workspace_id=workspace_id, user_id=user.id, role=Role.STAFF)
        channel = make_channel(session, workspace_id=workspace_id, key="douyin", aliases=["抖音"])
        return email, user.id, channel.id


def customer_rows(owner_email: str) -> list[list[str]]:
    return [
        CUSTOMER_HEADER,
        ["13912340001", "张三", "男", "1990-05-01", "上海", "douyin", owner_email, "金卡", "是"],
        ["139-1234-0002", "李四", "女", "1985/12/31", "杭州", "抖音", owner_email.upper(), "银卡", "否"],
        ["1391234000", "坏号码", "男", "1991-01-01", "上海", "douyin", owner_email, "金卡", "是"],
        ["13912340004", "赵六", "女", "1992-02-02", "北京", "douyin", "someone@brand.cn", "金卡", "是"],
        ["+86 139 1234 0005", "王五", "保密", "", "北京", "", "", "", ""],
    ]


def profile_by_phone(db: Database, workspace_id: int) -> dict[str, tuple[Any, ...]]:
    """(name, gender, birthday, city, attributes, owner user, first channel key, sms consent) per phone."""
    with db.reader() as session:
        rows = session.execute(
            select(Identity.value, Customer, Channel.key)
            .join(Customer, Customer.id == Identity.customer_id)
            .outerjoin(Channel, Channel.id == Customer.first_channel_id)
            .where(Identity.workspace_id == workspace_id, Identity.kind == "phone")
        ).all()
        consent = {
            cid: status
            for cid, status in session.execute(
                select(Consent.customer_id, Consent.status).where(
                    Consent.workspace_id == workspace_id,
                    Consent.contact_channel == "sms",
                    Consent.purpose == "marketing",
                )
            )
        }
        return {
            phone: (
                c.name,
                c.gender,
                c.birthday,
                c.city,
                c.attributes,
                c.owner_user_id,
                key,
                consent.get(c.id),
            )
            for phone, c, key in rows
        }


def expected_profiles(owner_id: int) -> dict[str, tuple[Any, ...]]:
    return {
        "+8613912340001": (
            "张三",
            "male",
            date(1990, 5, 1),
            "上海",
            {"会员等级": "金卡"},
            owner_id,
            "douyin",
            "granted",
        ),
        "+8613912340002": (
            "李四",
            "female",
            date(1985, 12, 31),
            "杭州",
            {"会员等级": "银卡"},
            owner_id,
            "douyin",
            "withdrawn",
        ),
        "+8613912340005": ("王五", "unknown", None, "北京", {}, None, None, None),
    }


EXPECTED_CUSTOMER_REJECTS = [
    {"row": "4", "column": "手机号", "value": "1391234000", "reason": BAD_PHONE_REASON},
    {"row": "5", "column": "负责人", "value": "someone@brand.cn", "reason": OWNER_REASON},
]


def test_customers_csv_with_chinese_headers(db: Database, workspace_id: int, tmp_path: Path) -> None:
    owner_email, owner_id, _channel_id = customer_setup(db, workspace_id)
    path = write_csv(tmp_path / "会员.csv", customer_rows(owner_email))

    job, rejects = run_import(db, workspace_id, "customers", path)
    assert (job.status, job.total_rows, job.inserted_rows, job.rejected_rows) == ("done", 5, 3, 2)
    assert job.mapping["会员等级"] == "attr:会员等级" and job.mapping["短信同意"] == "consent:sms"
    assert rejects == EXPECTED_CUSTOMER_REJECTS
    assert profile_by_phone(db, workspace_id) == expected_profiles(owner_id)
    after = counts(db, workspace_id)
    assert (after["customer"], after["identity"], after["consent"], after["rollup"]) == (3, 3, 2, 3)
    assert len(events_of(db, workspace_id, "customer.created")) == 3
    assert len(events_of(db, workspace_id, "consent.changed")) == 2

    again, again_rejects = run_import(db, workspace_id, "customers", path)
    assert (again.inserted_rows, again.updated_rows, again.unchanged_rows) == (0, 0, 3)
    assert again.rejected_rows == 2
    assert again_rejects == EXPECTED_CUSTOMER_REJECTS
    assert counts(db, workspace_id) == after


def test_customers_xlsx_gives_the_same_customers(db: Database, workspace_id: int, tmp_path: Path) -> None:
    owner_email, owner_id, _channel_id = customer_setup(db, workspace_id)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(CUSTOMER_HEADER)
    sheet.append([13912340001, "张三", "男", date(1990, 5, 1), "上海", "douyin", owner_email, "金卡", "是"])
    sheet.append(
        ["139-1234-0002", "李四", "女", datetime(1985, 12, 31), "杭州", "抖音", owner_email, "银卡", "否"]
    )
    sheet.append([1391234000, "坏号码", "男", date(1991, 1, 1), "上海", "douyin", owner_email, "金卡", "是"])
    sheet.append(
        [13912340004, "赵六", "女", date(1992, 2, 2), "北京", "douyin", "someone@brand.cn", "金卡", "是"]
    )
    sheet.append(["+86 139 1234 0005", "王五", "保密", None, "北京", None, None, None, None])
    xlsx = tmp_path / "会员.xlsx"
    book.save(xlsx)

    job, rejects = run_import(db, workspace_id, "customers", xlsx)

    assert (job.status, job.total_rows, job.inserted_rows, job.rejected_rows) == ("done", 5, 3, 2)
    assert [(r["row"], r["column"], r["value"]) for r in rejects] == [
        ("4", "手机号", "1391234000"),
        ("5", "负责人", "someone@brand.cn"),
    ]
    assert profile_by_phone(db, workspace_id) == expected_profiles(owner_id)
    # the CSV of the same people, imported after the workbook, finds nothing to change
    before = counts(db, workspace_id)
    csv_job, _ = run_import(
        db, workspace_id, "customers", write_csv(tmp_path / "c.csv", customer_rows(owner_email))
    )
    assert (csv_job.inserted_rows, csv_job.updated_rows, csv_job.unchanged_rows) == (0, 0, 3)
    assert counts(db, workspace_id) == before


# --- 3: orders in GBK, then refunds and status changes ----------------------------------------------

ORDERS_FIRST = """订单号,手机号,实付金额,退款金额,下单时间,订单状态,渠道,门店,商品名称,品类,数量
A1,13912340001,32.00,,2025-03-01 10:00:00,已支付,抖音,sh-01,珍珠奶茶,茶饮,2
A2,13912340001,￥18.50,,2025/3/2 12:30,交易成功,douyin,SH-01,芝士蛋糕,甜品,1
B1,13912340002,10,,2025-03-03 09:00:00,已付款,抖音,SH-01,柠檬茶,茶饮,1
"""
# a later export of the same shop: A1 partly refunded, B1 cancelled
ORDERS_LATER = """订单号,手机号,实付金额,退款金额,下单时间,订单状态,渠道,门店,商品名称,品类,数量
A1,13912340001,32.00,12.00,2025-03-01 10:00:00,已支付,抖音,SH-01,珍珠奶茶,茶饮,2
B1,13912340002,10,,2025-03-03 09:00:00,已取消,抖音,SH-01,柠檬茶,茶饮,1
"""


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def order_rows(db: Database, workspace_id: int) -> dict[str, tuple[Any, ...]]:
    """(customer, status, paid, refunded, channel, store) per order number."""
    with db.reader() as session:
        return {
            o.external_id: (o.customer_id, o.status, o.paid_cents, o.refunded_cents, o.channel_id, o.store_id)
            for o in session.scalars(select(Order).where(Order.workspace_id == workspace_id))
        }


def test_orders_gbk_then_refund_and_status_change(db: Database, workspace_id: int, tmp_path: Path) -> None:
    with db.transaction() as session:
        channel_id = make_channel(session, workspace_id=workspace_id, key="douyin", aliases=["抖音"]).id
        store_id = make_store(session, workspace_id=workspace_id, code="SH-01").id
    first = write_text(tmp_path / "订单.csv", ORDERS_FIRST, encoding="gbk")
    code, output = cli_import(db, workspace_id, "orders", first, "--reject-file", str(tmp_path / "r1.csv"))
    assert code == 0, output
    assert "inserted 3, updated 0, unchanged 0, rejected 0 of 3 rows" in output
    with db.reader() as session:
        (job,) = service.list_jobs(session, workspace_id=workspace_id)
        assert job.encoding.lower() in ("gbk", "gb18030")
        placed_a2 = session.scalar(
            select(Order.placed_at).where(Order.workspace_id == workspace_id, Order.external_id == "A2")
        )
    a = customer_of(db, workspace_id, "phone", "+8613912340001")
    b = customer_of(db, workspace_id, "phone", "+8613912340002")
    assert order_rows(db, workspace_id) == {
        "A1": (a, "paid", 3200, 0, channel_id, store_id),
        "A2": (a, "paid", 1850, 0, channel_id, store_id),
        "B1": (b, "paid", 1000, 0, channel_id, store_id),
    }
    assert placed_a2 == shanghai("2025-03-02 12:30:00")
    ra = rollup(db, a)
    assert (ra.order_count, ra.net_revenue_cents, ra.avg_order_value_cents) == (2, 5050, 2525)
    assert (ra.first_order_at, ra.last_order_at) == (
        shanghai("2025-03-01 10:00:00"),
        shanghai("2025-03-02 12:30:00"),
    )
    assert (ra.categories, ra.first_channel_id, ra.last_channel_id) == (
        ["甜品", "茶饮"],
        channel_id,
        channel_id,
    )
    assert len(events_of(db, workspace_id, "order.placed")) == 3

    later = write_text(tmp_path / "订单-退款.csv", ORDERS_LATER, encoding="gbk")
    code, output = cli_import(db, workspace_id, "orders", later, "--reject-file", str(tmp_path / "r2.csv"))
    assert code == 0, output
    assert "inserted 0, updated 2, unchanged 0, rejected 0 of 2 rows" in output
    assert order_rows(db, workspace_id) == {
        "A1": (a, "partially_refunded", 3200, 1200, channel_id, store_id),
        "A2": (a, "paid", 1850, 0, channel_id, store_id),
        "B1": (b, "cancelled", 1000, 0, channel_id, store_id),
    }
    ra, rb = rollup(db, a), rollup(db, b)
    assert (ra.order_count, ra.gross_revenue_cents, ra.refunded_cents, ra.net_revenue_cents) == (
        2,
        5050,
        1200,
        3850,
    )
    assert ra.avg_order_value_cents == 1925
    assert (rb.order_count, rb.net_revenue_cents, rb.first_order_at, rb.categories) == (0, 0, None, [])
    refunded = events_of(db, workspace_id, "order.refunded")
    assert [(e.customer_id, e.payload.get("external_id")) for e in refunded] == [(a, "A1")]

    before = counts(db, workspace_id)
    code, output = cli_import(db, workspace_id, "orders", later, "--reject-file", str(tmp_path / "r3.csv"))
    assert code == 0, output
    assert "inserted 0, updated 0, unchanged 2, rejected 0 of 2 rows" in output
    assert counts(db, workspace_id) == before
    assert rollup(db, a).net_revenue_cents == 3850


# --- 4: events from JSON lines ----------------------------------------------------------------------


def test_events_jsonl_attach_by_identity_and_dedupe(db: Database, workspace_id: int, tmp_path: Path) -> None:
    people = write_text(
        tmp_path / "people.csv", "手机号,会员号,姓名\n13912340001,M-001,张三\n13912340002,M-002,李四\n"
    )
    run_import(db, workspace_id, "customers", people)
    a = customer_of(db, workspace_id, "phone", "+8613912340001")
    b = customer_of(db, workspace_id, "phone", "+8613912340002")
    lines = [
        {
            "event_id": "E1",
            "type": "page_view",
            "time": "2025-03-05 10:00:00",
            "phone": "13912340001",
            "page": "/menu",
        },
        {"event_id": "E2", "type": "coupon_used", "time": "2025-03-06T08:00:00+08:00", "member_id": "M-001"},
        {"type": "check_in", "time": "2025-03-04 09:00:00", "member_id": "M-002", "store": "SH-01"},
        {"type": "check_in", "time": "2025-03-07 09:00:00", "phone": "139 1234 0002", "store": "SH-01"},
    ]
    path = write_text(
        tmp_path / "events.jsonl", "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    )

    job, rejects = run_import(db, workspace_id, "events", path)

    assert (job.status, job.inserted_rows, job.rejected_rows, rejects) == ("done", 4, 0, [])
    with db.reader() as session:
        stored = [
            (e.type, e.customer_id, e.occurred_at, e.properties)
            for e in session.scalars(
                select(CustomerEvent)
                .where(CustomerEvent.workspace_id == workspace_id)
                .order_by(CustomerEvent.occurred_at)
            )
        ]
    assert stored == [
        ("check_in", b, shanghai("2025-03-04 09:00:00"), {"store": "SH-01"}),
        ("page_view", a, shanghai("2025-03-05 10:00:00"), {"page": "/menu"}),
        ("coupon_used", a, shanghai("2025-03-06 08:00:00"), {}),
        ("check_in", b, shanghai("2025-03-07 09:00:00"), {"store": "SH-01"}),
    ]
    assert counts(db, workspace_id)["customer"] == 2
    assert rollup(db, a).last_event_at == shanghai("2025-03-06 08:00:00")
    assert rollup(db, b).last_event_at == shanghai("2025-03-07 09:00:00")

    before = counts(db, workspace_id)
    again, _ = run_import(db, workspace_id, "events", path)
    assert (again.inserted_rows, again.unchanged_rows) == (0, 4)
    assert counts(db, workspace_id) == before

    # a later event moves last_event_at; the re-sent ones still change nothing
    later = {"type": "page_view", "time": "2025-03-08 20:00:00", "member_id": "M-001", "page": "/cart"}
    more = [*lines, later]
    path2 = write_text(tmp_path / "events2.jsonl", "".join(json.dumps(line) + "\n" for line in more))
    third, _ = run_import(db, workspace_id, "events", path2)
    assert (third.inserted_rows, third.unchanged_rows) == (1, 4)
    assert counts(db, workspace_id)["event"] == before["event"] + 1
    assert rollup(db, a).last_event_at == shanghai("2025-03-08 20:00:00")


# --- 5 and 6: a file linking two customers: merge and unmerge; a conflicting unionid: review ---------


def test_order_linking_two_customers_merges_and_unmerge_restores(
    db: Database, workspace_id: int, tmp_path: Path
) -> None:
    first = write_text(
        tmp_path / "o1.csv",
        "订单号,手机号,会员号,实付金额,下单时间,品类\n"
        "O1,13912340001,,10.00,2025-03-01 10:00:00,茶饮\n"
        "O2,,M-002,20.00,2025-03-02 10:00:00,甜品\n",
    )
    run_import(db, workspace_id, "orders", first)
    a = customer_of(db, workspace_id, "phone", "+8613912340001")
    b = customer_of(db, workspace_id, "shop_member_id", "M-002")
    assert a != b and live_customers(db, workspace_id) == sorted([a, b])
    before_merge = rollup_rows(db, workspace_id)

    linking = write_text(
        tmp_path / "o2.csv",
        "订单号,手机号,会员号,实付金额,下单时间,品类\nO3,139-1234-0001,M-002,5.00,2025-03-03 10:00:00,茶饮\n",
    )
    job, rejects = run_import(db, workspace_id, "orders", linking)
    assert (job.status, job.inserted_rows, rejects) == ("done", 1, [])
    # A is the older customer (its first order came first): B merges into A
    assert live_customers(db, workspace_id) == [a]
    assert customer_of(db, workspace_id, "shop_member_id", "M-002") == a
    with db.reader() as session:
        (log,) = identity.list_merges(session, workspace_id=workspace_id)
        assert (log.survivor_id, log.merged_id, log.undone_at) == (a, b, None)
        merged = session.get(Customer, b)
        assert merged is not None and merged.merged_into_id == a
        assert session.get(CustomerRollup, b) is None
        log_id = log.id
    merged_events = events_of(db, workspace_id, "identity.merged")
    assert [(e.customer_id, e.payload["merged_id"], e.payload["merge_log_id"]) for e in merged_events] == [
        (a, b, log_id)
    ]
    ra = rollup(db, a)
    assert (ra.order_count, ra.net_revenue_cents, ra.categories) == (3, 3500, ["甜品", "茶饮"])

    # importing the linking file again merges nothing more
    again, _ = run_import(db, workspace_id, "orders", linking)
    assert again.unchanged_rows == 1
    assert counts(db, workspace_id)["merge"] == 1 and len(events_of(db, workspace_id, "identity.merged")) == 1

    with db.transaction() as session:
        identity.unmerge(session, workspace_id=workspace_id, merge_log_id=log_id, actor_user_id=None)
    assert live_customers(db, workspace_id) == sorted([a, b])
    assert customer_of(db, workspace_id, "shop_member_id", "M-002") == b
    assert customer_of(db, workspace_id, "phone", "+8613912340001") == a
    # O3 landed after the merge, on A: it stays there; O2 goes back to B
    assert {k: v[0] for k, v in order_rows(db, workspace_id).items()} == {"O1": a, "O2": b, "O3": a}
    refreshed = rollup_rows(db, workspace_id)
    assert refreshed[b] == before_merge[b]
    assert (rollup(db, a).order_count, rollup(db, a).net_revenue_cents) == (2, 1500)
    with db.transaction() as session:
        assert rollups.rebuild_rollups(session, workspace_id=workspace_id) == 2
    assert rollup_rows(db, workspace_id) == refreshed
    assert len(events_of(db, workspace_id, "identity.unmerged")) == 2


def test_conflicting_unionid_is_flagged_not_merged(db: Database, workspace_id: int, tmp_path: Path) -> None:
    people = write_text(
        tmp_path / "people.csv",
        "手机号,unionid,姓名\n13912340001,ox-UNION-X,张三\n13912340002,ox-UNION-Y,李四\n",
    )
    run_import(db, workspace_id, "customers", people)
    a = customer_of(db, workspace_id, "wechat_unionid", "ox-UNION-X")
    b = customer_of(db, workspace_id, "wechat_unionid", "ox-UNION-Y")
    # A's phone with B's unionid: two different unionids cannot be one person
    clash = write_text(
        tmp_path / "clash.csv",
        "订单号,手机号,unionid,实付金额,下单时间\nC1,13912340001,ox-UNION-Y,9.90,2025-03-01 10:00:00\n",
    )

    job, rejects = run_import(db, workspace_id, "orders", clash)

    assert (job.status, job.inserted_rows, rejects) == ("done", 1, [])
    assert live_customers(db, workspace_id) == sorted([a, b])
    assert customer_of(db, workspace_id, "phone", "+8613912340001") == a
    after = counts(db, workspace_id)
    assert (after["customer"], after["identity"], after["merge"], after["review"]) == (2, 4, 0, 1)
    with db.reader() as session:
        (review,) = identity.list_reviews(session, workspace_id=workspace_id)
        assert (review.customer_a_id, review.customer_b_id, review.status) == (min(a, b), max(a, b), "open")
        assert review.evidence["kind"] == "wechat_unionid"
        # the order goes to the customer of the strongest key it carries: the unionid's
        assert session.scalar(select(Order.customer_id).where(Order.workspace_id == workspace_id)) == b
    flagged = events_of(db, workspace_id, "identity.conflict_flagged")
    assert sorted(e.customer_id for e in flagged) == sorted([a, b])

    again, _ = run_import(db, workspace_id, "orders", clash)
    assert again.unchanged_rows == 1
    assert counts(db, workspace_id) == after
    assert len(events_of(db, workspace_id, "identity.conflict_flagged")) == 2
    # the same clash in a new order is still the same pair: not flagged a second time
    other = write_text(
        tmp_path / "clash2.csv",
        "订单号,手机号,unionid,实付金额,下单时间\nC2,13912340001,ox-UNION-Y,5.00,2025-03-02 10:00:00\n",
    )
    run_import(db, workspace_id, "orders", other)
    assert counts(db, workspace_id)["review"] == 1
    assert live_customers(db, workspace_id) == sorted([a, b])


# --- 7: --strict --------------------------------------------------------------------------------------

STRICT_ORDERS = """订单号,手机号,实付金额,下单时间
S1,13912340001,10.00,2025-03-01 10:00:00
S2,13912340002,-3.50,2025-03-01 11:00:00
S3,13912340003,8.00,2025-03-01 12:00:00
"""


def test_strict_writes_nothing_and_default_lands_good_rows(
    db: Database, workspace_id: int, tmp_path: Path
) -> None:
    path = write_text(tmp_path / "orders.csv", STRICT_ORDERS)
    before = counts(db, workspace_id)
    strict_rejects = tmp_path / "strict-rejects.csv"

    code, output = cli_import(
        db, workspace_id, "orders", path, "--strict", "--reject-file", str(strict_rejects)
    )

    assert code == 1, output
    assert "strict import: 1 rows rejected, nothing was written" in output
    assert counts(db, workspace_id) == before
    expected = [{"row": "3", "column": "实付金额", "value": "-3.50", "reason": NEGATIVE_REASON}]
    assert read_rejects(strict_rejects) == expected
    with db.reader() as session:
        (job,) = service.list_jobs(session, workspace_id=workspace_id)
        assert (job.status, job.strict, job.rejected_rows, job.inserted_rows) == ("failed", True, 1, 0)

    rejects = tmp_path / "rejects.csv"
    code, output = cli_import(db, workspace_id, "orders", path, "--reject-file", str(rejects))
    assert code == 0, output
    assert "inserted 2, updated 0, unchanged 0, rejected 1 of 3 rows" in output
    assert read_rejects(rejects) == expected
    assert sorted(order_rows(db, workspace_id)) == ["S1", "S3"]
    after = counts(db, workspace_id)
    assert (after["order"], after["customer"]) == (2, 2)


def test_strict_refuses_rows_found_bad_while_loading(db: Database, workspace_id: int, tmp_path: Path) -> None:
    """An unknown owner is only found while loading: strict still writes nothing."""
    path = write_text(
        tmp_path / "people.csv", "手机号,姓名,负责人\n13912340001,张三,\n13912340002,李四,someone@brand.cn\n"
    )
    before = counts(db, workspace_id)
    job, rejects = run_import(db, workspace_id, "customers", path, strict=True)
    assert (job.status, job.rejected_rows) == ("failed", 1)
    assert rejects == [{"row": "3", "column": "负责人", "value": "someone@brand.cn", "reason": OWNER_REASON}]
    assert counts(db, workspace_id) == before


# --- 8: junk identities -----------------------------------------------------------------------------


def test_junk_identities_never_merge_customers(db: Database, workspace_id: int, tmp_path: Path) -> None:
    with db.transaction() as session:
        workspace = session.get(Workspace, workspace_id)
        assert workspace is not None
        # the shop's own service number, printed on every order
        workspace.identity_denylist = ["139-1111-2222"]
    path = write_text(
        tmp_path / "people.csv",
        "手机号,会员号,邮箱,姓名\n"
        "13800000000,M-1,,甲\n"
        "13800000000,M-2,,乙\n"
        "null,M-3,null,丙\n"
        "NULL,M-4,null,丁\n"
        "13911112222,M-5,,戊\n"
        "+86 139 1111 2222,M-6,,己\n"
        "13912340007,null,test@test.com,庚\n"
        "13912340008,NULL,test@test.com,辛\n"
        "13800000000,null,,壬\n",
    )

    job, rejects = run_import(db, workspace_id, "customers", path)

    assert (job.inserted_rows, job.rejected_rows) == (8, 1)
    assert [(r["row"], r["reason"].split(":")[0]) for r in rejects] == [("10", "no usable identity")]
    assert len(live_customers(db, workspace_id)) == 8
    with db.reader() as session:
        stored = sorted(
            session.execute(
                select(Identity.kind, Identity.value).where(Identity.workspace_id == workspace_id)
            ).tuples()
        )
    assert stored == sorted(
        [("shop_member_id", f"M-{n}") for n in range(1, 7)]
        + [("phone", "+8613912340007"), ("phone", "+8613912340008")]
    )

    # the same junk in orders of two of these people links nobody either
    orders = write_text(
        tmp_path / "orders.csv",
        "订单号,手机号,会员号,实付金额,下单时间\n"
        "J1,13800000000,M-1,1.00,2025-03-01 10:00:00\n"
        "J2,13800000000,M-2,1.00,2025-03-01 10:00:00\n"
        "J3,13911112222,M-5,1.00,2025-03-01 10:00:00\n"
        "J4,13911112222,M-6,1.00,2025-03-01 10:00:00\n",
    )
    run_import(db, workspace_id, "orders", orders)
    assert len(live_customers(db, workspace_id)) == 8
    after = counts(db, workspace_id)
    assert (after["merge"], after["review"], after["identity"]) == (0, 0, 8)
    owners = {k: v[0] for k, v in order_rows(db, workspace_id).items()}
    assert len(set(owners.values())) == 4


# --- what a later file leaves alone, and owners whose email looks like a placeholder ---------------


def test_refund_file_without_channel_columns_keeps_channel_and_store(
    db: Database, workspace_id: int, tmp_path: Path
) -> None:
    with db.transaction() as session:
        channel_id = make_channel(session, workspace_id=workspace_id, key="douyin").id
        store_id = make_store(session, workspace_id=workspace_id, code="SH-01").id
    first = write_text(
        tmp_path / "orders.csv",
        "订单号,手机号,实付金额,下单时间,渠道,门店\nA1,13912340001,10.00,2025-03-01 10:00:00,douyin,SH-01\n",
    )
    run_import(db, workspace_id, "orders", first)
    refunds = write_text(
        tmp_path / "refunds.csv",
        "订单号,手机号,实付金额,退款金额,下单时间\nA1,13912340001,10.00,3.00,2025-03-01 10:00:00\n",
    )
    run_import(db, workspace_id, "orders", refunds)
    a = customer_of(db, workspace_id, "phone", "+8613912340001")
    assert order_rows(db, workspace_id) == {"A1": (a, "partially_refunded", 1000, 300, channel_id, store_id)}
    assert rollup(db, a).first_channel_id == channel_id


def test_owner_email_at_a_placeholder_domain_is_still_the_owner(
    db: Database, workspace_id: int, tmp_path: Path
) -> None:
    """Placeholder emails are junk as identities; an owner is a member, whatever their address."""
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id, role="staff")
        user = session.get(User, owner.user_id)
        assert user is not None and user.email.endswith("@example.com")
        owner_email = user.email
    path = write_text(tmp_path / "people.csv", f"手机号,负责人\n13912340001,{owner_email}\n")
    job, rejects = run_import(db, workspace_id, "customers", path)
    assert (job.inserted_rows, rejects) == (1, [])
    with db.reader() as session:
        customer = session.get(Customer, customer_of(db, workspace_id, "phone", "+8613912340001"))
        assert customer is not None and customer.owner_user_id == owner.user_id
