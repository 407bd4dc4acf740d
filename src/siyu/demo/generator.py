"""Generates the demo brand's import files from a seed: customers.csv, orders.csv and events.jsonl.

Pure (numpy + polars, no database): the same seed and size give the same files byte for byte.

The brand is 茶山集 ChaShanJi, a tea-drink chain of 20 stores in five cities. Its data covers the two
years that end on `WINDOW_END` (2025-06-30), the day before the fixed `ANCHOR_DATE` (2025-07-01) that
plays "today" in the demo: the data never moves with the clock, so figures and screenshots stay the same.
Times in the files are local (Asia/Shanghai) wall-clock times without an offset, as POS exports write them.

Repeat buying follows a BG/NBD-like process: each customer buys at a rate drawn from a gamma distribution
and, after each purchase, drops out with a probability drawn from a beta distribution. Time runs faster
in busy periods (summer peak for iced drinks, holidays, weekends), so the same process gives seasonality.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from siyu.customers.identity_values import is_junk_phone_national

ANCHOR_DATE = date(2025, 7, 1)  # the demo's fixed "today"
WINDOW_END = ANCHOR_DATE - timedelta(days=1)  # last day with data ("yesterday")
WINDOW_START = date(2023, 7, 1)
DAYS = (WINDOW_END - WINDOW_START).days + 1
BRAND_NAME = "茶山集 ChaShanJi"
TIMEZONE = "Asia/Shanghai"
CURRENCY = "CNY"

CUSTOMERS_FILE = "customers.csv"
ORDERS_FILE = "orders.csv"
EVENTS_FILE = "events.jsonl"
WECOM_FRIENDS_FILE = "wecom_friends.csv"  # the brand's WeCom friendships (客户联系), not an import file

# Chinese headers, as a POS / mini-program export writes them: the import maps them automatically.
CUSTOMER_HEADERS = (
    "手机号",
    "会员号",
    "unionid",
    "抖音openid",
    "企微外部联系人ID",
    "姓名",
    "性别",
    "生日",
    "城市",
    "渠道",
    "负责人",
    "创建时间",
    "短信同意",
    "同意时间",
    "会员等级",
)
WECOM_FRIEND_HEADERS = ("external_userid", "staff_email", "added_at", "removed_at", "removed_by")
# The share of WeCom friendships that end within the two years, and of those, the share the staff ended
# (the rest: the customer deleted the staff member, the churn signal).
FRIENDSHIP_END_SHARE = 0.35
STAFF_REMOVAL_SHARE = 0.2
ORDER_HEADERS = (
    "订单号",
    "下单时间",
    "渠道",
    "门店编码",
    "手机号",
    "会员号",
    "unionid",
    "抖音openid",
    "订单状态",
    "订单金额",
    "优惠金额",
    "实付金额",
    "退款金额",
    "商品编码",
    "商品名称",
    "品类",
    "数量",
    "单价",
    "小计",
)


@dataclass(frozen=True)
class StoreSpec:
    code: str
    name: str
    city: str
    address: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class ChannelSpec:
    key: str
    name: str  # also the spelling the files use in 渠道
    source_type: str
    aliases: tuple[str, ...]
    monthly_cost_yuan: tuple[int, int]  # range of the monthly spend at the 50k-customer scale


@dataclass(frozen=True)
class StaffSpec:
    local_part: str
    display_name: str
    role: str  # owner | admin | operator | analyst | staff
    city: str  # "" for head-office roles

    def email(self, domain: str) -> str:
        return f"{self.local_part}@{domain}"


@dataclass(frozen=True)
class Sku:
    code: str
    name: str
    category: str
    price_cents: int
    weight: float
    summer_bias: float  # > 0 sells more in summer (iced), < 0 more in winter (hot)


@dataclass(frozen=True)
class ChannelCostSpec:
    channel_key: str
    period_start: date
    period_end: date
    amount_cents: int


# city, latitude, longitude, districts (one store each)
_CITIES: tuple[tuple[str, float, float, tuple[str, ...]], ...] = (
    ("上海", 31.2304, 121.4737, ("静安寺", "徐家汇", "陆家嘴", "五角场", "中山公园", "七宝")),
    ("杭州", 30.2741, 120.1551, ("湖滨", "西溪", "滨江", "武林")),
    ("苏州", 31.2990, 120.5853, ("观前街", "金鸡湖", "石路")),
    ("南京", 32.0603, 118.7969, ("新街口", "河西", "夫子庙")),
    ("成都", 30.5728, 104.0668, ("春熙路", "太古里", "高新", "宽窄巷子")),
)
_CITY_CODES = {"上海": "SH", "杭州": "HZ", "苏州": "SZ", "南京": "NJ", "成都": "CD"}

STORES: tuple[StoreSpec, ...] = tuple(
    StoreSpec(
        code=f"{_CITY_CODES[city]}{i + 1:02d}",
        name=f"茶山集·{district}店",
        city=city,
        address=f"{city}市{district}商圈{i + 1}号",
        # a fixed spiral around the city centre: plausible, distinct and deterministic
        latitude=round(lat + 0.018 * np.cos(i * 2.1) * (1 + i / 3), 5),
        longitude=round(lon + 0.021 * np.sin(i * 2.1) * (1 + i / 3), 5),
    )
    for city, lat, lon, districts in _CITIES
    for i, district in enumerate(districts)
)
CITY_NAMES: tuple[str, ...] = tuple(c[0] for c in _CITIES)

# Acquisition channels, in the order of `_ACQUISITION_P`; orders happen in the first four only.
CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec("store", "门店", "store", ("线下门店", "门店自提"), (8_000, 12_000)),
    ChannelSpec("miniprogram", "小程序", "mini_program", ("微信小程序", "点单小程序"), (5_000, 8_000)),
    ChannelSpec("meituan", "美团外卖", "meituan", ("美团", "Meituan"), (20_000, 35_000)),
    ChannelSpec("douyin", "抖音团购", "douyin", ("抖音", "Douyin"), (25_000, 50_000)),
    ChannelSpec(
        "wecom_livecode", "企微活码", "wecom_live_code", ("企业微信活码", "导购活码"), (3_000, 5_000)
    ),
    ChannelSpec("ads", "朋友圈广告", "ads", ("广告", "信息流广告"), (15_000, 30_000)),
)
_STORE, _MINI, _MEITUAN, _DOUYIN, _WECOM, _ADS = range(6)
_ACQUISITION_P = np.array([0.38, 0.20, 0.16, 0.12, 0.08, 0.06])
# Where each acquisition channel's customers order later: store, mini program, Meituan, Douyin.
_ORDER_MIX = np.array(
    [
        [0.72, 0.16, 0.10, 0.02],
        [0.25, 0.68, 0.06, 0.01],
        [0.15, 0.05, 0.80, 0.00],
        [0.35, 0.05, 0.15, 0.45],
        [0.50, 0.40, 0.10, 0.00],
        [0.25, 0.45, 0.30, 0.00],
    ]
)

STAFF: tuple[StaffSpec, ...] = (
    StaffSpec("owner", "林山茶", "owner", ""),
    StaffSpec("ops", "周运营", "operator", ""),
    StaffSpec("analyst", "陈数据", "analyst", ""),
    StaffSpec("staff01", "王小雨", "staff", "上海"),
    StaffSpec("staff02", "李思琪", "staff", "上海"),
    StaffSpec("staff03", "张一鸣", "staff", "上海"),
    StaffSpec("staff04", "刘佳怡", "staff", "杭州"),
    StaffSpec("staff05", "陈子涵", "staff", "杭州"),
    StaffSpec("staff06", "杨欣然", "staff", "苏州"),
    StaffSpec("staff07", "赵文博", "staff", "南京"),
    StaffSpec("staff08", "黄诗雨", "staff", "成都"),
    StaffSpec("staff09", "吴浩然", "staff", "成都"),
)

CATALOG: tuple[Sku, ...] = (
    Sku("NC01", "招牌山茶奶茶", "奶茶", 1600, 10, -0.3),
    Sku("NC02", "黑糖珍珠奶茶", "奶茶", 1800, 8, -0.4),
    Sku("NC03", "茉莉奶绿", "奶茶", 1700, 6, 0.0),
    Sku("NC04", "芋泥波波奶茶", "奶茶", 1900, 6, -0.5),
    Sku("GC01", "满杯鲜橙", "果茶", 1800, 6, 0.8),
    Sku("GC02", "杨枝甘露", "果茶", 2200, 7, 0.7),
    Sku("GC03", "多肉葡萄", "果茶", 2300, 6, 0.9),
    Sku("GC04", "柠檬绿茶", "果茶", 1400, 7, 1.0),
    Sku("GC05", "水蜜桃乌龙", "果茶", 2000, 4, 0.9),
    Sku("KF01", "冰美式", "咖啡", 1500, 4, 0.6),
    Sku("KF02", "生椰拿铁", "咖啡", 2000, 5, 0.4),
    Sku("KF03", "桂花拿铁", "咖啡", 2100, 3, -0.4),
    Sku("CC01", "凤凰单丛", "纯茶", 1200, 3, -0.2),
    Sku("CC02", "茉莉绿茶", "纯茶", 1000, 3, 0.2),
    Sku("CC03", "铁观音", "纯茶", 1200, 2, -0.5),
    Sku("XL01", "加珍珠", "小料", 200, 5, 0.0),
    Sku("XL02", "加椰果", "小料", 200, 3, 0.3),
    Sku("XL03", "加芝士奶盖", "小料", 400, 4, -0.2),
    Sku("ZB01", "茶山集帆布袋", "周边", 3900, 3, 0.0),
    Sku("ZB02", "随行杯", "周边", 6900, 2, 0.0),
    Sku("ZB03", "山茶茶包礼盒", "周边", 8800, 1, -0.8),
)
_DRINK_CATEGORIES = ("奶茶", "果茶", "咖啡", "纯茶")

# BG/NBD-like parameters: purchase rate per (busy-adjusted) day ~ Gamma(R, 1/ALPHA); dropout after each
# purchase ~ Beta(A, B). Mean gap between purchases ~ 25 days, mean dropout 0.18.
GAMMA_R, GAMMA_ALPHA = 1.1, 28.0
BETA_A, BETA_B = 1.2, 5.5
REFUND_SHARE = 0.025  # of orders; 60 % of them in full, the rest partially
SPLIT_SHARE = 0.05  # of store customers who later use the mini program without binding their phone
LEAD_SHARE = 0.25  # of live-code and ad contacts who never buy

_SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁"
)
_GIVEN = list("子涵欣怡梓萱一诺浩宇佳琪雨桐思远嘉怡俊杰晓彤雅婷文博诗琪梦瑶宇航心怡家豪若汐语嫣天佑明轩")
_PHONE_PREFIXES = np.array(
    [
        130,
        131,
        132,
        133,
        135,
        136,
        137,
        138,
        139,
        150,
        151,
        152,
        155,
        156,
        157,
        158,
        159,
        166,
        176,
        177,
        180,
        181,
        182,
        183,
        185,
        186,
        187,
        188,
        189,
        191,
        198,
        199,
    ]
)
_ID_ALPHABET = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8
)
_HOUR_WEIGHTS = np.array([2, 4, 7, 11, 10, 7, 9, 10, 8, 7, 8, 6, 4], dtype=float)  # 09:00 … 21:59
_WEEKDAY_FACTOR = np.array([0.92, 0.92, 0.95, 1.0, 1.1, 1.24, 1.18])  # Monday … Sunday
# (first day, factor, length in days): Valentine's, 520, Qixi, National Day, Christmas; Spring Festival
# closes many stores and sends people home, so it is a dip.
_HOLIDAYS: tuple[tuple[date, float, int], ...] = (
    (date(2024, 2, 14), 1.5, 1),
    (date(2025, 2, 14), 1.5, 1),
    (date(2024, 5, 20), 1.6, 1),
    (date(2025, 5, 20), 1.6, 1),
    (date(2023, 8, 22), 1.5, 1),
    (date(2024, 8, 10), 1.5, 1),
    (date(2023, 10, 1), 1.35, 7),
    (date(2024, 10, 1), 1.35, 7),
    (date(2023, 12, 24), 1.4, 2),
    (date(2024, 12, 24), 1.4, 2),
    (date(2024, 2, 9), 0.6, 7),
    (date(2025, 1, 28), 0.6, 7),
)
_COUPONS = ("夏日第二杯半价", "新人立减5元", "会员日8折", "满30减6")
_PAGES = ("/menu", "/menu/fruit-tea", "/member", "/coupons", "/order/confirm")


@dataclass
class DemoFiles:
    """The generated files and what importing them must give (for checks and for the CLI summary)."""

    directory: Path
    customers_csv: Path
    orders_csv: Path
    events_jsonl: Path
    seed: int
    wecom_friends_csv: Path | None = None
    friendships: int = 0  # rows of wecom_friends.csv
    ended_friendships: int = 0
    persons: int = 0  # distinct people: the customers the pool must hold after all three imports
    customer_rows: int = 0  # good rows of customers.csv
    orders: int = 0  # good orders in orders.csv
    order_rows: int = 0  # good rows (lines) of orders.csv
    refunded_orders: int = 0
    partially_refunded_orders: int = 0
    events: int = 0  # good events in events.jsonl
    split_persons: int = 0  # people known twice (phone / mini program) until events.jsonl links them
    dirty_rows: dict[str, int] = field(default_factory=dict)  # file name -> rows the import must reject
    revenue_cents: int = 0  # paid minus refunded, over the good orders


def daily_intensity() -> np.ndarray:
    """Relative busy-ness of each day of the window: summer peak, holidays and weekdays."""
    days = np.arange(DAYS)
    dates = np.datetime64(WINDOW_START.isoformat(), "D") + days
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(int)
    summer = np.exp(-0.5 * ((day_of_year - 200) / 38.0) ** 2)  # peaks around 19 July
    weekday = (dates.astype(int) + 3) % 7  # 1970-01-01 was a Thursday
    intensity = (1.0 + 0.55 * summer) * _WEEKDAY_FACTOR[weekday]
    for start, factor, length in _HOLIDAYS:
        first = (start - WINDOW_START).days
        if 0 <= first < DAYS:
            intensity[first : first + length] *= factor
    return intensity


def _summer_by_month() -> tuple[np.ndarray, np.ndarray]:
    """Month index of each day, and the mean summer strength of each month (0 … 1)."""
    dates = np.datetime64(WINDOW_START.isoformat(), "D") + np.arange(DAYS)
    months = dates.astype("datetime64[M]")
    month_index = (months - months[0]).astype(int)
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(int)
    summer = np.exp(-0.5 * ((day_of_year - 200) / 38.0) ** 2)
    counts = np.bincount(month_index)
    return month_index, np.bincount(month_index, weights=summer) / counts


def _seconds_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    hours = 9 + rng.choice(_HOUR_WEIGHTS.size, size=n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    return hours * 3600 + rng.integers(0, 3600, size=n)


def _random_ids(rng: np.random.Generator, n: int, prefix: str, length: int) -> list[str]:
    codes = _ID_ALPHABET[rng.integers(0, _ID_ALPHABET.size, size=(n, length))]
    raw = np.ascontiguousarray(codes).view(f"S{length}").ravel()
    return [prefix + value.decode() for value in raw]


def _phones(rng: np.random.Generator, n: int) -> list[str]:
    """`n` distinct, realistic CN mobile numbers (none that the import would treat as a placeholder)."""
    chosen: list[str] = []
    seen: set[str] = set()
    while len(chosen) < n:
        want = int((n - len(chosen)) * 1.05) + 16
        prefixes = _PHONE_PREFIXES[rng.integers(0, _PHONE_PREFIXES.size, size=want)]
        numbers = prefixes.astype(np.int64) * 100_000_000 + rng.integers(0, 100_000_000, size=want)
        for value in numbers.astype(str).tolist():
            if value not in seen and not is_junk_phone_national(value):
                seen.add(value)
                chosen.append(value)
                if len(chosen) == n:
                    break
    return chosen


def _names(rng: np.random.Generator, n: int) -> list[str]:
    surname = rng.integers(0, len(_SURNAMES), size=n)
    first = rng.integers(0, len(_GIVEN), size=n)
    second = rng.integers(0, len(_GIVEN), size=n)
    two = rng.random(n) < 0.7
    return [
        _SURNAMES[s] + _GIVEN[a] + (_GIVEN[b] if t else "")
        for s, a, b, t in zip(surname.tolist(), first.tolist(), second.tolist(), two.tolist(), strict=True)
    ]


def _or_null(mask: np.ndarray, values: np.ndarray) -> list[object]:
    """`values` where `mask` holds, else None (an empty cell in the file)."""
    return [v if m else None for m, v in zip(mask.tolist(), values.tolist(), strict=True)]


def _yuan(cents: pl.Expr) -> pl.Expr:
    """Integer cents as yuan text with two decimals ("18.00"), exactly."""
    return pl.format(
        "{}.{}",
        (cents // 100).cast(pl.Utf8),
        (cents % 100).cast(pl.Utf8).str.zfill(2),
    )


def _local_time(day: np.ndarray, seconds: np.ndarray) -> pl.Series:
    start = np.datetime64(WINDOW_START.isoformat(), "s")
    stamps = start + day.astype("timedelta64[D]") + seconds.astype("timedelta64[s]")
    return pl.Series(stamps.astype("datetime64[ms]")).dt.strftime("%Y-%m-%d %H:%M:%S")


def _purchases(
    rng: np.random.Generator, start_day: np.ndarray, rate: np.ndarray, dropout: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(person, day) of every purchase after the first, until dropout or the end of the window.

    Busy periods are handled by a time change: waiting times are exponential on a clock that runs as
    fast as `daily_intensity`, so purchases bunch in summer and on holidays.
    """
    intensity = daily_intensity()
    edges = np.arange(DAYS + 1, dtype=float)
    clock = np.concatenate([[0.0], np.cumsum(intensity / intensity.mean())])
    alive = np.arange(start_day.size)
    now = start_day.astype(float) + 0.5
    people: list[np.ndarray] = []
    days: list[np.ndarray] = []
    for _ in range(1000):  # bounded: even the most loyal customer drops out or runs out of window
        stays = rng.random(alive.size) >= dropout[alive]
        alive, now = alive[stays], now[stays]
        if alive.size == 0:
            break
        busy_time = np.interp(now, edges, clock) + rng.exponential(1.0 / rate[alive])
        inside = busy_time < clock[-1]
        alive, busy_time = alive[inside], busy_time[inside]
        now = np.interp(busy_time, clock, edges)
        people.append(alive)
        days.append(np.minimum(now.astype(np.int64), DAYS - 1))
    if not people:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(people), np.concatenate(days)


def channel_costs(*, customers: int = 50_000, seed: int = 7) -> list[ChannelCostSpec]:
    """Monthly spend per channel over the window, scaled to the brand's size (deterministic)."""
    rng = np.random.default_rng([seed, 1])
    scale = customers / 50_000
    costs: list[ChannelCostSpec] = []
    month = WINDOW_START
    while month <= WINDOW_END:
        following = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
        for spec in CHANNELS:
            low, high = spec.monthly_cost_yuan
            yuan = int(rng.integers(low, high + 1) * scale)
            costs.append(ChannelCostSpec(spec.key, month, following - timedelta(days=1), yuan * 100))
        month = following
    return costs


def generate(
    directory: Path,
    *,
    customers: int = 50_000,
    seed: int = 7,
    email_domain: str = "demo.siyu.local",
    repeat_scale: float = 1.0,
) -> DemoFiles:
    """Write customers.csv, orders.csv and events.jsonl for a brand of about `customers` people.

    Deterministic: the same arguments give the same bytes. `email_domain` names the staff logins that
    customers are assigned to (负责人), so it must match the users the demo workspace creates.
    `repeat_scale` makes customers buy more often and stay longer (purchase rate × s, dropout ÷ s^1.32):
    1 gives about 4.8 orders per person, 2 about 10 (the benchmarks' 1M customers / 10M orders).
    """
    if customers < 50:
        raise ValueError("the demo brand needs at least 50 customers")
    if not 0.2 <= repeat_scale <= 5:
        raise ValueError(f"repeat_scale {repeat_scale} is out of range: use 0.2 to 5")
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = customers

    # --- people: when and where they arrive, how they buy -------------------------------------------
    intensity = daily_intensity()
    growth = 0.6 + 0.8 * np.arange(DAYS) / DAYS  # the chain grows: more new customers every month
    arrival = intensity * growth
    acq_day = np.sort(rng.choice(DAYS, size=n, p=arrival / arrival.sum()))
    acq_sec = _seconds_of_day(rng, n)
    acq_channel = rng.choice(len(CHANNELS), size=n, p=_ACQUISITION_P)
    store_weights = np.array([1.0 for _ in STORES])
    home_store = rng.choice(len(STORES), size=n, p=store_weights / store_weights.sum())
    home_city = np.array([CITY_NAMES.index(STORES[s].city) for s in range(len(STORES))])[home_store]
    is_lead = np.isin(acq_channel, [_WECOM, _ADS]) & (rng.random(n) < LEAD_SHARE)
    rate = rng.gamma(GAMMA_R, 1.0 / GAMMA_ALPHA, size=n) * repeat_scale
    dropout = rng.beta(BETA_A, BETA_B, size=n) / repeat_scale**1.32

    buyers = np.flatnonzero(~is_lead)
    later_person, later_day = _purchases(rng, acq_day[buyers], rate[buyers], dropout[buyers])
    order_person = np.concatenate([buyers, buyers[later_person]])
    order_day = np.concatenate([acq_day[buyers], later_day])
    is_first = np.zeros(order_person.size, dtype=bool)
    is_first[: buyers.size] = True
    order_sec = np.where(is_first, acq_sec[order_person], _seconds_of_day(rng, order_person.size))
    order_by_time = np.lexsort((order_person, order_sec, order_day))
    order_person, order_day, order_sec, is_first = (
        order_person[order_by_time],
        order_day[order_by_time],
        order_sec[order_by_time],
        is_first[order_by_time],
    )
    n_orders = order_person.size

    # order channel: the customer's own mix; a first order happens where the customer was acquired
    mix = np.cumsum(_ORDER_MIX, axis=1)[acq_channel[order_person]]
    order_channel = (rng.random(n_orders)[:, None] > mix).sum(axis=1).clip(max=3)
    first_here = is_first & (acq_channel[order_person] <= _DOUYIN)
    order_channel = np.where(first_here, acq_channel[order_person], order_channel)
    # mostly the home store; sometimes another store of the same city
    stores_of_city = [np.array([i for i, s in enumerate(STORES) if s.city == c]) for c in CITY_NAMES]
    other_store = np.array(
        [
            stores_of_city[c][k % stores_of_city[c].size]
            for c, k in zip(
                home_city[order_person].tolist(), rng.integers(0, 64, size=n_orders).tolist(), strict=True
            )
        ]
    )
    order_store = np.where(rng.random(n_orders) < 0.85, home_store[order_person], other_store)

    # --- identities -----------------------------------------------------------------------------------
    mini_orders = np.bincount(order_person[order_channel == _MINI], minlength=n)
    douyin_orders = np.bincount(order_person[order_channel == _DOUYIN], minlength=n)
    uses_mini = (mini_orders > 0) | (acq_channel == _MINI)
    member = (
        uses_mini
        | np.isin(acq_channel, [_WECOM, _ADS])
        | ((acq_channel == _STORE) & (rng.random(n) < 0.6))
        | (np.isin(acq_channel, [_MEITUAN, _DOUYIN]) & (rng.random(n) < 0.3))
    )
    split = (mini_orders > 0) & (acq_channel == _STORE) & (rng.random(n) < SPLIT_SHARE)
    has_wecom = (acq_channel == _WECOM) | (member & (rng.random(n) < 0.15))
    phone = np.array(_phones(rng, n), dtype=object)
    unionid = np.array(_random_ids(rng, n, "oU", 26), dtype=object)
    douyin_id = np.array(_random_ids(rng, n, "_000", 28), dtype=object)
    external_userid = np.array(_random_ids(rng, n, "wm", 30), dtype=object)
    member_no = np.array([f"CSJ{8_000_000 + i:08d}" for i in range(n)], dtype=object)
    names = _names(rng, n)
    gender = rng.choice(np.array(["女", "男", ""], dtype=object), size=n, p=[0.62, 0.33, 0.05])
    birth_age_days = rng.integers(18 * 365, 46 * 365, size=n)
    has_birthday = rng.random(n) < 0.55

    staff_by_city = {c: [s for s in STAFF if s.city == c] for c in CITY_NAMES}
    owner = np.array(
        [
            staff_by_city[CITY_NAMES[c]][k % len(staff_by_city[CITY_NAMES[c]])].email(email_domain)
            for c, k in zip(home_city.tolist(), rng.integers(0, 64, size=n).tolist(), strict=True)
        ],
        dtype=object,
    )
    owned = (acq_channel == _WECOM) | (member & (acq_channel == _STORE) & (rng.random(n) < 0.5))

    # --- orders and lines -----------------------------------------------------------------------------
    drinks = 1 + np.minimum(rng.poisson(np.where(order_channel == _MEITUAN, 0.9, 0.4)), 4)
    topping = (rng.random(n_orders) < 0.3).astype(np.int64)
    merch = (rng.random(n_orders) < 0.015).astype(np.int64)
    line_count = drinks + topping + merch
    line_order = np.repeat(np.arange(n_orders), line_count)
    line_start = np.cumsum(line_count) - line_count
    line_no = np.arange(line_order.size) - line_start[line_order]  # 0-based within the order
    is_drink = line_no < drinks[line_order]
    is_topping = ~is_drink & (line_no < drinks[line_order] + topping[line_order])
    month_of_day, summer_of_month = _summer_by_month()
    line_month = month_of_day[order_day[line_order]]
    line_sku = np.zeros(line_order.size, dtype=np.int64)
    kinds = (
        (is_drink, [i for i, s in enumerate(CATALOG) if s.category in _DRINK_CATEGORIES]),
        (is_topping, [i for i, s in enumerate(CATALOG) if s.category == "小料"]),
        (~is_drink & ~is_topping, [i for i, s in enumerate(CATALOG) if s.category == "周边"]),
    )
    for mask, sku_ids in kinds:
        weights = np.array([CATALOG[i].weight for i in sku_ids])
        bias = np.array([CATALOG[i].summer_bias for i in sku_ids])
        for month, summer in enumerate(summer_of_month):
            where = np.flatnonzero(mask & (line_month == month))
            if where.size:
                p = weights * np.clip(1 + 0.9 * bias * (summer - 0.35), 0.1, None)
                line_sku[where] = np.array(sku_ids)[rng.choice(len(sku_ids), size=where.size, p=p / p.sum())]
    quantity = np.where(is_drink & (rng.random(line_order.size) < 0.08), 2, 1)
    delivery_markup = np.where(order_channel[line_order] == _MEITUAN, 200, 0)  # Meituan menu prices
    unit_price = np.array([s.price_cents for s in CATALOG])[line_sku] + np.where(is_drink, delivery_markup, 0)
    line_amount = unit_price * quantity
    total = np.bincount(line_order, weights=line_amount, minlength=n_orders).astype(np.int64)
    coupon = rng.random(n_orders)
    discount = np.select(
        [order_channel == _DOUYIN, coupon < 0.15, coupon < 0.25],
        [(total // 500) * 100, np.full(n_orders, 300), np.full(n_orders, 500)],
        0,
    )
    discount = np.minimum(discount, np.maximum(total - 100, 0))
    paid = total - discount
    refund_draw = rng.random(n_orders)
    refunded_full = refund_draw < REFUND_SHARE * 0.6
    refunded_part = ~refunded_full & (refund_draw < REFUND_SHARE) & (paid > 200)
    first_line_amount = line_amount[line_start]
    refund = np.where(
        refunded_full, paid, np.where(refunded_part, np.minimum(first_line_amount, paid // 2), 0)
    )
    status = np.where(refunded_full, "已退款", np.where(refunded_part, "部分退款", "已完成"))

    order_no = (
        pl.DataFrame({"t": _local_time(order_day, order_sec)})
        .select(
            pl.format(
                "E{}{}",
                pl.col("t").str.slice(0, 10).str.replace_all("-", ""),
                pl.int_range(pl.len()).cast(pl.Utf8).str.zfill(7),
            )
        )
        .to_series()
    )
    channel_names = np.array([c.name for c in CHANNELS], dtype=object)
    store_codes = np.array([s.code for s in STORES], dtype=object)
    lp = order_person[line_order]
    lc = order_channel[line_order]
    by_phone = np.isin(lc, [_STORE, _MEITUAN, _DOUYIN])
    by_mini = lc == _MINI
    orders_frame = pl.DataFrame(
        {
            "订单号": order_no.gather(line_order),
            "下单时间": _local_time(order_day, order_sec).gather(line_order),
            "渠道": channel_names[lc].tolist(),
            "门店编码": store_codes[order_store[line_order]].tolist(),
            "手机号": _or_null(by_phone, phone[lp]),
            "会员号": _or_null(by_mini, member_no[lp]),
            "unionid": _or_null(by_mini, unionid[lp]),
            "抖音openid": _or_null(lc == _DOUYIN, douyin_id[lp]),
            "订单状态": status[line_order].tolist(),
            "total": total[line_order],
            "discount": discount[line_order],
            "paid": paid[line_order],
            "refund": refund[line_order],
            "商品编码": [CATALOG[i].code for i in line_sku.tolist()],
            "商品名称": [CATALOG[i].name for i in line_sku.tolist()],
            "品类": [CATALOG[i].category for i in line_sku.tolist()],
            "数量": quantity,
            "unit": unit_price,
            "line": line_amount,
        },
        schema_overrides={c: pl.Utf8 for c in ("手机号", "会员号", "unionid", "抖音openid")},
    ).with_columns(
        _yuan(pl.col("total")).alias("订单金额"),
        _yuan(pl.col("discount")).alias("优惠金额"),
        _yuan(pl.col("paid")).alias("实付金额"),
        _yuan(pl.col("refund")).alias("退款金额"),
        _yuan(pl.col("unit")).alias("单价"),
        _yuan(pl.col("line")).alias("小计"),
    )
    orders_frame = orders_frame.select(ORDER_HEADERS)
    dirty_orders = _dirty_order_rows(orders_frame)
    orders_frame = _insert_rows(rng, orders_frame, dirty_orders)
    orders_frame.write_csv(directory / ORDERS_FILE)

    # --- customers ------------------------------------------------------------------------------------
    members = np.flatnonzero(member)
    order_counts = np.bincount(order_person, minlength=n)
    level = np.where(order_counts >= 12, "黑金", np.where(order_counts >= 4, "金卡", "银卡"))
    birthday = np.datetime64(ANCHOR_DATE.isoformat(), "D") - birth_age_days.astype("timedelta64[D]")
    consent = rng.choice(np.array(["是", "否", ""], dtype=object), size=n, p=[0.65, 0.15, 0.20])
    # consent times and WeCom friendships draw from their own stream: orders and events stay as they were
    later = np.random.default_rng([seed, 1])
    consent_sec = acq_sec + _consent_delay(later, consent)
    m = members
    customers_frame = pl.DataFrame(
        {
            "手机号": phone[m].tolist(),
            "会员号": _or_null(~split[m], member_no[m]),
            "unionid": _or_null(uses_mini[m] & ~split[m], unionid[m]),
            "抖音openid": _or_null(douyin_orders[m] > 0, douyin_id[m]),
            "企微外部联系人ID": _or_null(has_wecom[m], external_userid[m]),
            "姓名": [names[i] for i in m.tolist()],
            "性别": gender[m].tolist(),
            "生日": _or_null(has_birthday[m], np.datetime_as_string(birthday[m])),
            "城市": [CITY_NAMES[c] for c in home_city[m].tolist()],
            "渠道": channel_names[acq_channel[m]].tolist(),
            "负责人": _or_null(owned[m], owner[m]),
            "创建时间": _local_time(acq_day[m], acq_sec[m]),
            "短信同意": consent[m].tolist(),
            "同意时间": _local_time(acq_day[m], np.minimum(consent_sec[m], _LAST - 86_400 * acq_day[m])),
            "会员等级": level[m].tolist(),
        },
        schema_overrides={h: pl.Utf8 for h in CUSTOMER_HEADERS if h not in ("创建时间", "同意时间")},
    ).with_columns(
        pl.col("性别", "短信同意").replace("", None),
        pl.when(pl.col("短信同意") != "").then(pl.col("同意时间")).alias("同意时间"),
    )
    dirty_customers = _dirty_customer_rows(customers_frame)
    customers_frame = _insert_rows(rng, customers_frame, dirty_customers)
    customers_frame.write_csv(directory / CUSTOMERS_FILE)

    # --- WeCom friendships -----------------------------------------------------------------------------
    friends = _write_wecom_friends(
        later,
        directory / WECOM_FRIENDS_FILE,
        people=np.flatnonzero(has_wecom),
        acq_day=acq_day,
        acq_sec=acq_sec,
        via_live_code=acq_channel == _WECOM,
        external_userid=external_userid,
        owner=owner,
    )

    # --- events ---------------------------------------------------------------------------------------
    events, dirty_events = _write_events(
        rng,
        directory / EVENTS_FILE,
        acq_day=acq_day,
        acq_sec=acq_sec,
        acq_channel=acq_channel,
        member=member,
        split=split,
        phone=phone,
        unionid=unionid,
        external_userid=external_userid,
        owner=owner,
        home_city=home_city,
        order_person=order_person,
        order_day=order_day,
        order_sec=order_sec,
        order_channel=order_channel,
    )

    return DemoFiles(
        directory=directory,
        customers_csv=directory / CUSTOMERS_FILE,
        orders_csv=directory / ORDERS_FILE,
        events_jsonl=directory / EVENTS_FILE,
        seed=seed,
        wecom_friends_csv=directory / WECOM_FRIENDS_FILE,
        friendships=friends.height,
        ended_friendships=int(friends["removed_at"].is_not_null().sum()),
        persons=int((member | (order_counts > 0)).sum()),
        customer_rows=int(members.size),
        orders=n_orders,
        order_rows=int(line_order.size),
        refunded_orders=int(refunded_full.sum()),
        partially_refunded_orders=int(refunded_part.sum()),
        events=events,
        split_persons=int(split.sum()),
        dirty_rows={
            CUSTOMERS_FILE: dirty_customers.height,
            ORDERS_FILE: dirty_orders.height,
            EVENTS_FILE: dirty_events,
        },
        revenue_cents=int((paid - refund).sum()),
    )


_LAST = DAYS * 86_400 - 1  # the window's last second, counted from its start


def _consent_delay(rng: np.random.Generator, consent: np.ndarray) -> np.ndarray:
    """Seconds from joining to the consent status given: most agree when they sign up (a tick box at
    the counter or in the mini program), some later; a no is a withdrawal days or months on."""
    n = consent.size
    at_signup = rng.integers(0, 600, size=n)
    later = (rng.exponential(20.0, size=n) * 86_400).astype(np.int64)
    granted = np.where(rng.random(n) < 0.8, at_signup, later)
    withdrawn = (rng.uniform(3, 180, size=n) * 86_400).astype(np.int64)
    return np.where(consent == "否", withdrawn, granted)


def _write_wecom_friends(
    rng: np.random.Generator,
    path: Path,
    *,
    people: np.ndarray,
    acq_day: np.ndarray,
    acq_sec: np.ndarray,
    via_live_code: np.ndarray,
    external_userid: np.ndarray,
    owner: np.ndarray,
) -> pl.DataFrame:
    """Each WeCom contact's friendship with their staff member (负责人, or one of their city's): added
    minutes after joining through a live code, else days later; some ended, mostly by the customer."""
    n = people.size
    joined = acq_day[people].astype(np.int64) * 86_400 + acq_sec[people]
    delay = np.where(
        via_live_code[people],
        rng.integers(0, 1_800, size=n),
        (rng.exponential(7.0, size=n) * 86_400).astype(np.int64),
    )
    added = joined + delay
    ends = rng.random(n) < FRIENDSHIP_END_SHARE
    removed = added + (rng.exponential(120.0, size=n) * 86_400).astype(np.int64) + 3_600
    ended = ends & (removed <= _LAST)
    by_staff = rng.random(n) < STAFF_REMOVAL_SHARE
    keep = added <= _LAST
    zero = np.zeros(n, dtype=np.int64)
    frame = pl.DataFrame(
        {
            "external_userid": external_userid[people].tolist(),
            "staff_email": owner[people].tolist(),
            "added_at": _local_time(zero, added),
            "removed_at": _local_time(zero, np.where(ended, removed, added)),
            "removed_by": np.where(by_staff, "staff", "customer").tolist(),
            "ended": ended,
            "keep": keep,
        }
    )
    frame = frame.filter(pl.col("keep")).select(
        "external_userid",
        "staff_email",
        "added_at",
        pl.when(pl.col("ended")).then(pl.col("removed_at")).alias("removed_at"),
        pl.when(pl.col("ended")).then(pl.col("removed_by")).alias("removed_by"),
    )
    frame.write_csv(path)
    return frame


def _insert_rows(rng: np.random.Generator, frame: pl.DataFrame, extra: pl.DataFrame) -> pl.DataFrame:
    """`frame` with the rows of `extra` spread over it at random places (whole orders stay together)."""
    positions = np.sort(rng.integers(0, frame.height, size=extra.height))
    if "订单号" in frame.columns:
        # move each position to the start of an order so that no order's lines are split
        ids = frame["订单号"]
        while True:
            moved = np.array([p - 1 if p > 0 and ids[p] == ids[p - 1] else p for p in positions.tolist()])
            if (moved == positions).all():
                break
            positions = moved
    parts: list[pl.DataFrame] = []
    previous = 0
    for i, position in enumerate(positions.tolist()):
        parts.append(frame.slice(previous, position - previous))
        parts.append(extra.slice(i, 1))
        previous = position
    parts.append(frame.slice(previous))
    return pl.concat(parts)


def _dirty_order_rows(orders: pl.DataFrame) -> pl.DataFrame:
    """Twelve single-line orders the import must reject: bad phone, future date, negative, unknown channel."""
    template = orders.filter(pl.col("渠道") == "门店").head(12)
    bad = {
        "手机号": ["1381234567", "138-1234-567", "+86 12345"],
        "下单时间": ["2099-07-01 12:00:00", "2098-01-01 09:30:00", "2097-05-20 15:00:00"],
        "实付金额": ["-18.00", "-5.50", "-120.00"],
        "渠道": ["拼多多", "小红书", "饿了么"],
    }
    rows = []
    for k, (column, values) in enumerate(bad.items()):
        for j, value in enumerate(values):
            row = template.row(3 * k + j, named=True)
            row.update({"订单号": f"X{9_000_000 + 3 * k + j}", column: value})
            rows.append(row)
    return pl.DataFrame(rows, schema=orders.schema)


def _dirty_customer_rows(customers: pl.DataFrame) -> pl.DataFrame:
    """Three members the import must reject for a malformed phone number."""
    rows = []
    for value, name in (("1381234", "测试甲"), ("1891234abcd", "测试乙"), ("021-555", "测试丙")):
        row = dict.fromkeys(customers.columns)
        row.update({"手机号": value, "姓名": name, "城市": "上海", "渠道": "门店"})
        row["创建时间"] = customers["创建时间"][0]
        rows.append(row)
    return pl.DataFrame(rows, schema=customers.schema)


def _write_events(
    rng: np.random.Generator,
    path: Path,
    *,
    acq_day: np.ndarray,
    acq_sec: np.ndarray,
    acq_channel: np.ndarray,
    member: np.ndarray,
    split: np.ndarray,
    phone: np.ndarray,
    unionid: np.ndarray,
    external_userid: np.ndarray,
    owner: np.ndarray,
    home_city: np.ndarray,
    order_person: np.ndarray,
    order_day: np.ndarray,
    order_sec: np.ndarray,
    order_channel: np.ndarray,
) -> tuple[int, int]:
    """Live-code scans, mini-program visits, coupon views and phone bindings; returns (good, dirty) counts."""
    last = DAYS * 86_400 - 1
    records: list[tuple[int, str, str, str, str, dict[str, str]]] = []  # (at, type, key, value, …)

    for i in np.flatnonzero(acq_channel == _WECOM).tolist():
        at = int(acq_day[i]) * 86_400 + int(acq_sec[i]) - 120
        props = {"live_code": f"{CITY_NAMES[home_city[i]]}导购活码", "staff": str(owner[i])}
        records.append((at, "live_code_scan", "wecom", str(external_userid[i]), "", props))

    mini = np.flatnonzero(order_channel == _MINI)
    visits = mini[rng.random(mini.size) < 0.6]
    minutes = rng.integers(2, 15, size=visits.size)
    pages = rng.integers(0, len(_PAGES), size=visits.size)
    for k, o in enumerate(visits.tolist()):
        p = int(order_person[o])
        at = int(order_day[o]) * 86_400 + int(order_sec[o]) - 60 * int(minutes[k])
        records.append((at, "mini_program_visit", "unionid", str(unionid[p]), "", {"page": _PAGES[pages[k]]}))

    viewers = np.flatnonzero(member & (rng.random(member.size) < 0.3))
    views = rng.integers(1, 4, size=viewers.size)
    for p, count in zip(viewers.tolist(), views.tolist(), strict=True):
        first = int(acq_day[p])
        for _ in range(count):
            day = int(rng.integers(first, DAYS))
            at = day * 86_400 + int(_seconds_of_day(rng, 1)[0])
            coupon = _COUPONS[int(rng.integers(0, len(_COUPONS)))]
            records.append((at, "coupon_view", "phone", str(phone[p]), "", {"coupon": coupon}))

    # the later record carrying both keys, which merges a person's two customer records
    first_mini: dict[int, int] = {}
    for o in mini.tolist():
        first_mini.setdefault(int(order_person[o]), int(order_day[o]) * 86_400 + int(order_sec[o]))
    for p in np.flatnonzero(split).tolist():
        at = min(first_mini[p] + int(rng.integers(600, 3 * 86_400)), last)
        records.append(
            (at, "member_bind", "phone", str(phone[p]), str(unionid[p]), {"via": "小程序绑定手机号"})
        )

    records.sort(key=lambda r: (r[0], r[1], r[3]))
    start = np.datetime64(WINDOW_START.isoformat(), "s")
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for seq, (at, kind, key, value, extra, props) in enumerate(records, start=1):
            record: dict[str, object] = {
                "事件ID": f"EV{seq:08d}",
                "事件类型": kind,
                "发生时间": str(start + np.timedelta64(max(at, 0), "s")).replace("T", " "),
                "来源": {"live_code_scan": "wecom_livecode", "coupon_view": "miniprogram"}.get(
                    kind, "miniprogram"
                ),
            }
            if key == "wecom":
                record["企微外部联系人ID"] = value
            elif key == "unionid":
                record["unionid"] = value
            else:
                record["手机号"] = value
                if extra:
                    record["unionid"] = extra
            record["属性"] = props
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        dirty = (
            {
                "事件ID": "EVX1",
                "事件类型": "coupon_view",
                "发生时间": "2099-01-01 10:00:00",
                "手机号": str(phone[0]),
            },
            {
                "事件ID": "EVX2",
                "事件类型": "mini_program_visit",
                "发生时间": "2099-06-18 20:00:00",
                "unionid": str(unionid[0]),
            },
            {
                "事件ID": "EVX3",
                "事件类型": "coupon_view",
                "发生时间": "2024-05-01 10:00:00",
                "手机号": "12345",
            },
        )
        for bad in dirty:
            handle.write(json.dumps(bad, ensure_ascii=False) + "\n")
    return len(records), len(dirty)
