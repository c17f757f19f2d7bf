"""Stroke widths (digitrec.imaging.stroke.stroke_width, pixels at 28x28) of MNIST's training digits and of
what preprocessing makes of every real-world set: the distributions side by side, as a Markdown table.

    DIGITREC_DATA=../shared/data/mnist python scripts/stroke_widths.py --sets realworld
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from digitrec import data
from digitrec.imaging.stroke import stroke_width


def row(name: str, images: np.ndarray) -> str:
    widths = np.array([stroke_width(im.astype(np.float32)) for im in images])
    p = np.percentile(widths, [5, 25, 50, 75, 95])
    return f"| {name} | {len(widths):,} | " + " | ".join(f"{v:.2f}" for v in p) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--sets", type=Path, default=Path("realworld"))
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    print("| digits | n | 5 % | 25 % | median | 75 % | 95 % |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(row("MNIST training (as scanned)", data.load(args.data, "train").x[: args.count]))
    for folder in sorted(p for p in args.sets.iterdir() if p.is_dir()):
        print(row(f"{folder.name} (after preprocessing)", data.load(folder).x[: args.count]))


if __name__ == "__main__":
    main()
