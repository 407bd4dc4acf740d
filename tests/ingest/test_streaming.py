"""A file imported in chunks gives the store one chunk gives: rows, rejects and row numbers included."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.customers.models import Customer, CustomerRollup, Identity
from siyu.ingest import loader, reading, service
from siyu.ingest.models import ImportJob, ImportReject
from siyu.orders.models import Order, OrderLine
from siyu.workspaces import service as workspaces

# Rows of one order next to each other (A1, C1 around an empty row), one order whose rows lie far
# apart (S1: rows 10 and 13), rejects here and there (rows 4, 8, 14), a quoted cell with a comma, a
# doubled quote and a line break.
ORDERS_CSV = (
    "订单号,手机号,实付金额,下单时间,商品名称,品类\n"
    "A1,13966661234,10.00,2025-03-01 10:00:00,乌龙,tea\n"  # row 2
    "A1,13966661234,15.00,2025-03-01 10:00:00,蛋糕,cake\n"  # row 3
    "B1,13712874562,-3.00,2025-03-02 10:00:00,乌龙,tea\n"  # row 4: negative amount
    'C1,13598237461,8.00,2025-03-02 11:00:00,"茶,""特""\n别",tea\n'  # row 5 (two lines of text)
    ",,,,,\n"  # row 6: empty, skipped
    "C1,13598237461,9.00,2025-03-02 11:00:00,蛋糕,cake\n"  # row 7
    "D1,13966661234,4.00,2025-13-45 10:00:00,乌龙,tea\n"  # row 8: no such date
    "A9,13966661234,6.00,2025-03-04 10:00:00,乌龙,tea\n"  # row 9
    "S1,15087234516,1.00,2025-03-05 10:00:00,乌龙,tea\n"  # row 10
    "E1,18623984751,2.00,2025-03-05 12:00:00,蛋糕,cake\n"  # row 11
    "F1,13712874562,3.00,2025-03-06 10:00:00,乌龙,tea\n"  # row 12
    "S1,15087234516,1.50,2025-03-05 10:00:00,蛋糕,cake\n"  # row 13: S1 again, far from row 10
    "G1,,5.00,2025-03-06 10:00:00,乌龙,tea\n"  # row 14: no identity
    "H1,18791827364,7.00,2025-03-07 10:00:00,乌龙,tea\n"  # row 15
)


def new_workspace(db: Database) -> int:
    with db.transaction() as session:
        return workspaces.create_workspace(session, slug=f"s-{uuid.uuid4().hex[:10]}", name="Stream").id


def store(db: Database, workspace_id: int, job_id: int) -> dict[str, Any]:
    """The workspace's pool with surrogate ids replaced by natural keys (phones, order numbers)."""
    with db.reader() as session:
        phones: dict[int, tuple[str, ...]] = {}
        for customer_id, value in session.execute(
            select(Identity.customer_id, Identity.value).where(Identity.workspace_id == workspace_id)
        ):
            phones[customer_id] = tuple(sorted((*phones.get(customer_id, ()), value)))
        orders = {o.id: o for o in session.scalars(select(Order).where(Order.workspace_id == workspace_id))}
        lines = session.scalars(select(OrderLine).where(OrderLine.workspace_id == workspace_id))
        rollups = session.scalars(select(CustomerRollup).where(CustomerRollup.workspace_id == workspace_id))
        customers = session.scalars(select(Customer).where(Customer.workspace_id == workspace_id))
        events = session.scalars(select(DomainEvent).where(DomainEvent.workspace_id == workspace_id))
        job = session.get(ImportJob, job_id)
        assert job is not None
        rejects = session.scalars(select(ImportReject).where(ImportReject.job_id == job_id))
        return {
            "customers": sorted((phones[c.id], c.created_at, c.merged_into_id is None) for c in customers),
            "orders": sorted(
                (o.external_id, phones[o.customer_id], o.status, o.paid_cents, o.total_cents, o.placed_at)
                for o in orders.values()
            ),
            "lines": sorted(
                (orders[li.order_id].external_id, li.line_no, li.name, li.category, li.amount_cents)
                for li in lines
            ),
            "rollups": sorted(
                (
                    phones[r.customer_id],
                    r.order_count,
                    r.gross_revenue_cents,
                    r.net_revenue_cents,
                    tuple(r.categories),
                    r.first_order_at,
                    r.last_order_at,
                )
                for r in rollups
            ),
            "events": sorted((e.type, phones.get(e.customer_id or 0)) for e in events),
            "rejects": [(r.row_number, r.column, r.value, r.reason) for r in rejects],
            "job": (
                job.status,
                job.total_rows,
                job.processed_rows,
                job.inserted_rows,
                job.updated_rows,
                job.unchanged_rows,
                job.rejected_rows,
            ),
        }


def run(db: Database, path: Path, tmp_path: Path, chunk_rows: int) -> tuple[int, dict[str, Any]]:
    workspace_id = new_workspace(db)
    job = service.import_file(
        db,
        workspace_id=workspace_id,
        kind="orders",
        path=path,
        reject_file=tmp_path / f"r-{chunk_rows}.csv",
        chunk_rows=chunk_rows,
    )
    return workspace_id, store(db, workspace_id, job.id)


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_chunks_give_the_store_one_chunk_gives(
    db: Database, tmp_path: Path, encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(ORDERS_CSV.encode(encoding))
    _, whole = run(db, path, tmp_path, 50_000)
    assert whole["job"] == ("done", 13, 13, 7, 0, 0, 3)
    assert [r[:2] for r in whole["rejects"]] == [(4, "实付金额"), (8, "下单时间"), (14, "手机号")]
    assert ("S1", 1, "乌龙", "tea", 0) in whole["lines"] and ("S1", 2, "蛋糕", "cake", 0) in whole["lines"]
    assert ("C1", 1, '茶,"特"\n别', "tea", 0) in whole["lines"]
    # blocks of a few bytes: the file is also cut inside quotes, inside multi-byte characters; and the
    # orders kept for the rollups are folded into per-customer parts every two orders
    monkeypatch.setattr(reading, "_BLOCK_BYTES", 7)
    monkeypatch.setattr(loader, "_FOLD_ORDERS", 2)
    for chunk_rows in (1, 2, 3, 5):
        workspace_id, chunked = run(db, path, tmp_path, chunk_rows)
        assert chunked == whole, f"chunk_rows={chunk_rows}"
        # importing again, in chunks, changes nothing
        again = service.import_file(
            db,
            workspace_id=workspace_id,
            kind="orders",
            path=path,
            reject_file=tmp_path / "again.csv",
            chunk_rows=chunk_rows,
        )
        assert (again.inserted_rows, again.updated_rows, again.unchanged_rows) == (0, 0, 7)
        assert {k: v for k, v in store(db, workspace_id, again.id).items() if k not in ("job",)} == {
            k: v for k, v in chunked.items() if k != "job"
        }


def test_strict_import_in_chunks_writes_nothing(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS_CSV, encoding="utf-8")
    workspace_id = new_workspace(db)
    job = service.import_file(
        db,
        workspace_id=workspace_id,
        kind="orders",
        path=path,
        strict=True,
        chunk_rows=2,
        reject_file=tmp_path / "r.csv",
    )
    assert job.status == "failed"
    rows = store(db, workspace_id, job.id)
    assert rows["orders"] == [] and rows["customers"] == []
    assert [r[0] for r in rows["rejects"]] == [4, 8, 14]
