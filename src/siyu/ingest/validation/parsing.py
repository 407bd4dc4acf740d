"""Column parsers for amounts, whole numbers and word lists (statuses, gender, consent, currency).

Each takes stripped text (null = empty cell) and returns typed values and a problem per row (null = fine).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import polars as pl

Unit = Literal["yuan", "cents"]
MONEY_FIELDS: tuple[str, ...] = tuple(
    ["total_cents", "discount_cents", "paid_cents", "refunded_cents", "unit_price_cents", "line_amount_cents"]
)


def _words_to(target: str, words: str) -> dict[str, str]:
    return dict.fromkeys(words.split(), target)


# Spellings of shop systems (Youzan, Taobao, Weimob, POS exports) and of people; compared lower-cased
# with spaces and dashes turned into underscores.
STATUS_WORDS: dict[str, str] = {
    **_words_to(
        "paid",
        "已支付 已付款 已付 支付成功 交易成功 交易完成 已完成 完成 待发货 已发货 已收货 已签收 paid completed "
        "complete success succeeded shipped delivered trade_success trade_finished finished",
    ),
    **_words_to("refunded", "已退款 全额退款 退款成功 refunded full_refund fully_refunded"),
    **_words_to(
        "partially_refunded", "部分退款 部分退款成功 partially_refunded partial_refund partly_refunded"
    ),
    **_words_to(
        "pending", "待付款 待支付 未付款 未支付 unpaid pending wait_buyer_pay created awaiting_payment"
    ),
    **_words_to("cancelled", "已取消 取消 交易关闭 已关闭 关闭 cancelled canceled closed trade_closed void"),
}
GENDER_WORDS: dict[str, str] = {
    **_words_to("male", "男 男性 先生 m male man 1"),
    **_words_to("female", "女 女性 女士 f female woman 2"),
}
CONSENT_WORDS: dict[str, str] = {
    **_words_to("granted", "是 同意 已同意 订阅 已订阅 yes y true 1 granted opt_in subscribed"),
    **_words_to("withdrawn", "否 不同意 拒绝 退订 已退订 no n false 0 withdrawn opt_out unsubscribed"),
}
CURRENCY_WORDS = {"人民币": "CNY", "元": "CNY", "rmb": "CNY", "¥": "CNY", "￥": "CNY"}

AMOUNT_REASON = "not an amount: write yuan like 1234.50 (¥, 元 and thousands separators are fine)"
CENTS_REASON = "not a whole number of cents: give an integer such as 1250 (= ¥12.50)"
PRECISION_REASON = "more than 2 decimal places: amounts are yuan with at most 2 decimals (fen)"
NEGATIVE_REASON = "negative amount: amounts must be 0 or more (put refunds in the refund column)"


def parse_cents(values: pl.Series, unit: Unit = "yuan") -> tuple[pl.Series, pl.Series]:
    """Amounts to integer cents, exactly: the decimal text is split, never turned into a float."""
    frame = pl.DataFrame({"v": values})
    if unit == "cents":
        out = frame.select(
            cents=pl.col("v").str.extract(r"^([+-]?[0-9]{1,17})(?:\.0*)?$", 1).cast(pl.Int64, strict=False)
        )
        cents = out["cents"]
        problem = (
            pl.DataFrame({"v": values, "c": cents})
            .select(
                pl.when(pl.col("v").is_not_null() & pl.col("c").is_null())
                .then(pl.lit(CENTS_REASON))
                .when(pl.col("c") < 0)
                .then(pl.lit(NEGATIVE_REASON))
            )
            .to_series()
        )
        return cents.rename(values.name), problem
    cleaned = pl.col("v").str.replace_all(r"[¥￥,，\s]|元|(?i:rmb|cny)", "")
    parts = cleaned.str.extract_groups(r"^([+-]?)([0-9]{0,15})(?:\.([0-9]*))?$")
    out = frame.select(
        v=pl.col("v"),
        sign=parts.struct.field("1"),
        whole=parts.struct.field("2"),
        frac=parts.struct.field("3").fill_null(""),
    ).with_columns(
        ok=pl.col("sign").is_not_null() & ((pl.col("whole") != "") | (pl.col("frac") != "")),
        extra=pl.col("frac").str.slice(2).str.contains("[1-9]"),
    )
    out = out.with_columns(
        magnitude=pl.when(pl.col("ok") & ~pl.col("extra")).then(
            pl.col("whole").replace("", "0").cast(pl.Int64, strict=False) * 100
            + pl.col("frac").str.slice(0, 2).str.pad_end(2, "0").cast(pl.Int64, strict=False)
        )
    ).with_columns(
        cents=pl.when(pl.col("sign") == "-").then(-pl.col("magnitude")).otherwise(pl.col("magnitude")),
    )
    problem = out.select(
        pl.when(pl.col("v").is_null())
        .then(None)
        .when(~pl.col("ok"))
        .then(pl.lit(AMOUNT_REASON))
        .when(pl.col("extra"))
        .then(pl.lit(PRECISION_REASON))
        .when(pl.col("cents") < 0)
        .then(pl.lit(NEGATIVE_REASON))
    ).to_series()
    return out["cents"].rename(values.name), problem


def words(values: pl.Series, table: Mapping[str, str]) -> pl.Series:
    """Each value looked up in a word table (lower-cased, spaces and dashes as "_"); null when unknown."""
    key = values.str.to_lowercase().str.replace_all(r"[\s\-]+", "_")
    return key.replace_strict(dict(table), default=None, return_dtype=pl.Utf8)


def int_values(values: pl.Series, what: str, minimum: int) -> tuple[pl.Series, pl.Series]:
    """Whole numbers ("3", "3.0") of at least `minimum`; `what` names the field in the problem text."""
    frame = pl.DataFrame({"v": values}).with_columns(
        n=pl.col("v").str.extract(r"^([+-]?[0-9]{1,15})(?:\.0*)?$", 1).cast(pl.Int64, strict=False)
    )
    problem = frame.select(
        pl.when(pl.col("v").is_not_null() & pl.col("n").is_null())
        .then(pl.lit(f"not a whole number: {what} must be an integer"))
        .when(pl.col("n") < minimum)
        .then(pl.lit(f"{what} must be {minimum} or more"))
    ).to_series()
    return frame["n"], problem
