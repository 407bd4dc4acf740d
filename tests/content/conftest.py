"""The web tests' fixtures (live server, chromium page), shared with the content browser test."""

from tests.web.conftest import data_dir, live_server  # noqa: F401
from tests.web.test_browser import browser, page  # noqa: F401
