"""Normalising and validating mapped import rows into a `ValidatedBatch` of typed rows and rejects.

Vectorised with polars; `validate` takes a mapped file, `validate_records` JSON records (API, webhook).
"""

from siyu.ingest.validation.checks import REQUIRED_FIELDS, line_numbers
from siyu.ingest.validation.identities import parse_emails, parse_ids, parse_phones
from siyu.ingest.validation.parsing import (
    AMOUNT_REASON,
    CENTS_REASON,
    CONSENT_WORDS,
    CURRENCY_WORDS,
    GENDER_WORDS,
    MONEY_FIELDS,
    NEGATIVE_REASON,
    PRECISION_REASON,
    STATUS_WORDS,
    Unit,
    parse_cents,
)
from siyu.ingest.validation.records import YUAN_KEYS, validate_records
from siyu.ingest.validation.tables import check_mapping, validate
from siyu.ingest.validation.times import (
    DAY_MONTH_REASON,
    EXCEL_EPOCH,
    FUTURE_REASON,
    FUTURE_TOLERANCE,
    TIME_REASON,
    UTC_US,
    parse_times,
)

__all__ = [
    "AMOUNT_REASON",
    "CENTS_REASON",
    "CONSENT_WORDS",
    "CURRENCY_WORDS",
    "DAY_MONTH_REASON",
    "EXCEL_EPOCH",
    "FUTURE_REASON",
    "FUTURE_TOLERANCE",
    "GENDER_WORDS",
    "MONEY_FIELDS",
    "NEGATIVE_REASON",
    "PRECISION_REASON",
    "REQUIRED_FIELDS",
    "STATUS_WORDS",
    "TIME_REASON",
    "UTC_US",
    "YUAN_KEYS",
    "Unit",
    "check_mapping",
    "line_numbers",
    "parse_cents",
    "parse_emails",
    "parse_ids",
    "parse_phones",
    "parse_times",
    "validate",
    "validate_records",
]
