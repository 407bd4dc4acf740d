"""Validating a mapped file (`validate`): the mapping is checked, then every row goes through the rules.

Also the frame-level steps shared with the JSON records path: required fields, stripping, rejects.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

import polars as pl

from siyu.core.errors import ValidationFailed
from siyu.ingest import mapping as mapping_rules
from siyu.ingest.reading import ROW_NUMBER, RawTable
from siyu.ingest.schemas import (
    CUSTOM_IDENTITY_PREFIX,
    FIELDS_BY_KIND,
    IDENTITY_FIELDS,
    ImportKind,
    Reject,
    ValidatedBatch,
)
from siyu.ingest.validation.checks import (
    REQUIRED_FIELDS,
    Checker,
    check_common,
    check_customers,
    check_events,
    check_identity_present,
    check_orders,
)
from siyu.ingest.validation.parsing import Unit


def _output_columns(kind: ImportKind, check: Checker) -> list[pl.Series]:
    n = check.rows.len()
    columns = [check.rows.rename(ROW_NUMBER)]
    for field, dtype in {**dict.fromkeys(IDENTITY_FIELDS, pl.Utf8), **FIELDS_BY_KIND[kind]}.items():
        series = check.out.get(field)
        columns.append(
            series.cast(dtype).rename(field)
            if series is not None
            else pl.repeat(None, n, dtype=dtype, eager=True).rename(field)
        )
    known = {c.name for c in columns}
    for field in check.frame.columns:
        if field not in known and field in check.out:
            columns.append(check.out[field].rename(field))
    return columns


def validate_frame(
    frame: pl.DataFrame,
    raw: pl.DataFrame,
    labels: dict[str, str],
    kind: ImportKind,
    *,
    units: Mapping[str, Unit],
    known_channels: Mapping[str, str],
    known_stores: Collection[str],
    identity_denylist: Sequence[str],
    workspace_timezone: str,
    now: datetime | None,
) -> tuple[pl.DataFrame, list[Reject]]:
    """Typed good rows and one `Reject` per problem; `frame` is stripped text, `raw` the text as given."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    check = Checker(frame, labels, raw)
    identity_fields = check_common(
        check,
        kind,
        known_channels=known_channels,
        identity_denylist=identity_denylist,
        zone=workspace_timezone,
        now=now,
    )
    if kind is ImportKind.ORDERS:
        check_orders(check, known_stores, units)
    elif kind is ImportKind.EVENTS:
        check_events(check)
    else:
        check_customers(check, now, workspace_timezone)
    check_identity_present(check, identity_fields)
    rows = pl.DataFrame(_output_columns(kind, check))
    if not check.problems:
        return rows, []
    # within a row, problems are listed in the order of the file's columns
    position = {labels.get(f, f): i for i, f in enumerate(frame.columns)}
    problems = (
        pl.concat(check.problems)
        .with_row_index("order")
        .with_columns(position=pl.col("column").replace_strict(position, default=len(position)))
        .sort(["row_number", "position", "order"])
    )
    rows = rows.filter(~pl.col(ROW_NUMBER).is_in(problems["row_number"].unique().to_list()))
    rejects = [
        Reject(row_number=r, column=c, value=v, reason=why)
        for r, c, v, why in problems.select("row_number", "column", "value", "reason").iter_rows()
    ]
    return rows, rejects


def check_mapping(columns: Sequence[str], kind: ImportKind, mapping: Mapping[str, str]) -> None:
    """Refuse a mapping that names a missing column or an unknown field, maps two columns to one field,
    or lacks a required field or any identity."""
    targets: dict[str, str] = {}
    for column, field in mapping.items():
        if column not in columns:
            raise ValidationFailed(
                f"the mapping names a column {column!r} that is not in the file",
                where=f"mapping[{column!r}]",
                hint=f"the file's columns are: {', '.join(columns)}",
            )
        if not mapping_rules.is_known_field(field, kind):
            raise ValidationFailed(
                f"{field!r} is not a field of a {kind.value} import",
                where=f"mapping[{column!r}]",
                hint=f"fields: {', '.join(mapping_rules.known_fields(kind))}, or attr:/prop:/identity:/consent:",
            )
        if field in targets:
            raise ValidationFailed(
                f"columns {targets[field]!r} and {column!r} are both mapped to {field!r}",
                where=f"mapping[{column!r}]",
                hint="map one of them to another field or leave it out",
            )
        targets[field] = column
    check_required(kind, targets)


def check_required(kind: ImportKind, targets: Mapping[str, str]) -> None:
    """Refuse a batch (field -> source) that lacks a required field of `kind` or any identity."""
    missing = [f for f in REQUIRED_FIELDS[kind] if f not in targets]
    if missing:
        raise ValidationFailed(
            f"no column is mapped to {', '.join(missing)}, which a {kind.value} import needs",
            where="mapping",
            hint="map the columns holding them (e.g. 订单号 → external_id, 下单时间 → placed_at, 实付金额 → paid_cents)",
        )
    if not any(f in IDENTITY_FIELDS or f.startswith(CUSTOM_IDENTITY_PREFIX) for f in targets):
        raise ValidationFailed(
            "no column holds an identity (phone, email, member id, WeChat/WeCom/Douyin id)",
            where="mapping",
            hint="map a column to phone, email, shop_member_id, … so each row can be tied to a customer",
        )


def stripped(frame: pl.DataFrame, fields: list[str]) -> pl.DataFrame:
    """`fields` trimmed, with empty cells turned into nulls."""
    stripped = pl.col(fields).str.strip_chars()
    return frame.with_columns(pl.when(stripped != "").then(stripped).name.keep())


def validate(
    table: RawTable,
    kind: ImportKind,
    mapping: dict[str, str],
    *,
    known_channels: dict[str, str],
    known_stores: set[str],
    identity_denylist: Sequence[str] = (),
    workspace_timezone: str = "Asia/Shanghai",
    now: datetime | None = None,
) -> ValidatedBatch:
    """Normalise the mapped columns of `table` and split its rows into good rows and rejects.

    `mapping` is source column -> canonical field (see `mapping.detect`); `known_channels` maps a
    lower-cased channel key, name or alias to its key; `known_stores` holds store codes. Amounts are yuan
    text, turned into exact integer cents. Naive times are in `workspace_timezone`. A row with problems
    yields one `Reject` per problem (row number, source column, value, reason) and is left out of `rows`.
    A mapping that lacks a required field or any identity raises `ValidationFailed`.
    """
    check_mapping(table.columns, kind, mapping)
    fields = list(mapping.values())
    renamed = table.rows.select(
        pl.col(ROW_NUMBER), *[pl.col(column).cast(pl.Utf8).alias(field) for column, field in mapping.items()]
    )
    rows, rejects = validate_frame(
        stripped(renamed, fields),
        renamed,
        {field: column for column, field in mapping.items()},
        kind,
        units={},
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
        total_rows=table.rows.height,
        mapping=dict(mapping),
        encoding=table.encoding,
    )
