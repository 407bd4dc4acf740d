"""QR images of live codes: PNG and SVG (segno), in print sizes at 300 dpi, with an optional centre logo.

A logo hides modules in the middle of the symbol, so a code with a logo uses error correction level H
(up to 30% of the symbol may be lost) and the logo covers at most a fifth of the symbol's width.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno
from PIL import Image, UnidentifiedImageError

from siyu.core.errors import ValidationFailed

DPI = 300
MM_PER_INCH = 25.4
LOGO_SHARE = 0.2  # of the symbol's width: well inside what level H recovers
MAX_LOGO_BYTES = 2 * 1024 * 1024
BORDER_MODULES = 4  # the quiet zone the QR standard asks for


@dataclass(frozen=True)
class PrintSize:
    key: str
    cm: float

    @property
    def pixels(self) -> int:
        return round(self.cm * 10 / MM_PER_INCH * DPI)


PRINT_SIZES: dict[str, PrintSize] = {
    s.key: s
    for s in (PrintSize("screen", 2.5), PrintSize("5cm", 5), PrintSize("8cm", 8), PrintSize("15cm", 15))
}
FORMATS = ("png", "svg")


def print_size(key: str) -> PrintSize:
    try:
        return PRINT_SIZES[key]
    except KeyError:
        raise ValidationFailed(
            f"{key!r} is not a print size", where="size", hint=f"one of {', '.join(PRINT_SIZES)}"
        ) from None


def _symbol(data: str, *, with_logo: bool) -> segno.QRCode:
    return segno.make_qr(data, error="h" if with_logo else "m", boost_error=not with_logo)


def _scale_for(qr: segno.QRCode, pixels: int) -> int:
    width_modules = int(qr.symbol_size(scale=1, border=BORDER_MODULES)[0])
    return max(1, pixels // width_modules)


def check_logo(logo: bytes) -> Image.Image:
    """The logo as an RGBA image, or a clear error for anything that is not a small PNG or JPEG."""
    if len(logo) > MAX_LOGO_BYTES:
        raise ValidationFailed(
            f"the logo has {len(logo):,} bytes", where="logo", hint="use a PNG or JPEG under 2 MB"
        )
    try:
        image = Image.open(io.BytesIO(logo))
        if image.format not in ("PNG", "JPEG"):
            raise ValidationFailed(
                f"the logo is a {image.format} image", where="logo", hint="use PNG or JPEG"
            )
        if image.width * image.height > 4096 * 4096:
            raise ValidationFailed("the logo is too large", where="logo", hint="at most 4096×4096 pixels")
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise ValidationFailed("the logo is not an image", where="logo", hint="use a PNG or JPEG") from None
    return image.convert("RGBA")


def png(data: str, *, size: str = "8cm", logo: bytes | None = None) -> bytes:
    """A PNG of `data` about `size` wide at 300 dpi (whole pixels per module, so it stays sharp)."""
    target = print_size(size)
    qr = _symbol(data, with_logo=logo is not None)
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=_scale_for(qr, target.pixels), border=BORDER_MODULES, dpi=DPI)
    if logo is None:
        return buffer.getvalue()
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGBA")
    mark = check_logo(logo)
    side = int(image.width * LOGO_SHARE)
    mark.thumbnail((side, side))
    pad = max(2, side // 12)
    plate = Image.new("RGBA", (mark.width + 2 * pad, mark.height + 2 * pad), (255, 255, 255, 255))
    plate.alpha_composite(mark, (pad, pad))
    image.alpha_composite(plate, ((image.width - plate.width) // 2, (image.height - plate.height) // 2))
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", dpi=(DPI, DPI))
    return out.getvalue()


def svg(data: str, *, size: str = "8cm") -> bytes:
    """An SVG of `data` whose width and height are `size` in millimetres (for print)."""
    target = print_size(size)
    qr = _symbol(data, with_logo=False)
    width_modules = qr.symbol_size(scale=1, border=BORDER_MODULES)[0]
    buffer = io.BytesIO()
    qr.save(buffer, kind="svg", scale=target.cm * 10 / width_modules, border=BORDER_MODULES, unit="mm")
    return buffer.getvalue()
