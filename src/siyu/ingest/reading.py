"""Reading an import file (CSV, Excel .xlsx, JSONL) into string columns, whatever its encoding.

Nothing is interpreted here: every cell stays text (or null when empty) so that mapping and validation
see exactly what the file held, with the row number a spreadsheet would show.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Literal

import polars as pl
from charset_normalizer import from_bytes

from siyu.core.errors import ValidationFailed

ROW_NUMBER = "row_number"
FileFormat = Literal["csv", "xlsx", "jsonl"]
_SNIFF_DELIMITERS = (",", "\t", ";")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass
class RawTable:
    """A file's cells as text: `rows` holds one Utf8 column per header plus `row_number` (Int64)."""

    columns: list[str]
    rows: pl.DataFrame
    encoding: str
    format: FileFormat

    @property
    def height(self) -> int:
        return self.rows.height


def read_table(source: Path | bytes, *, filename: str | None = None) -> RawTable:
    """Read a CSV / .xlsx / JSONL file into a `RawTable`.

    The format comes from the file name's extension (`filename`, or the path's), else from the content.
    Text encodings: UTF-8 (with or without BOM), UTF-16 with BOM, then GBK / GB18030 — the encoding of
    Chinese Excel exports — when the bytes are not UTF-8, and as a last resort charset-normalizer's guess.
    Empty files, header-only files and malformed lines raise `ValidationFailed` saying where and how to fix.
    """
    if isinstance(source, Path):
        name = filename or source.name
        data = source.read_bytes()
    else:
        name = filename or ""
        data = source
    fmt = _detect_format(name, data)
    if fmt == "xlsx":
        return _read_xlsx(data, name)
    text_bytes, encoding = _to_utf8(data, name)
    if fmt == "jsonl":
        return _read_jsonl(text_bytes, encoding, name)
    return _read_csv(text_bytes, encoding, name)


def _detect_format(name: str, data: bytes) -> FileFormat:
    suffix = Path(name).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if suffix == ".xls":
        raise ValidationFailed(
            "old Excel .xls files cannot be read",
            where=name,
            hint="open it in Excel or WPS and save it as .xlsx or CSV",
        )
    if data[:4] == b"PK\x03\x04":
        return "xlsx"
    if data.lstrip(_UTF8_BOM + b" \t\r\n")[:1] == b"{":
        return "jsonl"
    return "csv"


def _to_utf8(data: bytes, name: str) -> tuple[bytes, str]:
    """The bytes as UTF-8 without BOM, and the name of the encoding they came in."""
    if not data.strip(_UTF8_BOM + b" \t\r\n"):
        raise ValidationFailed("the file is empty", where=name or None, hint="export the data again")
    if data.startswith(_UTF8_BOM):
        return data[len(_UTF8_BOM) :], "utf-8-sig"
    if data[:2] in _UTF16_BOMS:
        return data.decode("utf-16").encode("utf-8"), "utf-16"
    try:
        data.decode("utf-8")
        return data, "utf-8"
    except UnicodeDecodeError:
        pass
    # Not UTF-8: in this market that almost always means a Chinese Windows/Excel export. GBK is tried
    # first only to name it precisely; GB18030 is its superset and decodes whatever GBK cannot.
    for encoding in ("gbk", "gb18030"):
        try:
            return data.decode(encoding).encode("utf-8"), encoding
        except UnicodeDecodeError:
            continue
    best = from_bytes(data[:200_000]).best()
    if best is not None and best.encoding:
        try:
            return data.decode(best.encoding).encode("utf-8"), best.encoding
        except (UnicodeDecodeError, LookupError):
            pass
    raise ValidationFailed(
        "the file's text encoding could not be recognised",
        where=name or None,
        hint="save it as CSV UTF-8 (Excel: Save As → CSV UTF-8)",
    )


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in _SNIFF_DELIMITERS}
    best = max(_SNIFF_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _where(name: str, location: str) -> str:
    return f"{name} {location}" if name else location


def _check_header(columns: list[str], name: str) -> None:
    if ROW_NUMBER in columns:
        raise ValidationFailed(
            f"a column is named {ROW_NUMBER!r}, which is reserved for the row number",
            where=_where(name, "row 1"),
            hint="rename that column",
        )
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise ValidationFailed(
                f"two columns are both named {column!r}",
                where=_where(name, "row 1"),
                hint="rename one of them so that every header is distinct",
            )
        seen.add(column)


def _finish(frame: pl.DataFrame, columns: list[str], encoding: str, fmt: FileFormat, name: str) -> RawTable:
    """Drop rows with no value at all (spreadsheets leave them behind) and refuse a table without data."""
    if columns:
        frame = frame.filter(pl.any_horizontal(pl.col(columns).is_not_null()))
    if frame.height == 0:
        raise ValidationFailed(
            "the file has a header but no data rows",
            where=name or None,
            hint="add rows below the header, or check that the right sheet/file was exported",
        )
    return RawTable(columns=columns, rows=frame, encoding=encoding, format=fmt)


def _read_csv(data: bytes, encoding: str, name: str) -> RawTable:
    first_line = data.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    if not first_line.strip():
        raise ValidationFailed(
            "the first line is empty; it must hold the column headers",
            where=_where(name, "line 1"),
            hint="delete the empty lines above the header",
        )
    delimiter = _sniff_delimiter(first_line)
    # polars silently renames a repeated header; look at the header ourselves to say so instead
    _check_header([c.strip() for c in next(csv.reader([first_line.rstrip("\r")], delimiter=delimiter))], name)
    try:
        frame = pl.read_csv(
            io.BytesIO(data),
            separator=delimiter,
            has_header=True,
            infer_schema=False,
            quote_char='"',
            raise_if_empty=True,
        )
    except pl.exceptions.NoDataError as exc:
        raise ValidationFailed("the file is empty", where=name or None, hint="export the data again") from exc
    except pl.exceptions.PolarsError as exc:
        raise ValidationFailed(
            f"the CSV file could not be read: {str(exc).splitlines()[0]}",
            where=name or None,
            hint="check that every line has as many fields as the header and that quotes are closed",
        ) from exc
    columns = [c.strip() for c in frame.columns]
    frame.columns = columns
    _check_header(columns, name)
    # header is spreadsheet row 1, so the first data row is row 2
    frame = frame.with_columns(pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias(ROW_NUMBER))
    return _finish(frame, columns, encoding, "csv", name)


def cell_text(value: object) -> str | None:
    """A spreadsheet or JSON value as the text a person would read; None when empty."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # phone numbers and order numbers are often stored as numbers: no ".0" on whole values
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _read_xlsx(data: bytes, name: str) -> RawTable:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ValidationFailed(
            "the Excel file could not be opened",
            where=name or None,
            hint="save it again as .xlsx (Excel 2007 or later), or export CSV",
        ) from exc
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header_cells = next(rows, None)
        header = [cell_text(v) for v in header_cells] if header_cells else []
        while header and header[-1] is None:
            header.pop()
        if not header:
            raise ValidationFailed(
                "the first sheet's row 1 is empty; it must hold the column headers",
                where=_where(name, "row 1"),
                hint="put the headers in row 1 of the first sheet",
            )
        columns = [h.strip() if h else f"column {i + 1}" for i, h in enumerate(header)]
        _check_header(columns, name)
        width = len(columns)
        values: list[list[str | None]] = [[] for _ in range(width)]
        numbers: list[int] = []
        for row_number, cells in enumerate(rows, start=2):
            texts = [cell_text(v) for v in cells[:width]]
            if not any(t is not None for t in texts):
                continue
            texts.extend([None] * (width - len(texts)))
            for i, text in enumerate(texts):
                values[i].append(text)
            numbers.append(row_number)
    finally:
        workbook.close()
    frame = pl.DataFrame(
        {**{c: pl.Series(c, v, dtype=pl.Utf8) for c, v in zip(columns, values, strict=True)}},
    ).with_columns(pl.Series(ROW_NUMBER, numbers, dtype=pl.Int64))
    return _finish(frame, columns, "xlsx", "xlsx", name)


def _read_jsonl(data: bytes, encoding: str, name: str) -> RawTable:
    columns: dict[str, None] = {}
    records: list[dict[str, object]] = []
    numbers: list[int] = []
    for line_number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                f"line {line_number} is not valid JSON: {exc.msg} at column {exc.colno}",
                where=_where(name, f"line {line_number}"),
                hint='each line must hold one JSON object, e.g. {"phone": "13800138001"}',
            ) from exc
        if not isinstance(record, dict):
            raise ValidationFailed(
                f"line {line_number} holds a JSON {type(record).__name__}, not an object",
                where=_where(name, f"line {line_number}"),
                hint='each line must hold one JSON object, e.g. {"phone": "13800138001"}',
            )
        for key in record:
            columns.setdefault(str(key), None)
        records.append(record)
        numbers.append(line_number)
    names = list(columns)
    if ROW_NUMBER in columns:
        _check_header(names, name)
    frame = pl.DataFrame(
        {c: pl.Series(c, [cell_text(r.get(c)) for r in records], dtype=pl.Utf8) for c in names}
    ).with_columns(pl.Series(ROW_NUMBER, numbers, dtype=pl.Int64))
    return _finish(frame, names, encoding, "jsonl", name)
