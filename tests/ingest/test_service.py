"""Import jobs end to end: a file is read, mapped, validated and loaded; rejects are reported; strict mode."""

from __future__ import annotations

import csv
from pathlib import Path

from siyu.core.db import Database
from siyu.ingest import service
from siyu.ingest.schemas import ImportKind
from tests.ingest.test_loader import counts

ORDERS_CSV = """订单号,手机号,实付金额,下单时间,订单状态
A1,13966661234,10.50,2025-03-01 10:00:00,paid
A2,13966661234,20.00,2025-03-02 10:00:00,paid
B1,13700001111,5.00,2025-03-03 10:00:00,paid
BAD1,13966661234,-3.00,2025-03-03 10:00:00,paid
"""


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_import_file_loads_good_rows_and_reports_rejects(
    db: Database, workspace_id: int, tmp_path: Path
) -> None:
    path = write(tmp_path, "orders.csv", ORDERS_CSV)
    seen: list[tuple[int, int]] = []
    reject_path = tmp_path / "rejects.csv"
    job = service.import_file(
        db,
        workspace_id=workspace_id,
        kind=ImportKind.ORDERS,
        path=path,
        reject_file=reject_path,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert (job.status, job.inserted_rows, job.rejected_rows, job.total_rows) == ("done", 3, 1, 4)
    assert seen and seen[-1][1] == 3
    assert counts(db, workspace_id)["order"] == 3
    with reject_path.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["row"], r["column"]) for r in rows] == [("5", "实付金额")]
    with db.reader() as session:
        stored = service.job_rejects(session, workspace_id=workspace_id, job_id=job.id)
        assert [(r.row_number, r.column) for r in stored] == [(5, "实付金额")]
        assert service.get_job(session, workspace_id=workspace_id, job_id=job.id).status == "done"
        assert [j.id for j in service.list_jobs(session, workspace_id=workspace_id)] == [job.id]

    before = counts(db, workspace_id)
    again = service.import_file(
        db, workspace_id=workspace_id, kind="orders", path=path, reject_file=tmp_path / "r2.csv"
    )
    assert (again.inserted_rows, again.updated_rows, again.unchanged_rows) == (0, 0, 3)
    assert counts(db, workspace_id) == before


def test_strict_import_writes_nothing(db: Database, workspace_id: int, tmp_path: Path) -> None:
    path = write(tmp_path, "orders.csv", ORDERS_CSV, encoding="gb18030")
    job = service.import_file(
        db, workspace_id=workspace_id, kind="orders", path=path, strict=True, reject_file=tmp_path / "r.csv"
    )
    assert job.status == "failed" and job.rejected_rows == 1
    assert "nothing was written" in (job.error or "")
    assert counts(db, workspace_id)["order"] == 0
    assert (tmp_path / "r.csv").exists()


def test_failure_midway_rolls_back_and_marks_job_failed(
    db: Database, workspace_id: int, tmp_path: Path
) -> None:
    path = write(tmp_path, "orders.csv", ORDERS_CSV)
    before = counts(db, workspace_id)

    def explode(done: int, total: int) -> None:
        raise RuntimeError("disk on fire")

    try:
        service.import_file(db, workspace_id=workspace_id, kind="orders", path=path, progress=explode)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the import should have failed")
    assert counts(db, workspace_id) == before
    with db.reader() as session:
        (job,) = service.list_jobs(session, workspace_id=workspace_id)
        assert job.status == "failed" and "disk on fire" in (job.error or "")


def test_import_records_inside_callers_transaction(db: Database, workspace_id: int) -> None:
    records = [
        {
            "external_id": "W1",
            "phone": "13966661234",
            "paid_cents": 1200,
            "placed_at": "2025-03-01T10:00:00+08:00",
        },
        {"external_id": "W2", "phone": "12", "paid_cents": 100, "placed_at": "2025-03-01T10:00:00+08:00"},
    ]
    with db.transaction() as session:
        job, result, rejects = service.import_records(
            session, workspace_id=workspace_id, kind="orders", records=records, source="api"
        )
    assert (job.status, result.inserted, len(rejects)) == ("done", 1, 1)
    assert rejects[0].row_number == 2
    with db.transaction() as session:
        job, result, rejects = service.import_records(
            session, workspace_id=workspace_id, kind="orders", records=records, strict=True
        )
    assert job.status == "failed" and result.inserted == 0
    assert counts(db, workspace_id)["order"] == 1


def test_preview_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orders.csv",
        ORDERS_CSV + "X9,13966661234,1,2025-03-03 10:00:00,paid\n",
    )
    preview = service.preview_file(path, "orders", {"订单状态": ""})
    assert preview["mapping"]["订单号"] == "external_id"
    assert preview["mapping"]["手机号"] == "phone"
    assert "订单状态" in preview["unmapped"]
    assert preview["total_rows"] == 5 and len(preview["rows"]) == 5
