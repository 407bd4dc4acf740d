"""A local Aliyun SMS (Dysmsapi) server for tests: a real HTTP server in a thread that follows the
documented contract of `SendSms` — the RPC signature (checked with its own implementation of the
documented algorithm, not the adapter's), the common parameters, a nonce used once, and answers with
`Code` and `BizId` — and can be told to refuse a number with a given `Code`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REQUIRED = (
    "AccessKeyId", "Action", "Format", "RegionId", "SignatureMethod", "SignatureNonce", "SignatureVersion",
    "Timestamp", "Version", "PhoneNumbers", "SignName", "TemplateCode", "Signature",
)  # fmt: skip


def expected_signature(query: dict[str, str], secret: str) -> str:
    def enc(value: str) -> str:
        # java.net.URLEncoder's form encoding turned into RFC 3986, as the documentation describes it
        return urllib.parse.quote_plus(value).replace("+", "%20").replace("*", "%2A").replace("%7E", "~")

    pairs = sorted((k, v) for k, v in query.items() if k != "Signature")
    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in pairs)
    to_sign = "GET&" + enc("/") + "&" + enc(canonical)
    return base64.b64encode(
        hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    ).decode()


@dataclass
class FakeAliyunSms:
    access_key_id: str = "LTAItestkey"
    access_key_secret: str = "test-secret-value"
    # phone -> the Codes to answer, one per call, before answering OK
    refusals: dict[str, list[str]] = field(default_factory=dict)
    accepted: list[dict[str, str]] = field(default_factory=list)  # each accepted query, with its BizId
    calls: int = 0
    nonces: set[str] = field(default_factory=set)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        request_id = str(uuid.uuid4()).upper()
        with self.lock:
            self.calls += 1
            missing = [name for name in REQUIRED if not query.get(name)]
            if missing:
                return 400, {
                    "Code": "MissingParameter",
                    "Message": f"missing {missing[0]}",
                    "RequestId": request_id,
                }
            if query["AccessKeyId"] != self.access_key_id:
                return 404, {
                    "Code": "InvalidAccessKeyId.NotFound",
                    "Message": "Specified access key is not found.",
                }
            if (query["SignatureMethod"], query["SignatureVersion"], query["Version"]) != (
                "HMAC-SHA1",
                "1.0",
                "2017-05-25",
            ):
                return 400, {"Code": "InvalidParameter", "Message": "signature method or version"}
            if query["Signature"] != expected_signature(query, self.access_key_secret):
                return 400, {
                    "Code": "SignatureDoesNotMatch",
                    "Message": "Specified signature is not matched.",
                }
            if query["SignatureNonce"] in self.nonces:
                return 400, {
                    "Code": "SignatureNonceUsed",
                    "Message": "Specified signature nonce was used already.",
                }
            self.nonces.add(query["SignatureNonce"])
            if query["Action"] != "SendSms":
                return 400, {"Code": "InvalidAction.NotFound", "Message": query["Action"]}
            try:
                json.loads(query.get("TemplateParam") or "{}")
            except ValueError:
                return 200, {
                    "Code": "isv.INVALID_JSON_PARAM",
                    "Message": "JSON参数不合法",
                    "RequestId": request_id,
                }
            pending = self.refusals.get(query["PhoneNumbers"])
            if pending:
                code = pending.pop(0)
                return (503 if code == "ServiceUnavailable" else 200), {
                    "Code": code,
                    "Message": code,
                    "RequestId": request_id,
                }
            biz_id = f"{uuid.uuid4().int % 10**15:015d}^0"
            self.accepted.append({**query, "BizId": biz_id})
            return 200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}


def _handler(fake: FakeAliyunSms) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
            status, answer = fake.handle(query)
            data = json.dumps(answer, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


@contextmanager
def running(fake: FakeAliyunSms | None = None) -> Iterator[FakeAliyunSms]:
    fake = fake or FakeAliyunSms()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
