"""Digits written in a comb field (a form's row of cells open at the top: a printed baseline under the
digits and a short printed tick between each two cells), one cell cut out as its own picture: MNIST
validation digits (held out by the run's split, never trained on), photographed on paper.

    DIGITREC_DATA=../shared/data/mnist python scripts/probe_comb.py [--model RUN] [--count 600]

Prints accuracy for the digit alone on the same paper, with the baseline only, and with baseline and ticks
(ticks a fifth to two fifths of the cell high; cut at the ticks or a little outside them). A probe for
finding faults, not a set to choose on.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from probe_tight_crops import probe_setup, report_condition

from digitrec import synthetic


def comb_cell(image28: np.ndarray, rng: np.random.Generator, baseline: bool, ticks: bool) -> Image.Image:
    size = int(rng.integers(80, 200))
    line = max(1, round(size * rng.uniform(0.01, 0.025)))
    margin = int(size * rng.uniform(0, 0.06))  # how far outside the ticks the cell was cut
    base = size - int(size * rng.uniform(0.04, 0.12))  # the baseline's top row
    ink = np.zeros((size, size), np.float32)
    digit_px = int((base - line) * rng.uniform(0.7, 0.95))
    top = int(rng.uniform(0.02, 0.08) * size)
    left = int(np.clip(size / 2 - digit_px / 2 + rng.uniform(-0.08, 0.08) * size, 0, size - digit_px))
    top = min(top, base - digit_px)
    ink[top : top + digit_px, left : left + digit_px] = synthetic._ink_mask(image28, digit_px)
    printed = np.zeros_like(ink)
    if baseline:
        printed[base : base + line, :] = 1
    if ticks:
        tick = int(size * rng.uniform(0.2, 0.4))
        printed[base - tick : base + line, margin : margin + line] = 1
        printed[base - tick : base + line, size - margin - line : size - margin] = 1
    ink = np.maximum(ink, printed * rng.uniform(0.6, 1.0))
    page = synthetic._on_paper(ink, rng, rng.uniform(200, 250), rng.uniform(20, 80), 3)
    return Image.fromarray(page).rotate(rng.uniform(-1.5, 1.5), resample=Image.Resampling.BICUBIC,
                                        fillcolor=int(np.median(page)))


def main() -> None:
    images, labels, predictor = probe_setup(__doc__, 600)
    print(f"{'condition':20s} {'read':>7} {'refused':>8}  commonest confusions (true, read)")
    conditions = (("alone", False, False), ("baseline", True, False), ("baseline and ticks", True, True))
    for name, baseline, ticks in conditions:
        rng = np.random.default_rng(7)
        pictures = [comb_cell(image, rng, baseline, ticks) for image in images]
        report_condition(name, pictures, labels, predictor, width=20, confusions=4)


if __name__ == "__main__":
    main()
