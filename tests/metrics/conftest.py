"""Fixtures: the fake WeCom and a workspace set up for it (friend adds and deletions arrive as the
callbacks WeCom sends)."""

from tests.wecom.conftest import corp, fake

__all__ = ["corp", "fake"]
