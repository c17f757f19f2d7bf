"""Opening pictures with limits (formats, pixel count, a large JPEG drafted) and grey levels at a working size."""

from __future__ import annotations

import contextlib
import io
import re
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from digitrec.core.constants import IMAGE_FORMATS, IMAGE_FORMATS_TEXT
from digitrec.core.errors import DigitrecError, TooLargeError

# A picture over this many pixels is refused before it is decoded, from the size its header gives (a
# 20000x20000 "decompression bomb" is a few KB): decoded, 40 megapixels of RGBA are 160 MB. Pillow's own limit is
# set to it too; Pillow then warns of pictures over it (we refuse them ourselves, with a clearer message) and
# refuses those over twice it. Its warnings, and those of damaged metadata it skips, are no business of the user's:
# silenced here once, not around each call (`warnings.catch_warnings` is not thread-safe).
MAX_IMAGE_PIXELS = 40_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
warnings.filterwarnings("ignore", module=r"PIL\.")
# A picture under this a side (an old scanner's 8x8 counts, stored as they are) is enlarged, each pixel a
# block, before it is read: in 8x8 nearly every step between neighbours crosses a stroke's edge, so the
# steps would pass for grain and the digit for a blank page.
TINY_PICTURE = 16
WORK_SIZE = 192  # large photos are reduced to this first: enough detail, bounded cost
# A JPEG that stays at least DRAFT_ABOVE on its longer side at half size (2048 pixels or more) is decoded at 1/2,
# 1/4 or 1/8 scale by the decoder itself, never below DRAFT_ABOVE (`draft_factor`).
DRAFT_ABOVE = 1024
JPEG_FORMATS = ("JPEG", "MPO")  # Pillow calls a phone's multi-picture JPEG an MPO; it drafts as one
DRAFTED = "digitrec_drafted"  # image.info key: the original's pixels per decoded pixel


def open_image(payload: bytes, max_pixels: int = MAX_IMAGE_PIXELS, whole_up_to: int = 0) -> Image.Image:
    """Decode image bytes, refusing what is no picture digitrec reads (IMAGE_FORMATS only) and a picture over
    `max_pixels` (at most MAX_IMAGE_PIXELS) before decoding it: its size is read from its header. A JPEG of
    at most `whole_up_to` pixels is decoded whole, never drafted (a page's points may need its own pixels).
    Safe to call from several threads at once (the server decodes off its event loop)."""
    if not payload:
        raise DigitrecError("empty file", expected=f"an image ({IMAGE_FORMATS_TEXT})")
    max_pixels = min(max_pixels, MAX_IMAGE_PIXELS)
    try:
        image = Image.open(io.BytesIO(payload), formats=IMAGE_FORMATS)  # reads the header only
        width, height = image.size
        if width * height > max_pixels:
            raise TooLargeError(
                f"image is {width}x{height} pixels, over the pixel limit", expected=f"at most {max_pixels:,} pixels"
            )
        request = _draft_request(image.size) if image.format in JPEG_FORMATS else None
        if request is not None and width * height > whole_up_to:
            # Decoded at 1/2, 1/4 or 1/8 scale by the JPEG decoder itself: a 40-megapixel photo costs
            # a few MB instead of 120, and the network reads 28x28 anyway.
            image.draft(image.mode, request)
            image.info[DRAFTED] = width / image.size[0]  # boxes are given in the original's pixels
        image.load()
    except DigitrecError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:  # Image.open's, from the header
        # (the warning is raised only where warnings are made errors: `python -W error`)
        size = re.search(r"\((\d+) pixels\)", str(e))
        raise TooLargeError(f"image is {int(size[1]):,} pixels, over the pixel limit" if size else
                            "image is over the pixel limit", expected=f"at most {max_pixels:,} pixels") from None
    except UnidentifiedImageError as e:
        raise DigitrecError(f"not a readable image ({e.__class__.__name__})", expected=IMAGE_FORMATS_TEXT) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DigitrecError(f"corrupt or truncated image ({e})", expected=IMAGE_FORMATS_TEXT) from None
    # a damaged EXIF block (fuzzed: SyntaxError, struct.error, "negative seek") is ignored: read unrotated
    with contextlib.suppress(OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, struct.error):
        ImageOps.exif_transpose(image, in_place=True)  # in place: a copy of a 40-megapixel picture is 160 MB more
    return image


def _draft_request(size: tuple[int, int]) -> tuple[int, int] | None:
    """The size `open_image` asks a JPEG's decoder for (None: it is decoded whole): DRAFT_ABOVE on the longer
    side, at most 8 times smaller."""
    width, height = size
    if max(width, height) <= DRAFT_ABOVE:
        return None
    scale = max(DRAFT_ABOVE / max(width, height), 1 / 8)
    return max(1, round(width * scale)), max(1, round(height * scale))


def draft_factor(size: tuple[int, int]) -> int:
    """The whole factor (1, 2, 4 or 8) by which `open_image` drafts a JPEG of this size (width, height): the
    largest the decoder takes for `_draft_request`'s size (Pillow's rule: the smaller of the two sides' whole
    ratios, rounded down to one of those)."""
    request = _draft_request(size)
    if request is None:
        return 1
    most = min(size[0] // request[0], size[1] // request[1])
    return next(factor for factor in (8, 4, 2, 1) if most >= factor)


def png_bytes(picture: Image.Image) -> bytes:
    """A picture as the bytes of a PNG file, in its own mode."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


# A picture's opaque part of more than one shade (its darkest and lightest thousandths BOTH_SHADES grey levels apart
# or more) is a picture with its paper (a page on a larger clear canvas, a PNG-8 whose paper colour is clear: its ink
# may be only 40 levels darker than its paper once quantised); one of a single shade is ink on a transparent layer
# (a canvas's strokes: their edges anti-aliased by their alpha alone). Measured on at most OPAQUE_SAMPLE pixels.
BOTH_SHADES, OPAQUE_SAMPLE = 32, 100_000


def _grayscale(image: Image.Image) -> np.ndarray:
    """Luminance as float32 [H, W] in 0-255; transparent areas become background."""
    if image.mode in ("I;16", "I;16B", "I", "F"):  # 16 or 32 bits, or floats: no 0-255 scale of their own
        return _array_levels(np.asarray(image))
    if "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255
        lum = np.asarray(rgba.convert("L"), dtype=np.float32)
        if alpha.min() < 1:
            opaque = lum[alpha >= 0.5]
            opaque = opaque[:: max(1, opaque.size // OPAQUE_SAMPLE)]
            if opaque.size and np.ptp(np.percentile(opaque, (0.1, 99.9))) >= BOTH_SHADES:
                # A picture with paper of its own and ink on it, part of it clear (a margin, a page on a larger
                # canvas, a GIF's paper colour made transparent): the clear part is more of its paper.
                paper = float(np.median(opaque))
            else:
                # Ink drawn on a transparent layer: put it on paper of the opposite shade.
                weight = alpha.sum()
                ink_lum = (lum * alpha).sum() / weight if weight else 0
                paper = 255.0 if ink_lum < 128 else 0.0
            return lum * alpha + paper * (1 - alpha)
        return lum
    return np.asarray(image.convert("L"), dtype=np.float32)


def _array_levels(picture: np.ndarray) -> np.ndarray:
    """An array's values as grey levels 0-255. uint8 is taken as it is; any other numbers (0-1 floats as
    most libraries give them, an old scanner's 0-16 counts, -1..1, 16 bits, True/False) carry no scale of
    their own and are stretched from their least to their greatest value."""
    array = np.asarray(picture)
    if array.dtype == np.uint8:
        return array.astype(np.float32)
    if array.dtype != bool and not np.issubdtype(array.dtype, np.integer) \
            and not np.issubdtype(array.dtype, np.floating):
        raise DigitrecError(f"image array holds {array.dtype} values",
                            expected="real numbers (uint8 0-255, or any range)")
    values = array.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise DigitrecError("image holds no finite pixel values (NaN or infinity)", expected="a picture")
    values = np.where(finite, values, np.median(values[finite]))  # a float TIFF's NaN or inf pixels: paper
    low, high = float(values.min()), float(values.max())
    return ((values - low) * (255 / (high - low)) if high > low else np.zeros_like(values)).astype(np.float32)


def gray_of(picture: Image.Image | np.ndarray, factor: int | None = None) -> np.ndarray:
    """A picture's grey levels as every reader takes them (float32, H x W): a PIL picture reduced by `factor`
    (None: to at most WORK_SIZE a side; 1: not at all), transparency backed as `_grayscale` says; an array's
    levels as `_array_levels` makes them, colour averaged. Not 2-D afterwards: refused in one line."""
    gray = _grayscale(_shrink(picture, factor)) if isinstance(picture, Image.Image) else _array_levels(picture)
    if gray.ndim == 3:
        gray = gray.mean(axis=2)
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise DigitrecError(f"image array has shape {gray.shape}", expected="a 2-D grayscale image")
    return gray


def _shrink(image: Image.Image, factor: int | None = None) -> Image.Image:
    """A large picture reduced by a whole factor (averaging blocks: fast, and the strokes stay) to at
    most WORK_SIZE a side, before any of it becomes floats."""
    factor = factor or -(-max(image.size) // WORK_SIZE)
    if factor < 2:
        return image
    if image.mode not in ("L", "RGB", "RGBA", "LA", "I", "F"):
        image = image.convert("RGBA" if "transparency" in image.info or "A" in image.getbands() else "RGB")
    if "A" in image.getbands():
        # Reduced channel by channel: reducing RGBA whole makes a premultiplied copy of the full picture
        # (150 MB more for 40 megapixels), luminance and alpha alone cost a quarter of that each.
        return Image.merge("LA", (image.convert("L").reduce(factor), image.getchannel("A").reduce(factor)))
    return image.reduce(factor)


def _reduce(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    scale = WORK_SIZE / max(h, w)
    if scale >= 1:
        return gray
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(gray, mode="F").resize(size, Image.Resampling.BOX), dtype=np.float32)


def _enlarge_tiny(gray: np.ndarray) -> np.ndarray:
    """A picture under TINY_PICTURE a side, enlarged by the least whole factor that brings it there
    (each pixel a block: nothing is invented between them), never past WORK_SIZE."""
    h, w = gray.shape
    factor = min(-(-TINY_PICTURE // min(h, w)), max(1, WORK_SIZE // max(h, w)))
    return gray if factor < 2 else np.repeat(np.repeat(gray, factor, axis=0), factor, axis=1)
