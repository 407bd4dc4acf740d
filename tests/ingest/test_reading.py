"""Reading import files: encodings, delimiters, Excel, JSONL, row numbers and clear errors."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from openpyxl import Workbook

from siyu.core.errors import ValidationFailed
from siyu.ingest.reading import read_table

CSV_TEXT = (
    '手机号,订单号,实付金额,备注\n13800138001,A1,12.50,首单\n,,,\n138-0013-8002,A2,"1,234.00","含,逗号"\n'
)


def _values(table, column: str) -> list[str | None]:  # type: ignore[no-untyped-def]
    return table.rows[column].to_list()


def test_gbk_file_with_chinese_headers(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(CSV_TEXT.encode("gbk"))
    table = read_table(path)
    assert table.encoding == "gbk"
    assert table.format == "csv"
    assert table.columns == ["手机号", "订单号", "实付金额", "备注"]
    assert _values(table, "备注") == ["首单", "含,逗号"]
    assert _values(table, "实付金额") == ["12.50", "1,234.00"]
    # the empty line 3 is dropped but row numbers stay those a spreadsheet shows
    assert _values(table, "row_number") == [2, 4]
    assert set(table.rows.select(table.columns).dtypes) == {pl.Utf8}


def test_gb18030_only_characters() -> None:
    text = "姓名,手机号\n𠀀先生,13800138001\n"  # an extension-B character that GBK cannot encode
    table = read_table(text.encode("gb18030"), filename="c.csv")
    assert table.encoding == "gb18030"
    assert _values(table, "姓名") == ["𠀀先生"]


def test_utf8_with_bom_and_plain_utf8() -> None:
    bom = read_table(b"\xef\xbb\xbf" + CSV_TEXT.encode("utf-8"), filename="x.csv")
    assert bom.encoding == "utf-8-sig"
    assert bom.columns[0] == "手机号"  # no BOM glued to the first header
    plain = read_table(CSV_TEXT.encode("utf-8"), filename="x.csv")
    assert plain.encoding == "utf-8"
    assert _values(plain, "订单号") == ["A1", "A2"]


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_tab_and_semicolon_delimiters_are_sniffed(delimiter: str) -> None:
    data = delimiter.join(["phone", "order_id"]) + "\n" + delimiter.join(["13800138001", "A1"]) + "\n"
    table = read_table(data.encode(), filename="x.txt")
    assert table.columns == ["phone", "order_id"]
    assert _values(table, "order_id") == ["A1"]


def test_xlsx_first_sheet_header_row_one(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["手机号", "下单时间", "实付金额", "数量"])
    sheet.append([13800138001, datetime(2024, 3, 5, 14, 3), 12.5, 2])
    sheet.append([None, None, None, None])
    sheet.append(["13800138002", "2024/3/5", 30, None])
    workbook.create_sheet("second").append(["ignored"])
    path = tmp_path / "orders.xlsx"
    workbook.save(path)
    table = read_table(path)
    assert table.format == "xlsx"
    assert table.columns == ["手机号", "下单时间", "实付金额", "数量"]
    assert _values(table, "手机号") == ["13800138001", "13800138002"]
    assert _values(table, "下单时间") == ["2024-03-05 14:03:00", "2024/3/5"]
    assert _values(table, "实付金额") == ["12.5", "30"]
    assert _values(table, "row_number") == [2, 4]


def test_jsonl_keys_become_columns_and_nested_values_json() -> None:
    lines = [
        json.dumps({"phone": "13800138001", "props": {"page": "/menu"}, "n": 3}),
        "",
        json.dumps({"email": "a@b.cn", "phone": None, "ok": True}),
    ]
    table = read_table("\n".join(lines).encode(), filename="e.jsonl")
    assert table.format == "jsonl"
    assert table.columns == ["phone", "props", "n", "email", "ok"]
    assert _values(table, "props") == ['{"page":"/menu"}', None]
    assert _values(table, "n") == ["3", None]
    assert _values(table, "ok") == [None, "true"]
    assert _values(table, "row_number") == [1, 3]  # line numbers


def test_format_is_sniffed_without_a_name() -> None:
    assert read_table(b'{"phone": "1"}\n').format == "jsonl"
    assert read_table(b"phone\n1\n").format == "csv"


@pytest.mark.parametrize(
    ("data", "filename", "message", "where"),
    [
        (b"", "a.csv", "empty", None),
        (b"  \n", "a.csv", "empty", None),
        (b"phone,email\n", "a.csv", "no data rows", None),
        (b'{"a": 1}\n{"a": 2,\n', "a.jsonl", "line 2 is not valid JSON", "a.jsonl line 2"),
        (b'{"a": 1}\n[1, 2]\n', "a.jsonl", "not an object", "a.jsonl line 2"),
        (b"phone,phone\n1,2\n", "a.csv", "both named 'phone'", "a.csv row 1"),
        (b"x", "a.xls", ".xls", "a.xls"),
        (b"not a zip", "a.xlsx", "could not be opened", "a.xlsx"),
    ],
)
def test_bad_files_raise_clear_errors(data: bytes, filename: str, message: str, where: str | None) -> None:
    with pytest.raises(ValidationFailed) as caught:
        read_table(data, filename=filename)
    assert message in caught.value.message
    assert caught.value.hint
    if where is not None:
        assert caught.value.where == where
