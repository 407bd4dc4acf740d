"""Posters: the QR decodes to the inviter's link on every background, Chinese text is drawn with a CJK
font found on the machine, and without one the poster still renders (the fallback font)."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image

from siyu.core.errors import ValidationFailed
from siyu.referrals.service import poster

URL = "https://brand.example/r/AbCdEfGhIjKlMnOpQrStUv"


def _decode(data: bytes) -> str:
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    return found.text


def _png(color: tuple[int, int, int], size: tuple[int, int] = (400, 300), kind: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=kind)
    return out.getvalue()


@pytest.mark.parametrize(
    ("kind", "colors", "image"),
    [
        ("solid", ["#1e6f5c"], None),
        ("gradient", ["#c0392b", "#f39c12"], None),
        ("gradient", ["#000000"], _png((20, 40, 200), kind="JPEG")),
    ],
)
def test_the_poster_carries_the_inviters_link(kind: str, colors: list[str], image: bytes | None) -> None:
    data = poster.compose(
        url=URL,
        title="邀3位好友得20元券",
        inviter_name="王小美",
        invite_line="{name} 邀请你",
        background_kind=kind,
        colors=colors,
        image=image,
    )
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "PNG" and picture.size == (poster.WIDTH, poster.HEIGHT)
    assert _decode(data) == URL


def test_a_cjk_font_is_found_and_draws_chinese() -> None:
    path = poster.find_font()
    if path is None:
        pytest.skip("no CJK font on this machine (fonts-wqy-microhei is installed by .ci/run)")
    font = poster._font(path, 40)
    # a CJK font draws distinct glyphs for distinct characters; the built-in font draws one box for each
    masks = {bytes(font.getmask(ch)) for ch in "邀请好友"}
    assert len(masks) == 4


def test_without_a_cjk_font_the_poster_still_renders() -> None:
    data = poster.compose(
        url=URL,
        title="邀3位好友得20元券",
        inviter_name="王小美",
        invite_line="{name} 邀请你",
        font_candidates=("/nonexistent/font.ttc",),
    )
    assert poster.find_font(("/nonexistent/font.ttc",)) is None
    assert _decode(data) == URL


def test_uploaded_backgrounds_are_checked() -> None:
    with pytest.raises(ValidationFailed, match="not an image"):
        poster.check_background(b"<svg onload=alert(1)>")
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, format="GIF")
    with pytest.raises(ValidationFailed, match="GIF"):
        poster.check_background(gif.getvalue())
    with pytest.raises(ValidationFailed, match="bytes"):
        poster.check_background(b"\x89PNG" + b"0" * poster.MAX_BACKGROUND_BYTES)
