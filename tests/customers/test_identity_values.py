"""Identity values: canonical phones, emails and ids, and junk that must never identify anyone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siyu.customers import identity_values as iv


@pytest.mark.parametrize(
    "raw",
    [
        "13800138001",
        "138 0013 8001",
        "138-0013-8001",
        "+86 138-0013-8001",
        "+8613800138001",
        "0086 13800138001",
        "8613800138001",
        "(138) 0013-8001",
        " 13800138001 ",
        13800138001,
        13800138001.0,
        "１３８００１３８００１",
    ],
)
def test_cn_mobile_spellings_become_e164(raw: object) -> None:
    assert iv.check("phone", raw) == ("+8613800138001", None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+1 212-555-0123", "+12125550123"),
        ("+44 12", None),
    ],
)
def test_international_numbers_are_checked_by_phonenumbers(raw: str, expected: str | None) -> None:
    value, problem = iv.check("phone", raw)
    if expected is None:  # 555-01xx numbers are fictional: phonenumbers says they are not valid
        assert value is None and problem == iv.PHONE_PROBLEM
    else:
        assert (value, problem) == (expected, None)


@pytest.mark.parametrize(
    "raw", ["1234", "2380013800", "138001380011", "phone: 138", "+86 12345", "+999 1234"]
)
def test_malformed_phones_have_a_problem(raw: str) -> None:
    value, problem = iv.check("phone", raw)
    assert value is None
    assert problem is not None and "expected 11 digits starting with 1[3-9]" in problem


@pytest.mark.parametrize(
    "raw",
    [
        "", "  ", "null", "NULL", "None", "nil", "undefined", "NaN", "0", "-", "n/a", "未知", "无",
        "13800000000", "13800138000", "11111111111", "12345678901", "+86 138 0000 0000", "19999999999",
        "000000", None,
    ],
)  # fmt: skip
def test_junk_phones_are_absent_without_a_problem(raw: object) -> None:
    assert iv.check("phone", raw) == (None, None)
    assert iv.is_junk("phone", raw)


def test_denylist_is_compared_in_canonical_form() -> None:
    assert iv.normalize("phone", "13912345678", denylist=["139-1234-5678"]) is None
    assert iv.is_junk("phone", "+86 139 1234 5678", denylist=["13912345678"])
    assert not iv.is_junk("phone", "13912345679", denylist=["13912345678"])
    assert iv.normalize("wechat_unionid", "oSHARED", denylist=["oSHARED"]) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Li.Lei@Example.CN ", "li.lei@example.cn"),
        ("王@公司.中国", "王@公司.中国"),
        ("a+tag@b.co", "a+tag@b.co"),
    ],
)
def test_emails_are_trimmed_and_lowercased(raw: str, expected: str) -> None:
    assert iv.check("email", raw) == (expected, None)


@pytest.mark.parametrize("raw", ["test@test.com", "foo@example.com", "noreply@brand.cn", "null"])
def test_junk_emails(raw: str) -> None:
    assert iv.check("email", raw) == (None, None)


@pytest.mark.parametrize("raw", ["no-at-sign", "a@b", "a b@c.com", "@x.com", "a@@b.com"])
def test_malformed_emails(raw: str) -> None:
    assert iv.check("email", raw) == (None, iv.EMAIL_PROBLEM)


def test_platform_ids_keep_case_and_drop_fillers() -> None:
    assert iv.normalize("wechat_unionid", "  oAbC123  ") == "oAbC123"
    assert iv.normalize("shop_member_id", "0000") is None
    assert iv.normalize("douyin_open_id", "undefined") is None
    assert iv.normalize("vip_card", "V-001") == "V-001"
    value, problem = iv.check("wechat_openid", "x" + "y" * 300)
    assert value is None and problem is not None and "200" in problem


def test_present_real_values_are_not_junk() -> None:
    assert not iv.is_junk("phone", "13800138001")
    assert not iv.is_junk("email", "li@brand.cn")
    assert not iv.is_junk("phone", "1234")  # malformed is reported, not silently dropped as junk


KINDS = st.sampled_from(["phone", "email", "wechat_unionid", "shop_member_id", "custom_kind"])


@settings(max_examples=300, deadline=None)
@given(kind=KINDS, raw=st.one_of(st.text(max_size=40), st.integers(), st.floats(), st.none()))
def test_normalize_never_raises_and_is_idempotent(kind: str, raw: object) -> None:
    once = iv.normalize(kind, raw)
    assert iv.normalize(kind, once) == once


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.sampled_from(["", "+86", "+86 ", "0086", "86", " "]),
    national=st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    separator=st.sampled_from(["", " ", "-"]),
)
def test_cn_mobiles_become_plus86_and_11_digits(prefix: str, national: str, separator: str) -> None:
    spelled = prefix + separator.join([national[:3], national[3:7], national[7:]])
    value = iv.normalize("phone", spelled)
    if iv.is_junk_phone_national(national):
        assert value is None
    else:
        assert value == "+86" + national
        assert len(value) == 14 and value[3:].isdigit()
