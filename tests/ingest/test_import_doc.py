"""docs/import.md lists every recognised header, status/gender/consent word and yuan key of the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from siyu.ingest import validation
from siyu.ingest.mapping import header_aliases
from siyu.ingest.schemas import ImportKind

DOC = Path(__file__).resolve().parents[2] / "docs" / "import.md"


def _section(title: str) -> str:
    """The text of the `### title` section of the document."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^#{{2,3}} )", text, flags=re.S | re.M)
    assert match is not None, f"docs/import.md has no section '### {title}'"
    return match.group(1)


def _row(section: str, first_cell: str) -> list[str]:
    """The back-quoted words of the table row that starts with `first_cell`."""
    for line in section.splitlines():
        if line.startswith(f"| `{first_cell}` |"):
            return re.findall(r"`([^`]+)`", line)[1:]
    raise AssertionError(f"no table row for {first_cell!r}")


@pytest.mark.parametrize("kind", list(ImportKind))
def test_every_recognised_header_is_documented_in_its_order(kind: ImportKind) -> None:
    identities = _section("Identities (all three kinds)")
    own = _section(kind.value.capitalize())
    for field, aliases in header_aliases(kind).items():
        section = identities if f"| `{field}` |" in identities else own
        assert _row(section, field) == list(aliases), f"{kind.value}: headers of {field} differ from the code"


@pytest.mark.parametrize(
    ("title", "words"),
    [
        ("Order statuses", validation.STATUS_WORDS),
        ("Gender and consent", validation.GENDER_WORDS),
        ("Gender and consent", validation.CONSENT_WORDS),
    ],
)
def test_every_accepted_word_is_documented(title: str, words: dict[str, str]) -> None:
    section = _section(title)
    for target in set(words.values()):
        assert sorted(_row(section, target)) == sorted(w for w, t in words.items() if t == target)


def test_every_yuan_key_and_reject_rule_is_documented() -> None:
    section = DOC.read_text(encoding="utf-8").split("## JSON records", 1)[1]
    for money in validation.MONEY_FIELDS:
        table_row = next(line for line in section.splitlines() if line.strip().startswith(f"| `{money}` |"))
        keys = re.findall(r"`([^`]+)`", table_row)[1:]
        assert sorted(keys) == sorted(k for k, v in validation.YUAN_KEYS.items() if v == money)
    text = DOC.read_text(encoding="utf-8")
    for reason in (
        validation.AMOUNT_REASON,
        validation.PRECISION_REASON,
        validation.NEGATIVE_REASON,
        validation.CENTS_REASON,
        validation.FUTURE_REASON,
    ):
        assert reason in text
    assert validation.DAY_MONTH_REASON.split(":")[0] in text and "YYYY-MM-DD" in text
