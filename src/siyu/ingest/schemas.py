"""The contract between reading a file and loading it: canonical fields, rejects, validated batches.

Reading (`reading.py`) turns a CSV / Excel / JSONL file into string columns; mapping (`mapping.py`)
names each column with a canonical field below; validation (`validation/`) normalises the values and
splits the rows into a `ValidatedBatch` (good rows, typed) and `Reject`s. Loading (`loader.py`) writes a
batch into the pool with identity resolution and rollups. The same batch shape comes from the batch API
and the signed webhook, so every way in goes through one loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import polars as pl


class ImportKind(StrEnum):
    CUSTOMERS = "customers"
    ORDERS = "orders"
    EVENTS = "events"


# Canonical identity fields: a column mapped to one of these holds that kind of identity.
IDENTITY_FIELDS = (
    "phone",
    "email",
    "wecom_external_userid",
    "wechat_unionid",
    "wechat_openid",
    "shop_member_id",
    "douyin_open_id",
)
# A column mapped to "identity:<kind>" holds a custom identity kind (lowercase letters, digits, _).
CUSTOM_IDENTITY_PREFIX = "identity:"
# A column mapped to "attr:<name>" becomes a custom attribute of the customer profile.
ATTRIBUTE_PREFIX = "attr:"
# A column mapped to "prop:<name>" becomes a property of an event.
PROPERTY_PREFIX = "prop:"
# A column mapped to "consent:<contact channel>" holds granted / withdrawn marketing consent.
CONSENT_PREFIX = "consent:"

# Normalised column names and polars dtypes of a validated batch, per kind (identity columns, and the
# prefixed columns above, come in addition; absent optional fields are null).
CUSTOMER_FIELDS: dict[str, Any] = {
    "name": pl.Utf8,
    "gender": pl.Utf8,  # male | female | unknown
    "birthday": pl.Date,
    "city": pl.Utf8,
    "channel": pl.Utf8,  # channel key (resolved from name or alias)
    "owner_email": pl.Utf8,  # staff member the customer is assigned to
    "created_at": pl.Datetime("us", "UTC"),
    # when the row's consent statuses were given; without it a consent change is dated by the import
    "consent_at": pl.Datetime("us", "UTC"),
}
ORDER_FIELDS: dict[str, Any] = {
    "external_id": pl.Utf8,  # required: the shop's order number (订单号)
    "status": pl.Utf8,  # pending | paid | partially_refunded | refunded | cancelled
    "placed_at": pl.Datetime("us", "UTC"),  # required
    "currency": pl.Utf8,
    "total_cents": pl.Int64,
    "discount_cents": pl.Int64,
    "paid_cents": pl.Int64,  # required (实付金额)
    "refunded_cents": pl.Int64,
    "channel": pl.Utf8,
    "store": pl.Utf8,  # store code
    "coupon_code": pl.Utf8,  # a coupon (优惠券) used on the order: redeemed when the order loads
    # line fields: rows sharing an external_id are lines of one order; order fields from the last row
    "line_no": pl.Int64,
    "sku": pl.Utf8,
    "product_name": pl.Utf8,
    "category": pl.Utf8,
    "quantity": pl.Int64,
    "unit_price_cents": pl.Int64,
    "line_amount_cents": pl.Int64,
}
EVENT_FIELDS: dict[str, Any] = {
    "type": pl.Utf8,  # required
    "occurred_at": pl.Datetime("us", "UTC"),  # required
    "source": pl.Utf8,
    "external_id": pl.Utf8,  # optional: makes re-sends idempotent; else a hash of the content is used
    "properties": pl.Utf8,  # JSON object text (merged with prop:* columns)
}
FIELDS_BY_KIND: dict[ImportKind, dict[str, Any]] = {
    ImportKind.CUSTOMERS: CUSTOMER_FIELDS,
    ImportKind.ORDERS: ORDER_FIELDS,
    ImportKind.EVENTS: EVENT_FIELDS,
}
# every batch also carries "row_number": the row as a spreadsheet shows it (header = row 1), or the
# line of a JSONL file, or the index + 1 of an item in an API batch


@dataclass(frozen=True)
class Reject:
    """One rejected row: where, which column, what it held and why it was refused."""

    row_number: int
    column: str
    value: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row_number, "column": self.column, "value": self.value, "reason": self.reason}


@dataclass
class ValidatedBatch:
    """Rows of one kind ready to load, and the rows refused with their reasons."""

    kind: ImportKind
    rows: pl.DataFrame
    rejects: list[Reject] = field(default_factory=list)
    total_rows: int = 0
    mapping: dict[str, str] = field(default_factory=dict)  # source column -> canonical field
    encoding: str = ""


@dataclass
class LoadResult:
    """What loading a batch did."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    customers_created: int = 0
    customers_merged: int = 0
    conflicts_flagged: int = 0
    touched_customer_ids: list[int] = field(default_factory=list)
