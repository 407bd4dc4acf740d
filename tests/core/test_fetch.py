"""Fetching a URL a member gave the server, against a real local HTTP server: the body within the size
cap, redirects followed and checked, and refusals that name the URL and the reason (scheme, private
address — before any request —, an answer other than 200, too large, too slow, too many redirects)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from siyu.core import fetch
from siyu.core.config import get_settings
from siyu.core.errors import ValidationFailed
from tests.image_server import JPEG, PNG, ImageServer, serving

MB10 = 10 * 1024 * 1024


@pytest.fixture
def images() -> Iterator[ImageServer]:
    with serving() as server:
        yield server


def _refusal(url: str, **kwargs: object) -> str:
    with pytest.raises(ValidationFailed) as refused:
        fetch.fetch(url, max_bytes=MB10, where="image_urls[0]", **kwargs)  # type: ignore[arg-type]
    assert refused.value.where == "image_urls[0]"
    assert refused.value.message.startswith(url[:200])  # every refusal names the URL
    return refused.value.message


def test_fetches_the_body_and_follows_a_redirect(images: ImageServer) -> None:
    got = fetch.fetch(f"{images.url}/shop/tea.png", max_bytes=MB10, allow_private=True)
    assert (got.content, got.content_type) == (PNG, "image/png")
    moved = fetch.fetch(f"{images.url}/moved", max_bytes=MB10, allow_private=True)
    assert moved.content == PNG and moved.final_url == f"{images.url}/shop/tea.png"
    assert (
        fetch.fetch(f"{images.url}/photos/%E8%8C%B6.jpg", max_bytes=MB10, allow_private=True).content == JPEG
    )


def test_a_private_address_is_refused_before_any_request(images: ImageServer) -> None:
    for url in (f"{images.url}/shop/tea.png", images.url.replace("127.0.0.1", "localhost") + "/shop/tea.png"):
        assert "private, loopback or reserved address" in _refusal(url, allow_private=False)
    assert images.requested == []
    for url in ("http://10.1.2.3/a.png", "http://169.254.169.254/latest/meta-data", "http://[::1]/a.png"):
        assert "private, loopback or reserved" in _refusal(url, allow_private=False)


def test_the_setting_allows_private_addresses(images: ImageServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"{images.url}/shop/tea.png"
    monkeypatch.setenv("SIYU_FETCH_ALLOW_PRIVATE", "false")
    get_settings.cache_clear()
    try:
        assert "private" in _refusal(url)
        monkeypatch.setenv("SIYU_FETCH_ALLOW_PRIVATE", "true")
        get_settings.cache_clear()
        assert fetch.fetch(url, max_bytes=MB10).content == PNG
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a.png", "file:///etc/passwd", "javascript:alert(1)", "tea.png"]
)
def test_only_http_and_https_are_fetched(url: str) -> None:
    assert "is not fetched" in _refusal(url, allow_private=True)


def test_refusals_say_why(images: ImageServer) -> None:
    base = images.url
    assert "answered 404 Not Found" in _refusal(f"{base}/missing.png", allow_private=True)
    assert f"{10 * 1024 * 1024 + 1} bytes, more than the {MB10}" in _refusal(
        f"{base}/big.png", allow_private=True
    )
    assert f"more than the {MB10} bytes allowed" in _refusal(f"{base}/endless.png", allow_private=True)
    assert "more than 3 redirects" in _refusal(f"{base}/loop", allow_private=True)
    images.slow_seconds = 1.5
    assert "no answer within 0.3 s" in _refusal(f"{base}/slow.png", allow_private=True, timeout=0.3)
    assert "cannot be resolved" in _refusal("https://no-such-host.invalid/a.png", allow_private=True)
