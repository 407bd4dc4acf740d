"""Validating JSON records (batch API, webhook) that name canonical fields instead of file headers.

Money comes as integer cents in `*_cents` keys or as yuan in the short keys of `YUAN_KEYS`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import polars as pl

from siyu.core.errors import ValidationFailed
from siyu.ingest import mapping as mapping_rules
from siyu.ingest.reading import ROW_NUMBER, cell_text
from siyu.ingest.schemas import (
    ATTRIBUTE_PREFIX,
    CUSTOM_IDENTITY_PREFIX,
    IDENTITY_FIELDS,
    ImportKind,
    ValidatedBatch,
)
from siyu.ingest.validation.parsing import MONEY_FIELDS, Unit
from siyu.ingest.validation.tables import check_required, stripped, validate_frame

# Record keys (JSON batch API / webhook) that give a money field in yuan instead of integer cents.
YUAN_KEYS: dict[str, str] = {
    alias: money
    for money in MONEY_FIELDS
    for alias in (money.removesuffix("_cents"), money.removesuffix("_cents") + "_amount")
} | {"refund": "refunded_cents", "refund_amount": "refunded_cents"}


def _record_fields(key: str, kind: ImportKind) -> tuple[str, Unit]:
    """The canonical field a record key feeds, and the unit of money it is given in."""
    if key in YUAN_KEYS and kind is ImportKind.ORDERS:
        return YUAN_KEYS[key], "yuan"
    if key in MONEY_FIELDS and kind is ImportKind.ORDERS:
        return key, "cents"
    if mapping_rules.is_known_field(key, kind):
        return key, "yuan"
    choices = [*mapping_rules.known_fields(kind), *(YUAN_KEYS if kind is ImportKind.ORDERS else ())]
    close = difflib.get_close_matches(key, choices, n=1)
    raise ValidationFailed(
        f"{key!r} is not a field of a {kind.value} record",
        where=f"records[*].{key}",
        hint=(f"did you mean {close[0]!r}? " if close else "")
        + "use canonical field names, attr:<name>, prop:<name>, identity:<kind> or consent:<channel>",
    )


def _flatten_record(record: Mapping[str, Any], kind: ImportKind) -> dict[str, Any]:
    """Nested `identities` and `attributes` objects become identity and attr: fields."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if key == "identities" and isinstance(value, Mapping):
            for identity_kind, identity_value in value.items():
                name = (
                    identity_kind
                    if identity_kind in IDENTITY_FIELDS
                    else CUSTOM_IDENTITY_PREFIX + identity_kind
                )
                flat[name] = identity_value
        elif key == "attributes" and isinstance(value, Mapping) and kind is ImportKind.CUSTOMERS:
            for attr, attr_value in value.items():
                flat[ATTRIBUTE_PREFIX + str(attr)] = attr_value
        else:
            flat[str(key)] = value
    return flat


def validate_records(
    records: list[dict[str, Any]],
    kind: ImportKind,
    *,
    known_channels: dict[str, str],
    known_stores: set[str],
    identity_denylist: Sequence[str] = (),
    workspace_timezone: str = "Asia/Shanghai",
    now: datetime | None = None,
) -> ValidatedBatch:
    """Validate JSON records (batch API, webhook) that use canonical field names; row_number = index + 1.

    Money: `paid_cents` (and every other `*_cents` field) takes integer cents; `paid` / `paid_amount`
    (`total`, `discount`, `refunded` / `refund`, `unit_price`, `line_amount`, each also with `_amount`)
    take yuan as a string or number ("12.50", 12.5). One batch uses one spelling per field. Nested
    `identities` ({"phone": …, "member_no": …}) and, for customers, `attributes` objects are accepted;
    nested values elsewhere are kept as JSON text. Unknown keys raise `ValidationFailed`.
    """
    flat = [_flatten_record(r, kind) if isinstance(r, Mapping) else r for r in records]
    for index, record in enumerate(flat):
        if not isinstance(record, Mapping):
            raise ValidationFailed(
                f"record {index + 1} is not a JSON object",
                where=f"records[{index}]",
                hint="send a list of objects",
            )
    keys: dict[str, None] = {}
    for record in flat:
        keys.update(dict.fromkeys(record))
    key_fields: dict[str, tuple[str, Unit]] = {key: _record_fields(key, kind) for key in keys}
    targets: dict[str, str] = {}
    for key, (field, _) in key_fields.items():
        if field in targets:
            raise ValidationFailed(
                f"records give {field!r} both as {targets[field]!r} and as {key!r}",
                where=f"records[*].{key}",
                hint="use one spelling per field in a batch (integer cents in *_cents, or yuan)",
            )
        targets[field] = key
    check_required(kind, targets)
    columns: dict[str, pl.Series] = {
        ROW_NUMBER: pl.Series(ROW_NUMBER, range(1, len(flat) + 1), dtype=pl.Int64)
    }
    for key, (field, _) in key_fields.items():
        columns[field] = pl.Series(field, [cell_text(r.get(key)) for r in flat], dtype=pl.Utf8)
    frame = pl.DataFrame(columns)
    fields = [f for f in frame.columns if f != ROW_NUMBER]
    rows, rejects = validate_frame(
        stripped(frame, fields) if fields else frame,
        frame,
        {field: key for key, (field, _) in key_fields.items()},
        kind,
        units={field: unit for field, unit in key_fields.values()},
        known_channels=known_channels,
        known_stores=known_stores,
        identity_denylist=identity_denylist,
        workspace_timezone=workspace_timezone,
        now=now,
    )
    return ValidatedBatch(
        kind=kind,
        rows=rows,
        rejects=rejects,
        total_rows=len(flat),
        mapping={key: field for key, (field, _) in key_fields.items()},
        encoding="json",
    )
