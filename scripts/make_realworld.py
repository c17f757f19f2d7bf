"""Build test sets that do not look like MNIST, as labelled folders SET/<digit>/<file>:

- drawn:  pen strokes rendered to 280x280 PNGs (varied stroke width, size, position, slant);
- photos: MNIST *test* digits written on uneven paper, photographed: rotated, off-centre, blurred, JPEG;
- fonts:  digits from handwriting fonts (Debian: fonts-dkg-handwriting fonts-breip fonts-bwht
          fonts-femkeklaver fonts-comic-neue fonts-dancingscript), rotated, scaled, either polarity;
- small:  MNIST *test* digits shrunk to 8-14 px (other writers' small low-resolution digits), scaled up;
- scans, marker, ballpoint, pencil, ruled, boxed, framed: MNIST *test* digits as old low-resolution scans
  (8x8 counts of 0-16 scaled up), a thick felt-tip, a thin ball-point line, faint grainy pencil, a photo of
  ruled paper, a 16x16 box the digit is stretched to fill whatever its shape, as some collections store
  digits, and a digit written in a form's printed box (digitrec.data.synthetic's renderers; boxed and framed,
  added last, leave the others as they were).

None of them is used for training. Score a set with `digitrec evaluate --data realworld/photos`
(or `digitrec predict realworld/photos --json`).

    DIGITREC_DATA=../shared/data/mnist python scripts/make_realworld.py --out realworld

`--split validation` makes the same sets from the validation part of MNIST's *training* digits
(`--val-fraction`, `--split-seed`: the split a run holds out), for choosing settings without the test set.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from digitrec import data
from digitrec.data import synthetic

FONT_DIRS = ["/usr/share/fonts/truetype", "/usr/share/fonts/opentype"]
HANDWRITING = ("dkg", "breip", "bwht", "femke", "comic", "dancing")


def handwriting_fonts() -> list[Path]:
    found = []
    for root in FONT_DIRS:
        for path in sorted(Path(root).rglob("*")):
            if path.suffix.lower() in (".ttf", ".otf") and any(k in str(path).lower() for k in HANDWRITING):
                found.append(path)
    return found


def glyph_layer(font: ImageFont.FreeTypeFont, digit: int, size: int, rng: np.random.Generator,
                max_turn: float = 10) -> np.ndarray:
    """The digit in `font` at a random place in a `size` x `size` square, turned up to `max_turn` degrees
    either way: ink coverage 0-1."""
    layer = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(layer)
    box = draw.textbbox((0, 0), str(digit), font=font)
    w, h = box[2] - box[0], box[3] - box[1]
    x = rng.integers(0, max(1, size - w)) - box[0]
    y = rng.integers(0, max(1, size - h)) - box[1]
    draw.text((x, y), str(digit), fill=255, font=font)
    layer = layer.rotate(rng.uniform(-max_turn, max_turn), resample=Image.Resampling.BICUBIC)
    return np.asarray(layer, np.float32) / 255


def font_digit(font_path: Path, digit: int, rng: np.random.Generator) -> bytes:
    size = int(rng.integers(120, 320))
    font = ImageFont.truetype(str(font_path), int(size * rng.uniform(0.35, 0.7)))
    dark_on_light = rng.random() < 0.8
    paper, ink = (int(rng.integers(200, 255)), int(rng.integers(0, 60)))
    if not dark_on_light:
        paper, ink = ink, paper
    alpha = glyph_layer(font, digit, size, rng)
    page = paper * (1 - alpha) + ink * alpha + rng.normal(0, 4, alpha.shape)
    image = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0, 1)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def small_digit(image28: np.ndarray, rng: np.random.Generator) -> bytes:
    side = int(rng.integers(8, 15))
    small = Image.fromarray(image28).resize((side, side), Image.Resampling.BOX)
    big = small.resize((side * int(rng.integers(4, 8)),) * 2, Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        big = Image.fromarray(255 - np.asarray(big))
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    return buffer.getvalue()


def write(out: Path, name: str, index: int, digit: int, payload: bytes, suffix: str) -> None:
    folder = out / name / str(digit)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{index:05d}{suffix}").write_bytes(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--out", type=Path, default=Path("realworld"))
    parser.add_argument("--count", type=int, default=1000, help="images per set")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--split", choices=["test", "validation"], default="test")
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--split-seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.split == "test":
        test = data.load(args.data, "test")
    else:  # digits the run held out, never the test set
        _, test = data.load_for_training(args.data, args.val_fraction, args.split_seed)
    picks = rng.permutation(len(test))

    images, labels = synthetic.drawn_digits(args.count, seed=args.seed)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        write(args.out, "drawn", i, int(label), synthetic.png_bytes(image), ".png")
    for i, j in enumerate(picks[: args.count]):
        write(args.out, "photos", i, int(test.y[j]), synthetic.photo_of(test.x[j], rng), ".jpg")
    for i, j in enumerate(picks[args.count : 2 * args.count]):
        write(args.out, "small", i, int(test.y[j]), small_digit(test.x[j], rng), ".png")
    fonts = handwriting_fonts()
    if fonts:
        for i in range(args.count):
            digit = i % 10
            write(args.out, "fonts", i, digit, font_digit(fonts[(i // 10) % len(fonts)], digit, rng), ".png")
    for k, (name, render) in enumerate(synthetic.RENDERERS.items()):
        chosen = np.roll(picks, (k + 2) * args.count)[: args.count]
        for i, j in enumerate(chosen):
            payload = render(test.x[j], rng)
            write(args.out, name, i, int(test.y[j]), payload, ".jpg" if payload[:2] == b"\xff\xd8" else ".png")
    sets = ["drawn", "photos", "small", *synthetic.RENDERERS] + (["fonts"] if fonts else [])
    print(f"wrote {', '.join(sets)} to {args.out}" + (f" ({len(fonts)} fonts)" if fonts else ""))


if __name__ == "__main__":
    main()
