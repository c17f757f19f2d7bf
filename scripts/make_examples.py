"""Write examples/: ten digits drawn as pen strokes (PNG) and ten photographed on paper (JPEG).
File names end with the digit shown, e.g. examples/drawn-7.png."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from digitrec import data
from digitrec.data import synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", help="MNIST folder for the photographed digits (default $DIGITREC_DATA)")
    parser.add_argument("--out", type=Path, default=Path("examples"))
    args = parser.parse_args()
    args.out.mkdir(exist_ok=True)
    images, labels = synthetic.drawn_digits(10, seed=7)
    for image, label in zip(images, labels, strict=True):
        image.save(args.out / f"drawn-{label}.png")
    test = data.load(args.data, "test")
    rng = np.random.default_rng(7)
    for digit in range(10):
        index = int(np.flatnonzero(test.y == digit)[-1])
        (args.out / f"photo-{digit}.jpg").write_bytes(synthetic.photo_of(test.x[index], rng))
    print(f"wrote 20 examples to {args.out}")


if __name__ == "__main__":
    main()
