"""The page fixtures (in-process client, live server, logins) of tests/web, for this domain's pages."""

from tests.web.conftest import client, data_dir, live_server

__all__ = ["client", "data_dir", "live_server"]
