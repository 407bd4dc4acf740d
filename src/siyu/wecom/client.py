"""An HTTP client for WeCom's server API (qyapi.weixin.qq.com) with its access-token cache.

The access token of a corp and secret is fetched with `gettoken`, kept in this process until five
minutes before its `expires_in` runs out, fetched by one caller at a time (the others wait for it), and
fetched again once when a call answers 40014 (invalid token) or 42001 (expired token). Any other non-zero
`errcode` becomes a `WecomApiError` naming the endpoint, the errcode and WeCom's errmsg. The network is
reached through httpx, so tests point the client at a local server following WeCom's contract.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from siyu.core.errors import SiyuError

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
REFRESH_MARGIN_SECONDS = 300  # refresh this long before WeCom's expiry
TOKEN_ERRCODES = frozenset({40014, 42001})  # invalid / expired access_token: fetch a new one and retry
BUSY_ERRCODE = -1  # 系统繁忙: WeCom advises a retry


@dataclass
class WecomApiError(SiyuError):
    """WeCom answered a call with a non-zero errcode (or did not answer)."""

    status_code: int = 502
    errcode: int | None = None


@dataclass
class _Token:
    value: str
    refresh_at: float


class TokenCache:
    """Access tokens by (API base, corp id, secret), shared by every client of this process."""

    def __init__(self) -> None:
        self._tokens: dict[str, _Token] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.fetches = 0  # how many times gettoken was called (for tests and diagnostics)

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: str, fetch: Any, *, stale: str | None = None) -> str:
        """The cached token of `key`, or the one `fetch()` returns -> (token, expires_in); one fetch at
        a time per key. `stale`: a token a call was refused with, never handed out again."""
        token = self._tokens.get(key)
        if token is not None and token.value != stale and time.monotonic() < token.refresh_at:
            return token.value
        with self._lock(key):
            token = self._tokens.get(key)  # another caller may have fetched it while this one waited
            if token is not None and token.value != stale and time.monotonic() < token.refresh_at:
                return token.value
            value, expires_in = fetch()
            self.fetches += 1
            margin = min(REFRESH_MARGIN_SECONDS, expires_in / 2)
            self._tokens[key] = _Token(value=value, refresh_at=time.monotonic() + expires_in - margin)
            return str(value)

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()


TOKENS = TokenCache()


class WecomClient:
    """Calls of one corp's customer-contact API (one corp id and secret)."""

    def __init__(
        self,
        *,
        corp_id: str,
        secret: str,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.BaseTransport | None = None,
        tokens: TokenCache = TOKENS,
        timeout: float = 10.0,
    ) -> None:
        self.corp_id = corp_id
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout)
        self._tokens = tokens
        self._key = hashlib.sha256(f"{self.base_url}\0{corp_id}\0{secret}".encode()).hexdigest()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WecomClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send(
        self, method: str, path: str, *, params: dict[str, Any], json: Any = None, files: Any = None
    ) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, params=params, json=json, files=files)
        except httpx.HTTPError as exc:
            raise WecomApiError(
                f"WeCom did not answer {path}: {exc}",
                where=path,
                hint="check the network and the API address",
            ) from None
        if response.status_code != 200:
            raise WecomApiError(f"WeCom answered {path} with HTTP {response.status_code}", where=path)
        try:
            body = response.json()
        except ValueError:
            raise WecomApiError(f"WeCom answered {path} with something other than JSON", where=path) from None
        if not isinstance(body, dict):
            raise WecomApiError(f"WeCom answered {path} with an unexpected JSON value", where=path)
        return body

    def _fetch_token(self) -> tuple[str, int]:
        body = self._send(
            "GET", "/cgi-bin/gettoken", params={"corpid": self.corp_id, "corpsecret": self._secret}
        )
        errcode = int(body.get("errcode", 0))
        if errcode != 0:
            raise WecomApiError(
                f"WeCom refused the access token: errcode {errcode} ({body.get('errmsg', '')})",
                where="/cgi-bin/gettoken",
                hint="check the corp id and the customer-contact secret (客户联系 → API → Secret)",
                errcode=errcode,
            )
        return str(body["access_token"]), int(body.get("expires_in", 7200))

    def access_token(self, *, stale: str | None = None) -> str:
        return self._tokens.get(self._key, self._fetch_token, stale=stale)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        files: Any = None,
    ) -> dict[str, Any]:
        """Call an API path with the access token; the answer's JSON once its errcode is 0."""
        token = self.access_token()
        busy_retried = token_retried = False
        while True:
            body = self._send(
                method, path, params={**(params or {}), "access_token": token}, json=json, files=files
            )
            errcode = int(body.get("errcode", 0))
            if errcode == 0:
                return body
            if errcode in TOKEN_ERRCODES and not token_retried:
                token_retried = True
                token = self.access_token(stale=token)
                continue
            if errcode == BUSY_ERRCODE and not busy_retried:
                busy_retried = True
                continue
            raise WecomApiError(
                f"WeCom refused {path}: errcode {errcode} ({body.get('errmsg', '')})",
                where=path,
                hint=ERRCODE_HINTS.get(errcode),
                errcode=errcode,
                details={"errcode": errcode, "errmsg": body.get("errmsg", ""), **_extra(body)},
            )

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", path, json=body)

    def upload(
        self, path: str, *, filename: str, content: bytes, content_type: str, **params: Any
    ) -> dict[str, Any]:
        """POST one file as multipart form data (field `media`), as WeCom's media uploads take it."""
        return self.call("POST", path, params=params, files={"media": (filename, content, content_type)})


def _extra(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k in ("fail_list", "invalid_external_userid")}


ERRCODE_HINTS: dict[int, str] = {
    40001: "the secret is wrong: use the customer-contact secret (客户联系 → API)",
    40003: "a staff userid is not a member of the corp",
    40013: "the corp id is wrong",
    40014: "the access token stayed invalid after a fresh one was fetched",
    41051: "the welcome code was used already or expired (20 s, one use)",
    48002: "the API is not allowed for this secret: give the app customer-contact permission",
    60020: "the server's IP is not a trusted IP of the corp (企业可信IP)",
    84061: "the external contact is not a friend of that staff member",
}
