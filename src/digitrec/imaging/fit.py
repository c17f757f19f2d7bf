"""Fitting one digit's picture to MNIST's 28x28 (`to_mnist`, `ink_to_mnist`): crop, pen, 20x20 fit, centre of mass.

This is the only place that resizes, inverts or centres a picture of one digit: the CLI, the Python API, the server
and the tests all call `to_mnist`. MNIST's own recipe: grayscale, light ink on black, cropped to the ink, scaled to
fit 20x20 keeping the aspect ratio, and placed in 28x28 so that the centre of mass sits at the centre.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from digitrec.core.constants import IMAGE_SIZE
from digitrec.core.errors import NoDigitError
from digitrec.imaging.decode import _enlarge_tiny, _reduce, gray_of
from digitrec.imaging.ink import _ink, crop_to_ink
from digitrec.imaging.pieces import _clean
from digitrec.imaging.refusals import (
    MAX_HOLES,
    MAX_INK_SHARE,
    MAX_STROKE,
    _check_digit_like,
    _enclosed_paper,
    _filled_hatching,
    _filled_outline,
)
from digitrec.imaging.stroke import FIT_SIZE, even_stroke, stroke_width

CANVAS = IMAGE_SIZE
MNIST_PAPER = 8  # grey levels: a 28x28 picture on paper this close to black (or white) may be MNIST's own
# A 28x28 taken as MNIST's own (`_mnist_already`, commit 478a4e1: MNIST validation digits as PNG files read 99.23 %
# made again, 99.40 % as they are): at least MNIST_PAPER_SHARE of it paper; its ink's box (pixels over MNIST_STRONG
# grey levels, 0.3 of white) at most FIT_SIZE and at least MNIST_MIN_SIDE a side; its centre of mass within
# MNIST_CENTRE_SLACK px of MNIST_CENTRE on both axes (every one of 20,000 training digits has it within 13.5-14.5);
# and at most MAX_INK_SHARE of the 20x20 inked (over INKED_GREY, half of white).
MNIST_PAPER_SHARE = 0.5
MNIST_STRONG = 76
MNIST_MIN_SIDE = 16
MNIST_CENTRE = 14
MNIST_CENTRE_SLACK = 1.5
INKED_GREY = 127
# Ink at least this strong (of 0-1) counts as inked where holes are found in the crop.
INKED_LEVEL = 0.5
# Enclosed paper counts as a hole (a scribble's, hatching's) when its area is at least HOLE_PENS times the pen's
# width squared, and at least MIN_HOLE px, measured before a thin pen is thickened and closes it.
HOLE_PENS = 2
MIN_HOLE = 4.0


def to_mnist(picture: Image.Image | np.ndarray) -> np.ndarray:
    """Any picture of one digit (either polarity, any size) -> uint8 [28, 28], light ink on black."""
    gray = gray_of(picture)
    already = _mnist_already(gray)
    if already is not None:
        _check_digit_like(already)
        return already
    return ink_to_mnist(_clean(_ink(_reduce(_enlarge_tiny(gray)))))


def ink_to_mnist(ink: np.ndarray) -> np.ndarray:
    """Ink strength 0-1 around one digit -> uint8 [28, 28] the MNIST way (crop, pen width, 20x20 fit,
    centre of mass), refused when it is ink no digit makes."""
    image = np.round(_place(_fit(ink)) * 255).astype(np.uint8)
    _check_digit_like(image)
    return image


def _mnist_already(gray: np.ndarray) -> np.ndarray | None:
    """A picture that already is an MNIST digit, as it is (light ink on black): 28x28, clean paper (MNIST's is
    exactly 0; either polarity), the ink's box at most 20x20 and its larger side at least 16, its centre of
    mass at most a pixel outside MNIST's 13.5-14.5 (where all of 20,000 training digits have theirs), and no
    more of the 20x20 inked than MAX_INK_SHARE. Made again, it would be cropped, resampled and cleaned of a
    detached stroke's piece: MNIST validation digits as PNG files read 99.23 % so, 99.40 % as they are. The
    heaviest (17 of 60,000 training digits, 3 of 10,000 test digits, up to 78 % inked) are made again, which
    brings their pen to MNIST's width, rather than refused as a blot."""
    if gray.shape != (CANVAS, CANVAS):
        return None
    ring = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    paper = float(np.median(ring))
    if MNIST_PAPER < paper < 255 - MNIST_PAPER:
        return None
    image = np.clip(gray if paper <= MNIST_PAPER else 255 - gray, 0, 255)
    if (image <= MNIST_PAPER).mean() < MNIST_PAPER_SHARE:
        return None
    strong = image > MNIST_STRONG
    rows, cols = np.flatnonzero(strong.any(axis=1)), np.flatnonzero(strong.any(axis=0))
    if not len(rows):
        return None
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    if max(height, width) > FIT_SIZE or max(height, width) < MNIST_MIN_SIDE:
        return None
    ys, xs = np.indices(image.shape)
    centre = (float((ys * image).sum()), float((xs * image).sum()))
    if any(abs(c / image.sum() - MNIST_CENTRE) > MNIST_CENTRE_SLACK for c in centre):
        return None
    if (image > INKED_GREY).sum() / FIT_SIZE**2 > MAX_INK_SHARE:
        return None
    return np.round(image).astype(np.uint8)


def _fit(ink: np.ndarray) -> np.ndarray:
    crop, _, _ = crop_to_ink(ink)
    pen = stroke_width(crop)
    paper, holes = _enclosed_paper(crop > INKED_LEVEL)
    filled = _filled_outline(crop, pen, paper, holes)
    if filled is not None:
        crop, pen = filled, stroke_width(filled)
        paper, holes = _enclosed_paper(crop > INKED_LEVEL)
    width = pen * FIT_SIZE / max(crop.shape)
    if width > MAX_STROKE:
        raise NoDigitError(f"no digit: a blot or smudge (strokes {width:.0f} px wide at 28x28)",
                           expected="a handwritten digit")
    min_area = max(MIN_HOLE, HOLE_PENS * pen**2)
    if np.count_nonzero(holes >= min_area) > MAX_HOLES:
        crop, pen = _filled_hatching(crop, paper, holes, min_area, pen)
    crop, _, _ = crop_to_ink(even_stroke(crop, FIT_SIZE / max(crop.shape), pen))
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
    top = min(max(int(round(CANVAS / 2 - cy - 0.5)), 0), CANVAS - h)
    left = min(max(int(round(CANVAS / 2 - cx - 0.5)), 0), CANVAS - w)
    out = np.zeros((CANVAS, CANVAS), dtype=np.float32)
    out[top : top + h, left : left + w] = fitted
    return out
