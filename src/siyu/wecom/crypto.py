"""The WeCom callback encryption scheme (企业微信 加解密方案): msg_signature and AES-256-CBC.

The scheme, as WeCom documents it for callbacks (and its WXBizMsgCrypt libraries implement):

- AESKey = base64_decode(EncodingAESKey + "="): the 43-character EncodingAESKey is 32 bytes of key;
  the IV is the key's first 16 bytes.
- plaintext = 16 random bytes + the message length (4 bytes, network order) + message + receiveid
  (the corp id for a company's own callbacks), PKCS#7-padded to a multiple of 32 bytes, AES-256-CBC
  encrypted and base64-encoded: the `Encrypt` element of the callback XML (or the `echostr` of a URL check).
- msg_signature = sha1 of the concatenation of the sorted [token, timestamp, nonce, encrypt].

Errors say which check failed and how to fix it; every one is a `CallbackRejected` (401/400).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from siyu.core.errors import Unauthorized, ValidationFailed

BLOCK = 32  # WeCom pads to 32 bytes (not AES's 16): its libraries' PKCS7Encoder uses block_size = 32
ENCODING_AES_KEY_LENGTH = 43


@dataclass
class CallbackRejected(Unauthorized):
    """A callback that is not authentic, not for this corp, or not fresh."""


def aes_key(encoding_aes_key: str, *, where: str = "encoding_aes_key") -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey (a clear error for anything else)."""
    text = (encoding_aes_key or "").strip()
    if len(text) != ENCODING_AES_KEY_LENGTH:
        raise ValidationFailed(
            f"the EncodingAESKey has {len(text)} characters, WeCom's have {ENCODING_AES_KEY_LENGTH}",
            where=where,
            hint="copy it from the admin console (客户联系 → API → 接收事件服务器), or let it be generated there",
        )
    try:
        key = base64.b64decode(text + "=", validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(
            "the EncodingAESKey is not base64 (letters and digits only)", where=where
        ) from None
    if len(key) != 32:  # pragma: no cover - 43 base64 characters always decode to 32 bytes
        raise ValidationFailed("the EncodingAESKey does not decode to 32 bytes", where=where)
    return key


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """msg_signature: sha1 hex of the sorted [token, timestamp, nonce, encrypt], concatenated."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def _pad(data: bytes) -> bytes:
    amount = BLOCK - len(data) % BLOCK
    return data + bytes([amount]) * amount


def _unpad(data: bytes) -> bytes:
    amount = data[-1] if data else 0
    if not 1 <= amount <= BLOCK or data[-amount:] != bytes([amount]) * amount:
        raise CallbackRejected(
            "the decrypted message has no valid padding",
            where="Encrypt",
            hint="the EncodingAESKey saved in siyu differs from the one set in WeCom",
        )
    return data[:-amount]


class MessageCrypt:
    """Sign, verify, encrypt and decrypt WeCom callback messages for one token, key and receiveid."""

    def __init__(self, *, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not token:
            raise ValidationFailed("the callback token is empty", where="token")
        self.token = token
        self.key = aes_key(encoding_aes_key)
        self.receive_id = receive_id

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: str, *, random_prefix: bytes | None = None) -> str:
        """The base64 `Encrypt` text of `message` (the fake WeCom server and tests use it)."""
        body = message.encode()
        prefix = random_prefix if random_prefix is not None else os.urandom(16)
        plain = prefix + struct.pack(">I", len(body)) + body + self.receive_id.encode()
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(_pad(plain)) + encryptor.finalize()).decode()

    def decrypt(self, encrypt: str) -> str:
        """The message inside an `Encrypt` text, after checking its length field and receiveid."""
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise CallbackRejected("Encrypt is not base64", where="Encrypt") from None
        if not data or len(data) % 16:
            raise CallbackRejected("Encrypt is not a whole number of AES blocks", where="Encrypt")
        decryptor = self._cipher().decryptor()
        plain = _unpad(decryptor.update(data) + decryptor.finalize())
        if len(plain) < 20:
            raise CallbackRejected("the decrypted message is too short", where="Encrypt")
        (length,) = struct.unpack(">I", plain[16:20])
        message, receive_id = plain[20 : 20 + length], plain[20 + length :]
        if len(message) != length:
            raise CallbackRejected("the decrypted message is shorter than its length field", where="Encrypt")
        if receive_id.decode(errors="replace") != self.receive_id:
            raise CallbackRejected(
                f"the message is for receiveid {receive_id.decode(errors='replace')!r}, "
                f"not this workspace's corp id {self.receive_id!r}",
                where="Encrypt",
                hint="check the corp id in the WeCom settings, or the callback URL configured in WeCom",
            )
        try:
            return message.decode()
        except UnicodeDecodeError:
            raise CallbackRejected("the decrypted message is not UTF-8", where="Encrypt") from None

    def verify(
        self,
        *,
        msg_signature: str | None,
        timestamp: str | None,
        nonce: str | None,
        encrypt: str,
        tolerance_seconds: int | None = 300,
        now: float | None = None,
    ) -> None:
        """Return if msg_signature matches and the timestamp is fresh, else raise CallbackRejected."""
        for name, value in (("msg_signature", msg_signature), ("timestamp", timestamp), ("nonce", nonce)):
            if not value:
                raise CallbackRejected(f"the query parameter {name} is missing", where=name)
        assert msg_signature is not None and timestamp is not None and nonce is not None
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected, msg_signature.strip().lower()):
            raise CallbackRejected(
                "wrong msg_signature",
                where="msg_signature",
                hint="the token saved in siyu differs from the one set in WeCom for this callback URL",
            )
        if tolerance_seconds is not None:
            try:
                sent_at = int(timestamp)
            except ValueError:
                raise CallbackRejected(
                    f"timestamp {timestamp!r} is not unix seconds", where="timestamp"
                ) from None
            current = time.time() if now is None else now
            if abs(current - sent_at) > tolerance_seconds:
                raise CallbackRejected(
                    f"stale callback: its timestamp is {int(current - sent_at)} s away from the server's "
                    f"clock (at most {tolerance_seconds} s allowed)",
                    where="timestamp",
                    hint="a replayed old request is refused; check the server's clock if WeCom's are refused",
                )

    def verify_url(
        self,
        *,
        msg_signature: str | None,
        timestamp: str | None,
        nonce: str | None,
        echostr: str | None,
        tolerance_seconds: int | None = 300,
        now: float | None = None,
    ) -> str:
        """The plaintext of a URL verification's echostr, which the endpoint must answer with."""
        if not echostr:
            raise CallbackRejected("the query parameter echostr is missing", where="echostr")
        self.verify(
            msg_signature=msg_signature,
            timestamp=timestamp,
            nonce=nonce,
            encrypt=echostr,
            tolerance_seconds=tolerance_seconds,
            now=now,
        )
        return self.decrypt(echostr)
