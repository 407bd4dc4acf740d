"""Identity column parsers: the vectorised email rule gives the same answer as `identity_values`."""

from __future__ import annotations

import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from siyu.customers import identity_values as iv
from siyu.ingest.validation import parse_emails

_LOCAL = st.one_of(
    st.sampled_from(sorted(iv.JUNK_EMAIL_LOCALS)), st.text(alphabet="aZ09._%+-", min_size=1, max_size=10)
)
_DOMAIN = st.one_of(
    st.sampled_from(sorted(iv.JUNK_EMAIL_DOMAINS)),
    st.from_regex(r"[a-zA-Z0-9-]{1,8}(\.[a-zA-Z0-9-]{0,4}){0,3}", fullmatch=True),
    st.text(max_size=8),
)
EMAIL_LIKE = st.one_of(
    st.emails(),
    st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN),
    st.builds(lambda n, pad: " " * pad + "a" * n + "@brand.cn", st.integers(185, 200), st.integers(0, 2)),
    st.text(alphabet="aZ0.@-_ \t\u3000Kİ", max_size=16),
    st.text(max_size=16),
)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(EMAIL_LIKE, min_size=1, max_size=30))
@example(values=["a" * 195 + "@brand.cn"])  # over the identity column's 200 characters
@example(values=["\u212a@brand.cn", "test@x.cn", "x@test.com", "a@b", "a..b@c.cn", "A@B.CN "])
def test_vectorised_emails_match_python_rules_on_any_text(values: list[str]) -> None:
    stripped = [v.strip() or None for v in values]  # validation strips cells before parsing
    parsed, problems = parse_emails(pl.Series(stripped, dtype=pl.Utf8))
    expected = [iv.check(iv.EMAIL, v) for v in stripped]
    assert list(zip(parsed.to_list(), problems.to_list(), strict=True)) == expected


def test_an_over_long_email_is_refused_not_loaded() -> None:
    long_email = "a" * 195 + "@brand.cn"
    parsed, problems = parse_emails(pl.Series([long_email, "Li@Brand.CN"]))
    assert parsed.to_list() == [None, "li@brand.cn"]
    assert problems.to_list()[0] is not None and problems.to_list()[0].startswith("longer than 200")
    assert problems.to_list()[1] is None
