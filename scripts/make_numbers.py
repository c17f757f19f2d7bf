"""Labelled pictures of whole numbers, made only from MNIST *test* digits, for `digitrec read --score`.

Four groups of pictures, 1-8 digits each, with drift in size and baseline and a little slant:
- spaced:       gaps of 15-70 % of a digit's width;
- touching:     neighbours' boxes meeting or just overlapping (gap 0 to -8 %), so ink often touches;
- overlapping:  neighbours' boxes overlapping by 8-20 % of a digit's width;
- photographed: spaced or touching, dark ink on uneven paper with faint ruled lines, blurred, JPEG.

And a fifth, `fonts-val` or `fonts-test` (`--fonts`), numbers written in handwriting fonts from Debian's font
packages (fonts-bwht fonts-dkg-handwriting fonts-femkeklaver fonts-comic-neue fonts-dancingscript fonts-breip),
standing in for other people's hands. Fonts are never training data: they are split by family into a
validation half (FONTS_VALIDATION: Because We ..., DkgHandwriting, femkeklaver) to choose on and a test half
(FONTS_TEST: Comic Neue, Dancing Script, Breip) only to report; a face in neither list is not used, and a half
with none of its faces installed is skipped with a one-line note. The fonts group draws from its own random
stream, so the other four groups are the same with or without it.

Writes OUT/<group>/<n>.png|jpg and OUT/numbers.csv (file,text,group). The reader's settings were tuned on a
bench made with `--split train` (training digits); the test-digit bench is only read to report.

    DIGITREC_DATA=../shared/data/mnist python scripts/make_numbers.py --out numbers --count 1000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digitrec import data
from digitrec.core.files import atomic_write_text
from digitrec.data import synthetic
from digitrec.reading.line import line_split

GROUPS = {"spaced": (0.15, 0.7), "touching": (-0.08, 0.0), "overlapping": (-0.2, -0.08)}

FONT_DIRS = ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype")
# Handwriting fonts split by family, so that no face of a test family is chosen on: validation 3 families,
# 11 faces; test 3 families, 10 faces. File names, not paths: the same split wherever the packages install.
FONTS_VALIDATION = (
    "BecauseWeBuild-Regular.otf", "BecauseWeConnect-Regular.otf", "BecauseWeCreate-Regular.otf",
    "BecauseWeLearn-Regular.otf", "BecauseWeMentor-Regular.otf", "BecauseWeOrganize-Regular.otf",  # fonts-bwht
    "dkg.ttf", "dkgBd.ttf", "dkgBI.ttf", "dkgIt.ttf",  # fonts-dkg-handwriting
    "femkeklaver.ttf",  # fonts-femkeklaver
)
FONTS_TEST = (
    "ComicNeue-Regular.otf", "ComicNeue-Bold.otf", "ComicNeue-Italic.otf", "ComicNeue-BoldItalic.otf",
    "ComicNeue-Light.otf", "ComicNeue-LightItalic.otf",  # fonts-comic-neue
    "DancingScript-Regular.otf", "DancingScript-Bold.otf",  # fonts-dancingscript
    "Breip.ttf", "breipfont.ttf",  # fonts-breip
)
FONT_HALVES = {"val": FONTS_VALIDATION, "test": FONTS_TEST}


def handwriting_fonts(half: str) -> list[Path]:
    """The installed faces of one half of the split (`val` or `test`), in the list's order."""
    found = {p.name: p for root in FONT_DIRS for p in sorted(Path(root).rglob("*")) if p.name in FONT_HALVES[half]}
    return [found[name] for name in FONT_HALVES[half] if name in found]


def default_fonts(split: str) -> str:
    """The font half that goes with a digit split: the test half only beside test digits."""
    return "test" if split == "test" else "val"


def fonts_or_note(half: str, what: str) -> list[Path]:
    """`handwriting_fonts(half)`, or [] after a one-line note when none of them is installed."""
    if half == "none":
        return []
    fonts = handwriting_fonts(half)
    if not fonts:
        print(f"note: no {half} handwriting fonts installed ({', '.join(FONT_HALVES[half][:2])}, ...): "
              f"the fonts-{half} {what} are skipped", file=sys.stderr)
    return fonts


def font_ink(text: str, font_path: Path, rng: np.random.Generator, size: tuple[int, int] = (40, 80)) -> np.ndarray:
    """`text` written in a handwriting font as light ink on black, float 0-1: digits `size` pixels tall, each
    character at the font's own advance with a little more or less room and a little higher or lower, the
    line turned up to 3 degrees."""
    base = int(rng.integers(*size))
    probe = ImageFont.truetype(str(font_path), 100)
    box = probe.getbbox("0123456789", anchor="ls")
    font = ImageFont.truetype(str(font_path), max(8, round(100 * base / max(1, box[3] - box[1]))))
    advances = [font.getlength(c) + rng.uniform(-0.04, 0.12) * base for c in text]
    margin = int(base * rng.uniform(0.3, 0.8))
    width, height = int(sum(advances)) + 2 * margin + base, int(base * 2.2)
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    x, baseline = float(margin), height * 0.68
    for char, advance in zip(text, advances, strict=True):
        draw.text((x, baseline + rng.uniform(-0.04, 0.04) * base), char, fill=255, font=font, anchor="ls")
        x += advance
    layer = layer.rotate(rng.uniform(-3, 3), resample=Image.Resampling.BICUBIC)
    return np.asarray(layer, np.float32) / 255


def font_pictures(out: Path, group: str, texts: list[str], fonts: list[Path],
                  rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """Each text in the fonts in turn, on clean paper or photographed (half each): OUT/<group>/<n>.png|jpg;
    the csv rows (file, text, group)."""
    (out / group).mkdir(parents=True, exist_ok=True)
    rows = []
    for n, text in enumerate(texts):
        ink = font_ink(text, fonts[n % len(fonts)], rng)
        payload, suffix = synthetic.number_on_paper(ink, rng, bool(rng.random() < 0.5))
        name = f"{group}/{n:05d}{suffix}"
        (out / name).write_bytes(payload)
        rows.append((name, text, group))
    return rows


def font_numbers(out: Path, count: int, seed: int, half: str) -> list[tuple[str, str, str]]:
    """The fonts group: `count` numbers of 1-8 digits in the `half`'s fonts, from a random stream of its own;
    its csv rows, or none (after a note) when no font of the half is installed."""
    fonts = fonts_or_note(half, "numbers")
    if not fonts:
        return []
    rng = np.random.default_rng([seed, 1])
    texts = ["".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, 9)))) for _ in range(count)]
    return font_pictures(out, f"fonts-{half}", texts, fonts, rng)


def load_digits(path: str | None, split: str) -> data.Digits:
    """The digits a bench is made from: MNIST test, training, or the training digits the line model never
    trains on (`line_split`'s set-aside part)."""
    digits = data.load(path, "train" if split == "validation" else split)
    return digits.subset(line_split(len(digits))[1]) if split == "validation" else digits


def write_numbers(out: Path, digits: data.Digits, count: int, seed: int, fonts_half: str) -> int:
    """The bench: `count` pictures a group in OUT/<group>/ and OUT/numbers.csv; the number of pictures."""
    rng = np.random.default_rng(seed)
    rows = ["file,text,group"]
    for group in (*GROUPS, "photographed"):
        (out / group).mkdir(parents=True, exist_ok=True)
        for n in range(count):
            length = int(rng.integers(1, 9))
            picks = rng.choice(len(digits), length, replace=False)
            gaps = GROUPS[group] if group in GROUPS else GROUPS["spaced" if rng.random() < 0.5 else "touching"]
            ink = synthetic.number_ink([digits.x[i] for i in picks], gaps, rng)
            payload, suffix = synthetic.number_on_paper(ink, rng, group == "photographed")
            name = f"{group}/{n:05d}{suffix}"
            (out / name).write_bytes(payload)
            rows.append(f"{name},{''.join(str(digits.y[i]) for i in picks)},{group}")
    rows += [",".join(row) for row in font_numbers(out, count, seed, fonts_half)]
    atomic_write_text(out / "numbers.csv", "\n".join(rows) + "\n")
    return len(rows) - 1


def bench_arguments(doc: str, out: str, count: int, seed: int, splits: dict[str, str],
                    argv: list[str] | None) -> argparse.Namespace:
    """The options every bench maker takes: where MNIST is, where the bench goes, its size, seed, split
    (`splits`: each choice and what it is for) and fonts half."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--count", type=int, default=count, help="pictures per group")
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--split", choices=list(splits), default="test",
                        help="; ".join(f"{name}: {use}" for name, use in splits.items()))
    parser.add_argument("--fonts", choices=["val", "test", "none"],
                        help="the handwriting-font half for the fonts group (default: test with --split test, "
                             "else val); none: no fonts group")
    args = parser.parse_args(argv)
    args.fonts = args.fonts or default_fonts(args.split)
    return args


def main(argv: list[str] | None = None) -> None:
    args = bench_arguments(__doc__, "numbers", 1000, 2027, {
        "test": "MNIST test digits, only to report",
        "train": "a development bench from training digits, to tune the reader on",
        "validation": "only the training digits that the line model never trains on"}, argv)
    digits = load_digits(args.data, args.split)
    written = write_numbers(args.out, digits, args.count, args.seed, args.fonts)
    print(f"wrote {written} pictures to {args.out}")


if __name__ == "__main__":
    main()
