"""Invite posters (PNG, Pillow): a background (a solid colour, a vertical gradient or an uploaded
image), the campaign's title, the inviter's name and the inviter's own QR code for their link.

Chinese text needs a CJK font: the first of `FONT_CANDIDATES` found on the machine is used; with none,
Pillow's built-in font stands in (Latin only — Chinese shows as boxes, the QR stays exact)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from siyu.core.errors import ValidationFailed

WIDTH, HEIGHT = 750, 1334  # a phone screen's proportions, the size WeChat shares well
QR_SIDE = 360
MAX_BACKGROUND_BYTES = 4 * 1024 * 1024
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def find_font(candidates: Sequence[str] = FONT_CANDIDATES) -> str | None:
    """The first CJK font file present, or None."""
    for candidate in candidates:
        if Path(candidate).is_file():
            return candidate
    return None


@lru_cache(maxsize=16)
def _font(path: str | None, size: int) -> Font:
    if path is not None:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    return ImageFont.load_default(size)


def check_background(image: bytes) -> Image.Image:
    """An uploaded background as an RGB image, or a clear error for anything not a PNG or JPEG."""
    if len(image) > MAX_BACKGROUND_BYTES:
        raise ValidationFailed(
            f"the image has {len(image):,} bytes", where="image", hint="use a PNG or JPEG under 4 MB"
        )
    try:
        opened = Image.open(io.BytesIO(image))
        if opened.format not in ("PNG", "JPEG"):
            raise ValidationFailed(
                f"the image is a {opened.format} image", where="image", hint="use PNG or JPEG"
            )
        if opened.width * opened.height > 4096 * 4096:
            raise ValidationFailed("the image is too large", where="image", hint="at most 4096×4096 pixels")
        opened.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise ValidationFailed("the file is not an image", where="image", hint="use a PNG or JPEG") from None
    return opened.convert("RGB")


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _background(kind: str, colors: Sequence[str], image: bytes | None) -> Image.Image:
    if image is not None:
        picture = check_background(image)
        # cover: scale to fill, crop the middle
        scale = max(WIDTH / picture.width, HEIGHT / picture.height)
        picture = picture.resize(
            (max(WIDTH, round(picture.width * scale)), max(HEIGHT, round(picture.height * scale)))
        )
        left, top = (picture.width - WIDTH) // 2, (picture.height - HEIGHT) // 2
        return picture.crop((left, top, left + WIDTH, top + HEIGHT))
    first = _rgb(colors[0]) if colors else (192, 57, 43)
    if kind != "gradient" or len(colors) < 2:
        return Image.new("RGB", (WIDTH, HEIGHT), first)
    last = _rgb(colors[1])
    column = Image.new("RGB", (1, HEIGHT))
    for y in range(HEIGHT):
        share = y / (HEIGHT - 1)
        column.putpixel((0, y), tuple(round(a + (b - a) * share) for a, b in zip(first, last, strict=True)))
    return column.resize((WIDTH, HEIGHT))


def _wrapped(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> list[str]:
    """Lines of `text` no wider than `width` (Chinese breaks anywhere; at most three lines)."""
    lines: list[str] = []
    current = ""
    for char in text:
        if draw.textlength(current + char, font=font) > width and current:
            lines.append(current)
            current = char
        else:
            current += char
    if current:
        lines.append(current)
    return lines[:3]


def _centred(draw: ImageDraw.ImageDraw, y: int, text: str, font: Font, fill: tuple[int, int, int]) -> int:
    box = draw.textbbox((0, 0), text, font=font)
    draw.text(((WIDTH - (box[2] - box[0])) // 2, y), text, font=font, fill=fill)
    return int(y + (box[3] - box[1]) + 16)


def qr_image(url: str, side: int = QR_SIDE) -> Image.Image:
    """The QR of `url` as an RGB image about `side` pixels wide, quiet zone included."""
    code = segno.make_qr(url, error="m", boost_error=False)
    modules = code.symbol_size(scale=1, border=4)[0]
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=max(1, side // modules), border=4)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def compose(
    *,
    url: str,
    title: str,
    inviter_name: str,
    invite_line: str,
    background_kind: str = "gradient",
    colors: Sequence[str] = ("#c0392b", "#f39c12"),
    image: bytes | None = None,
    font_candidates: Sequence[str] = FONT_CANDIDATES,
) -> bytes:
    """The poster as PNG bytes: title at the top, `invite_line` (e.g. "张三 邀请你") with the inviter's
    name, and the QR of `url` on a white card in the lower half."""
    poster = _background(background_kind, colors, image)
    draw = ImageDraw.Draw(poster)
    path = find_font(font_candidates)
    title_font, name_font, small_font = _font(path, 64), _font(path, 40), _font(path, 28)
    white = (255, 255, 255)
    y = 140
    for line in _wrapped(draw, title, title_font, WIDTH - 120):
        y = _centred(draw, y, line, title_font, white)
    y += 40
    _centred(draw, y, invite_line.format(name=inviter_name[:30]), name_font, white)
    code = qr_image(url)
    pad = 28
    card_side = code.width + 2 * pad
    left, top = (WIDTH - card_side) // 2, HEIGHT - card_side - 220
    draw.rounded_rectangle((left, top, left + card_side, top + card_side), radius=24, fill=white)
    poster.paste(code, (left + pad, top + pad))
    _centred(draw, top + card_side + 36, url.split("//", 1)[-1][:60], small_font, white)
    out = io.BytesIO()
    poster.save(out, format="PNG", optimize=True)
    return out.getvalue()
