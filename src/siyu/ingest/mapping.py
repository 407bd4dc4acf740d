"""Which column of an import file holds which canonical field: auto-detection from headers, and overrides.

Headers are matched case-, width- and space-insensitively against the Chinese and English names that
shop systems, Excel exports and CRMs use; what is not recognised becomes a custom attribute or property.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

from siyu.core.errors import ValidationFailed
from siyu.ingest.schemas import (
    ATTRIBUTE_PREFIX,
    CONSENT_PREFIX,
    CUSTOM_IDENTITY_PREFIX,
    FIELDS_BY_KIND,
    IDENTITY_FIELDS,
    PROPERTY_PREFIX,
    ImportKind,
)

IGNORE = "ignore"
_PREFIXES = (CUSTOM_IDENTITY_PREFIX, ATTRIBUTE_PREFIX, PROPERTY_PREFIX, CONSENT_PREFIX)
_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SPACING_RE = re.compile(r"[\s_\-.·/()（）:：]+")


# Aliases per canonical field, best first: when two columns name one field, the better alias wins.
# Aliases are separated by "|" so that English ones may contain spaces.
def _aliases(text: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in text.split("|"))


_IDENTITY_ALIASES: dict[str, tuple[str, ...]] = {
    "phone": _aliases(
        "手机号|手机|手机号码|联系电话|电话|电话号码|联系方式|收货人手机|收货人电话|mobile|phone|tel|telephone"
        "|cellphone|mobile phone|phone number"
    ),
    "email": _aliases("邮箱|电子邮箱|邮件|邮箱地址|email|e-mail|mail|email address"),
    "wecom_external_userid": _aliases(
        "external_userid|外部联系人ID|企微外部联系人ID|企业微信外部联系人ID|wecom_external_userid"
    ),
    "wechat_unionid": _aliases("unionid|微信unionid|union_id|wechat_unionid"),
    "wechat_openid": _aliases("openid|微信openid|open_id|wechat_openid"),
    "shop_member_id": _aliases("会员号|会员卡号|会员编号|会员ID|member_id|member_no|member|shop_member_id"),
    "douyin_open_id": _aliases("抖音openid|抖音open_id|douyin_openid|douyin_open_id"),
}
_CONSENT_ALIASES: dict[str, tuple[str, ...]] = {
    "consent:sms": _aliases("短信同意|短信授权|接收短信|sms_consent|consent_sms"),
    "consent:email": _aliases("邮件同意|邮件授权|接收邮件|email_consent|consent_email"),
    "consent:wecom": _aliases("企微同意|wecom_consent|consent_wecom"),
}
_CHANNEL_ALIASES = _aliases("渠道|来源|来源渠道|渠道来源|销售渠道|channel|source")
_KIND_ALIASES: dict[ImportKind, dict[str, tuple[str, ...]]] = {
    ImportKind.CUSTOMERS: {
        "name": _aliases("姓名|昵称|客户姓名|客户名称|名字|name|nickname|customer name|full name"),
        "gender": _aliases("性别|gender|sex"),
        "birthday": _aliases("生日|出生日期|birthday|birth date|date of birth|dob"),
        "city": _aliases("城市|所在城市|city"),
        "channel": _CHANNEL_ALIASES,
        "owner_email": _aliases("负责人|归属员工|所属员工|跟进人|专属顾问|owner|owner_email"),
        "created_at": _aliases("创建时间|注册时间|加入时间|入会时间|created_at|registered_at|signup time"),
        **_CONSENT_ALIASES,
        "consent_at": _aliases(
            "同意时间|授权时间|同意日期|授权日期|consent time|consent_at|consented_at|consent date"
        ),
    },
    ImportKind.ORDERS: {
        "external_id": _aliases(
            "订单号|订单编号|订单ID|主订单号|order_id|order no|order number|order|external_id"
        ),
        "status": _aliases("订单状态|状态|交易状态|status|order status"),
        "placed_at": _aliases(
            "下单时间|创建时间|订单创建时间|支付时间|付款时间|订单时间|交易时间|order time|placed_at"
            "|created_at|order date|paid_at"
        ),
        "currency": _aliases("币种|货币|currency"),
        "total_cents": _aliases("订单金额|商品总价|总价|订单总额|总金额|total|total amount|order amount"),
        "discount_cents": _aliases("优惠|优惠金额|折扣金额|折扣|discount|discount amount"),
        "paid_cents": _aliases(
            "实付金额|实付|支付金额|实收金额|付款金额|实付款|paid|amount_paid|paid amount|payment"
        ),
        "refunded_cents": _aliases("退款金额|退款|refund|refunded|refund amount"),
        "channel": _CHANNEL_ALIASES,
        "store": _aliases("门店|门店编码|门店编号|门店代码|店铺编码|store|store code|store_id"),
        "coupon_code": _aliases("优惠券码|券码|优惠码|优惠券|coupon code|coupon|coupon_code"),
        "line_no": _aliases("行号|明细行号|line_no|line"),
        "sku": _aliases("商品编码|商品编号|货号|SKU|sku code"),
        "product_name": _aliases("商品名称|商品|品名|商品名|product|product name|item|item name"),
        "category": _aliases("品类|类目|商品类目|商品分类|分类|category"),
        "quantity": _aliases("数量|购买数量|件数|qty|quantity"),
        "unit_price_cents": _aliases("单价|商品单价|price|unit price"),
        "line_amount_cents": _aliases("小计|商品金额|明细金额|line amount|subtotal"),
    },
    ImportKind.EVENTS: {
        "type": _aliases("事件|事件类型|事件名称|行为|event|event type|type"),
        "occurred_at": _aliases(
            "发生时间|时间|事件时间|行为时间|time|occurred_at|timestamp|event time|created_at|创建时间"
        ),
        "source": _CHANNEL_ALIASES,
        "external_id": _aliases("事件ID|event_id|external_id"),
        "properties": _aliases("属性|事件属性|properties|props"),
    },
}


def header_aliases(kind: ImportKind) -> dict[str, tuple[str, ...]]:
    """Canonical field -> the headers recognised for it in a `kind` file, best first (identities first).

    Every field also matches its own canonical name; the user documentation lists these same headers.
    """
    return {**_IDENTITY_ALIASES, **_KIND_ALIASES[kind]}


def normalize_header(header: str) -> str:
    """A header reduced for matching: full-width folded, lower-cased, without spaces and separators."""
    return _SPACING_RE.sub("", unicodedata.normalize("NFKC", header).lower())


def _alias_table(kind: ImportKind) -> dict[str, tuple[str, int]]:
    """normalised alias -> (canonical field, rank); canonical names match themselves first."""
    table: dict[str, tuple[str, int]] = {}
    fields = header_aliases(kind)
    for name in (*IDENTITY_FIELDS, *FIELDS_BY_KIND[kind]):
        table.setdefault(normalize_header(name), (name, 0))
    for name, aliases in fields.items():
        for rank, alias in enumerate(aliases, start=1):
            table.setdefault(normalize_header(alias), (name, rank))
    return table


_ALIAS_TABLES = {kind: _alias_table(kind) for kind in ImportKind}


def _prefixed_target(header: str) -> str | None:
    """A header already written as a canonical prefixed field ("attr:vip", "consent:sms"), else None."""
    text = header.strip()
    for prefix in _PREFIXES:
        if text.lower().startswith(prefix) and len(text) > len(prefix):
            target = prefix + text[len(prefix) :].strip()
            return target if is_known_field(target) else None
    return None


def _fallback(header: str, kind: ImportKind) -> str | None:
    if kind is ImportKind.CUSTOMERS:
        return ATTRIBUTE_PREFIX + header.strip()
    if kind is ImportKind.EVENTS:
        return PROPERTY_PREFIX + header.strip()
    return None  # an order has no free-form fields: unknown columns are ignored


def detect(columns: list[str], kind: ImportKind) -> dict[str, str]:
    """Source column -> canonical field, guessed from the headers.

    Unknown columns become `attr:<header>` for customers and `prop:<header>` for events, and are left out
    for orders (see `ignored_columns`). When two columns name the same field, the better-known alias wins
    and the other is treated as unknown.
    """
    table = _ALIAS_TABLES[kind]
    best: dict[str, tuple[int, int]] = {}  # field -> (rank, column index)
    guesses: dict[int, str] = {}
    for index, column in enumerate(columns):
        prefixed = _prefixed_target(column)
        if prefixed is not None:
            guesses[index] = prefixed
            continue
        hit = table.get(normalize_header(column))
        if hit is None:
            continue
        field, rank = hit
        if field not in best or rank < best[field][0]:
            best[field] = (rank, index)
    winners = {index: field for field, (_, index) in best.items()}
    mapping: dict[str, str] = {}
    for index, column in enumerate(columns):
        target = guesses.get(index) or winners.get(index) or _fallback(column, kind)
        if target is not None:
            mapping[column] = target
    return mapping


def ignored_columns(columns: list[str], mapping: dict[str, str]) -> list[str]:
    """The columns of the file that `mapping` does not load, in file order."""
    return [c for c in columns if c not in mapping]


def known_fields(kind: ImportKind | None = None) -> list[str]:
    """Plain canonical field names for `kind` (all kinds when None), identity fields first."""
    kinds = [kind] if kind is not None else list(ImportKind)
    names: dict[str, None] = dict.fromkeys(IDENTITY_FIELDS)
    for k in kinds:
        names.update(dict.fromkeys(FIELDS_BY_KIND[k]))
    return list(names)


def is_known_field(target: str, kind: ImportKind | None = None) -> bool:
    """True for a canonical field of `kind`, or a well-formed prefixed one (`attr:x`, `identity:x`, …)."""
    if target in known_fields(kind):
        return True
    if target.startswith((ATTRIBUTE_PREFIX, PROPERTY_PREFIX)):
        return bool(target.split(":", 1)[1].strip())
    if target.startswith((CUSTOM_IDENTITY_PREFIX, CONSENT_PREFIX)):
        return bool(_NAME_RE.fullmatch(target.split(":", 1)[1]))
    return False


def apply_overrides(
    detected: dict[str, str],
    overrides: dict[str, str],
    *,
    columns: list[str] | None = None,
    kind: ImportKind | None = None,
) -> dict[str, str]:
    """`detected` with the user's choices applied: a canonical field, or "" / "ignore" to drop a column.

    `columns` are the file's headers (default: the detected ones) and `kind` restricts the fields that
    may be named. A column taken over by an override loses nothing else: any other column detected as
    the same plain field is dropped. Unknown columns or fields raise `ValidationFailed` with a suggestion.
    """
    file_columns = list(columns) if columns is not None else list(detected)
    fields = known_fields(kind)
    result = dict(detected)
    chosen: dict[str, str] = {}
    for column, raw_target in overrides.items():
        if column not in file_columns:
            close = difflib.get_close_matches(column, file_columns, n=1, cutoff=0.5)
            raise ValidationFailed(
                f"the mapping names a column {column!r} that is not in the file",
                where=f"mapping[{column!r}]",
                hint=f"did you mean {close[0]!r}?"
                if close
                else f"the file's columns are: {', '.join(file_columns)}",
            )
        target = raw_target.strip()
        if target == "" or target.lower() == IGNORE:
            result.pop(column, None)
            continue
        if not is_known_field(target, kind):
            close = difflib.get_close_matches(target, fields, n=1)
            raise ValidationFailed(
                f"{target!r} is not a field that can be imported",
                where=f"mapping[{column!r}]",
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + "use a field name, attr:<name>, prop:<name>, identity:<kind>, consent:<channel> or 'ignore'",
            )
        if target in chosen.values() and not target.startswith((ATTRIBUTE_PREFIX, PROPERTY_PREFIX)):
            other = next(c for c, t in chosen.items() if t == target)
            raise ValidationFailed(
                f"columns {other!r} and {column!r} are both mapped to {target!r}",
                where=f"mapping[{column!r}]",
                hint="map one of them to another field or to 'ignore'",
            )
        chosen[column] = target
    for column, target in chosen.items():
        for other, other_target in list(result.items()):
            if other != column and other not in chosen and other_target == target:
                del result[other]
        result[column] = target
    return {c: result[c] for c in file_columns if c in result}
