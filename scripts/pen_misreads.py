"""How well networks read digits redrawn with one pen, as a page is written and as the page bench draws it, and
which digits they misread: MNIST's held-out training digits (the bundled network's own 5 %, `stratified_split`
0.05, seed 0) read as scanned and redrawn along their centre line with one round pen (40-100 px tall, pens of
3.5-9 px, `data.pages.pen_glyph`), by each model and by the mean of their probabilities.

`--sheet` draws the views the model (the mean, with several) misreads, numbered and unlabelled, so a person can
read them blind; `--answers` writes what each is and what was read, to compare with afterwards. Both are checked
before any work (an existing file is replaced only with `--overwrite`, never an input) and written at the end.

    DIGITREC_DATA=../shared/data/mnist python scripts/pen_misreads.py --sheet pen-misreads.png --answers answers.json
    DIGITREC_DATA=../shared/data/mnist python scripts/pen_misreads.py --model bundled --model runs/other
"""

from __future__ import annotations

import argparse
import json
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digitrec import data
from digitrec.core.errors import DigitrecError
from digitrec.core.files import atomic_write_bytes, atomic_write_text, check_output
from digitrec.data import pages
from digitrec.imaging.fit import to_mnist
from digitrec.inference.engine import load_predictor

PAPER, INK = 230, 40  # grey levels of the drawn views: paper and pen
CELL = 110  # pixels of the sheet a view


def pen_views(images: np.ndarray, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Each 28x28 digit redrawn with one pen at a page's size (the grey picture) and read back through
    preprocessing as every picture is (the 28x28s): the kind of draw decisions 0019 and 0020 measured."""
    rng = np.random.default_rng(seed)
    pictures, inputs = [], []
    for image in images:
        height, pen = int(rng.uniform(40, 100)), rng.uniform(3.5, 9)
        glyph = pages.pen_glyph(image, height, pen)
        side = int(max(glyph.shape) * 1.5) + 4
        ink = np.zeros((side, side), np.float32)
        top, left = (side - glyph.shape[0]) // 2, (side - glyph.shape[1]) // 2
        ink[top : top + glyph.shape[0], left : left + glyph.shape[1]] = glyph
        picture = (PAPER - (PAPER - INK) * ink).astype(np.uint8)
        pictures.append(picture)
        try:
            inputs.append(to_mnist(Image.fromarray(picture)))
        except DigitrecError:  # a stroke the redraw left too faint to find: read as blank, so counted wrong
            inputs.append(np.zeros((28, 28), np.uint8))
    return pictures, np.stack(inputs)


def sheet(pictures: list[np.ndarray], columns: int = 8) -> Image.Image:
    """The pictures in numbered cells, no labels."""
    rows = max(1, -(-len(pictures) // columns))
    out = Image.new("L", (columns * CELL, rows * CELL), 255)
    draw = ImageDraw.Draw(out)
    for n, picture in enumerate(pictures):
        view = Image.fromarray(picture)
        view.thumbnail((CELL - 14, CELL - 14))
        x, y = (n % columns) * CELL, (n // columns) * CELL
        out.paste(view, (x + 7, y + 12))
        draw.text((x + 2, y), str(n), fill=0)
    return out


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a count of 1 or more")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--count", type=_at_least_one, default=3000,
                        help="held-out digits read, at most as many as there are (default 3000)")
    parser.add_argument("--seed", type=int, default=1, help="the draw of pens and sizes (default 1)")
    parser.add_argument("--model", action="append", help="a run folder, or `bundled` (repeatable; default bundled)")
    parser.add_argument("--sheet", type=Path, help="write the misread views here (a .png)")
    parser.add_argument("--answers", type=Path, help="write each misread view's digit and reading here (JSON)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --sheet or --answers file")
    args = parser.parse_args(argv)
    if args.sheet is not None and args.sheet.suffix.lower() != ".png":
        raise DigitrecError("the sheet is a PNG", where=str(args.sheet), expected="a path ending in .png")
    if args.sheet is not None and args.answers is not None and args.sheet.resolve() == args.answers.resolve():
        raise DigitrecError("the sheet and the answers would be one file", where=str(args.sheet))
    inputs = (data.resolve_data_path(args.data), *(m for m in args.model or () if m != "bundled"))
    for target in (args.sheet, args.answers):
        if target is not None:
            check_output(target, overwrite=args.overwrite, inputs=inputs)
    train = data.load(args.data, "train")
    if train.y is None:
        raise DigitrecError("the digits have no labels", where=str(args.data), expected="a labelled set, as MNIST")
    _, held_out = data.stratified_split(train.y, 0.05, 0)
    if not len(held_out):
        raise DigitrecError("too few digits to hold 5 % out", where=str(args.data), expected="at least 20 digits")
    held_out = held_out[: args.count]
    truth = train.y[held_out]
    names = args.model or ["bundled"]
    models = [load_predictor(None if name == "bundled" else name) for name in names]
    pictures, views = pen_views(train.x[held_out], args.seed)
    print(f"| model | {len(held_out):,} held-out digits as scanned | redrawn with one pen (seed {args.seed}) |")
    print("| --- | --- | --- |")
    scanned = [m.probabilities(train.x[held_out]) for m in models]
    drawn = [m.probabilities(views) for m in models]
    rows = list(zip(names, scanned, drawn, strict=True))
    if len(models) > 1:
        rows.append(("mean of all", np.mean(scanned, axis=0), np.mean(drawn, axis=0)))
    for name, as_scanned, as_drawn in rows:
        print(f"| {name} | {100 * np.mean(as_scanned.argmax(1) == truth):.2f} % | "
              f"{100 * np.mean(as_drawn.argmax(1) == truth):.2f} % |")
    read = rows[-1][2].argmax(1)
    wrong = np.flatnonzero(read != truth)
    if args.sheet:
        buffer = BytesIO()
        sheet([pictures[n] for n in wrong]).save(buffer, format="PNG", optimize=True)
        atomic_write_bytes(args.sheet, buffer.getvalue())
        print(f"{len(wrong)} misread views drawn in {args.sheet}")
    if args.answers:
        answers = [{"view": k, "digit": int(truth[n]), "read": int(read[n]), "mnist_train_index": int(held_out[n])}
                   for k, n in enumerate(wrong)]
        atomic_write_text(args.answers, json.dumps(answers, indent=1) + "\n")


def run(argv: list[str] | None = None) -> int:
    """main, with a bad folder, model or output said in one line (exit 2)."""
    try:
        main(argv)
    except DigitrecError as e:
        print(f"pen_misreads: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # an output that cannot be written after all (a disk filled on the way)
        print(f"pen_misreads: {e.filename or ''}: {e.strerror}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run())
