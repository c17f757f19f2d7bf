"""Digits that do not come from MNIST's scanner: pen strokes and photographed paper.

Used to test what people actually send (canvas drawings, phone photos) and to draw digits
with a real mouse in the browser test. Everything is seeded: the same seed, the same set.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from digitrec.imaging.decode import png_bytes as png_bytes  # the tests' and scripts' PNG encoder, one for all

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
    strokes = _pen_paths(style, rng, 0.015, shear, angle, (cx, cy), (width, height))
    pen = rng.uniform(0.05, 0.11) * height
    return strokes, pen


def _pen_paths(style: list[list[Point]], rng: np.random.Generator, wobble: float, shear: float, angle: float,
               centre: tuple[float, float], size: tuple[float, float]) -> list[list[Point]]:
    """A style's unit-box strokes as a pen draws them: each control point moved by up to `wobble`,
    smoothed, slanted by `shear`, turned by `angle` and scaled to `size` around `centre`."""
    (cx, cy), (width, height) = centre, size
    paths = []
    for stroke in style:
        path = []
        for x, y in _smooth([(x + rng.normal(0, wobble), y + rng.normal(0, wobble)) for x, y in stroke]):
            x, y = (x - 0.5) + shear * (0.5 - y), y - 0.5
            x, y = x * math.cos(angle) - y * math.sin(angle), x * math.sin(angle) + y * math.cos(angle)
            path.append((cx + x * width, cy + y * height))
        paths.append(path)
    return paths


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


def photo_of(image28: np.ndarray, rng: np.random.Generator, sizes: tuple[int, int] = (200, 400)) -> bytes:
    """An MNIST digit as if written on paper and photographed: dark ink on uneven light paper,
    rotated, off-centre, of varied size, blurred and JPEG-compressed; the photo `sizes` pixels square."""
    size = int(rng.integers(*sizes))
    digit_px = int(size * rng.uniform(0.3, 0.7))
    ink = Image.fromarray(image28).resize((digit_px, digit_px), Image.Resampling.BICUBIC)
    ink = ink.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BICUBIC, expand=True)
    ink_layer = np.zeros((size, size), np.float32)
    h, w = ink.size[1], ink.size[0]
    top = int(rng.integers(0, max(1, size - h)))
    left = int(rng.integers(0, max(1, size - w)))
    ink_layer[top : top + h, left : left + w] = np.asarray(ink, np.float32)[: size - top, : size - left] / 255
    return photograph(ink_layer, rng)


def photograph(ink_layer: np.ndarray, rng: np.random.Generator) -> bytes:
    """Ink (a square of coverage 0-1) as dark ink on uneven light paper in a phone photo: a lighting
    gradient, grain, blur, a warm tint, JPEG."""
    size = ink_layer.shape[0]
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


# ---------------------------------------------------------------- other hands, pens and scanners
# Each takes an MNIST-style digit (uint8 28x28, light ink on black) and returns the bytes of a picture
# of it as another pen, scanner or camera would give it. The real-world sets and the validation sets
# that chose the training augmentation are both made with these, from digits training never saw.


def crop_to_ink(image28: np.ndarray, above: int = 40) -> np.ndarray:
    """The digit's box: the rows and columns holding pixels brighter than `above`."""
    ys, xs = np.nonzero(image28 > above)
    return image28[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


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


def scan_counts(image28: np.ndarray) -> np.ndarray:
    """The way some old scanners stored digits: a 32x32 bitmap of the digit filling the box (aspect kept),
    reduced to 8x8 counts of 0-16 (ink pixels per 4x4 block)."""
    crop = crop_to_ink(image28)
    h, w = crop.shape
    width = max(4, round(32 * w / h)) if h >= w else 32
    height = 32 if h >= w else max(4, round(32 * h / w))
    fitted = np.asarray(Image.fromarray(crop).resize((width, height), Image.Resampling.BILINEAR))
    bitmap = np.zeros((32, 32), np.float32)
    top, left = (32 - height) // 2, (32 - width) // 2
    bitmap[top : top + height, left : left + width] = fitted > 110
    return bitmap.reshape(8, 4, 8, 4).sum(axis=(1, 3))


def lowres_scan(image28: np.ndarray, rng: np.random.Generator) -> bytes:
    """An old scanner's 8x8 counts (`scan_counts`), shown scaled back up as soft grey blocks."""
    counts = scan_counts(image28)
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


def boxed(image28: np.ndarray, rng: np.random.Generator) -> bytes:
    """The way some collections store a digit: cropped and stretched to fill a 16x16 box whatever its shape
    (a 1 becomes a broad slanted bar), half of them cut to black and white, shown 1-8 times as large."""
    crop = Image.fromarray(crop_to_ink(image28))
    box = np.asarray(crop.resize((16, 16), Image.Resampling.BILINEAR), np.float32)
    if rng.random() < 0.5:
        box = np.where(box > 127, 255.0, 0.0)
    side = int(rng.choice([16, 32, 64, 128]))
    resample = Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR
    up = np.asarray(Image.fromarray(box.astype(np.uint8)).resize((side, side), resample))
    return _encode(up if rng.random() < 0.5 else 255 - up, "PNG", rng)


def framed(image28: np.ndarray, rng: np.random.Generator) -> bytes:
    """A digit written in a form's box: a printed frame 1-3 % of the picture wide, the picture cropped at the
    frame or a little outside it, the digit filling most of the box and now and then touching it; on paper,
    photographed up to 2 degrees askew."""
    size = int(rng.integers(80, 240))
    inset = int(size * rng.uniform(0, 0.1))
    line = max(1, round(size * rng.uniform(0.01, 0.03)))
    ink = np.zeros((size, size), np.float32)
    inner = size - 2 * (inset + line)
    digit_px = min(size, int(inner * rng.uniform(0.8, 1.1)))
    top, left = (int(np.clip(size / 2 - digit_px / 2 + rng.uniform(-0.1, 0.1) * inner, 0, size - digit_px))
                 for _ in range(2))
    ink[top : top + digit_px, left : left + digit_px] = _ink_mask(image28, digit_px)
    frame = np.zeros_like(ink)
    frame[inset : size - inset, inset : size - inset] = 1
    frame[inset + line : size - inset - line, inset + line : size - inset - line] = 0
    ink = np.maximum(ink, frame * rng.uniform(0.6, 1.0))
    page = _on_paper(ink, rng, rng.uniform(200, 250), rng.uniform(20, 80), 3)
    photo = Image.fromarray(page).rotate(rng.uniform(-2, 2), resample=Image.Resampling.BICUBIC,
                                         fillcolor=int(np.median(page)))
    return _encode(np.asarray(photo), "JPEG" if rng.random() < 0.5 else "PNG", rng)


RENDERERS = {"scans": lowres_scan, "marker": marker, "ballpoint": ballpoint, "pencil": pencil, "ruled": ruled_photo,
             "boxed": boxed, "framed": framed}


# ---------------------------------------------------------------- whole numbers
# A line of digits composed from MNIST-style digits: the number bench (`scripts/make_numbers.py`, from
# test digits) and the line model's training lines (`digitrec train-lines`, from training digits).


def _glyph(image28: np.ndarray, height: int) -> np.ndarray:
    """A digit's ink cropped to its box and scaled to `height` pixels, keeping its aspect, float 0-1."""
    crop = crop_to_ink(image28, above=30)
    width = max(2, round(crop.shape[1] * height / crop.shape[0]))
    return np.asarray(Image.fromarray(crop).resize((width, height), Image.Resampling.BICUBIC), np.float32) / 255


def _mark(kind: str, base: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A mark that is not a digit, drawn with a pen of MNIST's weight, and where its top sits as a share
    of the digit height (a dash in the middle, a dot or comma on the baseline)."""
    pen = max(2, round(base * rng.uniform(0.1, 0.16)))
    if kind == "dash":
        width = max(pen + 2, round(base * rng.uniform(0.25, 0.5)))
        mark, top = np.ones((pen, width), np.float32), rng.uniform(0.4, 0.6)
    elif kind == "dot":
        mark, top = np.ones((pen + 1, pen + 1), np.float32), 1.0 - (pen + 1) / base
    else:  # comma
        tail = max(pen + 2, round(base * rng.uniform(0.2, 0.3)))
        mark = np.zeros((tail, pen + 2), np.float32)
        for y in range(tail):
            x = round((pen + 1) * (1 - y / tail) * 0.5)
            mark[y, x : x + pen] = 1
        top = 1.0 - tail / base * 0.5
    soft = Image.fromarray(np.pad(mark * 255, 1).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))
    return np.asarray(soft, np.float32) / 255, top


def number_ink(images: list[np.ndarray], gaps: tuple[float, float], rng: np.random.Generator,
               size: tuple[int, int] = (40, 80), slant: float = 0.15, marks: float = 0.0) -> np.ndarray:
    """Light ink on black, float 0-1: the digits left to right, each a little larger or smaller and higher
    or lower; gaps between neighbours drawn from `gaps` (a share of the digit's width: below 0 they
    overlap); with probability `marks` per gap, a dash, dot or comma between two digits."""
    base = int(rng.integers(*size))
    items: list[tuple[np.ndarray, float | None]] = []
    for n, image in enumerate(images):
        if n and marks and rng.random() < marks:
            items.append(_mark(str(rng.choice(["dash", "dot", "comma"])), base, rng))
        items.append((_glyph(image, max(12, int(base * rng.uniform(0.85, 1.15)))), None))
    lefts, x, previous_mark = [], int(base * rng.uniform(0.3, 0.8)), False
    for glyph, top in items:
        lefts.append(x)
        is_mark = top is not None
        # A mark keeps clear of its neighbours: it is a mark beside digits, not a stroke of one.
        low = max(gaps[0], 0.15) if is_mark or previous_mark else gaps[0]
        gap = rng.uniform(low, max(low, gaps[1]))
        x += glyph.shape[1] + int(round(gap * (base * 0.6 if is_mark else glyph.shape[1])))
        previous_mark = is_mark
    width = x + int(base * rng.uniform(0.3, 0.8))
    height = int(base * 1.8)
    canvas = np.zeros((height, max(width, lefts[-1] + items[-1][0].shape[1] + 4)), np.float32)
    middle = (height - base) / 2
    for (glyph, mark_top), left in zip(items, lefts, strict=True):
        if mark_top is None:
            top = int((height - glyph.shape[0]) / 2 + rng.uniform(-0.12, 0.12) * base)
        else:
            top = int(middle + mark_top * base)
        top = int(np.clip(top, 0, height - glyph.shape[0]))
        region = canvas[top : top + glyph.shape[0], left : left + glyph.shape[1]]
        np.maximum(region, glyph, out=region)
    sheared = Image.fromarray((canvas * 255).astype(np.uint8)).transform(
        (canvas.shape[1], canvas.shape[0]), Image.Transform.AFFINE, (1, rng.uniform(-slant, slant), 0, 0, 1, 0),
        resample=Image.Resampling.BILINEAR)
    return np.asarray(sheared, np.float32) / 255


def number_on_paper(ink: np.ndarray, rng: np.random.Generator, photographed: bool) -> tuple[bytes, str]:
    """The number as a picture file: dark ink on white (PNG), or photographed: uneven light, faint ruled
    lines, noise, blur, JPEG."""
    h, w = ink.shape
    if not photographed:
        page = 255 - ink * rng.uniform(200, 250)
        buffer = io.BytesIO()
        Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
        return buffer.getvalue(), ".png"
    ys, xs = np.mgrid[0:h, 0:w]
    light = rng.uniform(180, 235) + rng.uniform(-25, 25) * xs / w + rng.uniform(-25, 25) * ys / h
    lines = np.zeros_like(ink)
    spacing = int(h * rng.uniform(0.5, 0.9))
    for y in range(int(rng.integers(0, spacing)), h, spacing):
        lines[y : y + 1 + int(rng.integers(0, 2))] = rng.uniform(0.15, 0.35)
    page = light * (1 - lines) * (1 - ink) + rng.uniform(20, 70) * ink + rng.normal(0, rng.uniform(2, 5), ink.shape)
    photo = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
    photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2)))
    buffer = io.BytesIO()
    photo.convert("RGB").save(buffer, format="JPEG", quality=int(rng.integers(55, 90)))
    return buffer.getvalue(), ".jpg"


# ---------------------------------------------------------------- writers: one person's own hand
# A hand writes some digits its own way, always the same way: a meter's seven segments, a 1 with a long
# flag and a foot, a 4 with an open top, a 9 with a hooked tail. `scripts/make_writers.py` makes small
# labelled sets of a hand (for `digitrec tune`) and separate test sets of the same hand.


def _segments(*names: str) -> list[list[Point]]:
    """A seven-segment display's digit (a meter's), each lit segment one stroke with gaps at the corners."""
    x0, x1, y0, y1, y2, gap = 0.25, 0.75, 0.08, 0.5, 0.92, 0.04
    where = {"a": [(x0 + gap, y0), (x1 - gap, y0)], "b": [(x1, y0 + gap), (x1, y1 - gap)],
             "c": [(x1, y1 + gap), (x1, y2 - gap)], "d": [(x0 + gap, y2), (x1 - gap, y2)],
             "e": [(x0, y1 + gap), (x0, y2 - gap)], "f": [(x0, y0 + gap), (x0, y1 - gap)],
             "g": [(x0 + gap, y1), (x1 - gap, y1)]}
    return [where[n] for n in names]


SEGMENT_DIGITS = ["abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg"]

HANDS: dict[str, dict] = {
    # each: its own strokes for some digits (the rest from TEMPLATES), its slant, its pen (share of height)
    "meter": {"digits": {d: _segments(*SEGMENT_DIGITS[d]) for d in range(10)}, "shear": 0.0, "pen": 0.08},
    "engineer": {"digits": {
        0: [_ellipse(0.5, 0.5, 0.26, 0.42), [(0.72, 0.12), (0.28, 0.88)]],  # slashed zero
        1: [[(0.35, 0.08), (0.65, 0.08)], [(0.5, 0.08), (0.5, 0.92)], [(0.3, 0.92), (0.7, 0.92)]],  # an I
        2: [[(0.2, 0.12), (0.8, 0.12), (0.2, 0.9), (0.82, 0.9)], [(0.3, 0.5), (0.7, 0.5)]],  # a crossed Z
        4: [[(0.62, 0.06), (0.2, 0.62), (0.85, 0.62)], [(0.62, 0.06), (0.62, 0.94)]],
        7: [[(0.18, 0.12), (0.82, 0.12), (0.42, 0.92)], [(0.3, 0.52), (0.75, 0.52)]],
        9: [_ellipse(0.5, 0.28, 0.24, 0.2, 0, 360) + [(0.74, 0.28), (0.74, 0.94)]],
    }, "shear": 0.0, "pen": 0.07},
    "backhand": {"digits": {
        1: [[(0.12, 0.5), (0.6, 0.06), (0.6, 0.94)]],  # a flag as long as the stem is tall
        6: [[(0.35, 0.04), (0.3, 0.6), (0.38, 0.9), (0.62, 0.92), (0.7, 0.72), (0.55, 0.58), (0.32, 0.66)]],
        7: [[(0.25, 0.1), (0.75, 0.1), (0.55, 0.94)]],
        2: [[(0.25, 0.25), (0.5, 0.08), (0.72, 0.25), (0.25, 0.9), (0.5, 0.78), (0.8, 0.88)]],
    }, "shear": -0.4, "pen": 0.08},
    "quick": {"digits": {
        1: [[(0.25, 0.4), (0.62, 0.06), (0.55, 0.92)]],  # a long upstroke
        3: [[(0.2, 0.1), (0.8, 0.1), (0.45, 0.42), (0.78, 0.6), (0.7, 0.88), (0.4, 0.92), (0.2, 0.8)]],
        4: [[(0.25, 0.08), (0.25, 0.4), (0.45, 0.52), (0.75, 0.45)], [(0.75, 0.08), (0.72, 0.7), (0.6, 0.94)]],
        5: [[(0.78, 0.1), (0.4, 0.08), (0.25, 0.3), (0.7, 0.55), (0.7, 0.85), (0.4, 0.92), (0.2, 0.8)]],  # an S
        8: [_ellipse(0.5, 0.27, 0.2, 0.19, 90, 450), _ellipse(0.5, 0.72, 0.22, 0.2, -90, 270)],  # two rings
        9: [_ellipse(0.5, 0.28, 0.22, 0.19, 0, 360) + [(0.72, 0.3), (0.7, 0.78), (0.5, 0.94), (0.25, 0.82)]],
    }, "shear": 0.35, "pen": 0.06},
}


def hand_strokes(hand: str, digit: int, rng: np.random.Generator, size: int = 280) -> tuple[list[list[Point]], float]:
    """One digit in one hand: its strokes in pixel coordinates, with the small wobble of a person writing
    the same shape again (position, size, a few degrees, the pen's pressure), and the pen's width."""
    style = HANDS[hand]
    strokes = style["digits"].get(digit) or TEMPLATES[digit][0]
    angle = math.radians(rng.uniform(-8, 8))
    shear = style["shear"] + rng.uniform(-0.1, 0.1)
    height = rng.uniform(0.55, 0.8) * size
    width = height * rng.uniform(0.7, 1.0)
    cx = size / 2 + rng.uniform(-0.1, 0.1) * size
    cy = size / 2 + rng.uniform(-0.05, 0.05) * size
    paths = _pen_paths(strokes, rng, 0.025, shear, angle, (cx, cy), (width, height))
    return paths, style["pen"] * height * rng.uniform(0.85, 1.15)


def hand_digit(hand: str, digit: int, rng: np.random.Generator, size: int = 280) -> Image.Image:
    """One digit in one hand, dark on white like the drawing page."""
    return render_strokes(*hand_strokes(hand, digit, rng, size), size)
