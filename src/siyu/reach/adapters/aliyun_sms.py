"""SMS through Aliyun SMS (Dysmsapi `SendSms`), signed with Aliyun's RPC signature (HMAC-SHA1, signature
version 1.0) over httpx: the official SDK would pull in a dozen packages for one GET.

One message is one `SendSms` call to one number: the template code and sign name of the message (or the
settings' defaults), its parameters as JSON, and `OutId` = the message's idempotency key, which Aliyun
hands back in the delivery report. Errors are mapped by Aliyun's `Code` (see `RETRY_CODES`,
`ADDRESS_CODES`); the delivery reports and inbound replies Aliyun pushes come in through
`POST /api/reach/push/{token}/aliyun-sms/report` and `…/up` (docs/reach.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from siyu.reach.adapters.base import OutboundMessage, SendResult

API_VERSION = "2017-05-25"
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com"
# transient refusals: Aliyun's own flow control and throttling, system errors, an account out of
# balance or credentials being fixed — the message waits and is tried again
RETRY_CODES = frozenset(
    {
        "isv.BUSINESS_LIMIT_CONTROL",  # per-number flow control (1/min, 5/h, 10/day by default)
        "isv.DAY_LIMIT_CONTROL",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.OUT_OF_SERVICE",
        "isp.SYSTEM_ERROR",
        "isp.RAM_PERMISSION_DENY",
        "SignatureNonceUsed",
        "ServiceUnavailable",
        "InternalError",
        "InvalidAccessKeyId.NotFound",
        "SignatureDoesNotMatch",
    }
)
# the number itself is wrong: the gateway blocks it for the sms channel
ADDRESS_CODES = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.INVALID_PARAMETERS_PHONE"})


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun's signature wants it: only A–Z a–z 0–9 - _ . ~ stay as they are; a
    space is %20 (never +), `*` is %2A, non-ASCII is encoded byte by byte from UTF-8."""
    return quote(value, safe="-_.~")


def string_to_sign(params: Mapping[str, str], *, method: str = "GET") -> str:
    """`{method}&%2F&` + the encoded canonical query (parameters sorted by name, Signature excluded)."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def signature(params: Mapping[str, str], *, secret: str, method: str = "GET") -> str:
    """Base64 of HMAC-SHA1 of the string to sign, keyed with the AccessKey secret followed by "&"."""
    digest = hmac.new(
        f"{secret}&".encode(), string_to_sign(params, method=method).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class AliyunSmsConfig:
    access_key_id: str
    access_key_secret: str
    sign_name: str  # the approved signature (签名) prepended to every message
    template_code: str | None = None  # used when a message's content names none
    text_param: str = "content"  # the template parameter that carries `text` under the default template
    endpoint: str = DEFAULT_ENDPOINT
    region_id: str = "cn-hangzhou"
    timeout_seconds: float = 10.0


class AliyunSmsAdapter:
    """Sends each SMS message with one signed `SendSms` GET."""

    kind = "aliyun-sms"

    def __init__(
        self,
        config: AliyunSmsConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        nonce: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        if not config.access_key_id or not config.access_key_secret:
            raise ValueError("the Aliyun SMS adapter needs an AccessKey id and secret")
        self.config = config
        self.clock = clock
        self.nonce = nonce
        self.client = httpx.Client(timeout=config.timeout_seconds, transport=transport)

    def params(self, message: OutboundMessage) -> dict[str, str] | str:
        """The signed query of the message's `SendSms` call, or why it cannot be sent (a string)."""
        content = message.content
        template = str(content.get("template_code") or self.config.template_code or "")
        if not template:
            return (
                "no SMS template: give content.sms.template_code or set SIYU_ALIYUN_SMS_TEMPLATE_CODE "
                "(Aliyun sends only approved templates)"
            )
        template_params = content.get("template_params")
        if template_params is None:
            template_params = {self.config.text_param: str(content.get("text", ""))}
        if not isinstance(template_params, dict):
            return "content.sms.template_params must be an object of template variables"
        params = {
            "AccessKeyId": self.config.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": self.config.region_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self.nonce(),
            "SignatureVersion": "1.0",
            "Timestamp": self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
            "PhoneNumbers": message.address,
            "SignName": str(content.get("sign_name") or self.config.sign_name),
            "TemplateCode": template,
            "TemplateParam": json.dumps(
                {k: str(v) for k, v in template_params.items()}, ensure_ascii=False, separators=(",", ":")
            ),
            "OutId": message.idempotency_key,
        }
        params["Signature"] = signature(params, secret=self.config.access_key_secret)
        return params

    def send(self, message: OutboundMessage) -> SendResult:
        params = self.params(message)
        if isinstance(params, str):
            return SendResult.failed(params)
        url = self.config.endpoint.rstrip("/") + "/"
        try:
            response = self.client.get(url, params=params)
        except httpx.HTTPError as exc:
            return SendResult.retry(f"SendSms to {url} failed: {type(exc).__name__}: {exc}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "Code" not in body:
            error = f"SendSms answered {response.status_code} without a Code: {response.text[:300]}"
            return SendResult.retry(error) if response.status_code >= 500 else SendResult.failed(error)
        code = str(body["Code"])
        if code == "OK" and body.get("BizId"):
            return SendResult.sent(str(body["BizId"]))
        error = f"Aliyun SMS refused: {code} ({body.get('Message', '')})"
        if code in ADDRESS_CODES:
            return SendResult.failed(error, address_rejected=True)
        if code in RETRY_CODES or code.startswith(("Throttling", "isp.")) or response.status_code >= 500:
            return SendResult.retry(error)
        return SendResult.failed(error)

    def close(self) -> None:
        self.client.close()
