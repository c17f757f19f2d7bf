"""Synthetic pages of handwritten fields: the page bench (`scripts/make_pages.py`) and the page reader's tests.

A page is a form up to A4 (150-300 dpi) in one of three layouts:
- list:  printed labels ("Amount:", "Postal code", ...) each followed on its line by a handwritten value,
         some written on a printed underline (or a dotted leader), sometimes two label-value pairs on a line;
- table: a printed grid with a printed header row (and sometimes printed row names), a handwritten number
         in most cells;
- boxes: rows of printed boxes (separate squares, joined boxes or a comb), one handwritten digit a box,
         each row one field, with a printed label before it.
Printed words, underlines, grid lines and box lines are never fields. The page is then scanned (clean paper,
a slight turn, grain, PNG) or photographed (uneven light, a shadow, a turn up to 2 degrees, a little
perspective, blur, JPEG); paper specks on both.

Handwriting comes from a `Hand`: MNIST-style digits (light ink on black, any size) redrawn with the page's pen
(the digit's centre line drawn with a pen of 0.3-0.9 mm at the page's dpi, so a large digit is not a marker's
stroke), or a handwriting font (validation and test pages only). Signs (. , - / :) come from
`digitrec.data.signs` where it exists; without it values are digits only.

Ground truth: `Page.fields` in reading order (top to bottom, left to right; a table row by row), each with its
text and the box [x0, y0, x1, y1] of its ink in page pixels (after the page's turn and perspective).
Everything is seeded: the same seed and hand give the same page.
"""

from __future__ import annotations

import functools
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage

from digitrec.core.files import atomic_write_text
from digitrec.data import synthetic

LAYOUTS = ("list", "table", "boxes")
LOOKS = ("scanned", "photographed")
SIGNS = ".,-/:"
A4_MM = (210.0, 297.0)
DPIS = (150, 200, 240, 300)
DIGIT_HEIGHT_300 = (40, 120)  # handwritten digit heights in pixels at 300 dpi
MAX_GLYPH_ASPECT = 4  # no MNIST digit's ink is wider than 2.5 times its height
LABEL_PX = (20, 40)  # printed label font sizes in pixels
FONT_DIRS = ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype")
# printed fonts, each with its bold
PRINTED_FONTS = (("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"), ("DejaVuSansCondensed.ttf", "DejaVuSansCondensed-Bold.ttf"),
                 ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"),
                 ("LiberationSansNarrow-Regular.ttf", "LiberationSansNarrow-Bold.ttf"),
                 ("LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf"))
HANDWRITING_FONTS = ("dkg", "breip", "bwht", "femke", "comic", "dancing")

Box = list[int]


# ---------------------------------------------------------------- what a page holds


@dataclass
class Field:
    """One handwritten field: its text, the box of its ink in page pixels, its layout and kind (list: the
    value's kind, e.g. amount, date, code; table: cell; boxes: the boxes' style, squares, joined or comb)."""

    text: str
    box: Box
    layout: str
    kind: str

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Page:
    pixels: np.ndarray  # uint8, dark ink on light paper: [H, W, 3] photographed, [H, W] scanned (grey)
    fields: list[Field]
    layout: str
    look: str  # scanned | photographed
    dpi: int
    printed: list[Box] = field(default_factory=list)  # boxes of printed words (never fields)
    ink: np.ndarray | None = None  # the handwriting's coverage 0-1 after the page's geometry (keep_layers=True)

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    def encode(self, rng: np.random.Generator | None = None, fmt: str | None = None) -> tuple[bytes, str]:
        """The page as a file, (bytes, suffix): JPEG by default (a photo at quality 60-90, a grey scan at 85-95:
        a grainy A4 page as PNG is 5-10 MB), PNG with fmt="png"."""
        buffer = io.BytesIO()
        image = Image.fromarray(self.pixels)
        if fmt == "png":
            image.save(buffer, format="PNG", compress_level=3)
            return buffer.getvalue(), ".png"
        rng = rng or np.random.default_rng(self.pixels.shape[0])
        quality = int(rng.integers(60, 91) if self.look == "photographed" else rng.integers(85, 96))
        image.save(buffer, format="JPEG", quality=quality)
        return buffer.getvalue(), ".jpg"

    def truth(self, file: str = "") -> dict:
        """The page's record in pages.json."""
        return {"file": file, "layout": self.layout, "look": self.look, "dpi": self.dpi,
                "size": list(self.size), "fields": [f.to_json() for f in self.fields], "printed": self.printed}


# ---------------------------------------------------------------- hands: where handwritten glyphs come from


def _crop(coverage: np.ndarray, above: float = 0.12) -> np.ndarray:
    ys, xs = np.nonzero(coverage > above)
    if not len(ys):
        return coverage[:1, :1] * 0
    return coverage[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: the one-pixel centre line of a binary shape."""
    img = np.pad(mask, 1).astype(np.uint8)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            c = img[1:-1, 1:-1]
            p2, p3, p4, p5 = img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:], img[2:, 2:]
            p6, p7, p8, p9 = img[2:, 1:-1], img[2:, :-2], img[1:-1, :-2], img[:-2, :-2]
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            count = sum(p.astype(np.int16) for p in ring[:-1])
            turns = sum(((a == 0) & (b == 1)).astype(np.int16) for a, b in zip(ring[:-1], ring[1:], strict=True))
            # step 0 removes south-east boundary points, step 1 north-west ones
            one, two = (p2 * p4 * p6, p4 * p6 * p8) if step == 0 else (p2 * p4 * p8, p2 * p6 * p8)
            side = (one == 0) & (two == 0)
            remove = (c == 1) & (count >= 2) & (count <= 6) & (turns == 1) & side
            if remove.any():
                c[remove] = 0
                changed = True
    return img[1:-1, 1:-1].astype(bool)


def repen(coverage: np.ndarray, pen: float) -> np.ndarray:
    """A glyph's ink (0-1) redrawn along its centre line with a round pen `pen` pixels wide, soft-edged."""
    pad = int(math.ceil(pen / 2)) + 2
    mask = np.pad(coverage > 0.45, pad)
    if not mask.any():
        return np.pad(coverage, pad)
    skeleton = _thin(mask)
    distance = ndimage.distance_transform_edt(~skeleton)
    return np.clip(pen / 2 + 0.5 - distance, 0, 1).astype(np.float32)


class Hand:
    """Writes characters: `glyph(char, height, pen, rng)` -> ink coverage (float 0-1, cropped to the ink)
    whose digits are `height` pixels tall."""

    signs = False  # whether it can write SIGNS

    def start_field(self, rng: np.random.Generator) -> None:
        """Called before each field (a font hand picks its font here)."""

    def glyph(self, char: str, height: int, pen: float, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


class DigitHand(Hand):
    """Digits from a set of MNIST-style images (light ink on black, any size) and their labels; each
    character a random image of that digit, redrawn with the page's pen. Signs from `digitrec.data.signs`
    where it exists."""

    def __init__(self, images: np.ndarray | list[np.ndarray], labels: np.ndarray):
        self.images = images
        labels = np.asarray(labels)
        self.by_digit = {d: np.flatnonzero(labels == d) for d in range(10)}
        missing = [d for d, rows in self.by_digit.items() if not len(rows)]
        if missing:
            raise ValueError(f"no images of digits {missing}")
        self.sign_maker = _sign_maker()
        self.signs = self.sign_maker is not None

    def glyph(self, char: str, height: int, pen: float, rng: np.random.Generator) -> np.ndarray:
        if not char.isdigit():
            return _sign_glyph(self.sign_maker, char, height, pen, rng)
        rows = self.by_digit[int(char)]
        return pen_glyph(self.images[int(rows[rng.integers(len(rows))])], height, pen)


def pen_glyph(image: np.ndarray, height: int, pen: float) -> np.ndarray:
    """An MNIST-style digit (light ink on black, any size) redrawn along its centre line with a round pen `pen`
    pixels wide, `height` pixels tall: ink coverage 0-1, cropped to the ink."""
    image = np.asarray(image, np.float32)
    crop = _crop(image / max(float(image.max()), 1.0), 0.12)
    glyph = _repen_at(crop, height, pen)
    if glyph.shape[0] < 0.95 * height:  # the centre line ends half MNIST's stroke inside the ink: grow back
        # at most threefold: a flat stroke (a dash, a smear) has no height to grow back to
        glyph = _repen_at(crop, min(round(height * height / glyph.shape[0]), 3 * height), pen)
    return glyph


def pen_view(image28: np.ndarray, rng: np.random.Generator) -> bytes:
    """A training digit as a page's writer leaves it (the `pen` kind of rendered view): redrawn with one round
    pen at a page's size and pen (DIGIT_HEIGHT_300 and 0.3-0.9 mm at 150-300 dpi), on paper photographed or
    scanned. MNIST's scanner never drew such strokes: the bundled network reads its 3,000 held-out digits so
    drawn at 98.43-98.63 % against 99.47 % as they are (decision 0020)."""
    scale = rng.uniform(0.5, 1.0)
    height = max(16, round(rng.uniform(*DIGIT_HEIGHT_300) * scale))
    pen = max(1.5, rng.uniform(0.3, 0.9) / 25.4 * 300 * scale)
    glyph = pen_glyph(image28, height, pen)
    side = int(max(glyph.shape) * rng.uniform(1.3, 2.0)) + 4
    top, left = (int(rng.integers(0, max(1, side - n))) for n in glyph.shape)
    ink = np.zeros((side, side), np.float32)
    ink[top : top + glyph.shape[0], left : left + glyph.shape[1]] = glyph[: side - top, : side - left]
    if rng.random() < 0.5:
        return synthetic.photograph(ink, rng)
    paper, tone = rng.uniform(215, 250), rng.uniform(10, 80)
    scan = paper * (1 - ink) + tone * ink + rng.normal(0, rng.uniform(0, 4), ink.shape)
    return synthetic.png_bytes(Image.fromarray(np.clip(scan, 0, 255).astype(np.uint8)))


def _repen_at(crop: np.ndarray, height: int, pen: float) -> np.ndarray:
    """A digit's ink scaled to `height` rows and redrawn with the pen, cropped; at most MAX_GLYPH_ASPECT times as
    wide as high (a flat stroke scaled to a digit's height would be thousands of pixels wide)."""
    width = max(2, min(round(crop.shape[1] * height / crop.shape[0]), MAX_GLYPH_ASPECT * height))
    big = Image.fromarray((crop * 255).astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    return _crop(repen(np.asarray(big, np.float32) / 255, pen), 0.25)


def _sign_maker():
    """The project's sign renderer `digitrec.data.signs.render_sign`, where it has landed (None: values are
    digits only)."""
    try:
        from digitrec.data import signs  # noqa: PLC0415  (optional: written alongside this module)
    except ImportError:
        return None
    return getattr(signs, "render_sign", None)


def _sign_glyph(maker, char: str, height: int, pen: float, rng: np.random.Generator) -> np.ndarray:
    """A sign drawn by the sign renderer, redrawn with the page's pen (a dot pressed a little wider), placed
    at its height on the line."""
    if maker is None:
        raise ValueError(f"this hand writes digits only, not {char!r}")
    ink, top = maker(char, height, rng)
    pad = int(math.ceil(pen / 2)) + 2
    ink = np.asarray(ink, np.float32)
    redrawn = _dots(ink, pen * rng.uniform(1.3, 1.8), pad) if char in ".:" else repen(ink, pen)
    rows = np.flatnonzero((redrawn > 0.12).any(axis=1))
    cols = np.flatnonzero((redrawn > 0.12).any(axis=0))
    crop = redrawn[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return _Placed(crop, -(top - pad + int(rows[0])))


def _dots(ink: np.ndarray, pen: float, pad: int) -> np.ndarray:
    """Dots redrawn as round touches of the pen `pen` wide around each dot's centre."""
    labels, count = ndimage.label(ink > 0.3)
    out = np.zeros((ink.shape[0] + 2 * pad, ink.shape[1] + 2 * pad), np.float32)
    ys, xs = np.mgrid[0 : out.shape[0], 0 : out.shape[1]]
    for cy, cx in ndimage.center_of_mass(ink, labels, range(1, count + 1)):
        distance = np.hypot(ys - cy - pad, xs - cx - pad)
        np.maximum(out, np.clip(pen / 2 + 0.5 - distance, 0, 1), out=out)
    return out


def handwriting_fonts() -> list[Path]:
    """Installed handwriting fonts (Debian: fonts-dkg-handwriting fonts-breip fonts-bwht fonts-femkeklaver
    fonts-comic-neue fonts-dancingscript). Validation and test pages only, never training."""
    found = []
    for root in FONT_DIRS:
        if Path(root).is_dir():
            found += [p for p in sorted(Path(root).rglob("*")) if p.suffix.lower() in (".ttf", ".otf")
                      and any(k in str(p).lower() for k in HANDWRITING_FONTS)]
    return found


class FontHand(Hand):
    """Characters in a handwriting font, one font a field (another person's hand)."""

    signs = True

    def __init__(self, fonts: list[Path]):
        if not fonts:
            raise ValueError("no handwriting fonts")
        self.fonts = [Path(f) for f in fonts]
        self.font = self.fonts[0]

    def start_field(self, rng: np.random.Generator) -> None:
        self.font = self.fonts[int(rng.integers(len(self.fonts)))]

    def glyph(self, char: str, height: int, pen: float, rng: np.random.Generator) -> np.ndarray:
        font = _truetype(str(self.font), max(8, int(height * 1.4)))
        digit_box = font.getbbox("0")
        scale = height / max(1, digit_box[3] - digit_box[1])
        font = _truetype(str(self.font), max(8, int(height * 1.4 * scale)))
        box = font.getbbox(char)
        layer = Image.new("L", (max(box[2], 1) + 8, int(height * 2.2) + 8), 0)
        # Drawn with the digits' top at row 4, so a sign keeps its height on the line (a dot low, a minus mid).
        top = font.getbbox("0")[1]
        ImageDraw.Draw(layer).text((4, 4 - top), char, fill=255, font=font)
        coverage = np.clip(np.asarray(layer, np.float32) / 255 * 1.6, 0, 1)  # a light font's thin strokes as ink
        if char.isdigit():
            return _crop(coverage)
        rows = np.flatnonzero((coverage > 0.12).any(axis=1))
        cols = np.flatnonzero((coverage > 0.12).any(axis=0))
        return _Placed(coverage[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], 4 - int(rows[0]))


class _Placed(np.ndarray):
    """A sign's coverage whose row `digit_top` is the digits' top row (so it sits at its height on the line)."""

    def __new__(cls, array: np.ndarray, digit_top: int):
        obj = np.asarray(array, np.float32).view(cls)
        obj.digit_top = digit_top
        return obj

    def __array_finalize__(self, obj):
        self.digit_top = getattr(obj, "digit_top", 0)


# ---------------------------------------------------------------- values people write


def _digits(rng: np.random.Generator, low: int, high: int, lead_zero: bool = False) -> str:
    n = int(rng.integers(low, high + 1))
    text = "".join(str(d) for d in rng.integers(0, 10, n))
    if not lead_zero and n > 1 and text[0] == "0":
        text = str(rng.integers(1, 10)) + text[1:]
    return text


def _amount(rng: np.random.Generator, signs: bool) -> str:
    if not signs:
        return _digits(rng, 1, 6)
    pick = rng.random()
    if pick < 0.35:
        return f"{_digits(rng, 1, 4)}.{_digits(rng, 2, 2, True)}"
    if pick < 0.55:
        return f"{_digits(rng, 1, 1)},{_digits(rng, 3, 3, True)}"
    if pick < 0.7:
        return "-" + _digits(rng, 1, 3)
    if pick < 0.8:
        return f"{_digits(rng, 1, 3)},{_digits(rng, 2, 2, True)}"
    return _digits(rng, 1, 5)


def _date(rng: np.random.Generator, signs: bool) -> str:
    d, m, y = int(rng.integers(1, 29)), int(rng.integers(1, 13)), int(rng.integers(1950, 2031))
    if not signs:
        return f"{d:02d}{m:02d}{y % 100:02d}" if rng.random() < 0.5 else str(y)
    yy = f"{y % 100:02d}"
    styles = [f"{d:02d}/{m:02d}/{y}", f"{d:02d}.{m:02d}.{yy}", f"{y}-{m:02d}-{d:02d}", f"{d}/{m}/{yy}"]
    return styles[int(rng.integers(len(styles)))]


def _time(rng: np.random.Generator, signs: bool) -> str:
    h, m = int(rng.integers(0, 24)), int(rng.integers(0, 60))
    return f"{h:02d}:{m:02d}" if signs else f"{h:02d}{m:02d}"


def _reading(rng: np.random.Generator, signs: bool) -> str:
    if signs and rng.random() < 0.5:
        sign = "-" if rng.random() < 0.3 else ""
        return f"{sign}{_digits(rng, 1, 4)}.{_digits(rng, 1, 2, True)}"
    return _digits(rng, 2, 6)


VALUE_KINDS = {
    "amount": (("Amount:", "Total", "Price", "Subtotal:", "Balance", "Amount due", "Paid", "Fee:", "Deposit"), _amount),
    "date": (("Date", "Date:", "Date of birth", "Delivery date", "Due:", "Issued", "Valid until"), _date),
    "time": (("Time:", "Arrival", "Departure", "Start time", "Finish"), _time),
    "code": (("Postal code", "Invoice no.", "Order no.", "Customer ID", "Account", "Ref.", "Member no.", "ZIP:"),
             lambda rng, signs: _digits(rng, 4, 8, True)),
    "count": (("Quantity", "Qty:", "Pieces", "Age", "Persons", "Room", "Seat", "Items", "Pages"),
              lambda rng, signs: _digits(rng, 1, 3)),
    "reading": (("Meter reading", "Reading (kWh)", "Temperature", "Weight (kg)", "Height (cm)", "Mileage"), _reading),
}
TITLES = ("Order form", "Meter reading", "Registration", "INVOICE", "Delivery note", "Expense claim", "Survey",
          "Score sheet", "Customer details", "Application form", "Inventory", "Time sheet")
NOTES = ("Please write clearly in black or blue ink.", "Office use only", "Write one digit in each box.",
         "Fill in all fields.", "Signature", "Thank you!", "See reverse for terms and conditions.")
HEADERS = ("Qty", "Price", "Total", "Score", "Points", "Count", "Weight", "Height", "Reading", "Value", "Amount",
           "Units", "Hours", "Result", "Code", "Room", "Stock", "Sold", "Min", "Max", "Paid", "Due")
ROW_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "North", "South", "East", "West", "Anna", "Ben",
             "Carla", "David", "Eve", "Apples", "Pears", "Plums", "Team A", "Team B", "Item")
COMB_LABELS = ("Postal code", "Account number", "Customer no.", "Phone", "Date of birth", "Policy no.", "PIN",
               "Tax ID", "Sort code", "Meter no.", "Card no.", "Reference")


# ---------------------------------------------------------------- drawing


@dataclass
class _Sheet:
    """A page being drawn: printed ink (an L image) and handwriting coverage, page pixels."""

    width: int
    height: int
    dpi: int
    hand: Hand
    rng: np.random.Generator
    pen: float
    signs: bool
    fonts: list[tuple[Path, Path]]
    printed: Image.Image = None
    ink: np.ndarray = None
    fields: list[Field] = field(default_factory=list)
    words: list[Box] = field(default_factory=list)

    def __post_init__(self):
        self.printed = Image.new("L", (self.width, self.height), 0)
        self.draw = ImageDraw.Draw(self.printed)
        self.ink = np.zeros((self.height, self.width), np.float32)
        self.font_path = self.fonts[int(self.rng.integers(len(self.fonts)))] if self.fonts else None
        self.line_px = max(1, round(self.rng.uniform(1.0, 3.0) * self.dpi / 300))

    @property
    def scale(self) -> float:
        return self.dpi / 300

    def font(self, size: float, bold: bool = False) -> ImageFont.ImageFont:
        if self.font_path is None:
            return ImageFont.load_default(size=int(size))
        return _truetype(str(self.font_path[1 if bold else 0]), int(size))

    def word(self, text: str, x: float, y: float, size: float, bold: bool = False, anchor: str = "ls") -> Box:
        """Printed text with its baseline's left end (anchor ls) at (x, y); returns its box."""
        font = self.font(size, bold)
        box = [int(v) for v in self.draw.textbbox((x, y), text, font=font, anchor=anchor)]
        self.draw.text((x, y), text, fill=255, font=font, anchor=anchor)
        self.words.append(box)
        return box

    def line(self, x0: float, y0: float, x1: float, y1: float, width: int | None = None) -> None:
        self.draw.line([(x0, y0), (x1, y1)], fill=255, width=width or self.line_px)

    def rectangle(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.draw.rectangle([x0, y0, x1, y1], outline=255, width=self.line_px)

    def write(self, make_text, height: int, x: float, baseline: float, layout: str, kind: str, room: float,
              centre: float | None = None, within: tuple[float, float] | None = None) -> Field | None:
        """Handwrites a value from `make_text()` (tried a few times for one whose ink is at most `room` pixels
        wide) with its digits `height` pixels tall, its first ink at x (or centred on `centre`) and its digits'
        bottoms about on `baseline`, kept between the rows `within`; records the field. None: nothing fitted."""
        for _ in range(8):
            text = make_text()
            coverage = _write_line(self.hand, text, height, self.pen * self.rng.uniform(0.9, 1.1), self.rng)
            h, w = coverage.shape
            if w <= room and (within is None or h <= within[1] - within[0]):
                break
        else:
            return None
        left = int(round(centre - w / 2 if centre is not None else x))
        top = int(round(baseline - coverage.digit_bottom))
        if within is not None:
            top = int(np.clip(top, within[0], within[1] - h))
        if left < 0 or top < 0 or left + w > self.width or top + h > self.height:
            return None
        region = self.ink[top : top + h, left : left + w]
        np.maximum(region, coverage, out=region)
        ys, xs = np.nonzero(coverage > 0.25)
        box = [left + int(xs.min()), top + int(ys.min()), left + int(xs.max()) + 1, top + int(ys.max()) + 1]
        made = Field(text, box, layout, kind)
        self.fields.append(made)
        return made


class _Line(np.ndarray):
    """A written line's coverage and the row its digits' bottoms sit on."""

    def __new__(cls, array: np.ndarray, digit_bottom: float):
        obj = np.asarray(array, np.float32).view(cls)
        obj.digit_bottom = digit_bottom
        return obj

    def __array_finalize__(self, obj):
        self.digit_bottom = getattr(obj, "digit_bottom", 0.0)


def _char_place(char: str, glyph: np.ndarray, height: int) -> float:
    """Where a glyph's top sits below the digits' top, in pixels: a digit at the top, a sign at its height."""
    if char.isdigit():
        return 0.0
    if hasattr(glyph, "digit_top"):
        return -float(glyph.digit_top)
    top = getattr(glyph, "top", None)  # a sign renderer may say where its top sits (a share of the digit height)
    if top is not None:
        return float(top) * height
    return {".": height - glyph.shape[0], ",": height - 0.5 * glyph.shape[0], "-": 0.5 * height - glyph.shape[0] / 2,
            ":": 0.5 * height - glyph.shape[0] / 2}.get(char, (height - glyph.shape[0]) / 2)


def _write_line(hand: Hand, text: str, height: int, pen: float, rng: np.random.Generator,
                new_field: bool = True) -> _Line:
    """One field's handwriting: each character a little larger or smaller and higher or lower, gaps of
    10-45 % of a digit's width, the baseline drifting up to 2 degrees, slanted."""
    if new_field:
        hand.start_field(rng)
    glyphs, tops = [], []
    for char in text:
        size = max(8, int(height * rng.uniform(0.9, 1.1))) if char.isdigit() else height
        glyph = hand.glyph(char, size, pen, rng)
        glyphs.append(np.asarray(glyph, np.float32))
        tops.append(_char_place(char, glyph, height) + rng.uniform(-0.06, 0.06) * height + (height - size))
    slope = math.tan(math.radians(rng.uniform(-2, 2)))
    lefts, x = [], 0.0
    for n, g in enumerate(glyphs):
        lefts.append(x)
        narrow = not text[n].isdigit() or (n + 1 < len(text) and not text[n + 1].isdigit())
        x += g.shape[1] + height * 0.55 * (rng.uniform(0.15, 0.35) if narrow else rng.uniform(0.1, 0.45))
    width = int(x + 2 * pen + height)
    tops = [t + slope * left for t, left in zip(tops, lefts, strict=True)]
    lift = -min(0.0, *tops) + pen + 2
    canvas_h = int(max(t + lift + g.shape[0] for t, g in zip(tops, glyphs, strict=True)) + pen + 2)
    margin = int(0.25 * canvas_h + pen + 2)  # room for the slant
    canvas = np.zeros((canvas_h, width + 2 * margin), np.float32)
    for g, top, left in zip(glyphs, tops, lefts, strict=True):
        y, xx = int(round(top + lift)), int(round(left + margin))
        region = canvas[y : y + g.shape[0], xx : xx + g.shape[1]]
        np.maximum(region, g[: region.shape[0], : region.shape[1]], out=region)
    bottom = lift + height + slope * lefts[-1] / 2  # the digits' bottom row at the line's middle
    shear = rng.uniform(-0.22, 0.22)
    sheared = Image.fromarray((canvas * 255).astype(np.uint8)).transform(
        canvas.shape[::-1], Image.Transform.AFFINE, (1, shear, -shear * bottom, 0, 1, 0),
        resample=Image.Resampling.BILINEAR)
    sheared = np.asarray(sheared, np.float32) / 255
    ys, xs = np.nonzero(sheared > 0.02)
    crop = sheared[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return _Line(crop, bottom - ys.min())


# ---------------------------------------------------------------- layouts


def _digit_height(sheet: _Sheet, low: float = 1.0, high: float = 1.0) -> int:
    lo, hi = DIGIT_HEIGHT_300
    return max(14, int(sheet.rng.uniform(lo * low, hi * high) * sheet.scale))


def _label_size(sheet: _Sheet) -> float:
    """Printed text 20-40 px up to 200 dpi, as large in points (8-14 pt) on a finer page."""
    return sheet.rng.uniform(*LABEL_PX) * max(1.0, sheet.dpi / 200)


def _header(sheet: _Sheet, margin: float) -> float:
    """A printed title (and sometimes a note below it); returns the y below them."""
    rng = sheet.rng
    size = _label_size(sheet) * rng.uniform(1.2, 1.6)
    y = margin + size
    sheet.word(str(rng.choice(TITLES)), margin, y, size, bold=True)
    y += size * 0.6
    if rng.random() < 0.5:
        note = _label_size(sheet) * 0.8
        y += note * 1.4
        sheet.word(str(rng.choice(NOTES)), margin, y, note)
    return y + size * rng.uniform(0.8, 1.6)


def _value_text(sheet: _Sheet, kind: str) -> str:
    return VALUE_KINDS[kind][1](sheet.rng, sheet.signs)


def _layout_list(sheet: _Sheet, count: int | None) -> None:
    rng, w, h = sheet.rng, sheet.width, sheet.height
    margin = w * rng.uniform(0.06, 0.1)
    y = _header(sheet, margin)
    digit_h = _digit_height(sheet, 1.0, 0.8)
    label_size = _label_size(sheet)
    underline = rng.choice(["none", "line", "dots"], p=[0.45, 0.4, 0.15])
    pitch = max(digit_h * rng.uniform(1.7, 2.4), label_size * 2.2)
    rows = int((h - margin - y) // pitch)
    wanted = count if count is not None else int(rng.integers(4, 11))
    two_columns = rng.random() < 0.3 and count is None
    aligned = rng.random() < 0.5
    font = sheet.font(label_size)
    tab = max(font.getlength(label) for labels, _ in VALUE_KINDS.values() for label in labels) + label_size
    kinds = list(VALUE_KINDS)
    written = 0
    for row in range(rows):
        if written >= wanted:
            break
        baseline = y + pitch * row + pitch * 0.75
        pairs = 2 if two_columns and rng.random() < 0.6 and wanted - written >= 2 else 1
        span = (w - 2 * margin) / pairs
        for pair in range(pairs):
            x0 = margin + span * pair
            kind = str(rng.choice(kinds))
            label = str(rng.choice(VALUE_KINDS[kind][0]))
            box = sheet.word(label, x0, baseline, label_size)
            value_x = max(box[2] + label_size * rng.uniform(0.5, 1.2), x0 + tab if aligned else 0)
            end = x0 + span - label_size
            if underline == "line":
                sheet.line(value_x - label_size * 0.3, baseline + 2, end, baseline + 2)
            elif underline == "dots":
                step = label_size * 0.35
                for dx in np.arange(value_x - label_size * 0.3, end, step):
                    sheet.draw.ellipse([dx, baseline - 1, dx + sheet.line_px + 1, baseline + sheet.line_px],
                                       fill=255)
            if rng.random() < 0.08 and written + 1 < wanted:  # a label left blank: no field
                continue
            height = int(digit_h * rng.uniform(0.85, 1.15))
            start = value_x + rng.uniform(0, 0.4) * label_size
            line_top = baseline - pitch * 0.75 + 2
            made = sheet.write(lambda k=kind: _value_text(sheet, k), height, start,
                               baseline - rng.uniform(0.03, 0.15) * height, "list", kind, room=end - start,
                               within=(line_top, line_top + pitch - 4))
            written += made is not None


def _layout_table(sheet: _Sheet, count: int | None) -> None:
    rng, w, h = sheet.rng, sheet.width, sheet.height
    margin = w * rng.uniform(0.06, 0.1)
    y = _header(sheet, margin)
    label_size = _label_size(sheet)
    cols = int(rng.integers(2, 5))
    rows = int(rng.integers(4, 9))
    if count is not None:
        cols = min(4, max(2, int(math.ceil(count / 4))))
        rows = int(math.ceil(count / cols))
    names = rng.random() < 0.5
    digit_h = _digit_height(sheet, 1.0, 0.75)
    cell_h = max(digit_h * rng.uniform(1.5, 2.1), label_size * 1.8)
    while y + cell_h * (rows + 1) > h - margin and digit_h > 16:
        digit_h = int(digit_h * 0.85)
        cell_h = max(digit_h * 1.5, label_size * 1.8)
    width = (w - 2 * margin) * rng.uniform(0.6, 1.0)
    name_w = label_size * 5 if names else 0
    col_w = (width - name_w) / cols
    digit_h = int(min(digit_h, col_w / 4))
    x_edges = [margin] + [margin + name_w + col_w * c for c in range(0 if names else 1, cols + 1)]
    y_edges = [y + cell_h * r for r in range(rows + 2)]
    grid = rng.random() < 0.7
    for ye in y_edges if grid else (y_edges[0], y_edges[1], y_edges[-1]):
        sheet.line(x_edges[0], ye, x_edges[-1], ye)
    if grid:
        for xe in x_edges:
            sheet.line(xe, y_edges[0], xe, y_edges[-1])
    else:
        for ye in y_edges[2:-1]:
            sheet.line(x_edges[0], ye, x_edges[-1], ye, width=max(1, sheet.line_px - 1))
    headers = list(rng.choice(HEADERS, cols, replace=False))
    pad = label_size * 0.4
    for c, text in enumerate(headers):
        sheet.word(str(text), x_edges[c + (1 if names else 0)] + pad, y_edges[1] - cell_h * 0.3, label_size,
                   bold=rng.random() < 0.5)
    first = int(rng.integers(len(ROW_NAMES)))
    written = 0
    for r in range(rows):
        top, bottom = y_edges[r + 1], y_edges[r + 2]
        if names:
            sheet.word(ROW_NAMES[(first + r) % len(ROW_NAMES)], x_edges[0] + pad, bottom - cell_h * 0.3, label_size)
        for c in range(cols):
            if count is not None and written >= count:
                return
            if count is None and rng.random() < 0.15:
                continue
            left = x_edges[c + (1 if names else 0)]
            height = int(digit_h * rng.uniform(0.85, 1.1))
            baseline = bottom - (cell_h - height) / 2 + rng.uniform(-0.08, 0.08) * height
            inside = (top + sheet.line_px + 3, bottom - sheet.line_px - 3)
            indent = pad + rng.uniform(0, 0.3) * height
            centred = rng.random() < 0.5
            made = sheet.write(lambda: _cell_text(sheet), height, left + indent, baseline, "table", "cell",
                               room=col_w - 2 * pad if centred else col_w - indent - pad,
                               centre=left + col_w / 2 if centred else None, within=inside)
            written += made is not None


def _cell_text(sheet: _Sheet) -> str:
    rng = sheet.rng
    if sheet.signs and rng.random() < 0.3:
        return _amount(rng, True) if rng.random() < 0.7 else _reading(rng, True)
    return _digits(rng, 1, 5)


def _layout_boxes(sheet: _Sheet, count: int | None) -> None:
    rng, w, h = sheet.rng, sheet.width, sheet.height
    margin = w * rng.uniform(0.06, 0.1)
    y = _header(sheet, margin)
    label_size = _label_size(sheet)
    style = rng.choice(["squares", "joined", "comb"], p=[0.35, 0.45, 0.2])
    side = rng.uniform(72, 130) * sheet.scale  # digits 0.6-0.85 of the inside: about 40-110 px at 300 dpi
    font = sheet.font(label_size)
    start = margin + max(font.getlength(t) for t in COMB_LABELS) + label_size
    gap = side * rng.uniform(0.12, 0.3) if style == "squares" else 0.0
    most = int((w - margin - start + gap) // (side + gap))
    if most < 4:
        side = (w - margin - start) / 4.5
        gap = side * 0.15 if style == "squares" else 0.0
        most = int((w - margin - start + gap) // (side + gap))
    pitch = side * rng.uniform(1.6, 2.2)
    wanted = count if count is not None else int(rng.integers(3, 9))
    rows = min(wanted, int((h - margin - y) // pitch))
    for row in range(rows):
        top = y + pitch * row + (pitch - side) / 2
        digits = int(rng.integers(4, min(most, 12) + 1))
        boxes = min(most, digits + (int(rng.integers(1, 3)) if rng.random() < 0.2 else 0))
        sheet.word(str(rng.choice(COMB_LABELS)), margin, top + side * 0.5 + label_size * 0.35, label_size)
        lefts = [start + (side + gap) * b for b in range(boxes)]
        for b, left in enumerate(lefts):
            if style == "comb":
                sheet.line(left, top + side, left + side, top + side)
                sheet.line(left, top + side * rng.uniform(0.55, 0.7), left, top + side)
                if b == boxes - 1:
                    sheet.line(left + side, top + side * 0.6, left + side, top + side)
            else:
                sheet.rectangle(left, top, left + side, top + side)
        text = _digits(rng, digits, digits, True)
        _write_comb(sheet, text, lefts, top, side, str(style))


def _write_comb(sheet: _Sheet, text: str, lefts: list[float], top: float, side: float, style: str) -> None:
    """One digit in each box, inside its lines, as one field."""
    rng = sheet.rng
    inside = side - 2 * sheet.line_px - 2
    boxes = []
    sheet.hand.start_field(rng)
    for char, left in zip(text, lefts, strict=False):
        height = int(inside * rng.uniform(0.6, 0.85))
        coverage = _write_line(sheet.hand, char, height, sheet.pen * rng.uniform(0.9, 1.1), rng, new_field=False)
        ch, cw = coverage.shape
        if ch > inside or cw > inside:
            factor = inside / max(ch, cw)
            coverage = np.asarray(Image.fromarray((np.asarray(coverage) * 255).astype(np.uint8)).resize(
                (max(1, int(cw * factor)), max(1, int(ch * factor))), Image.Resampling.BILINEAR), np.float32) / 255
            ch, cw = coverage.shape
        room_x, room_y = inside - cw, inside - ch
        x = int(left + sheet.line_px + 1 + room_x * rng.uniform(0.3, 0.7))
        y = int(top + sheet.line_px + 1 + room_y * rng.uniform(0.3, 0.7))
        region = sheet.ink[y : y + ch, x : x + cw]
        np.maximum(region, coverage, out=region)
        ys, xs = np.nonzero(coverage > 0.25)
        boxes.append([x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1])
    box = [int(min(b[0] for b in boxes)), int(min(b[1] for b in boxes)), int(max(b[2] for b in boxes)),
           int(max(b[3] for b in boxes))]
    sheet.fields.append(Field(text, box, "boxes", style))


LAYOUT_DRAWERS = {"list": _layout_list, "table": _layout_table, "boxes": _layout_boxes}


# ---------------------------------------------------------------- paper, light and camera


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 projective map taking the four points `src` to `dst`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return np.append(np.linalg.solve(np.array(rows, float), np.array(rhs, float)), 1).reshape(3, 3)


def _map_box(matrix: np.ndarray, box: Box, width: int, height: int) -> Box:
    corners = np.array([[box[0], box[1], 1], [box[2], box[1], 1], [box[0], box[3], 1], [box[2], box[3], 1]], float)
    mapped = corners @ matrix.T
    xy = mapped[:, :2] / mapped[:, 2:]
    x0, y0 = np.floor(xy.min(axis=0))
    x1, y1 = np.ceil(xy.max(axis=0))
    return [int(max(0, x0)), int(max(0, y0)), int(min(width, x1)), int(min(height, y1))]


def _geometry(rng: np.random.Generator, look: str, width: int, height: int) -> np.ndarray:
    """Page -> picture: a turn (scans up to 1 degree, photos up to 2), for photos the page a little smaller in
    the frame and a little perspective."""
    turn = math.radians(rng.uniform(-1, 1) if look == "scanned" else rng.uniform(-2, 2))
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], float)
    centre = np.array([width / 2, height / 2])
    shrink = 1.0 if look == "scanned" else rng.uniform(0.93, 0.99)
    rot = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    moved = (corners - centre) @ rot.T * shrink + centre
    if look == "photographed" and rng.random() < 0.6:
        moved += rng.uniform(-0.012, 0.012, moved.shape) * [width, height]
    return _homography(corners, moved)


def _warp(image: Image.Image, matrix: np.ndarray, fill) -> Image.Image:
    inverse = np.linalg.inv(matrix)
    inverse /= inverse[2, 2]
    return image.transform(image.size, Image.Transform.PERSPECTIVE, tuple(inverse.flatten()[:8]),
                           resample=Image.Resampling.BILINEAR, fillcolor=fill)


def _light(rng: np.random.Generator, look: str, width: int, height: int) -> Image.Image:
    """Illumination (255: full light) over the page: scans even, photos uneven with a soft shadow across a part."""
    small_w, small_h = max(8, width // 16), max(8, height // 16)
    ys, xs = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    xs, ys = xs / small_w, ys / small_h
    if look == "scanned":
        light = np.full((small_h, small_w), rng.uniform(0.93, 1.0), np.float32)
    else:
        light = rng.uniform(0.75, 0.95) + rng.uniform(-0.15, 0.15) * xs + rng.uniform(-0.15, 0.15) * ys
        light -= rng.uniform(0, 0.2) * ((xs - 0.5) ** 2 + (ys - 0.5) ** 2)  # vignetting
        if rng.random() < 0.6:  # a shadow's soft edge across the page (a hand, a phone)
            angle = rng.uniform(0, 2 * math.pi)
            d = (xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle) - rng.uniform(0.1, 0.45)
            soft = rng.uniform(0.02, 0.12)
            light *= 1 - rng.uniform(0.2, 0.45) / (1 + np.exp(-d / soft))
    small = Image.fromarray(np.clip(light * 255, 0, 255).astype(np.uint8))
    return small.resize((width, height), Image.Resampling.BILINEAR)


def _specks(sheet: _Sheet) -> None:
    """Paper noise: small dark specks away from the fields."""
    rng = sheet.rng
    keep_out = []
    for b in (f.box for f in sheet.fields):
        pad = b[3] - b[1]  # a speck beside a value would be a sign of it
        keep_out.append([b[0] - pad, b[1] - pad // 2, b[2] + pad, b[3] + pad // 2])
    for _ in range(int(rng.integers(0, 40))):
        x, y = rng.uniform(0, sheet.width), rng.uniform(0, sheet.height)
        if any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in keep_out):
            continue
        r = rng.uniform(0.5, 2.5) * max(1.0, sheet.scale * 1.5)
        sheet.draw.ellipse([x - r, y - r, x + r, y + r], fill=int(rng.integers(90, 256)))


def _rgb(values) -> tuple[int, int, int]:
    return tuple(int(v) for v in values)


def _finish(sheet: _Sheet, look: str, keep_layers: bool) -> tuple[np.ndarray, list[Field], list[Box],
                                                                  np.ndarray | None]:
    """Ink on paper, then the scanner or camera: turn, light, grain, blur. Composed in PIL (C loops): an A4
    page at 300 dpi in about a second."""
    rng, w, h = sheet.rng, sheet.width, sheet.height
    matrix = _geometry(rng, look, w, h)
    blue = rng.random() < 0.5
    ink = np.array([rng.uniform(15, 50), rng.uniform(25, 60), rng.uniform(90, 150)]) if blue else \
        np.array([rng.uniform(10, 40), rng.uniform(15, 45), rng.uniform(20, 60)])
    printed = rng.uniform(15, 45)
    if look == "scanned":  # a grey scan of near-white paper
        mode, paper, desk = "L", int(rng.uniform(236, 252)), 255
        printed, ink = int(printed), int(ink @ [0.3, 0.6, 0.1])
    else:
        mode = "RGB"
        paper = _rgb(np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.88, 0.98)]) * rng.uniform(225, 252))
        printed, ink, desk = _rgb([printed] * 3), _rgb(ink), _rgb(rng.uniform(40, 120, 3))
    page = Image.new(mode, (w, h), paper)
    page.paste(printed, mask=sheet.printed)
    ink_layer = Image.fromarray(np.round(sheet.ink * 255).astype(np.uint8))
    page.paste(ink, mask=ink_layer)
    page = _warp(page, matrix, desk)
    light = _light(rng, look, w, h)
    page = ImageChops.multiply(page, light if mode == "L" else Image.merge("RGB", (light,) * 3))
    grain = rng.uniform(1.5, 4) if look == "scanned" else rng.uniform(2, 6)
    noise = rng.normal(128, grain, ((h + 1) // 2, (w + 1) // 2)).clip(0, 255).astype(np.uint8)
    noise = Image.fromarray(noise).resize((w, h), Image.Resampling.NEAREST)
    page = ImageChops.add(page, noise if mode == "L" else Image.merge("RGB", (noise,) * 3), offset=-128)
    blur = rng.uniform(0, 0.6) if look == "scanned" else rng.uniform(0.3, 1.5)
    if blur > 0.2:
        page = page.filter(ImageFilter.GaussianBlur(blur * max(1.0, sheet.scale * 1.5)))
    fields = [Field(f.text, _map_box(matrix, f.box, w, h), f.layout, f.kind) for f in sheet.fields]
    words = [_map_box(matrix, b, w, h) for b in sheet.words]
    warped = None
    if keep_layers:
        warped = np.asarray(_warp(ink_layer, matrix, 0), np.float32) / 255
    return np.asarray(page), fields, words, warped


def page_size(dpi: int) -> tuple[int, int]:
    """A4's width and height in pixels at `dpi`."""
    return round(A4_MM[0] / 25.4 * dpi), round(A4_MM[1] / 25.4 * dpi)


def render_page(layout: str, hand: Hand, seed: int, *, look: str | None = None, dpi: int | None = None,
                size: tuple[int, int] | None = None, fields: int | None = None, keep_layers: bool = False) -> Page:
    """One synthetic page. `layout`: list, table or boxes; `look`: scanned or photographed (default: either, by
    the seed); `dpi`: 150-300 (default one of DPIS); `size`: (width, height) in pixels instead of A4 at `dpi`;
    `fields`: how many fields (default: a random number for the layout; fewer where the page has no room);
    `keep_layers`: keep the handwriting's coverage on the page (Page.ink) for tests."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {LAYOUTS}")
    rng = np.random.default_rng(seed)
    look = look or str(rng.choice(LOOKS))
    if look not in LOOKS:
        raise ValueError(f"look {look!r} is not one of {LOOKS}")
    dpi = int(dpi or rng.choice(DPIS))
    width, height = size or page_size(dpi)
    if size is not None:
        dpi = max(100, round(width / (A4_MM[0] / 25.4)))
    pen = max(1.5, rng.uniform(0.3, 0.9) / 25.4 * dpi)
    fonts = _printed_fonts()
    sheet = _Sheet(width, height, dpi, hand, rng, pen, hand.signs, fonts)
    LAYOUT_DRAWERS[layout](sheet, fields)
    _specks(sheet)
    pixels, found, words, ink = _finish(sheet, look, keep_layers)
    return Page(pixels, found, layout, look, dpi, words, ink)


@functools.lru_cache(maxsize=1)
def _printed_fonts() -> list[tuple[Path, Path]]:
    """The installed printed fonts of PRINTED_FONTS, (regular, bold) each."""
    where = {p.name: p for root in FONT_DIRS if Path(root).is_dir() for p in Path(root).rglob("*.ttf")}
    return [(where[r], where[b]) for r, b in PRINTED_FONTS if r in where and b in where]


@functools.lru_cache(maxsize=256)
def _truetype(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


# ---------------------------------------------------------------- a bench folder

BENCH_JSON = "pages.json"


def page_seed(seed: int, *parts: int) -> int:
    """A page's own seed from the bench's seed and the page's place in it."""
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0])


def write_bench(out: Path, hands: list[tuple[str, Hand, int]], seed: int, layouts: tuple[str, ...] = LAYOUTS,
                **options) -> list[dict]:
    """Pages of each layout for each (name, hand, pages a layout): the first hand's are OUT/<layout>/<n>.jpg,
    another's OUT/<layout>/<name>-<n>.jpg; and OUT/pages.json: {"seed", "pages": [page.truth(file) + "hand"]}.
    `options` go to `render_page`. Returns the pages' records."""
    records = []
    for h, (name, hand, count) in enumerate(hands):
        for li, layout in enumerate(layouts):
            (Path(out) / layout).mkdir(parents=True, exist_ok=True)
            for n in range(count):
                own = page_seed(seed, h, li, n)
                page = render_page(layout, hand, own, **options)
                payload, suffix = page.encode(np.random.default_rng(own))
                file = f"{layout}/{n:05d}{suffix}" if h == 0 else f"{layout}/{name}-{n:05d}{suffix}"
                (Path(out) / file).write_bytes(payload)
                records.append({**page.truth(file), "hand": name})
    atomic_write_text(Path(out) / BENCH_JSON, json.dumps({"seed": seed, "pages": records}, indent=1) + "\n")
    return records


def read_bench(folder: Path) -> list[dict]:
    """A bench folder's pages.json records."""
    return json.loads((Path(folder) / BENCH_JSON).read_text())["pages"]
