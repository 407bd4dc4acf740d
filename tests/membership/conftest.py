"""The page fixtures of tests/web (in-process client, live server, headless chromium) for the member
panel's pages."""

from tests.web.conftest import client, data_dir, live_server
from tests.web.test_browser import browser

__all__ = ["browser", "client", "data_dir", "live_server"]
