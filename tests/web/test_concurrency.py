"""The app admits a bounded number of requests at once, so a burst cannot exhaust threads or connections."""

from __future__ import annotations

import asyncio

import httpx

from siyu.web.app import ConcurrencyLimit


def test_at_most_limit_requests_run_at_once_and_all_are_served() -> None:
    running = 0
    peak = 0

    async def slow_app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=ConcurrencyLimit(slow_app, limit=3))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(*(client.get("/") for _ in range(20)))
        return [r.status_code for r in responses]

    assert asyncio.run(burst()) == [200] * 20
    assert peak == 3
