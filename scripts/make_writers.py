"""Small labelled sets of distinct hands, for `digitrec tune` and `benchmarks/tune.py`.

Each hand (`digitrec.data.synthetic.HANDS`: a meter's seven segments, a backhand with a long-flagged 1, a
quick hand with an S-shaped 5 and an open 4, an engineer's slashed zero and crossed Z) writes some digits
its own way, always the same way, with the wobble of a person writing a shape again. For every hand:

    OUT/<hand>/k1/<digit>/*.png    1 example of each digit    (what a user gives `digitrec tune`)
    OUT/<hand>/k3/<digit>/*.png    3 examples of each digit   (k1's example and two more)
    OUT/<hand>/k10/<digit>/*.png   10 examples of each digit  (k3's and seven more)
    OUT/<hand>/test/<digit>/*.png  --test examples of each digit, drawn apart from the others

    python scripts/make_writers.py --out writers
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from digitrec.data import synthetic

SIZES = (1, 3, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("writers"))
    parser.add_argument("--test", type=int, default=50, help="test examples per digit and hand")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hands", nargs="*", default=list(synthetic.HANDS), choices=list(synthetic.HANDS))
    args = parser.parse_args()
    for h, hand in enumerate(args.hands):
        # Two generators per hand: the examples a user gives and the test pictures never share a draw.
        examples = np.random.default_rng([args.seed, h, 0])
        tests = np.random.default_rng([args.seed, h, 1])
        for digit in range(10):
            pictures = [synthetic.hand_digit(hand, digit, examples) for _ in range(max(SIZES))]
            for k in SIZES:
                folder = args.out / hand / f"k{k}" / str(digit)
                folder.mkdir(parents=True, exist_ok=True)
                for n, picture in enumerate(pictures[:k]):
                    picture.save(folder / f"{n:02d}.png")
            folder = args.out / hand / "test" / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(args.test):
                synthetic.hand_digit(hand, digit, tests).save(folder / f"{n:03d}.png")
        print(f"{hand}: k1, k3, k10 and {args.test * 10} test pictures in {args.out / hand}")


if __name__ == "__main__":
    main()
