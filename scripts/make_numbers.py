"""Labelled pictures of whole numbers, made only from MNIST *test* digits, for `digitrec read --score`.

Four groups of pictures, 1-8 digits each, with drift in size and baseline and a little slant:
- spaced:       gaps of 15-70 % of a digit's width;
- touching:     neighbours' boxes meeting or just overlapping (gap 0 to -8 %), so ink often touches;
- overlapping:  neighbours' boxes overlapping by 8-20 % of a digit's width;
- photographed: spaced or touching, dark ink on uneven paper with faint ruled lines, blurred, JPEG.

Writes OUT/<group>/<n>.png|jpg and OUT/numbers.csv (file,text,group). The reader's settings were tuned on a
bench made with `--split train` (training digits); the test-digit bench is only read to report.

    DIGITREC_DATA=../shared/data/mnist python scripts/make_numbers.py --out numbers --count 1000
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from digitrec import data
from digitrec.files import atomic_write_text

GROUPS = {"spaced": (0.15, 0.7), "touching": (-0.08, 0.0), "overlapping": (-0.2, -0.08)}


def _glyph(image28: np.ndarray, height: int) -> np.ndarray:
    ys, xs = np.nonzero(image28 > 30)
    crop = image28[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    width = max(2, round(crop.shape[1] * height / crop.shape[0]))
    return np.asarray(Image.fromarray(crop).resize((width, height), Image.Resampling.BICUBIC), np.float32) / 255


def compose(images: list[np.ndarray], gaps: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Light ink on black: the digits left to right, each a little larger or smaller and higher or lower."""
    base = int(rng.integers(40, 80))
    glyphs = [_glyph(im, max(16, int(base * rng.uniform(0.85, 1.15)))) for im in images]
    lefts, x = [], int(base * rng.uniform(0.3, 0.8))
    for g in glyphs:
        lefts.append(x)
        x += g.shape[1] + int(round(rng.uniform(*gaps) * g.shape[1]))
    width = x + int(base * rng.uniform(0.3, 0.8))
    height = int(base * 1.8)
    canvas = np.zeros((height, max(width, lefts[-1] + glyphs[-1].shape[1] + 4)), np.float32)
    for g, left in zip(glyphs, lefts, strict=True):
        top = int((height - g.shape[0]) / 2 + rng.uniform(-0.12, 0.12) * base)
        top = int(np.clip(top, 0, height - g.shape[0]))
        canvas[top : top + g.shape[0], left : left + g.shape[1]] = np.maximum(
            canvas[top : top + g.shape[0], left : left + g.shape[1]], g)
    slant = Image.fromarray((canvas * 255).astype(np.uint8)).transform(
        (canvas.shape[1], canvas.shape[0]), Image.Transform.AFFINE, (1, rng.uniform(-0.15, 0.15), 0, 0, 1, 0),
        resample=Image.Resampling.BILINEAR)
    return np.asarray(slant, np.float32) / 255


def on_paper(ink: np.ndarray, rng: np.random.Generator, photographed: bool) -> tuple[bytes, str]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--out", type=Path, default=Path("numbers"))
    parser.add_argument("--count", type=int, default=1000, help="pictures per group")
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--split", choices=["test", "train"], default="test",
                        help="train: a development bench from training digits, to tune the reader on")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    test = data.load(args.data, args.split)
    rows = ["file,text,group"]
    for group in (*GROUPS, "photographed"):
        (args.out / group).mkdir(parents=True, exist_ok=True)
        for n in range(args.count):
            length = int(rng.integers(1, 9))
            picks = rng.choice(len(test), length, replace=False)
            gaps = GROUPS[group] if group in GROUPS else GROUPS["spaced" if rng.random() < 0.5 else "touching"]
            ink = compose([test.x[i] for i in picks], gaps, rng)
            payload, suffix = on_paper(ink, rng, group == "photographed")
            name = f"{group}/{n:05d}{suffix}"
            (args.out / name).write_bytes(payload)
            rows.append(f"{name},{''.join(str(test.y[i]) for i in picks)},{group}")
    atomic_write_text(args.out / "numbers.csv", "\n".join(rows) + "\n")
    print(f"wrote {len(rows) - 1} pictures to {args.out}")


if __name__ == "__main__":
    main()
