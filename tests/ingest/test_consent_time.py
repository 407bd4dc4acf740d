"""The consent time column (同意时间 → consent_at) of a customers file dates the row's consent changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from siyu.core.db import Database
from siyu.customers.models import Consent, Identity
from siyu.ingest import validation
from tests.ingest.test_end_to_end import events_of, run_import, shanghai, write_csv
from tests.ingest.test_loader import counts


def consents(db: Database, workspace_id: int) -> dict[str, list[tuple[str, datetime]]]:
    """phone -> [(status, occurred_at)] of its sms marketing consents, oldest first."""
    with db.reader() as session:
        rows = session.execute(
            select(Identity.value, Consent.status, Consent.occurred_at)
            .join(Consent, Consent.customer_id == Identity.customer_id)
            .where(
                Identity.workspace_id == workspace_id,
                Identity.kind == "phone",
                Consent.contact_channel == "sms",
            )
            .order_by(Consent.occurred_at, Consent.id)
        ).all()
    found: dict[str, list[tuple[str, datetime]]] = {}
    for phone, status, at in rows:
        found.setdefault(phone, []).append((status, at))
    return found


def test_consent_time_dates_the_consent_and_a_second_import_changes_nothing(
    db: Database, workspace_id: int, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "会员.csv",
        [
            ["手机号", "创建时间", "短信同意", "同意时间"],
            ["13912340001", "2024-03-05 14:00:00", "是", "2024-03-05 14:03:00"],
            ["13912340002", "2024-03-06 09:00:00", "否", "2024-05-01T10:00:00+08:00"],
            ["13912340003", "2024-03-07 09:00:00", "是", ""],
        ],
    )
    started = datetime.now(UTC)
    job, rejects = run_import(db, workspace_id, "customers", path)
    assert (job.status, job.inserted_rows, rejects) == ("done", 3, [])
    assert job.mapping["同意时间"] == "consent_at"
    found = consents(db, workspace_id)
    assert found["+8613912340001"] == [("granted", shanghai("2024-03-05 14:03:00"))]
    assert found["+8613912340002"] == [("withdrawn", shanghai("2024-05-01 10:00:00"))]
    # no time given: the import's time, as before the column existed
    [(status, at)] = found["+8613912340003"]
    assert status == "granted" and started - timedelta(seconds=1) <= at <= datetime.now(UTC)
    changed = sorted(e.occurred_at for e in events_of(db, workspace_id, "consent.changed"))
    assert changed[:2] == [shanghai("2024-03-05 14:03:00"), shanghai("2024-05-01 10:00:00")]

    after = counts(db, workspace_id)
    again, again_rejects = run_import(db, workspace_id, "customers", path)
    assert (again.inserted_rows, again.updated_rows, again.unchanged_rows, again_rejects) == (0, 0, 3, [])
    assert counts(db, workspace_id) == after
    assert consents(db, workspace_id) == found


def test_a_status_older_than_the_one_in_force_is_skipped(
    db: Database, workspace_id: int, tmp_path: Path
) -> None:
    header = ["手机号", "短信同意", "授权时间"]
    first = write_csv(tmp_path / "a.csv", [header, ["13912340001", "是", "2024-07-01 12:00:00"]])
    run_import(db, workspace_id, "customers", first)
    stale = write_csv(tmp_path / "b.csv", [header, ["13912340001", "否", "2024-06-01 12:00:00"]])
    newer = write_csv(tmp_path / "c.csv", [header, ["13912340001", "否", "2024-08-01 12:00:00"]])

    before = counts(db, workspace_id)
    run_import(db, workspace_id, "customers", stale)
    assert counts(db, workspace_id) == before
    run_import(db, workspace_id, "customers", newer)
    run_import(db, workspace_id, "customers", newer)
    assert consents(db, workspace_id)["+8613912340001"] == [
        ("granted", shanghai("2024-07-01 12:00:00")),
        ("withdrawn", shanghai("2024-08-01 12:00:00")),
    ]


def test_a_bad_consent_time_is_rejected_with_row_column_and_reason(
    db: Database, workspace_id: int, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "会员.csv",
        [
            ["手机号", "短信同意", "同意时间"],
            ["13912340001", "是", "2024-03-05 14:03:00"],
            ["13912340002", "是", "昨天下午"],
            ["13912340003", "是", "2099-01-01 10:00:00"],
        ],
    )
    job, rejects = run_import(db, workspace_id, "customers", path)
    assert (job.inserted_rows, job.rejected_rows) == (1, 2)
    assert rejects == [
        {"row": "3", "column": "同意时间", "value": "昨天下午", "reason": validation.TIME_REASON},
        {
            "row": "4",
            "column": "同意时间",
            "value": "2099-01-01 10:00:00",
            "reason": validation.FUTURE_REASON,
        },
    ]
    assert list(consents(db, workspace_id)) == ["+8613912340001"]
