"""Digits that do not come from MNIST's scanner: pen strokes and photographed paper.

Used to test what people actually send (canvas drawings, phone photos) and to draw digits
with a real mouse in the browser test. Everything is seeded: the same seed, the same set.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Point = tuple[float, float]


def _ellipse(cx: float, cy: float, rx: float, ry: float, start: float = -90, end: float = 270, n: int = 24):
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(start, end, n)]


# Control points in a unit box (x right, y down); each digit has a few styles, each a list of strokes.
TEMPLATES: dict[int, list[list[list[Point]]]] = {
    0: [[_ellipse(0.5, 0.5, 0.28, 0.42)], [_ellipse(0.5, 0.5, 0.22, 0.44, -100, 265)]],
    1: [[[(0.5, 0.08), (0.5, 0.92)]], [[(0.42, 0.18), (0.55, 0.06), (0.53, 0.92)]]],
    2: [[[(0.22, 0.3), (0.35, 0.12), (0.6, 0.1), (0.76, 0.28), (0.65, 0.5), (0.22, 0.9), (0.82, 0.9)]],
        [[(0.25, 0.25), (0.5, 0.1), (0.75, 0.25), (0.7, 0.45), (0.3, 0.85), (0.2, 0.9), (0.8, 0.88)]]],
    3: [[[(0.22, 0.15), (0.6, 0.1), (0.75, 0.27), (0.45, 0.47), (0.78, 0.63), (0.7, 0.85), (0.4, 0.92), (0.2, 0.82)]],
        [[(0.25, 0.12), (0.78, 0.12), (0.45, 0.45), (0.75, 0.6), (0.72, 0.85), (0.45, 0.92), (0.22, 0.85)]]],
    4: [[[(0.6, 0.08), (0.18, 0.62), (0.85, 0.62)], [(0.66, 0.3), (0.66, 0.93)]],
        [[(0.28, 0.08), (0.22, 0.5), (0.78, 0.5)], [(0.7, 0.08), (0.7, 0.93)]]],
    5: [[[(0.78, 0.1), (0.32, 0.1), (0.28, 0.45), (0.55, 0.38), (0.77, 0.55), (0.72, 0.82), (0.45, 0.92),
          (0.22, 0.83)]],
        [[(0.3, 0.1), (0.26, 0.45), (0.55, 0.4), (0.75, 0.6), (0.65, 0.88), (0.25, 0.86)], [(0.3, 0.1), (0.78, 0.1)]]],
    6: [[[(0.7, 0.08), (0.45, 0.25), (0.28, 0.55), (0.3, 0.8), (0.5, 0.92), (0.72, 0.8), (0.7, 0.6), (0.5, 0.52),
          (0.3, 0.62)]]],
    7: [[[(0.18, 0.12), (0.82, 0.12), (0.42, 0.92)]],
        [[(0.18, 0.15), (0.8, 0.12), (0.45, 0.92)], [(0.35, 0.5), (0.72, 0.5)]]],
    8: [[[(0.62, 0.12), (0.45, 0.1), (0.3, 0.22), (0.35, 0.38), (0.66, 0.58), (0.72, 0.78), (0.52, 0.92),
          (0.3, 0.8), (0.33, 0.6), (0.65, 0.38), (0.7, 0.2), (0.55, 0.1)]]],
    9: [[_ellipse(0.5, 0.3, 0.22, 0.2, 0, 360) + [(0.72, 0.3), (0.68, 0.6), (0.6, 0.92)]],
        [_ellipse(0.48, 0.3, 0.22, 0.2, 10, 370) + [(0.7, 0.35), (0.7, 0.93)]]],
}


def _smooth(points: list[Point], per_segment: int = 8) -> list[Point]:
    """Catmull-Rom through the control points: a pen's smooth path, not a polygon."""
    if len(points) < 3:
        return points
    p = [points[0], *points, points[-1]]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = (np.array(v) for v in p[i - 1 : i + 3])
        for t in np.linspace(0, 1, per_segment, endpoint=False):
            out.append(tuple(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t * t
                                    + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)))
    out.append(points[-1])
    return out


def digit_strokes(digit: int, rng: np.random.Generator, size: int = 280) -> tuple[list[list[Point]], float]:
    """Strokes of one handwritten-looking digit in pixel coordinates, and a pen width."""
    style = TEMPLATES[digit][rng.integers(len(TEMPLATES[digit]))]
    angle = math.radians(rng.uniform(-12, 12))
    shear = rng.uniform(-0.2, 0.2)
    height = rng.uniform(0.45, 0.85) * size
    width = height * rng.uniform(0.75, 1.05)
    cx = rng.uniform(0.5 * width, size - 0.5 * width) if width < size else size / 2
    cy = rng.uniform(0.5 * height, size - 0.5 * height) if height < size else size / 2
    strokes = []
    for stroke in style:
        path = []
        for x, y in _smooth([(x + rng.normal(0, 0.015), y + rng.normal(0, 0.015)) for x, y in stroke]):
            x, y = (x - 0.5) + shear * (0.5 - y), y - 0.5
            x, y = x * math.cos(angle) - y * math.sin(angle), x * math.sin(angle) + y * math.cos(angle)
            path.append((cx + x * width, cy + y * height))
        strokes.append(path)
    pen = rng.uniform(0.05, 0.11) * height
    return strokes, pen


def render_strokes(strokes: list[list[Point]], pen: float, size: int = 280) -> Image.Image:
    """Dark ink on a white canvas, as a drawing app or the web page exports it."""
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    for path in strokes:
        draw.line(path, fill=20, width=max(1, round(pen)), joint="curve")
        r = pen / 2
        for x, y in (path[0], path[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=20)
    return image


def drawn_digits(count: int, seed: int = 0, size: int = 280) -> tuple[list[Image.Image], np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    return [render_strokes(*digit_strokes(int(d), rng, size), size) for d in labels], labels


def photo_of(image28: np.ndarray, rng: np.random.Generator) -> bytes:
    """An MNIST digit as if written on paper and photographed: dark ink on uneven light paper,
    rotated, off-centre, of varied size, blurred and JPEG-compressed."""
    size = int(rng.integers(200, 400))
    digit_px = int(size * rng.uniform(0.3, 0.7))
    ink = Image.fromarray(image28).resize((digit_px, digit_px), Image.Resampling.BICUBIC)
    ink = ink.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BICUBIC, expand=True)
    ink_layer = np.zeros((size, size), np.float32)
    h, w = ink.size[1], ink.size[0]
    top = int(rng.integers(0, max(1, size - h)))
    left = int(rng.integers(0, max(1, size - w)))
    ink_layer[top : top + h, left : left + w] = np.asarray(ink, np.float32)[: size - top, : size - left] / 255
    ys, xs = np.mgrid[0:size, 0:size] / size
    light = rng.uniform(170, 235) + rng.uniform(-30, 30) * xs + rng.uniform(-30, 30) * ys
    paper = light + rng.normal(0, rng.uniform(2, 7), (size, size))
    ink_tone = rng.uniform(20, 70)
    page = paper * (1 - ink_layer) + ink_tone * ink_layer
    photo = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
    photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.5)))
    tint = np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.85, 0.97)])
    rgb = Image.fromarray(np.clip(np.asarray(photo, np.float32)[..., None] * tint, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=int(rng.integers(50, 90)))
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- other hands, pens and scanners
# Each takes an MNIST-style digit (uint8 28x28, light ink on black) and returns the bytes of a picture
# of it as another pen, scanner or camera would give it. The real-world sets and the validation sets
# that chose the training augmentation are both made with these, from digits training never saw.


def _ink_mask(image28: np.ndarray, side: int) -> np.ndarray:
    """The digit's ink at `side` x `side`, float 0-1, smooth edges."""
    big = Image.fromarray(image28).resize((side, side), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(big, np.float32) / 255, 0, 1)


def _on_paper(ink: np.ndarray, rng: np.random.Generator, paper: float, tone: float, grain: float) -> np.ndarray:
    """Dark ink of `tone` on paper of `paper` brightness with unevenness and grain, as uint8."""
    h, w = ink.shape
    ys, xs = np.mgrid[0:h, 0:w] / max(h, w)
    light = paper + rng.uniform(-20, 20) * xs + rng.uniform(-20, 20) * ys
    page = light * (1 - ink) + tone * ink + rng.normal(0, grain, ink.shape)
    return np.clip(page, 0, 255).astype(np.uint8)


def _encode(page: np.ndarray, fmt: str, rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(page)
    if fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=int(rng.integers(60, 92)))
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def lowres_scan(image28: np.ndarray, rng: np.random.Generator) -> bytes:
    """The way some old scanners stored digits: a 32x32 bitmap of the digit filling the box, reduced to
    8x8 counts of 0-16 (ink pixels per 4x4 block), shown scaled back up as soft grey blocks."""
    ys, xs = np.nonzero(image28 > 40)
    crop = image28[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    width = max(4, round(32 * w / h)) if h >= w else 32
    height = 32 if h >= w else max(4, round(32 * h / w))
    fitted = np.asarray(Image.fromarray(crop).resize((width, height), Image.Resampling.BILINEAR))
    bitmap = np.zeros((32, 32), np.float32)
    top, left = (32 - height) // 2, (32 - width) // 2
    bitmap[top : top + height, left : left + width] = fitted > 110
    counts = bitmap.reshape(8, 4, 8, 4).sum(axis=(1, 3))  # 0-16
    side = int(rng.choice([32, 48, 64, 96, 128]))
    resample = Image.Resampling.BILINEAR if rng.random() < 0.7 else Image.Resampling.NEAREST
    up = np.asarray(Image.fromarray((counts * 255 / 16).astype(np.uint8)).resize((side, side), resample))
    return _encode(up if rng.random() < 0.5 else 255 - up, "PNG", rng)


def marker(image28: np.ndarray, rng: np.random.Generator) -> bytes:
    """A thick felt-tip: strokes two to three times MNIST's width, dark on white, slightly soft."""
    side = int(rng.integers(160, 260))
    ink = _ink_mask(image28, side) > 0.45
    grow = int(side * rng.uniform(0.025, 0.05)) * 2 + 1
    thick = Image.fromarray((ink * 255).astype(np.uint8)).filter(ImageFilter.MaxFilter(grow))
    thick = thick.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    page = _on_paper(np.asarray(thick, np.float32) / 255, rng, rng.uniform(215, 250), rng.uniform(5, 40), 3)
    return _encode(page, "PNG", rng)


def ballpoint(image28: np.ndarray, rng: np.random.Generator) -> bytes:
    """A thin ball-point line: the middle of each stroke, 1-3 px wide on a large page."""
    from scipy import ndimage

    side = int(rng.integers(200, 320))
    ink = _ink_mask(image28, side) > 0.4
    depth = ndimage.distance_transform_edt(ink)
    ridge = ink & (depth >= ndimage.maximum_filter(depth, size=5) - 1.0)
    pen = int(rng.integers(1, 3)) * 2 + 1
    line = Image.fromarray((ridge * 255).astype(np.uint8)).filter(ImageFilter.MaxFilter(pen))
    line = line.filter(ImageFilter.GaussianBlur(0.7))
    page = _on_paper(np.asarray(line, np.float32) / 255, rng, rng.uniform(220, 250), rng.uniform(20, 80), 2)
    return _encode(page, "JPEG" if rng.random() < 0.5 else "PNG", rng)


def pencil(image28: np.ndarray, rng: np.random.Generator) -> bytes:
    """Faint pencil: grey, uneven pressure, grainy paper; ink only 15-40 % darker than the paper."""
    side = int(rng.integers(120, 240))
    ink = _ink_mask(image28, side)
    pressure = Image.fromarray((rng.random((6, 6)) * 255).astype(np.uint8)).resize((side, side),
                                                                                  Image.Resampling.BICUBIC)
    ink = ink * (0.55 + 0.45 * np.asarray(pressure, np.float32) / 255)
    paper = rng.uniform(190, 240)
    page = _on_paper(ink, rng, paper, paper * (1 - rng.uniform(0.15, 0.4)), rng.uniform(2, 6))
    return _encode(page, "JPEG", rng)


def ruled_photo(image28: np.ndarray, rng: np.random.Generator) -> bytes:
    """A photo of a digit written on ruled paper: faint lines across the whole page, under the ink."""
    size = int(rng.integers(200, 360))
    digit_px = int(size * rng.uniform(0.35, 0.6))
    ink = np.zeros((size, size), np.float32)
    glyph = _ink_mask(image28, digit_px)
    top, left = (int(rng.integers(0, size - digit_px)) for _ in range(2))
    ink[top : top + digit_px, left : left + digit_px] = glyph
    lines = np.zeros_like(ink)
    spacing = int(digit_px * rng.uniform(0.45, 0.9))
    for y in range(int(rng.integers(0, spacing)), size, spacing):
        lines[y : y + int(rng.integers(1, 3))] = rng.uniform(0.25, 0.5)
    paper = rng.uniform(200, 240)
    page = paper * (1 - lines) * (1 - ink) + rng.uniform(20, 70) * ink + rng.normal(0, 3, ink.shape)
    ys, xs = np.mgrid[0:size, 0:size] / size
    page = page + rng.uniform(-25, 25) * xs + rng.uniform(-25, 25) * ys
    photo = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0, 1)))
    photo = photo.rotate(rng.uniform(-4, 4), resample=Image.Resampling.BICUBIC, fillcolor=int(paper))
    return _encode(np.asarray(photo), "JPEG", rng)


RENDERERS = {"scans": lowres_scan, "marker": marker, "ballpoint": ballpoint, "pencil": pencil, "ruled": ruled_photo}
