"""Rate limits of the public endpoints (core.ratelimit): moving windows per name and key, overrides by
name, clear errors for bad settings, one budget shared by several server processes through the local
Redis, and requests let through (and logged) when the storage is down."""

from __future__ import annotations

import logging
import uuid

import pytest
from fastapi.testclient import TestClient

from siyu.core.config import Settings
from siyu.core.db import Database
from siyu.core.errors import ValidationFailed
from siyu.core.ratelimit import RateLimits
from siyu.web.app import create_app

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379 (the shared-storage case needs one)")


def test_a_window_admits_its_rate_then_refuses_with_a_retry_time() -> None:
    limits = RateLimits()
    key = uuid.uuid4().hex
    verdicts = [limits.hit("test.window", "3/minute", key) for _ in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    assert all(1 <= v.retry_after_seconds <= 60 for v in verdicts[3:])
    # another key and another name keep their own windows
    assert limits.hit("test.window", "3/minute", key + "-other").allowed
    assert limits.hit("test.other", "3/minute", key).allowed


def test_a_deployment_overrides_a_rate_by_name() -> None:
    limits = RateLimits(rates={"test.strict": "1/minute"})
    assert [limits.hit("test.strict", "100/minute", "k").allowed for _ in range(2)] == [True, False]
    assert [limits.hit("test.loose", "100/minute", "k").allowed for _ in range(2)] == [True, True]


def test_bad_settings_are_refused_with_where_and_how() -> None:
    with pytest.raises(ValidationFailed) as bad_rate:
        RateLimits(rates={"livecode.landing": "lots"})
    assert bad_rate.value.where == "SIYU_RATE_LIMITS[livecode.landing]"
    assert "30/minute" in (bad_rate.value.hint or "")
    with pytest.raises(ValidationFailed) as bad_storage:
        RateLimits("carrier-pigeon://loft")
    assert bad_storage.value.where == "SIYU_RATE_LIMIT_STORAGE"
    assert "redis://" in (bad_storage.value.hint or "")


def test_two_processes_share_one_budget_through_redis() -> None:
    _redis_or_skip()
    name, key = f"test.shared.{uuid.uuid4().hex}", "203.0.113.7"
    first, second = RateLimits(REDIS_URL), RateLimits(REDIS_URL)
    assert [first.hit(name, "3/minute", key).allowed for _ in range(2)] == [True, True]
    assert second.hit(name, "3/minute", key).allowed
    assert not second.hit(name, "3/minute", key).allowed
    assert not first.hit(name, "3/minute", key).allowed
    # with memory storage each process would have had its own three
    alone = RateLimits()
    assert alone.hit(name, "3/minute", key).allowed


def test_the_storage_never_holds_the_raw_key() -> None:
    _redis_or_skip()
    import redis

    phone = f"+86138{uuid.uuid4().int % 10**8:08d}"
    RateLimits(REDIS_URL).hit("test.private", "3/minute", phone)
    client = redis.Redis.from_url(REDIS_URL)
    assert not [k for k in client.scan_iter(match="*", count=1000) if phone.encode() in k]


def test_a_storage_that_is_down_lets_requests_through_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    limits = RateLimits("redis://127.0.0.1:1/0")  # nothing listens on port 1
    with caplog.at_level(logging.WARNING, logger="siyu.ratelimit"):
        verdicts = [limits.hit("test.down", "1/minute", "k") for _ in range(3)]
    assert all(v.allowed for v in verdicts)
    warnings = [r for r in caplog.records if "rate limits unavailable" in r.getMessage()]
    assert len(warnings) == 1  # logged once a minute, not per request


def test_two_server_apps_on_redis_share_the_group_code_landing_budget(db: Database) -> None:
    _redis_or_skip()
    settings = Settings(  # type: ignore[call-arg]
        env="development",
        secret_key="x" * 40,
        rate_limit_storage=REDIS_URL,
        # a rate no other test uses, so the window starts empty: the name is the namespace in Redis
        rate_limits={"group_code.landing": f"4/{60 + uuid.uuid4().int % 10_000} seconds"},
    )
    one, two = TestClient(create_app(db, settings)), TestClient(create_app(db, settings))
    token = "/g/" + "C" * 22
    statuses = [client.get(token).status_code for _ in range(3) for client in (one, two)]
    # four visits between the two processes, then both refuse
    assert statuses == [404, 404, 404, 404, 429, 429]
