"""Hatched and sketched lettering: a digit's broad shape filled with parallel diagonal lines instead of ink, as
people letter a heading or shade a block digit. MNIST validation digits (held out by the run's split, never
trained on) made broad as the outlines probe (`probe.py outlines`) makes them, then drawn four ways and
photographed (uneven light, grain, blur, JPEG: `synthetic.photograph`): solid, hatched (lines 1.5-3 px wide,
5-9 px apart at 112 px, 30-60 degrees either way), hatched inside their outline, and cross-hatched inside their
outline. Beside them the sketched outline font of the `fonts` set (femkeklaver: each outline drawn two or three
times over, which leaves slivers of paper between the lines), 35-90 % of a 100-900 px picture, photographed.
Then what no digit is, which must stay refused: tangles (one pen wandering through 12-30 points), a page
crossed by 15-40 straight lines, coils (a spring of 6-12 loops), a patch shaded by hatching or cross-hatching
inside its outline, a digit crossed out by a zigzag, and blots; each 240 px, photographed. Read through
`to_mnist`.

    DIGITREC_DATA=../shared/data/mnist python scripts/probe_hatched.py [--model RUN] [--count 600]

Prints accuracy and refusals for each digit's drawing and refusals for each kind of scribble. A probe for
finding faults, not a set to choose on.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from make_realworld import glyph_layer
from PIL import Image, ImageDraw, ImageFont
from probe import OUTLINE_SIDE as SIDE
from probe import broad_digits, probe_setup, report_condition
from scipy import ndimage

from digitrec.core.errors import DigitrecError
from digitrec.data import synthetic
from digitrec.imaging.fit import to_mnist

MARGIN = 24
SKETCHED_FONT = Path("/usr/share/fonts/truetype/femkeklaver/femkeklaver.ttf")


def hatching(rng: np.random.Generator, crossed: bool = False) -> np.ndarray:
    """Parallel lines across a SIDE x SIDE square at a random slant, spacing and pen (and the same turned
    a right angle, `crossed`)."""
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    angle = np.deg2rad(rng.uniform(30, 60) * rng.choice([-1, 1]))
    spacing, pen = rng.uniform(5, 9), rng.uniform(1.5, 3)
    lines = np.zeros((SIDE, SIDE), bool)
    for turn in ((0, np.pi / 2) if crossed else (0,)):
        across = x * np.cos(angle + turn) + y * np.sin(angle + turn) + rng.uniform(0, spacing)
        lines |= np.abs((across % spacing) - spacing / 2) < pen / 2
    return lines


def hatched(broad: np.ndarray, outline: np.ndarray, rng: np.random.Generator, style: str) -> np.ndarray:
    if style == "solid":
        return broad
    lines = broad & hatching(rng, crossed=style == "cross-hatched, outlined")
    return lines | outline if style != "hatched" else lines


def photographed(mask: np.ndarray, rng: np.random.Generator, margin: int = MARGIN) -> Image.Image:
    layer = np.pad(ndimage.gaussian_filter(mask.astype(np.float32), 0.6), margin)
    return Image.open(io.BytesIO(synthetic.photograph(np.clip(layer, 0, 1), rng)))


def sketched_font_digits(count: int, rng: np.random.Generator) -> list[Image.Image]:
    """The sketched outline font's digits 0-9 in turn, 35-90 % of a 100-900 px picture, photographed."""
    pictures = []
    for i in range(count):
        size = int(rng.integers(100, 901))
        font = ImageFont.truetype(str(SKETCHED_FONT), int(size * rng.uniform(0.35, 0.9)))
        pictures.append(Image.open(io.BytesIO(synthetic.photograph(glyph_layer(font, i % 10, size, rng), rng))))
    return pictures


def _pen(rng: np.random.Generator) -> int:
    return int(rng.integers(2, 9))


def _tangle(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    side = rng.uniform(60, 200)
    points = rng.uniform(120 - side / 2, 120 + side / 2, (int(rng.integers(12, 31)), 2))
    draw.line(synthetic._smooth([tuple(p) for p in points]), fill=255, width=_pen(rng), joint="curve")


def _lines(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    pen = _pen(rng)
    for _ in range(int(rng.integers(15, 41))):
        draw.line([tuple(rng.uniform(10, 230, 2)), tuple(rng.uniform(10, 230, 2))], fill=255, width=pen)


def _coil(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    loops, radius = int(rng.integers(6, 13)), rng.uniform(8, 20)
    t = np.linspace(0, 2 * np.pi * loops, 60 * loops)
    step = rng.uniform(0.3, 0.7) * radius * 2 / (2 * np.pi)
    x, y = radius * np.cos(t) + step * t, radius * np.sin(t)
    x, y = x - x.mean() + 120, y + 120
    angle = rng.uniform(-0.5, 0.5)
    points = [(120 + (a - 120) * np.cos(angle) - (b - 120) * np.sin(angle),
               120 + (a - 120) * np.sin(angle) + (b - 120) * np.cos(angle)) for a, b in zip(x, y, strict=True)]
    draw.line(points, fill=255, width=_pen(rng) // 2 + 1, joint="curve")


def _shaded_patch(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    layer = Image.new("L", (SIDE, SIDE), 0)
    box = tuple(rng.uniform(0, 30, 2)) + tuple(rng.uniform(SIDE - 30, SIDE, 2))
    (ImageDraw.Draw(layer).ellipse if rng.random() < 0.5 else ImageDraw.Draw(layer).rectangle)(box, fill=255)
    shape = np.asarray(layer) > 0
    mask = (shape & hatching(rng, crossed=rng.random() < 0.5)) | (shape & ~ndimage.binary_erosion(shape, iterations=2))
    draw.bitmap((64, 64), Image.fromarray(mask.astype(np.uint8) * 255), fill=255)


def _crossed_out(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    strokes, pen = synthetic.digit_strokes(int(rng.integers(10)), rng, 240)
    for path in strokes:
        draw.line(path, fill=255, width=round(pen), joint="curve")
    top, bottom = rng.uniform(40, 80), rng.uniform(160, 200)
    xs = np.linspace(rng.uniform(30, 60), rng.uniform(180, 210), int(rng.integers(8, 17)))
    draw.line([(x, top if i % 2 else bottom) for i, x in enumerate(xs)], fill=255, width=_pen(rng))


def _blot(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    for _ in range(int(rng.integers(1, 6))):
        cx, cy, rx, ry = *rng.uniform(80, 160, 2), *rng.uniform(20, 70, 2)
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)


SCRIBBLES = {"tangle": _tangle, "lines across the page": _lines, "coil": _coil, "shaded patch": _shaded_patch,
             "digit crossed out": _crossed_out, "blot": _blot}


def scribbles(kind: str, count: int, rng: np.random.Generator) -> list[Image.Image]:
    pictures = []
    for _ in range(count):
        layer = Image.new("L", (240, 240), 0)
        SCRIBBLES[kind](ImageDraw.Draw(layer), rng)
        pictures.append(photographed(np.asarray(layer) / 255, rng, margin=0))
    return pictures


def main() -> None:
    images, labels, predictor = probe_setup(__doc__, 600)
    masks = broad_digits(images)
    print(f"{'drawn':28s} {'read':>7} {'refused':>8}  commonest confusions (true, read)")
    for style in ("solid", "hatched", "hatched, outlined", "cross-hatched, outlined"):
        rng = np.random.default_rng(5)
        pictures = (photographed(hatched(broad, outline, rng, style), rng) for broad, outline in masks)
        report_condition(style, pictures, labels, predictor, width=28, confusions=4)
    if SKETCHED_FONT.exists():
        report_condition("sketched font, photographed", sketched_font_digits(len(labels), np.random.default_rng(6)),
                         np.arange(len(labels)) % 10, predictor, width=28, confusions=4)
    print(f"\n{'no digit':28s} {'refused':>7}")
    count = max(1, len(labels) // 6)
    for kind in SCRIBBLES:
        refused = sum(_refused(picture) for picture in scribbles(kind, count, np.random.default_rng(7)))
        print(f"{kind:28s} {refused:7d} of {count}")


def _refused(picture: Image.Image) -> bool:
    try:
        to_mnist(picture)
    except DigitrecError:
        return True
    return False


if __name__ == "__main__":
    main()
