"""Turning a picture from the outside world into an MNIST-style 28x28 image.

This is the only place that resizes, inverts or centres a picture: the CLI, the Python API,
the server and the tests all call `to_mnist`. MNIST's own recipe: grayscale, light ink on
black, cropped to the ink, scaled to fit 20x20 keeping the aspect ratio, and placed in 28x28
so that the centre of mass sits at the centre.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from digitrec.errors import BlankImageError, DigitrecError, TooLargeError
from digitrec.inputs import IMAGE_SIZE

MAX_IMAGE_PIXELS = 40_000_000  # a 20000x20000 "decompression bomb" is refused before decoding
FIT_SIZE = 20  # MNIST fits each digit's ink into 20x20, then centres it in 28x28
CANVAS = IMAGE_SIZE
WORK_SIZE = 192  # large photos are reduced to this first: enough detail, bounded cost


def open_image(payload: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Decode image bytes, refusing non-images and images over `max_pixels` before decoding them."""
    if not payload:
        raise DigitrecError("empty file", expected="an image (PNG, JPEG, GIF, BMP, WebP)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(payload))
            width, height = image.size
            if width * height > max_pixels:
                raise TooLargeError(
                    f"image is {width}x{height} pixels, over the pixel limit", expected=f"at most {max_pixels:,} pixels"
                )
            image.load()
    except DigitrecError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise TooLargeError(f"image is over the pixel limit: {e}", expected=f"at most {max_pixels:,} pixels") from None
    except UnidentifiedImageError as e:
        raise DigitrecError(f"not a readable image ({e.__class__.__name__})",
                            expected="PNG, JPEG, GIF, BMP or WebP") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DigitrecError(f"corrupt or truncated image ({e})", expected="PNG, JPEG, GIF, BMP or WebP") from None
    return ImageOps.exif_transpose(image)


def _grayscale(image: Image.Image) -> np.ndarray:
    """Luminance as float32 [H, W] in 0-255; transparent areas become background."""
    if image.mode in ("I;16", "I;16B", "I", "F"):
        a = np.asarray(image, dtype=np.float32)
        return 255 * (a - a.min()) / max(float(a.max() - a.min()), 1e-6)
    if "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255
        lum = np.asarray(rgba.convert("L"), dtype=np.float32)
        if alpha.min() < 1:
            # Ink drawn on a transparent layer: put it on paper of the opposite shade.
            weight = alpha.sum()
            ink_lum = (lum * alpha).sum() / weight if weight else 0
            paper = 255.0 if ink_lum < 128 else 0.0
            return lum * alpha + paper * (1 - alpha)
        return lum
    return np.asarray(image.convert("L"), dtype=np.float32)


def _reduce(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    scale = WORK_SIZE / max(h, w)
    if scale >= 1:
        return gray
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(gray, mode="F").resize(size, Image.Resampling.BOX), dtype=np.float32)


def _ink(gray: np.ndarray) -> np.ndarray:
    """Ink strength in 0-1: light on dark whatever the input's polarity, paper texture removed."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 127:  # dark ink on light paper
        gray, border, background = 255 - gray, 255 - border, 255 - background
    ink = np.clip(gray - background, 0, None)
    peak = float(ink.max())
    if peak < 32:
        raise BlankImageError("image is blank (no ink found)", expected="a digit darker or lighter than its background")
    # Paper grain and uneven light stay below twice the border's usual variation. The 90th percentile,
    # not the maximum: in a tightly cropped picture the digit touches the border, and its ink there
    # would raise the threshold until thin strokes (the bar of a small 7) vanished.
    noise = float(np.percentile(np.clip(border - background, 0, None), 90))
    threshold = min(max(2.0 * noise, 0.05 * peak), 0.5 * peak)
    return np.clip((ink - threshold) / (peak - threshold), 0, 1)


def _fit(ink: np.ndarray) -> np.ndarray:
    # The box around clear ink (a fifth of the peak), one pixel wider for the soft edges: stray
    # specks of paper grain must not stretch the box and shrink the digit.
    strong = ink > 0.2
    rows = np.flatnonzero(strong.any(axis=1))
    cols = np.flatnonzero(strong.any(axis=0))
    top, bottom = max(rows[0] - 1, 0), min(rows[-1] + 2, ink.shape[0])
    left, right = max(cols[0] - 1, 0), min(cols[-1] + 2, ink.shape[1])
    crop = ink[top:bottom, left:right]
    h, w = crop.shape
    scale = FIT_SIZE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    fitted = Image.fromarray(crop.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(fitted, dtype=np.float32), 0, 1)


def _place(fitted: np.ndarray) -> np.ndarray:
    h, w = fitted.shape
    total = fitted.sum()
    ys, xs = np.indices(fitted.shape)
    cy = (ys * fitted).sum() / total if total else h / 2
    cx = (xs * fitted).sum() / total if total else w / 2
    top = int(np.clip(round(CANVAS / 2 - cy - 0.5), 0, CANVAS - h))
    left = int(np.clip(round(CANVAS / 2 - cx - 0.5), 0, CANVAS - w))
    out = np.zeros((CANVAS, CANVAS), dtype=np.float32)
    out[top : top + h, left : left + w] = fitted
    return out


def to_mnist(picture: Image.Image | np.ndarray) -> np.ndarray:
    """Any picture of one digit (either polarity, any size) -> uint8 [28, 28], light ink on black."""
    gray = _grayscale(picture) if isinstance(picture, Image.Image) else np.asarray(picture, dtype=np.float32)
    if gray.ndim == 3:
        gray = gray.mean(axis=2)
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise DigitrecError(f"image array has shape {gray.shape}", expected="a 2-D grayscale image")
    ink = _ink(_reduce(gray))
    return np.round(_place(_fit(ink)) * 255).astype(np.uint8)
