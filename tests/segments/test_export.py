"""Member export of a segment: CSV and Excel with one row per current member (the count the segment
shows), streamed in batches, audited, phones masked for staff; from the API and `siyu segment export`;
tagging and untagging a segment's members; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import select
from typer.testing import CliRunner

from siyu.auth.models import Role
from siyu.cli import app
from siyu.core.audit import AuditEntry
from siyu.core.db import Database
from siyu.segments import export
from siyu.segments import service as segments
from siyu.workspaces.models import Workspace
from tests.factories import api_client, make_customer, make_member, make_order, make_tag

runner = CliRunner()


def _setup(db: Database, workspace_id: int, people: int = 7) -> tuple[int, object, object, list[int]]:
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id)
        staff = make_member(session, workspace_id=workspace_id, role=Role.STAFF)
        ids = []
        for i in range(people):
            customer = make_customer(
                session,
                workspace_id=workspace_id,
                name=f"客{i}",
                phone=f"+861380000{i:04d}",
                owner_user_id=staff.user_id if i < 2 else None,
            )
            make_order(session, workspace_id=workspace_id, customer_id=customer.id, paid_cents=1234 + i)
            ids.append(customer.id)
        make_customer(session, workspace_id=workspace_id, name="没买过")
        segment = segments.create_segment(
            session, actor=owner.actor, name="买过的客人", rule="order_count >= 1"
        )
    return segment.id, owner, staff, ids


def test_csv_and_xlsx_have_one_row_per_member_and_are_audited(db: Database, workspace_id: int) -> None:
    segment_id, owner, _, ids = _setup(db, workspace_id)
    client = api_client(db)
    answer = client.post(
        f"/api/segments/{segment_id}/export", params={"format": "csv"}, headers=owner.headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv") and answer.headers["x-rows"] == "7"
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert sorted(int(r["id"]) for r in rows) == sorted(ids)
    first = next(r for r in rows if r["name"] == "客0")
    assert first["phone"] == "+8613800000000" and first["net_revenue"] == "12.34"
    book = client.post(f"/api/segments/{segment_id}/export", params={"format": "xlsx"}, headers=owner.headers)
    assert book.status_code == 200
    sheet = load_workbook(io.BytesIO(book.content), read_only=True).active
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert table[0] == list(export.COLUMNS) and len(table) == 1 + 7
    with db.reader() as session:
        audited = session.scalars(
            select(AuditEntry.detail).where(
                AuditEntry.workspace_id == workspace_id, AuditEntry.action == "segment.exported"
            )
        ).all()
    assert [d["format"] for d in audited] == ["csv", "xlsx"] and {d["rows"] for d in audited} == {7}
    refused = client.post(
        f"/api/segments/{segment_id}/export", params={"format": "pdf"}, headers=owner.headers
    )
    assert refused.status_code == 422


def test_batches_cover_a_segment_larger_than_one_batch_and_mask_phones_for_staff(
    db: Database, workspace_id: int
) -> None:
    segment_id, owner, staff, ids = _setup(db, workspace_id)
    with db.reader() as session:
        batches = list(segments.member_batches(session, actor=owner.actor, segment_id=segment_id, batch=3))
        assert [len(b) for b in batches] == [3, 3, 1]
        assert sorted(m.id for b in batches for m in b) == sorted(ids)
        # staff see only their own customers, with masked phones
        mine = [
            m for b in segments.member_batches(session, actor=staff.actor, segment_id=segment_id) for m in b
        ]
    assert sorted(m.phone or "" for m in mine) == ["138****0000", "138****0001"]
    # staff may not download lists of people at all (as for the customer list)
    denied = api_client(db).post(f"/api/segments/{segment_id}/export", headers=staff.headers)
    assert denied.status_code == 403


def test_cli_export_and_tagging_a_segment(db: Database, workspace_id: int, tmp_path: Path) -> None:
    segment_id, owner, _, ids = _setup(db, workspace_id, people=4)
    with db.reader() as session:
        slug = session.scalar(select(Workspace.slug).where(Workspace.id == workspace_id))
    out = tmp_path / "members.xlsx"
    result = runner.invoke(
        app,
        ["segment", "export", "买过的客人", "--format", "xlsx", "--out", str(out), "--workspace", str(slug)],
    )
    assert result.exit_code == 0, result.output
    assert "4 members written" in result.output
    assert len(list(load_workbook(out, read_only=True).active.iter_rows(values_only=True))) == 5
    with db.transaction() as session:
        tag = make_tag(session, actor=owner.actor)
    client = api_client(db)
    tagged = client.post(f"/api/segments/{segment_id}/tag", json={"tag_id": tag.id}, headers=owner.headers)
    assert tagged.json()["changed"] == 4
    untagged = client.post(
        f"/api/segments/{segment_id}/untag", json={"tag_id": tag.id}, headers=owner.headers
    )
    assert untagged.json()["changed"] == 4 and sorted(ids)
