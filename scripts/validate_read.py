"""How `read` should combine its two readers, decided on validation pictures, and whether `read` agrees
with `predict` on single digits.

1. On a bench of numbers made from training digits the line model never trained on
   (`make_numbers.py --split validation`), strings right per group for three ways of reading:
   segmentation alone, the line model alone, and both (segmentation where they agree or the line is
   one digit, else the line model: what `read` does).
2. With `--agreement N`: the first N MNIST *training* digits that the line model held out, each read
   alone by `read` and by `predict` (the target, 99.9 %, is on MNIST test: `--split test`
   reads the test digits and is run once, at the end, to report).
A sign reader in LINES/signs/ reads beside the line model, as `read` loads a run's.

    DIGITREC_DATA=../shared/data/mnist python scripts/make_numbers.py --split validation --count 300 \\
        --seed 5 --out numbers-val
    python scripts/validate_read.py numbers-val --lines runs/rebuild/lines-a [--agreement 3000]
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec import data
from digitrec.core.errors import DigitrecError
from digitrec.imaging.decode import open_image
from digitrec.imaging.fit import to_mnist
from digitrec.imaging.ink import ink_map
from digitrec.inference.engine import load_predictor
from digitrec.reading.line import LINE_ONNX, WORK_HEIGHT, LineModel, decode, digit_height, line_split, to_line
from digitrec.reading.numbers import read_number


def line_only(picture, line_model: LineModel) -> str:
    ink, _ = ink_map(picture, WORK_HEIGHT)
    return "".join(str(d.digit) for d in decode(line_model.probabilities(to_line(ink, digit_height(ink)).pixels)))


def answer(reader, picture: Image.Image) -> str | None:
    """What `reader` answers for the picture, or None where it refuses it."""
    try:
        return reader(picture)
    except DigitrecError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench", type=Path)
    parser.add_argument("--lines", type=Path, required=True, help="a line model's folder (train-lines --out)")
    parser.add_argument("--model", help="the digit model's run folder (default: the bundled model)")
    parser.add_argument("--agreement", type=int, default=0, help="single digits to read both ways")
    parser.add_argument("--split", choices=["validation", "test"], default="validation")
    args = parser.parse_args()
    predictor = load_predictor(args.model)
    line_model = LineModel(args.lines / LINE_ONNX)
    if (args.lines / "signs" / LINE_ONNX).is_file():  # a sign reader beside it, as `read` loads a run's
        line_model.signs = LineModel(args.lines / "signs" / LINE_ONNX)
    right: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    with open(args.bench / "numbers.csv", newline="") as f:
        for row in csv.DictReader(f):
            picture = open_image((args.bench / row["file"]).read_bytes())
            ways = {}
            for name, read in (("segmentation", lambda p: read_number(p, predictor).text),
                               ("line model", lambda p: line_only(p, line_model)),
                               ("both (read)", lambda p: read_number(p, predictor, line_model).text)):
                try:
                    ways[name] = read(picture)
                except DigitrecError:
                    ways[name] = None
            for name, text in ways.items():
                right[name][row["group"]].append(text == row["text"])
                right[name]["all"].append(text == row["text"])
    groups = list(next(iter(right.values())))
    print("| way | " + " | ".join(groups) + " |")
    print("| --- |" + " --- |" * len(groups))
    for name, by_group in right.items():
        print(f"| {name} | " + " | ".join(f"{np.mean(by_group[g]):.1%}" for g in groups) + " |")
    if args.agreement:
        if args.split == "test":
            digits = data.load(None, "test")
        else:
            train = data.load(None, "train")
            digits = train.subset(line_split(len(train))[1])
        digits = digits.subset(np.arange(min(args.agreement, len(digits))))
        pictures = [Image.fromarray(image) for image in digits.x]
        def predicted(picture: Image.Image) -> str:
            return str(predictor.probabilities(to_mnist(picture)[None]).argmax(1)[0])

        def read(picture: Image.Image) -> str:
            return read_number(picture, predictor, line_model).text

        # `predict` as it reads a picture file: through preprocessing (an MNIST array is read as it is); a
        # digit that preprocessing refuses ("no digit") is an answer too, which `read` should give as well.
        same = [answer(predicted, p) == answer(read, p) for p in pictures]
        print(f"read agrees with predict on {np.mean(same):.2%} of {len(same)} single {args.split} digits")


if __name__ == "__main__":
    main()
