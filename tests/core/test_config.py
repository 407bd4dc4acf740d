"""Settings are validated at start: production refuses a placeholder secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from siyu.core.config import PLACEHOLDER_SECRET, Settings


def test_production_refuses_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_ENV", "production")
    monkeypatch.setenv("SIYU_SECRET_KEY", PLACEHOLDER_SECRET)
    with pytest.raises(ValidationError, match="SIYU_SECRET_KEY"):
        Settings()


def test_production_accepts_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_ENV", "production")
    monkeypatch.setenv("SIYU_SECRET_KEY", "x" * 40)
    assert Settings().env == "production"


def test_development_allows_the_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIYU_SECRET_KEY", raising=False)
    monkeypatch.setenv("SIYU_ENV", "development")
    assert Settings().secret_key == PLACEHOLDER_SECRET
