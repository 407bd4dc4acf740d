"""The API client against the fake WeCom: the access-token cache (one fetch under concurrency, refresh
before expiry, one retry on 40014/42001) and errors that name the endpoint and errcode."""

from __future__ import annotations

import threading
import time

import pytest

from siyu.wecom.client import TokenCache, WecomApiError, WecomClient
from tests.wecom.fake_wecom import FakeWecom

GROUPS = "/cgi-bin/externalcontact/groupchat/list"


def _client(fake: FakeWecom, tokens: TokenCache, secret: str | None = None) -> WecomClient:
    return WecomClient(corp_id=fake.corp_id, secret=secret or fake.secret, base_url=fake.url, tokens=tokens)


def test_twenty_concurrent_calls_fetch_one_token(fake: FakeWecom) -> None:
    fake.token_delay = 0.2  # every caller arrives while the first fetch is under way
    tokens = TokenCache()
    client = _client(fake, tokens)
    barrier = threading.Barrier(20)
    answers: list[str] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            barrier.wait()
            client.post(GROUPS, {"limit": 10})
            answers.append(client.access_token())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert fake.count("/cgi-bin/gettoken") == 1
    assert tokens.fetches == 1
    assert len(set(answers)) == 1 and fake.count(GROUPS) == 20


def test_the_token_is_refreshed_five_minutes_before_it_expires(fake: FakeWecom) -> None:
    fake.expires_in = 301  # refresh after max(expires_in - 300, expires_in / 2) seconds: 150.5 s
    tokens = TokenCache()
    client = _client(fake, tokens)
    first = client.access_token()
    assert client.access_token() == first
    fake.expires_in = 7200
    tokens._tokens[next(iter(tokens._tokens))].refresh_at = time.monotonic() - 1  # the margin is reached
    assert client.access_token() != first
    assert fake.count("/cgi-bin/gettoken") == 2


@pytest.mark.parametrize(("spoil", "errcode"), [("expire_tokens", 42001), ("revoke_tokens", 40014)])
def test_an_expired_or_invalid_token_is_fetched_again_once_and_the_call_retried(
    fake: FakeWecom, spoil: str, errcode: int
) -> None:
    tokens = TokenCache()
    client = _client(fake, tokens)
    client.post(GROUPS, {"limit": 10})
    getattr(fake, spoil)()  # WeCom no longer takes the cached token
    body = client.post(GROUPS, {"limit": 10})
    assert body["errcode"] == 0
    assert fake.count("/cgi-bin/gettoken") == 2
    assert fake.count(GROUPS) == 3  # the refused call, and its retry


def test_a_wrong_secret_says_what_to_check(fake: FakeWecom) -> None:
    with pytest.raises(WecomApiError) as refused:
        _client(fake, TokenCache(), secret="wrong").post(GROUPS, {"limit": 10})
    assert refused.value.errcode == 40001
    assert "secret" in (refused.value.hint or "")
    assert refused.value.where == "/cgi-bin/gettoken"


def test_a_refused_call_names_endpoint_and_errcode(fake: FakeWecom) -> None:
    with pytest.raises(WecomApiError) as refused:
        _client(fake, TokenCache()).post(GROUPS, {"limit": 0})
    assert refused.value.errcode == 40058
    assert refused.value.where == GROUPS
    assert "40058" in refused.value.message and refused.value.status_code == 502


def test_no_answer_is_an_error_not_a_hang() -> None:
    client = WecomClient(
        corp_id="ww", secret="s", base_url="http://127.0.0.1:9", tokens=TokenCache(), timeout=1
    )
    with pytest.raises(WecomApiError, match="did not answer"):
        client.access_token()
