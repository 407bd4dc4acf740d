"""Reading an import file (CSV, Excel .xlsx, JSONL) into string columns, whatever its encoding.

Nothing is interpreted here: every cell stays text (or null when empty) so that mapping and validation
see exactly what the file held, with the row number a spreadsheet would show. `open_table` reads a file
in chunks of a bounded number of rows (memory bounded by the chunk, not the file); `read_table` whole.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, BinaryIO, Literal

import polars as pl
from charset_normalizer import from_bytes

from siyu.core.errors import ValidationFailed

ROW_NUMBER = "row_number"
FileFormat = Literal["csv", "xlsx", "jsonl"]
_SNIFF_DELIMITERS = (",", "\t", ";")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_BLANK = _UTF8_BOM + b" \t\r\n"
# CSV is read and parsed in blocks of about this many bytes (cut at a line end outside quotes)
_BLOCK_BYTES = 8 << 20
_SNIFF_BYTES = 64 << 10
WHOLE_FILE_ROWS = 1 << 62


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
    """Read a CSV / .xlsx / JSONL file into one `RawTable`: the whole file in memory (previews of
    small files, the tests); the importer reads `open_table(...).chunks(n)` instead.

    The format comes from the file name's extension (`filename`, or the path's), else from the content.
    Text encodings: UTF-8 (with or without BOM), UTF-16 with BOM, then GBK / GB18030 — the encoding of
    Chinese Excel exports — when the bytes are not UTF-8, and as a last resort charset-normalizer's guess.
    Empty files, header-only files and malformed lines raise `ValidationFailed` saying where and how to fix.
    """
    stream = open_table(source, filename=filename)
    rows = pl.concat(list(stream.chunks(WHOLE_FILE_ROWS)))
    return RawTable(columns=stream.columns, rows=rows, encoding=stream.encoding, format=stream.format)


@dataclass
class TableStream:
    """A file whose format, encoding and header are known and checked; `chunks` reads its rows.

    Each call of `chunks` or `column` reads the file again from its start. Row numbers are those of the
    whole file whatever the chunk size.
    """

    columns: list[str]
    encoding: str
    format: FileFormat
    name: str
    source: Path | bytes = field(repr=False)
    delimiter: str = ","
    # a JSON-lines file, read whole when opened (its columns are the keys of all its lines)
    whole: RawTable | None = field(default=None, repr=False)

    def chunks(self, chunk_rows: int) -> Iterator[pl.DataFrame]:
        """The rows in frames of at most `chunk_rows` rows: Utf8 columns plus `row_number`.

        Chunk k holds the k-th run of `chunk_rows` data rows of the file (empty rows count, and are then
        left out), so which chunk a row is in follows from its row number: `chunk_of`. Raises
        `ValidationFailed` at a malformed line, and at the end when no row holds any value."""
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        if self.format == "csv":
            frames = self._csv_frames(None)
        elif self.format == "xlsx":
            frames = _xlsx_frames(self._data(), self.name, self.columns)
        else:
            assert self.whole is not None
            frames = iter([self.whole.rows])
        seen = 0
        for chunk in _by_row_chunks(frames, chunk_rows):
            if self.columns:
                chunk = chunk.filter(pl.any_horizontal(pl.col(self.columns).is_not_null()))
            seen += chunk.height
            if chunk.height:
                yield chunk
        if seen == 0:
            raise ValidationFailed(
                "the file has a header but no data rows",
                where=self.name or None,
                hint="add rows below the header, or check that the right sheet/file was exported",
            )

    def column(self, column: str) -> Iterator[pl.DataFrame]:
        """`row_number` and `column` of every row, in blocks: a cheap first pass over one column (CSV
        parses only that column; other formats read their rows)."""
        if self.format == "csv":
            yield from self._csv_frames(column)
        else:
            yield from (c.select(ROW_NUMBER, column) for c in self.chunks(WHOLE_FILE_ROWS))

    def _data(self) -> bytes:
        return self.source.read_bytes() if isinstance(self.source, Path) else self.source

    def _open(self) -> BinaryIO:
        return self.source.open("rb") if isinstance(self.source, Path) else io.BytesIO(self.source)

    def _utf8(self) -> bytes:
        with self._open() as handle:
            return b"".join(_utf8_blocks(handle, self.encoding))

    def _csv_frames(self, only: str | None) -> Iterator[pl.DataFrame]:
        """Records parsed by polars block by block. Each block ends at a line end outside quotes and is
        parsed below a copy of the header record, so quotes, ragged lines and empty lines follow the
        rules of one `pl.read_csv` of the whole file."""
        position = None if only is None else self.columns.index(only)
        names = self.columns if only is None else [only]
        number = 2  # the header is spreadsheet row 1
        with self._open() as handle:
            blocks = _csv_blocks(_utf8_blocks(handle, self.encoding))
            header, rest = _first_record(next(blocks, b""))
            for block in _chain([rest] if rest else [], blocks):
                frame = _parse_csv(header + block, self.delimiter, self.name, position)
                frame.columns = names
                yield frame.with_columns(
                    pl.int_range(number, number + frame.height, dtype=pl.Int64).alias(ROW_NUMBER)
                )
                number += frame.height


def chunk_of(row_number: pl.Expr, chunk_rows: int) -> pl.Expr:
    """The chunk of `TableStream.chunks(chunk_rows)` that holds a row, from its row number."""
    return (row_number - 2) // chunk_rows


def _chain(first: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from first
    yield from rest


def _by_row_chunks(frames: Iterator[pl.DataFrame], chunk_rows: int) -> Iterator[pl.DataFrame]:
    """Frames of increasing row numbers regrouped into the chunks `chunk_of` names."""
    pending: list[pl.DataFrame] = []
    current: int | None = None
    for frame in frames:
        if frame.height == 0:
            continue
        tagged = frame.with_columns(chunk_of(pl.col(ROW_NUMBER), chunk_rows).alias("_chunk"))
        for part in tagged.partition_by("_chunk", maintain_order=True):
            key = int(part["_chunk"][0])
            if key != current and pending:
                yield pl.concat(pending)
                pending = []
            current = key
            pending.append(part.drop("_chunk"))
    if pending:
        yield pl.concat(pending)


def open_table(source: Path | bytes, *, filename: str | None = None) -> TableStream:
    """Open a CSV / .xlsx / JSONL file to be read in chunks: its format, encoding and header are found
    and checked now (the rules and errors of `read_table`), its rows are read by `TableStream.chunks`.

    A CSV file is read in blocks of a few MB whatever its size (one first pass over the bytes recognises
    the encoding); Excel rows stream from the sheet; a JSON-lines file is read whole.
    """
    if isinstance(source, Path):
        name = filename or source.name
        with source.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    else:
        name = filename or ""
        head = source[:_SNIFF_BYTES]
    fmt = _detect_format(name, head)
    if fmt == "xlsx":
        data = source.read_bytes() if isinstance(source, Path) else source
        return TableStream(_xlsx_header(data, name), "xlsx", "xlsx", name, source)
    stream = TableStream([], _detect_encoding(source, name), fmt, name, source)
    if fmt == "jsonl":
        stream.whole = _read_jsonl(stream._utf8(), stream.encoding, name)
        stream.columns = stream.whole.columns
        return stream
    with stream._open() as handle:
        first_block = next(_csv_blocks(_utf8_blocks(handle, stream.encoding)), b"")
    first_line = first_block.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    if not first_line.strip():
        raise ValidationFailed(
            "the first line is empty; it must hold the column headers",
            where=_where(name, "line 1"),
            hint="delete the empty lines above the header",
        )
    stream.delimiter = _sniff_delimiter(first_line)
    # polars silently renames a repeated header; look at the header ourselves to say so instead
    header = next(csv.reader([first_line.rstrip("\r")], delimiter=stream.delimiter))
    _check_header([c.strip() for c in header], name)
    record, _ = _first_record(first_block)
    stream.columns = [c.strip() for c in _parse_csv(record, stream.delimiter, name, None).columns]
    _check_header(stream.columns, name)
    return stream


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


def _blocks(source: Path | bytes) -> Iterator[bytes]:
    if isinstance(source, bytes):
        for start in range(0, max(len(source), 1), _BLOCK_BYTES):
            yield source[start : start + _BLOCK_BYTES]
        return
    with source.open("rb") as handle:
        while block := handle.read(_BLOCK_BYTES):
            yield block


def _decodes(source: Path | bytes, encoding: str) -> bool:
    """Whether the whole file decodes in `encoding` (one pass, a block at a time)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        for block in _blocks(source):
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _detect_encoding(source: Path | bytes, name: str) -> str:
    """The name of the encoding the file's text is in (see `read_table`), reading it block by block."""
    blocks = _blocks(source)
    head = next(blocks, b"")
    if not head.strip(_BLANK) and all(not block.strip(_BLANK) for block in blocks):
        raise ValidationFailed("the file is empty", where=name or None, hint="export the data again")
    if head.startswith(_UTF8_BOM):
        return "utf-8-sig"
    if head[:2] in _UTF16_BOMS:
        return "utf-16"
    # Not UTF-8: in this market that almost always means a Chinese Windows/Excel export. GBK is tried
    # first only to name it precisely; GB18030 is its superset and decodes whatever GBK cannot.
    for encoding in ("utf-8", "gbk", "gb18030"):
        if _decodes(source, encoding):
            return encoding
    best = from_bytes(head[:200_000]).best()
    if best is not None and best.encoding and _decodes(source, best.encoding):
        return str(best.encoding)
    raise ValidationFailed(
        "the file's text encoding could not be recognised",
        where=name or None,
        hint="save it as CSV UTF-8 (Excel: Save As → CSV UTF-8)",
    )


def _utf8_blocks(handle: BinaryIO, encoding: str) -> Iterator[bytes]:
    """The file's text as UTF-8 without BOM, a block at a time."""
    if encoding in ("utf-8", "utf-8-sig"):
        first = True
        while block := handle.read(_BLOCK_BYTES):
            if first and encoding == "utf-8-sig":
                block = block[len(_UTF8_BOM) :]
            first = False
            yield block
        return
    decoder = codecs.getincrementaldecoder(encoding)()
    while block := handle.read(_BLOCK_BYTES):
        yield decoder.decode(block).encode("utf-8")
    yield decoder.decode(b"", final=True).encode("utf-8")


def _record_end(data: bytes, end: int, quotes: int) -> int:
    """The position after the last line end before `end` that is outside quotes (0 when none); `quotes`
    is the number of quote characters in data[:end]. A line end is outside quotes when an even number
    of quotes precedes it (an escaped quote "" counts twice, so it keeps the parity)."""
    position = data.rfind(b"\n", 0, end)
    while position >= 0:
        quotes -= data.count(b'"', position, end)
        if quotes % 2 == 0:
            return position + 1
        end = position
        position = data.rfind(b"\n", 0, end)
    return 0


def _csv_blocks(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """UTF-8 blocks re-cut so that each ends at a record boundary (the last holds the file's tail)."""
    carry = b""
    for block in blocks:
        data = carry + block if carry else block
        cut = _record_end(data, len(data), data.count(b'"'))
        if cut:
            yield data[:cut]
        carry = data[cut:]
    if carry:
        yield carry


def _first_record(data: bytes) -> tuple[bytes, bytes]:
    """The first record of a block (the header, with its line end) and the rest."""
    position = data.find(b"\n")
    while position >= 0:
        if data.count(b'"', 0, position) % 2 == 0:
            return data[: position + 1], data[position + 1 :]
        position = data.find(b"\n", position + 1)
    return (data if data.endswith(b"\n") else data + b"\n"), b""


def _parse_csv(data: bytes, delimiter: str, name: str, position: int | None) -> pl.DataFrame:
    try:
        return pl.read_csv(
            data,
            separator=delimiter,
            has_header=True,
            infer_schema=False,
            quote_char='"',
            raise_if_empty=True,
            columns=None if position is None else [position],
        )
    except pl.exceptions.NoDataError as exc:
        raise ValidationFailed("the file is empty", where=name or None, hint="export the data again") from exc
    except pl.exceptions.PolarsError as exc:
        raise ValidationFailed(
            f"the CSV file could not be read: {str(exc).splitlines()[0]}",
            where=name or None,
            hint="check that every line has as many fields as the header and that quotes are closed",
        ) from exc


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


def _open_workbook(data: bytes, name: str) -> Any:
    from openpyxl import load_workbook

    try:
        return load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ValidationFailed(
            "the Excel file could not be opened",
            where=name or None,
            hint="save it again as .xlsx (Excel 2007 or later), or export CSV",
        ) from exc


def _xlsx_header(data: bytes, name: str) -> list[str]:
    workbook = _open_workbook(data, name)
    try:
        header_cells = next(workbook.worksheets[0].iter_rows(values_only=True), None)
    finally:
        workbook.close()
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
    return columns


_XLSX_BLOCK_ROWS = 10_000


def _xlsx_frames(data: bytes, name: str, columns: list[str]) -> Iterator[pl.DataFrame]:
    """The first sheet's non-empty rows below row 1, in frames of a few thousand rows."""
    workbook = _open_workbook(data, name)
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        next(rows, None)
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
            if len(numbers) >= _XLSX_BLOCK_ROWS:
                yield _xlsx_frame(columns, values, numbers)
                values, numbers = [[] for _ in range(width)], []
        if numbers:
            yield _xlsx_frame(columns, values, numbers)
    finally:
        workbook.close()


def _xlsx_frame(columns: list[str], values: list[list[str | None]], numbers: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {c: pl.Series(c, v, dtype=pl.Utf8) for c, v in zip(columns, values, strict=True)}
    ).with_columns(pl.Series(ROW_NUMBER, numbers, dtype=pl.Int64))


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
