"""Labelled pictures of values people write with signs in them, for `digitrec read --score`: amounts (12.50,
1,250, -3, -12.6, 12,50), dates (24/12/2026, 05.12.26, 2026-12-05) and times (14:05, 9:30:15).

Digits are MNIST digits (`--split test`, the default, only to report; `--split validation`: the training
digits the line model never trains on, `digitrec.reading.line.line_split`'s set-aside part, to choose on).
Signs (. , - / :) are drawn by the project's own sign renderer (`digitrec.data.signs`) and composed with the
digits by `signs.value_ink`. The values are drawn from this script's own formats (real days, months and
hours), not the line model's training formats. Groups, as in make_numbers.py:
- spaced:       gaps between digits of 15-70 % of a digit's width;
- touching:     neighbours' boxes meeting or just overlapping (gap 0 to -8 %);
- photographed: spaced or touching, dark ink on uneven paper with faint ruled lines, blurred, JPEG;
- fonts-val or fonts-test (`--fonts`): the values written in handwriting fonts, each font's own signs, on
  clean paper or photographed; the fonts' validation and test halves are make_numbers.py's fixed lists
  (FONTS_VALIDATION, FONTS_TEST), split by family; fonts are never training data. A half none of whose
  faces is installed is skipped with a one-line note.

Writes OUT/<group>/<n>.png|jpg and OUT/values.csv (file,text,group; a text with a comma is quoted).

    DIGITREC_DATA=../shared/data/mnist python scripts/make_values.py --out values --count 300 --split validation
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_numbers import GROUPS, bench_arguments, font_pictures, fonts_or_note, load_digits  # noqa: E402

from digitrec import data  # noqa: E402
from digitrec.core.files import atomic_write_text  # noqa: E402
from digitrec.data import signs, synthetic  # noqa: E402

VALUES = "values.csv"
VALUE_GROUPS = {"spaced": GROUPS["spaced"], "touching": GROUPS["touching"]}


def _number(rng: np.random.Generator, low: int, high: int) -> int:
    """A whole number between low and high, small ones as common as large ones (log-uniform)."""
    return int(np.clip(round(np.exp(rng.uniform(np.log(low + 1), np.log(high + 1))) - 1), low, high))


def _amount(rng: np.random.Generator) -> str:
    whole = _number(rng, 0, 99999)
    kind = rng.choice(["cents", "tenths", "thousands", "thousands-cents", "comma-cents", "negative"],
                      p=[0.3, 0.15, 0.15, 0.1, 0.1, 0.2])
    if kind == "cents":
        return f"{whole}.{rng.integers(100):02d}"
    if kind == "tenths":
        return f"{whole}.{rng.integers(10)}"
    if kind == "thousands":
        return f"{_number(rng, 1000, 9999999):,}"
    if kind == "thousands-cents":
        return f"{_number(rng, 1000, 999999):,}.{rng.integers(100):02d}"
    if kind == "comma-cents":
        return f"{whole},{rng.integers(100):02d}"
    tail = rng.choice(["", f".{rng.integers(10)}", f".{rng.integers(100):02d}"])
    return f"-{_number(rng, 0 if tail else 1, 999)}{tail}"


def _date(rng: np.random.Generator) -> str:
    day, month, year = int(rng.integers(1, 29)), int(rng.integers(1, 13)), int(rng.integers(1950, 2040))
    style = rng.choice(["d/m/Y", "d.m.y", "Y-m-d", "d.m.Y", "d/m/y", "m-d-Y", "short"])
    if style == "short":  # a day and month written without leading zeros: 5/12
        return f"{day}/{month}"
    parts = {"d": f"{day:02d}", "m": f"{month:02d}", "Y": f"{year}", "y": f"{year % 100:02d}"}
    sep = style[1]
    return sep.join(parts[k] for k in style.split(sep))


def _time(rng: np.random.Generator) -> str:
    hour, minute = int(rng.integers(0, 24)), int(rng.integers(0, 60))
    hours = f"{hour:02d}" if rng.random() < 0.6 else f"{hour}"
    return f"{hours}:{minute:02d}" + (f":{rng.integers(60):02d}" if rng.random() < 0.15 else "")


def value_text(rng: np.random.Generator) -> str:
    """A value with at least one sign: an amount (40 %), a date (35 %) or a time (25 %)."""
    kind = rng.choice(3, p=[0.4, 0.35, 0.25])
    return (_amount, _date, _time)[kind](rng)


def _by_digit(digits: data.Digits) -> list[np.ndarray]:
    return [np.flatnonzero(digits.y == d) for d in range(10)]


def value_picture(text: str, digits: data.Digits, by_digit: list[np.ndarray], gaps: tuple[float, float],
                  photographed: bool, rng: np.random.Generator) -> tuple[bytes, str]:
    """`text` written with digits drawn from `digits` (a random one of each digit's) and the project's signs."""
    items = [digits.x[rng.choice(by_digit[int(c)])] if c.isdigit() else c for c in text]
    ink = signs.value_ink(items, gaps, rng)
    return synthetic.number_on_paper(ink, rng, photographed)


def write_values(out: Path, digits: data.Digits, count: int, seed: int, fonts_half: str) -> int:
    """The bench: `count` pictures a group in OUT/<group>/ and OUT/values.csv; the number of pictures."""
    rng = np.random.default_rng(seed)
    by_digit = _by_digit(digits)
    rows: list[tuple[str, str, str]] = []
    for group in (*VALUE_GROUPS, "photographed"):
        (out / group).mkdir(parents=True, exist_ok=True)
        for n in range(count):
            text = value_text(rng)
            gaps = VALUE_GROUPS.get(group) or VALUE_GROUPS["spaced" if rng.random() < 0.5 else "touching"]
            payload, suffix = value_picture(text, digits, by_digit, gaps, group == "photographed", rng)
            name = f"{group}/{n:05d}{suffix}"
            (out / name).write_bytes(payload)
            rows.append((name, text, group))
    fonts = fonts_or_note(fonts_half, "values")
    if fonts:
        font_rng = np.random.default_rng([seed, 1])
        texts = [value_text(font_rng) for _ in range(count)]
        rows += font_pictures(out, f"fonts-{fonts_half}", texts, fonts, font_rng)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "text", "group"])
    writer.writerows(rows)
    atomic_write_text(out / VALUES, buffer.getvalue())
    return len(rows)


def main(argv: list[str] | None = None) -> None:
    args = bench_arguments(__doc__, "values", 300, 2028, {
        "test": "MNIST test digits, only to report",
        "validation": "the training digits the line model never trains on, to choose on"}, argv)
    digits = load_digits(args.data, args.split)
    written = write_values(args.out, digits, args.count, args.seed, args.fonts)
    print(f"wrote {written} pictures to {args.out}")


if __name__ == "__main__":
    main()
