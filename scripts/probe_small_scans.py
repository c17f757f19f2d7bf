"""An old scanner's 8x8 counts, stored and shown in every common way: MNIST validation digits (held out by
the run's split, never trained on) as `synthetic.scan_counts` makes them (0-16 ink pixels per 4x4 block of
a 32x32 bitmap), kept at 8x8 or scaled to 16-256 px by nearest, bilinear, bicubic or Lanczos scaling,
dark on light, read through `preprocess.to_mnist`.

    DIGITREC_DATA=../shared/data/mnist python scripts/probe_small_scans.py [--model RUN] [--count 1000]

Prints accuracy and refusals per size and scaling. A probe for finding faults, not a set to choose on: the
project's `scans` set (make_realworld.py) is these counts at 32-128 px.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from PIL import Image
from probe_tight_crops import probe_read, probe_setup

from digitrec import synthetic

SIDES = (8, 16, 28, 32, 64, 256)
SCALINGS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
            "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}


def main() -> None:
    images, labels, predictor = probe_setup(__doc__, 1000)
    scans = [Image.fromarray((255 - synthetic.scan_counts(image) * 255 / 16).astype(np.uint8)) for image in images]
    print(f"{'size':>5} {'scaling':9} {'read':>7} {'refused':>8}  commonest confusions (true, read)")
    for side in SIDES:
        for name, scaling in SCALINGS.items():
            if side == 8 and name != "nearest":
                continue  # kept as stored
            truth, guess, refused = probe_read((scan.resize((side, side), scaling) for scan in scans), labels,
                                               predictor)
            wrong = guess != truth
            accuracy = (len(truth) - wrong.sum()) / len(labels)  # a refusal counts as an error
            pairs = Counter(zip(truth[wrong].tolist(), guess[wrong].tolist(), strict=True)).most_common(3)
            print(f"{side:5d} {name:9} {accuracy:7.2%} {refused:8d}  {pairs}")


if __name__ == "__main__":
    main()
