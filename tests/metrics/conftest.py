"""Fixtures: the fake WeCom and a workspace set up for it (friend adds and deletions arrive as the
callbacks WeCom sends), and the page fixtures of tests/web (live server, headless chromium)."""

from tests.web.conftest import data_dir, live_server
from tests.web.test_browser import browser, page
from tests.wecom.conftest import corp, fake

__all__ = ["browser", "corp", "data_dir", "fake", "live_server", "page"]
