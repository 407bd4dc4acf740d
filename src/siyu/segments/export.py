"""Writing a segment's members to CSV or Excel (xlsx), batch by batch: the API streams the CSV as it is
written, and builds the workbook in openpyxl's write-only mode (rows go to disk, not memory)."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from siyu.customers.schemas import CustomerSummary

COLUMNS = (
    "id",
    "name",
    "phone",
    "gender",
    "city",
    "created_at",
    "order_count",
    "net_revenue",
    "last_order_at",
)
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_CHUNK = 64 * 1024


def _yuan(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}.{fraction:02d}"


def row_of(member: CustomerSummary) -> list[Any]:
    """One member as export cells (money in yuan, exact; times in UTC ISO 8601)."""
    return [
        member.id,
        member.name or "",
        member.phone or "",
        member.gender,
        member.city or "",
        member.created_at.isoformat(),
        member.order_count,
        _yuan(member.net_revenue_cents),
        member.last_order_at.isoformat() if member.last_order_at else "",
    ]


def csv_chunks(batches: Iterable[list[CustomerSummary]]) -> Iterator[bytes]:
    """The CSV, UTF-8 with a BOM (Excel shows Chinese correctly), one chunk per batch of members."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(COLUMNS)
    for batch in batches:
        writer.writerows(row_of(m) for m in batch)
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    rest = buffer.getvalue()
    if rest:
        yield rest.encode("utf-8")


def write_xlsx(batches: Iterable[list[CustomerSummary]], out: IO[bytes], *, title: str = "members") -> int:
    """Write the workbook to `out`; returns the number of member rows."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=_sheet_title(title))
    sheet.append(list(COLUMNS))
    rows = 0
    for batch in batches:
        for member in batch:
            sheet.append(row_of(member))
            rows += 1
    book.save(out)
    return rows


def _sheet_title(name: str) -> str:
    cleaned = "".join(c for c in name if c not in "[]:*?/\\").strip()
    return (cleaned or "members")[:31]


def xlsx_chunks(batches: Iterable[list[CustomerSummary]], *, title: str = "members") -> Iterator[bytes]:
    """The workbook, written to a temporary file, then sent in chunks."""
    with tempfile.TemporaryFile() as spool:
        write_xlsx(batches, spool, title=title)
        spool.seek(0)
        while chunk := spool.read(_CHUNK):
            yield chunk


def chunks(file_format: str, batches: Iterable[list[CustomerSummary]], *, title: str) -> Iterator[bytes]:
    return csv_chunks(batches) if file_format == "csv" else xlsx_chunks(batches, title=title)
