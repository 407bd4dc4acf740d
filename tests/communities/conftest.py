"""Fixtures: the fake WeCom and a workspace set up for it (tests/wecom), and the page fixtures."""

from __future__ import annotations

from tests.wecom.conftest import browser, client, corp, data_dir, fake, live_server, page  # noqa: F401  # noqa: F401
