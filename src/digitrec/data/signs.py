"""Handwritten signs inside numbers (`.` `,` `-` `/` `:`) and values written with them (12.50, -3, 24/12/2026,
14:05), composed with MNIST-style digits for the line model's training and validation lines.

A sign is drawn as pen strokes, in the digits' own scale: `base` is the line's digit height in pixels, a
sign's rows are given from the digits' top (0) to their baseline (`base`). A dot sits on the baseline, a
comma's tail goes below it, a minus is at mid-height, a slash crosses the whole line leaning right, a colon
is two dots around mid-height. Pen width, size, height, slant and jitter vary as people's do; the pen is
MNIST's weight (a tenth to a sixth of the digit height), anti-aliased as MNIST's scanner blurs it.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from digitrec.data.synthetic import _glyph

SIGNS = ".,-/:"
SUPER = 4  # signs are drawn this many times larger, then shrunk: a smooth anti-aliased pen

Stroke = list[tuple[float, float]]


def sign_strokes(sign: str, base: float, rng: np.random.Generator) -> tuple[list[Stroke], float]:
    """A sign's pen paths (x right, y down; y 0 at the digits' top, `base` on their baseline) and pen width."""
    pen = base * rng.uniform(0.09, 0.17)
    if sign == ".":
        return [_dot(0.0, base - pen * rng.uniform(0.3, 0.9) + rng.normal(0, 0.03) * base, pen, rng)], pen
    if sign == ",":
        top = base - pen * rng.uniform(0.2, 0.8) + rng.normal(0, 0.03) * base
        depth = base * rng.uniform(0.18, 0.38)
        lean = depth * rng.uniform(0.25, 0.7)
        bend = rng.uniform(-0.15, 0.25) * depth
        return [[(lean, top), (lean + bend * 0.5, top + depth * 0.45), (0.0, top + depth)]], pen
    if sign == "-":
        length = base * (rng.uniform(0.22, 0.4) if rng.random() < 0.5 else rng.uniform(0.4, 0.75))
        y = base * rng.uniform(0.42, 0.65)
        tilt = length * math.tan(math.radians(rng.uniform(-7, 7)))
        return [[(0.0, y + tilt / 2), (length / 2, y + rng.normal(0, 0.02) * base), (length, y - tilt / 2)]], pen
    if sign == "/":
        low = base * rng.uniform(0.9, 1.12)
        high = base * rng.uniform(-0.12, 0.1)
        lean = (low - high) * rng.uniform(0.2, 0.6)
        return [[(0.0, low), (lean / 2 + rng.normal(0, 0.02) * base, (low + high) / 2), (lean, high)]], pen
    if sign == ":":
        upper = base * rng.uniform(0.22, 0.45)
        lower = base * rng.uniform(0.7, 0.95)
        shift = (lower - upper) * rng.uniform(-0.3, 0.1)  # the upper dot often a little right of the lower
        return [_dot(-shift, upper, pen, rng), _dot(0.0, lower, pen, rng)], pen
    raise ValueError(f"not a sign: {sign!r}")


def _dot(x: float, y: float, pen: float, rng: np.random.Generator) -> Stroke:
    """A dot as people make one: a touch of the pen, or a tiny stroke."""
    length = pen * rng.uniform(0.0, 0.7)
    angle = rng.uniform(0, math.pi)
    return [(x, y), (x + length * math.cos(angle), y + length * math.sin(angle))]


def render_sign(sign: str, base: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A sign as light ink on black (float 0-1, cropped to its ink) and the row of its top, from the digits'
    top (negative: above them)."""
    strokes, pen = sign_strokes(sign, base, rng)
    points = np.array([p for stroke in strokes for p in stroke])
    margin = pen / 2 + 2
    x0, y0 = points.min(axis=0) - margin
    x1, y1 = points.max(axis=0) + margin
    width, height = max(1, math.ceil(x1 - x0)), max(1, math.ceil(y1 - y0))
    canvas = Image.new("L", (width * SUPER, height * SUPER), 0)
    draw = ImageDraw.Draw(canvas)
    r = pen * SUPER / 2
    for stroke in strokes:
        path = [((x - x0) * SUPER, (y - y0) * SUPER) for x, y in stroke]
        if len(path) > 1:
            draw.line(path, fill=255, width=max(1, round(pen * SUPER)), joint="curve")
        for x, y in (path[0], path[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    small = canvas.resize((width, height), Image.Resampling.BOX).filter(ImageFilter.GaussianBlur(0.5))
    ink = np.asarray(small, np.float32) / 255
    ink = ink / max(float(ink.max()), 1e-6) * rng.uniform(0.85, 1.0)
    rows, cols = np.flatnonzero(ink.max(axis=1) > 0.05), np.flatnonzero(ink.max(axis=0) > 0.05)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], int(round(y0)) + int(rows[0])


# ---------------------------------------------------------------- values people write
# Each format is a pattern: `d` a digit, `D` a digit that is not 0 (a number's first), a sign itself.
# Weights: how often each kind is drawn for training lines (plain digit strings keep the most).
VALUE_FORMATS: list[tuple[str, float]] = [
    ("D.dd", 3), ("Dd.dd", 4), ("Ddd.dd", 3), ("Dddd.dd", 1), ("D,ddd.dd", 2), ("D,ddd", 2), ("Dd,ddd", 1),
    ("Ddd,ddd", 1), ("D,dd", 2), ("Dd,dd", 2), ("D.ddd,dd", 1), ("0.dd", 2), ("0,d", 1), ("D.d", 2), ("Dd.d", 2),
    ("-D", 2), ("-Dd", 2), ("-Ddd", 1), ("-D.d", 2), ("-Dd.d", 2), ("-D.dd", 1), ("-0.d", 1), ("-D,d", 1),
    ("dd/dd/dddd", 4), ("d/d/dddd", 1), ("dd/dd/dd", 2), ("d/dd/dd", 1), ("dd/dd", 1), ("D/D", 1),
    ("dd.dd.dd", 3), ("dd.dd.dddd", 2), ("d.d.dd", 1), ("dddd-dd-dd", 3), ("dd-dd-dddd", 2), ("Ddd-dddd", 1),
    ("dd:dd", 5), ("d:dd", 2), ("dd:dd:dd", 1), ("Dd-Dd", 1),
]


def value_text(rng: np.random.Generator) -> str:
    """A value people write with signs in it, its digits random: '12.50', '-3', '24/12/2026', '14:05'..."""
    patterns, weights = zip(*VALUE_FORMATS, strict=True)
    pattern = patterns[rng.choice(len(patterns), p=np.array(weights) / sum(weights))]
    return "".join(str(rng.integers(10)) if c == "d" else str(rng.integers(1, 10)) if c == "D" else c
                   for c in pattern)


def value_ink(items: list[np.ndarray | str], gaps: tuple[float, float], rng: np.random.Generator,
              size: tuple[int, int] = (24, 96), slant: float = 0.25) -> np.ndarray:
    """Light ink on black, float 0-1: digits (28x28 MNIST-style pictures) and signs (characters of SIGNS)
    left to right, as `synthetic.number_ink` composes digits: each digit a little larger or smaller, higher
    or lower, gaps between digits from `gaps` (a share of the digit's width: below 0 they overlap), the
    baseline drifting a little; a sign with the gap people leave around one (from touching to half a digit)."""
    base = int(rng.integers(*size))
    drift = rng.uniform(-0.08, 0.08)  # baseline rise per digit width, in digit heights
    placed: list[tuple[np.ndarray, int | None]] = []
    for item in items:
        if isinstance(item, str):
            placed.append(render_sign(item, base, rng))
        else:
            placed.append((_glyph(item, max(12, int(base * rng.uniform(0.85, 1.15)))), None))
    lefts, x, previous_sign = [], int(base * rng.uniform(0.3, 0.8)), False
    for glyph, top in placed:
        is_sign = top is not None
        if is_sign or previous_sign:
            gap = base * rng.uniform(-0.02, 0.45) if rng.random() < 0.85 else base * rng.uniform(0.45, 0.8)
        else:
            gap = rng.uniform(gaps[0], max(gaps[0], gaps[1])) * glyph.shape[1]
        x = max(x + int(round(gap)) if lefts else x, 0)
        lefts.append(x)
        x += glyph.shape[1]
        previous_sign = is_sign
    height = int(base * 2.2)
    pad = int(slant * height) + 1  # the shear below moves the ink sideways by up to this much
    lefts = [left + pad for left in lefts]
    width = x + pad + int(base * rng.uniform(0.3, 0.8)) + pad
    canvas = np.zeros((height, width), np.float32)
    middle = (height - base) / 2 - 0.1 * base
    for (glyph, sign_top), left in zip(placed, lefts, strict=True):
        rise = drift * base * (left - lefts[0]) / base
        if sign_top is None:
            top = middle + (base - glyph.shape[0]) / 2 + rng.uniform(-0.1, 0.1) * base - rise
        else:
            top = middle + sign_top - rise
        top = int(np.clip(round(top), 0, height - glyph.shape[0]))
        region = canvas[top : top + glyph.shape[0], left : left + glyph.shape[1]]
        np.maximum(region, glyph[:, : region.shape[1]], out=region)
    sheared = Image.fromarray((canvas * 255).astype(np.uint8)).transform(
        (canvas.shape[1], canvas.shape[0]), Image.Transform.AFFINE, (1, rng.uniform(-slant, slant), 0, 0, 1, 0),
        resample=Image.Resampling.BILINEAR)
    return np.asarray(sheared, np.float32) / 255
