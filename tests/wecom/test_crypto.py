"""The callback crypto against WeCom's official sample vectors, and every refusal.

The vectors are those of WeCom's WXBizMsgCrypt sample programs (Sample.py / Sample.cs / Sample.java of
the 加解密库 linked from https://developer.work.weixin.qq.com/document/path/90307, "加解密方案说明"
https://developer.work.weixin.qq.com/document/path/90968): token "QDG6eK", EncodingAESKey
"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", corp id "wx5823bf96d3bd56c7", the URL-verification
request (msg_signature 5c45ff5e…, timestamp 1409659589, nonce 263014780) and the encrypted message
(msg_signature 477715d1…, timestamp 1409659813, nonce 1372623149).
"""

from __future__ import annotations

import base64

import pytest

from siyu.core.errors import ValidationFailed
from siyu.wecom.crypto import CallbackRejected, MessageCrypt, aes_key, signature

TOKEN = "QDG6eK"
ENCODING_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"

VERIFY_MSG_SIGNATURE = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
VERIFY_TIMESTAMP = "1409659589"
VERIFY_NONCE = "263014780"
VERIFY_ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
VERIFY_PLAINTEXT = "1616140317555161061"

MSG_SIGNATURE = "477715d11cdb4164915debcba66cb864d751f3e6"
MSG_TIMESTAMP = "1409659813"
MSG_NONCE = "1372623149"
MSG_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvu"
    "JTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+Ltw"
    "Gc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t"
    "9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAV"
    "e0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
MSG_PLAINTEXT = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
    "<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    "<CreateTime>1409659813</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[hello]]></Content>\n"
    "<MsgId>4561255354251345929</MsgId>\n"
    "<AgentID>218</AgentID>\n"
    "</xml>"
)


@pytest.fixture
def crypt() -> MessageCrypt:
    return MessageCrypt(token=TOKEN, encoding_aes_key=ENCODING_AES_KEY, receive_id=CORP_ID)


def test_the_sample_url_verification_decrypts_to_the_published_echo(crypt: MessageCrypt) -> None:
    assert signature(TOKEN, VERIFY_TIMESTAMP, VERIFY_NONCE, VERIFY_ECHOSTR) == VERIFY_MSG_SIGNATURE
    echo = crypt.verify_url(
        msg_signature=VERIFY_MSG_SIGNATURE,
        timestamp=VERIFY_TIMESTAMP,
        nonce=VERIFY_NONCE,
        echostr=VERIFY_ECHOSTR,
        now=int(VERIFY_TIMESTAMP) + 1,
    )
    assert echo == VERIFY_PLAINTEXT


def test_the_sample_message_verifies_and_decrypts_exactly(crypt: MessageCrypt) -> None:
    assert signature(TOKEN, MSG_TIMESTAMP, MSG_NONCE, MSG_ENCRYPT) == MSG_SIGNATURE
    crypt.verify(
        msg_signature=MSG_SIGNATURE,
        timestamp=MSG_TIMESTAMP,
        nonce=MSG_NONCE,
        encrypt=MSG_ENCRYPT,
        now=int(MSG_TIMESTAMP),
    )
    assert crypt.decrypt(MSG_ENCRYPT) == MSG_PLAINTEXT


def test_the_key_is_the_base64_of_the_encoding_aes_key_and_its_first_half_the_iv(crypt: MessageCrypt) -> None:
    assert crypt.key == base64.b64decode(ENCODING_AES_KEY + "=")
    assert len(crypt.key) == 32
    # encrypting with the sample's own random prefix reproduces the sample ciphertext byte for byte
    # (so the IV, the length field, the receiveid and the 32-byte padding are as WeCom's)
    prefix = MessageCrypt(token=TOKEN, encoding_aes_key=ENCODING_AES_KEY, receive_id="")._cipher().decryptor()
    first_block = prefix.update(base64.b64decode(MSG_ENCRYPT)[:16])
    assert crypt.encrypt(MSG_PLAINTEXT, random_prefix=first_block) == MSG_ENCRYPT


def test_round_trip_with_chinese_text(crypt: MessageCrypt) -> None:
    message = "<xml><Content><![CDATA[你好，消息长度按字节计算]]></Content></xml>"
    assert crypt.decrypt(crypt.encrypt(message)) == message


def test_a_wrong_signature_is_refused_with_the_reason(crypt: MessageCrypt) -> None:
    with pytest.raises(CallbackRejected, match="wrong msg_signature") as refused:
        crypt.verify(
            msg_signature="0" * 40,
            timestamp=MSG_TIMESTAMP,
            nonce=MSG_NONCE,
            encrypt=MSG_ENCRYPT,
            now=int(MSG_TIMESTAMP),
        )
    assert refused.value.status_code == 401
    assert "token" in (refused.value.hint or "")
    # the signature covers the nonce: the right signature with another nonce fails too
    with pytest.raises(CallbackRejected, match="wrong msg_signature"):
        crypt.verify(
            msg_signature=MSG_SIGNATURE,
            timestamp=MSG_TIMESTAMP,
            nonce="1",
            encrypt=MSG_ENCRYPT,
            now=int(MSG_TIMESTAMP),
        )


def test_missing_parameters_are_named(crypt: MessageCrypt) -> None:
    with pytest.raises(CallbackRejected, match="nonce is missing"):
        crypt.verify(msg_signature=MSG_SIGNATURE, timestamp=MSG_TIMESTAMP, nonce=None, encrypt=MSG_ENCRYPT)
    with pytest.raises(CallbackRejected, match="echostr is missing"):
        crypt.verify_url(msg_signature="x", timestamp="1", nonce="1", echostr="")


def test_a_stale_timestamp_is_refused_as_a_replay(crypt: MessageCrypt) -> None:
    with pytest.raises(CallbackRejected, match="stale callback"):
        crypt.verify(
            msg_signature=MSG_SIGNATURE,
            timestamp=MSG_TIMESTAMP,
            nonce=MSG_NONCE,
            encrypt=MSG_ENCRYPT,
            now=int(MSG_TIMESTAMP) + 301,
            tolerance_seconds=300,
        )


def test_a_message_for_another_corp_is_refused(crypt: MessageCrypt) -> None:
    other = MessageCrypt(token=TOKEN, encoding_aes_key=ENCODING_AES_KEY, receive_id="wwsomeoneelse")
    with pytest.raises(CallbackRejected, match="receiveid 'wx5823bf96d3bd56c7'"):
        other.decrypt(MSG_ENCRYPT)
    with pytest.raises(CallbackRejected, match="receiveid 'wwsomeoneelse'"):
        crypt.decrypt(other.encrypt("<xml/>"))


def test_a_wrong_key_or_garbage_is_refused(crypt: MessageCrypt) -> None:
    wrong = MessageCrypt(token=TOKEN, encoding_aes_key="A" * 43, receive_id=CORP_ID)
    with pytest.raises(CallbackRejected):
        wrong.decrypt(MSG_ENCRYPT)
    with pytest.raises(CallbackRejected, match="not base64"):
        crypt.decrypt("not base64!!")
    with pytest.raises(CallbackRejected, match="whole number of AES blocks"):
        crypt.decrypt(base64.b64encode(b"short").decode())


@pytest.mark.parametrize("key", ["", "abc", ENCODING_AES_KEY + "x", "!" * 43])
def test_an_encoding_aes_key_that_is_not_43_base64_characters_is_refused(key: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        aes_key(key)
    assert refused.value.where == "encoding_aes_key"
