"""Probes: one condition pushed past the range of the project's sets at a time, to find faults. Each reads
pictures made from MNIST validation digits (held out by the run's split, never trained on), the handwriting
fonts' glyphs, or a validation bench of numbers, and prints per condition how many were read right (a
refused picture counts as wrong), how many were refused, and the commonest confusions (true, read).
Probes are for finding faults, not sets to choose on.

    python scripts/probe.py --list
    DIGITREC_DATA=MNIST python scripts/probe.py tilt [--model RUN] [--count N]
    python scripts/probe.py number-shadows BENCH [--count N]     # BENCH: make_numbers.py --split validation

Every probe shares one harness (inputs, model, reading, the table): a new condition is a function that
yields (name, pictures) and one line in PROBES.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageFont
from scipy import ndimage

from digitrec import data
from digitrec.core.errors import DigitrecError
from digitrec.data import synthetic
from digitrec.imaging.decode import open_image
from digitrec.imaging.fit import to_mnist
from digitrec.inference.engine import OnnxPredictor, Predictor, load_predictor

Conditions = Iterator[tuple[str, Iterable]]  # (condition, one picture per input: PIL image or encoded bytes)


# ---------------------------------------------------------------- the harness


def probe_read(pictures: Iterable, labels: np.ndarray,
               predictor: Predictor | OnnxPredictor) -> tuple[np.ndarray, np.ndarray, int]:
    """Each picture through `to_mnist` and the model: the labels of those read, what they were
    read as, and how many were refused."""
    read, truth, refused = [], [], 0
    for picture, label in zip(pictures, labels, strict=True):
        try:
            image = open_image(picture) if isinstance(picture, bytes) else picture
            read.append(to_mnist(image))
            truth.append(label)
        except DigitrecError:
            refused += 1
    guess = predictor.probabilities(np.stack(read)).argmax(1) if read else np.array([], int)
    return np.array(truth, int), guess, refused


def report_condition(name: str, pictures: Iterable, labels: np.ndarray, predictor: Predictor | OnnxPredictor,
                     width: int = 44, confusions: int = 4, per_digit: bool = False) -> None:
    """One line of the table: the condition, the share of all `labels` read right, the refusals, the
    commonest confusions; `per_digit` adds each digit's share on a second line."""
    truth, guess, refused = probe_read(pictures, labels, predictor)
    wrong = guess != truth
    pairs = Counter(zip(truth[wrong].tolist(), guess[wrong].tolist(), strict=True)).most_common(confusions)
    print(f"{name:{width}s} {(len(truth) - wrong.sum()) / len(labels):7.2%} {refused:8d}  {pairs}", flush=True)
    if per_digit:
        print("    per digit:", " ".join(f"{d}:{(guess[truth == d] == d).mean():.0%}" for d in range(10)
                                       if (truth == d).any()))


def report_numbers(name: str, payloads: Iterable[bytes], texts: Sequence[str],
                   predictor: Predictor | OnnxPredictor, width: int = 44) -> None:
    """One line for whole numbers: strings read right (a refusal counts as wrong) and refusals."""
    right = refused = 0
    for payload, text in zip(payloads, texts, strict=True):
        try:
            right += predictor.read(payload).text == text
        except DigitrecError:
            refused += 1
    print(f"{name:{width}s} {right / len(texts):7.2%} {refused:8d}", flush=True)


def validation_digits(data_path: str | None, count: int, val_fraction: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` validation digits of split seed 0 (the bundled recipe's split) and their labels."""
    _, val = data.load_for_training(data.resolve_data_path(data_path), val_fraction, 0)
    return val.x[:count], val.y[:count]


def probe_setup(description: str, count: int) -> tuple[np.ndarray, np.ndarray, Predictor | OnnxPredictor]:
    """For a probe script of its own: --model, --data, --count and --val-fraction parsed, then the validation
    digits, their labels and the model."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="run folder (default: the bundled model)")
    parser.add_argument("--data", help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--count", type=int, default=count)
    parser.add_argument("--val-fraction", type=float, default=0.05)
    args = parser.parse_args()
    return (*validation_digits(args.data, args.count, args.val_fraction), load_predictor(args.model))


# ---------------------------------------------------------------- tilt


def tilts(images: np.ndarray) -> Conditions:
    """Dark ink on white paper at 112 px, turned by -A and +A degrees in turn (every second digit the other way)."""
    signs = np.where(np.arange(len(images)) % 2, 1, -1)
    for angle in (0, 10, 15, 20, 25, 30):
        yield f"turned {angle} degrees", (_tilted(image, sign * angle) for image, sign in zip(images, signs,
                                                                                              strict=True))


def _tilted(image: np.ndarray, degrees: float, side: int = 112) -> Image.Image:
    paper = Image.fromarray(255 - image).resize((side, side), Image.Resampling.BICUBIC)
    return paper.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=255)


# ---------------------------------------------------------------- tight crops

CROP_SIDE = 16


def tight_crops(images: np.ndarray) -> Conditions:
    """Cropped to the ink into a 16x16 box, fitted (aspect kept) or stretched to fill it, grey or cut to black
    and white, scaled up 4x: how several collections store digits (the `boxed` set is the stretched style at
    other scales)."""
    styles = {"fitted, grey": (False, False), "stretched, grey": (True, False),
              "stretched, black and white": (True, True)}
    for style, (stretch, binary) in styles.items():
        yield style, (tight_box(image, stretch, binary) for image in images)


def tight_box(image: np.ndarray, stretch: bool, binary: bool) -> Image.Image:
    crop = Image.fromarray(synthetic.crop_to_ink(image))
    if stretch:
        box = crop.resize((CROP_SIDE, CROP_SIDE), Image.Resampling.BILINEAR)
    else:
        scale = CROP_SIDE / max(crop.size)
        small = crop.resize((max(1, round(crop.size[0] * scale)), max(1, round(crop.size[1] * scale))),
                            Image.Resampling.BILINEAR)
        box = Image.new("L", (CROP_SIDE, CROP_SIDE), 0)
        box.paste(small, ((CROP_SIDE - small.size[0]) // 2, (CROP_SIDE - small.size[1]) // 2))
    pixels = np.asarray(box)
    if binary:
        pixels = np.where(pixels > 100, 255, 0).astype(np.uint8)
    return Image.fromarray(255 - pixels).resize((CROP_SIDE * 4, CROP_SIDE * 4), Image.Resampling.NEAREST)


# ---------------------------------------------------------------- photos

PHOTO_CONDITIONS = {
    "as the photos set": {},
    "small digit (8-15 %) in 600 px": {"size": 600, "share": (0.08, 0.15)},
    "heavy blur (3-5 px)": {"blur": (3, 5)},
    "JPEG quality 8-15": {"quality": (8, 15)},
    "lighting gradient +-90": {"gradient": 90},
    "shadow's edge, hard, 70 darker": {"shadow": 70},
    "shadow's edge over 10 %, 70 darker": {"shadow": 70, "penumbra": 0.1},
    "shadow's edge over 25 %, 70 darker": {"shadow": 70, "penumbra": 0.25},
    "shadow's edge, hard, 40 darker": {"shadow": 40},
    "low contrast (ink 120-150, paper 170-200)": {"ink": (120, 150), "paper": (170, 200)},
    "heavy noise (15-25)": {"grain": (15, 25)},
    "blue ink on a yellow note": {"note": True},
    "dim light (paper 60-100, ink 10-30)": {"paper": (60, 100), "ink": (10, 30)},
}


def photos(images: np.ndarray) -> Conditions:
    """Dark ink on paper photographed as JPEG in harder light and worse cameras than the `photos` set, one
    condition at a time: a small digit in a large photo, blur, JPEG 8-15, a lighting gradient, a shadow's
    edge (hard or soft), low contrast, noise, blue ink on a yellow note, dim light."""
    for name, settings in PHOTO_CONDITIONS.items():
        rng = np.random.default_rng(0)
        yield name, (photo(image, rng, **settings) for image in images)


def photo(image: np.ndarray, rng: np.random.Generator, size: int = 300, share: tuple = (0.3, 0.7),
          blur: tuple = (0, 1.5), quality: tuple = (50, 90), gradient: float = 30, shadow: float = 0,
          penumbra: float = 0.0, ink: tuple = (20, 70), paper: tuple = (170, 235), grain: tuple = (2, 7),
          note: bool = False) -> bytes:
    """The digit on paper as a JPEG photo, as `synthetic.photo_of` makes it, with every range a keyword."""
    side = int(size * rng.uniform(*share))
    digit = Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC)
    digit = digit.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BICUBIC, expand=True)
    layer = np.zeros((size, size), np.float32)
    top, left = (int(rng.integers(0, max(1, size - extent))) for extent in (digit.size[1], digit.size[0]))
    layer[top : top + digit.size[1], left : left + digit.size[0]] = \
        np.asarray(digit, np.float32)[: size - top, : size - left] / 255
    ys, xs = np.mgrid[0:size, 0:size] / size
    light = rng.uniform(*paper) + rng.uniform(-gradient, gradient) * xs + rng.uniform(-gradient, gradient) * ys
    if shadow:  # a straight edge at any angle and place, the far side darker
        angle = rng.uniform(0, np.pi)
        across = np.cos(angle) * (xs - 0.5) + np.sin(angle) * (ys - 0.5) - rng.uniform(-0.3, 0.3)
        light = light - shadow * (np.clip(0.5 + across / penumbra, 0, 1) if penumbra else across > 0)
    page = (light + rng.normal(0, rng.uniform(*grain), light.shape)) * (1 - layer) + rng.uniform(*ink) * layer
    gray = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(*blur)))
    rgb = np.asarray(gray, np.float32)[..., None] * np.array([1.0, 0.97, 0.9])
    if note:
        inked = layer[..., None]
        rgb = rgb / 255 * np.array([255, 240, 140]) * (1 - inked) + np.array([40, 50, 150]) * inked
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buffer, format="JPEG",
                                                               quality=int(rng.integers(*quality)))
    return buffer.getvalue()


# ---------------------------------------------------------------- small scans


def small_scans(images: np.ndarray) -> Conditions:
    """An old scanner's 8x8 counts (0-16 ink pixels per 4x4 block of a 32x32 bitmap, `synthetic.scan_counts`)
    kept at 8x8 or scaled to 16-256 px by nearest, bilinear, bicubic or Lanczos scaling, dark on light (the
    `scans` set is these counts at 32-128 px)."""
    scans = [Image.fromarray((255 - synthetic.scan_counts(image) * 255 / 16).astype(np.uint8)) for image in images]
    scalings = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
                "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}
    for side in (8, 16, 28, 32, 64, 256):
        for name, scaling in scalings.items():
            if side > 8 or name == "nearest":  # 8x8 is kept as stored
                yield f"{side} px, {name}", (scan.resize((side, side), scaling) for scan in scans)


# ---------------------------------------------------------------- a comb field


def comb(images: np.ndarray) -> Conditions:
    """A cell of a form's comb field (a row of cells open at the top: a printed baseline under the digits, a
    short tick between each two cells) cut out as its own picture, photographed on paper: the digit alone,
    with the baseline, with baseline and ticks (a fifth to two fifths of the cell high)."""
    for name, baseline, ticks in (("alone", False, False), ("baseline", True, False),
                                  ("baseline and ticks", True, True)):
        rng = np.random.default_rng(7)
        yield name, [comb_cell(image, rng, baseline, ticks) for image in images]


def comb_cell(image28: np.ndarray, rng: np.random.Generator, baseline: bool, ticks: bool) -> Image.Image:
    size = int(rng.integers(80, 200))
    line = max(1, round(size * rng.uniform(0.01, 0.025)))
    margin = int(size * rng.uniform(0, 0.06))  # how far outside the ticks the cell was cut
    base = size - int(size * rng.uniform(0.04, 0.12))  # the baseline's top row
    ink = np.zeros((size, size), np.float32)
    digit_px = int((base - line) * rng.uniform(0.7, 0.95))
    top = int(rng.uniform(0.02, 0.08) * size)
    left = int(np.clip(size / 2 - digit_px / 2 + rng.uniform(-0.08, 0.08) * size, 0, size - digit_px))
    top = min(top, base - digit_px)
    ink[top : top + digit_px, left : left + digit_px] = synthetic._ink_mask(image28, digit_px)
    printed = np.zeros_like(ink)
    if baseline:
        printed[base : base + line, :] = 1
    if ticks:
        tick = int(size * rng.uniform(0.2, 0.4))
        printed[base - tick : base + line, margin : margin + line] = 1
        printed[base - tick : base + line, size - margin - line : size - margin] = 1
    ink = np.maximum(ink, printed * rng.uniform(0.6, 1.0))
    page = synthetic._on_paper(ink, rng, rng.uniform(200, 250), rng.uniform(20, 80), 3)
    return Image.fromarray(page).rotate(rng.uniform(-1.5, 1.5), resample=Image.Resampling.BICUBIC,
                                        fillcolor=int(np.median(page)))


# ---------------------------------------------------------------- outlines

OUTLINE_SIDE = 112


def outlines(images: np.ndarray) -> Conditions:
    """Digits made broad (grown by 2-4 px at 112 px) and drawn as their outline only, a pen 2-3 px wide, dark
    on light paper ("bubble" digits, outline fonts); beside them the same broad digits drawn solid."""
    masks = broad_digits(images)
    for name, which in (("solid", 0), ("outlined", 1)):
        rng = np.random.default_rng(4)
        yield name, (_mask_on_paper(pair[which], rng) for pair in masks)


def _disk(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius


def broad_digits(images: np.ndarray, seed: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each digit's broad stroke and its outline, as masks of OUTLINE_SIDE x OUTLINE_SIDE."""
    rng = np.random.default_rng(seed)
    out = []
    for image in images:
        big = np.asarray(Image.fromarray(image).resize((OUTLINE_SIDE, OUTLINE_SIDE), Image.Resampling.BICUBIC)) > 100
        broad = ndimage.binary_dilation(big, _disk(int(rng.integers(2, 5))))
        out.append((broad, broad & ~ndimage.binary_erosion(broad, _disk(int(rng.integers(2, 4))))))
    return out


def _mask_on_paper(mask: np.ndarray, rng: np.random.Generator) -> Image.Image:
    page = np.full((OUTLINE_SIDE + 48, OUTLINE_SIDE + 48), 235.0)
    page[24 : 24 + OUTLINE_SIDE, 24 : 24 + OUTLINE_SIDE] -= 200 * mask
    return Image.fromarray(np.clip(page + rng.normal(0, 3, page.shape), 0, 255).astype(np.uint8))


# ---------------------------------------------------------------- font photos


def font_photos(indices: np.ndarray) -> Conditions:
    """The `fonts` set's handwriting fonts, each glyph drawn once (size, place, turn) and shown three ways: on
    clean paper as in the `fonts` set, photographed as the `photos` set's digits are, and photographed turned
    twice as far (up to 20 degrees): what a camera costs over the glyph itself."""
    from make_realworld import handwriting_fonts

    fonts = handwriting_fonts()
    for name, turn, show in (("clean paper, turned up to 10 deg", 10, _on_clean_paper),
                             ("photographed, turned up to 10 deg", 10, _photographed),
                             ("photographed, turned up to 20 deg", 20, _photographed)):
        paper = np.random.default_rng(11)
        yield name, [show(_glyph(fonts, int(i), turn), paper) for i in indices]


def _on_clean_paper(alpha: np.ndarray, rng: np.random.Generator) -> Image.Image:
    page = rng.uniform(200, 255) * (1 - alpha) + rng.uniform(0, 60) * alpha + rng.normal(0, 4, alpha.shape)
    image = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1)))


def _photographed(alpha: np.ndarray, rng: np.random.Generator) -> Image.Image:
    return Image.open(io.BytesIO(synthetic.photograph(alpha, rng)))


def _glyph(fonts: list, index: int, max_turn: float) -> np.ndarray:
    """The index-th digit's glyph: the same size, place and (scaled) turn whatever `max_turn` is."""
    from make_realworld import glyph_layer

    rng = np.random.default_rng([7, index])
    size = int(rng.integers(120, 320))
    font = ImageFont.truetype(str(fonts[(index // 10) % len(fonts)]), int(size * rng.uniform(0.35, 0.7)))
    return glyph_layer(font, index % 10, size, rng, max_turn)


# ---------------------------------------------------------------- shadows across numbers


def number_shadows(files: list[Path]) -> Conditions:
    """`read` on photographed numbers of a validation bench, each darkened beyond a shadow's straight edge at
    a random angle and place (light falls on ink and paper alike)."""
    for name, dark, penumbra in (("no shadow", 0.0, 0.0), ("hard edge, 20 % darker", 0.2, 0.0),
                                 ("hard edge, 33 % darker", 0.33, 0.0),
                                 ("33 % darker over 10 % of the picture", 0.33, 0.1)):
        rng = np.random.default_rng(0)
        yield name, (_in_shadow(path, rng, dark, penumbra) for path in files)


def _in_shadow(payload: Path, rng: np.random.Generator, dark: float, penumbra: float) -> bytes:
    rgb = np.asarray(Image.open(payload).convert("RGB"), np.float32)
    h, w = rgb.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, np.pi)
    across = (np.cos(angle) * (xs - w / 2) + np.sin(angle) * (ys - h / 2)) / max(h, w) - rng.uniform(-0.2, 0.2)
    beyond = np.clip(0.5 + across / penumbra, 0, 1) if penumbra else (across > 0).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb * (1 - dark * beyond)[..., None], 0, 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=85)
    return buffer.getvalue()


# ---------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Probe:
    conditions: Callable[..., Conditions]
    count: int  # inputs by default
    inputs: str = "validation"  # validation digits, font glyphs (ten a font in turn) or a bench's numbers
    per_digit: bool = False

    @property
    def summary(self) -> str:
        return " ".join((self.conditions.__doc__ or "").split())


PROBES = {
    "tilt": Probe(tilts, 1500),
    "tight-crops": Probe(tight_crops, 1500, per_digit=True),
    "photos": Probe(photos, 600),
    "small-scans": Probe(small_scans, 1000),
    "comb": Probe(comb, 600),
    "outlines": Probe(outlines, 600),
    "font-photos": Probe(font_photos, 1050, inputs="fonts"),
    "number-shadows": Probe(number_shadows, 200, inputs="bench"),
}


def inputs(probe: Probe, args: argparse.Namespace) -> tuple[Sequence, Sequence]:
    """What the probe draws from and the true answers: digits and labels, glyph indices and digits, or
    photographed numbers' files and texts."""
    if probe.inputs == "validation":
        return validation_digits(args.data, args.count, args.val_fraction)
    if probe.inputs == "fonts":
        from make_realworld import handwriting_fonts

        if not handwriting_fonts():
            raise SystemExit("no handwriting fonts installed (see make_realworld.py's docstring for the packages)")
        indices = np.arange(args.count)
        return indices, indices % 10
    with open(args.bench / "numbers.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["group"] == "photographed"][: args.count]
    return [args.bench / r["file"] for r in rows], [r["text"] for r in rows]


def run(name: str, args: argparse.Namespace) -> None:
    probe = PROBES[name]
    items, answers = inputs(probe, args)
    predictor = load_predictor(args.model)
    print(f"{name}: {len(answers)} {'numbers' if probe.inputs == 'bench' else 'digits'}")
    confusions = "" if probe.inputs == "bench" else "  commonest confusions (true, read)"
    print(f"{'condition':44s} {'read':>7} {'refused':>8}{confusions}")
    for condition, pictures in probe.conditions(items):
        if probe.inputs == "bench":
            report_numbers(condition, pictures, answers, predictor)
        else:
            report_condition(condition, pictures, np.asarray(answers), predictor, per_digit=probe.per_digit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="the probes and what each pushes")
    names = parser.add_subparsers(dest="probe", metavar="PROBE")
    for name, probe in PROBES.items():
        sub = names.add_parser(name, help=probe.summary.split(":")[0][:90], description=probe.summary)
        if probe.inputs == "bench":
            sub.add_argument("bench", type=Path, help="a bench of numbers (make_numbers.py --split validation)")
        sub.add_argument("--model", help="run folder (default: the bundled model)")
        sub.add_argument("--count", "--limit", type=int, default=probe.count,
                         help=f"inputs to read (default {probe.count:,})")
        if probe.inputs == "validation":
            sub.add_argument("--data", help="MNIST folder (default $DIGITREC_DATA)")
            sub.add_argument("--val-fraction", type=float, default=0.05, help="the run's split (default 0.05)")
    args = parser.parse_args(argv)
    if args.list or not args.probe:
        for name, probe in PROBES.items():
            print(f"{name:15s} {probe.summary}")
        return 0
    if args.count < 1:
        parser.error("--count must be 1 or more")
    run(args.probe, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
