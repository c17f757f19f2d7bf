"""Digits written or photographed at a tilt: MNIST validation digits (held out by the run's split, never
trained on) as dark ink on white paper at 112 px, turned by -A and +A degrees in turn (every second digit
the other way), read through `preprocess.to_mnist`.

    DIGITREC_DATA=../shared/data/mnist python scripts/probe_tilt.py [--model RUN] [--count 1500]

Prints accuracy per angle and the commonest confusions. A probe for finding faults, not a set to choose on:
the project's `photos` set (make_realworld.py) turns its digits by up to 10 degrees, the training's
augmentation by up to `rotate_deg` (12 in the bundled recipe).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from PIL import Image
from probe_tight_crops import probe_setup

from digitrec import preprocess

ANGLES = (0, 10, 15, 20, 25, 30)
SIDE = 112


def tilted(image: np.ndarray, degrees: float) -> Image.Image:
    paper = Image.fromarray(255 - image).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
    return paper.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=255)


def main() -> None:
    images, labels, predictor = probe_setup(__doc__, 1500)
    signs = np.where(np.arange(len(labels)) % 2, 1, -1)
    print(f"{'degrees':>7} {'read':>7}  commonest confusions (true, read)")
    for angle in ANGLES:
        read = np.stack([preprocess.to_mnist(tilted(image, sign * angle))
                         for image, sign in zip(images, signs, strict=True)])
        guess = predictor.probabilities(read).argmax(1)
        wrong = guess != labels
        pairs = Counter(zip(labels[wrong].tolist(), guess[wrong].tolist(), strict=True)).most_common(4)
        print(f"{angle:7d} {1 - wrong.mean():7.2%}  {pairs}")


if __name__ == "__main__":
    main()
