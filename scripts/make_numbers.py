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
from pathlib import Path

import numpy as np

from digitrec import data
from digitrec.core.files import atomic_write_text
from digitrec.data import synthetic
from digitrec.reading.line import line_split

GROUPS = {"spaced": (0.15, 0.7), "touching": (-0.08, 0.0), "overlapping": (-0.2, -0.08)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--out", type=Path, default=Path("numbers"))
    parser.add_argument("--count", type=int, default=1000, help="pictures per group")
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--split", choices=["test", "train", "validation"], default="test",
                        help="train: a development bench from training digits, to tune the reader on; "
                             "validation: only the training digits that the line model never trains on")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    test = data.load(args.data, "train" if args.split == "validation" else args.split)
    if args.split == "validation":
        test = test.subset(line_split(len(test))[1])
    rows = ["file,text,group"]
    for group in (*GROUPS, "photographed"):
        (args.out / group).mkdir(parents=True, exist_ok=True)
        for n in range(args.count):
            length = int(rng.integers(1, 9))
            picks = rng.choice(len(test), length, replace=False)
            gaps = GROUPS[group] if group in GROUPS else GROUPS["spaced" if rng.random() < 0.5 else "touching"]
            ink = synthetic.number_ink([test.x[i] for i in picks], gaps, rng)
            payload, suffix = synthetic.number_on_paper(ink, rng, group == "photographed")
            name = f"{group}/{n:05d}{suffix}"
            (args.out / name).write_bytes(payload)
            rows.append(f"{name},{''.join(str(test.y[i]) for i in picks)},{group}")
    atomic_write_text(args.out / "numbers.csv", "\n".join(rows) + "\n")
    print(f"wrote {len(rows) - 1} pictures to {args.out}")


if __name__ == "__main__":
    main()
