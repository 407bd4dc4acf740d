"""Fixtures: the fake WeCom and a workspace set up for it (friend adds and deletions arrive as the
callbacks WeCom sends), and the page fixtures of tests/web (live server, headless chromium)."""

import pytest

from tests.web.conftest import data_dir, live_server
from tests.web.test_browser import browser, page
from tests.wecom.conftest import corp, fake

__all__ = ["browser", "corp", "data_dir", "fake", "live_server", "page"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run on SQLite only (as in tests/web): drop their PostgreSQL variants."""
    dropped = [
        item
        for item in items
        if item.get_closest_marker("browser")
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("database") == "postgres"  # type: ignore[attr-defined]
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]
