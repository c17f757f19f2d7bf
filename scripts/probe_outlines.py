"""Outlined ("bubble") digits, as outline fonts and lettering draw them: MNIST validation digits (held out by the
run's split, never trained on) made broad (grown by 2-4 px at 112 px) and drawn as their outline only, a pen 2-3 px
wide, dark on light paper; beside them the same broad digits drawn solid. Read through `preprocess.to_mnist`.

    DIGITREC_DATA=../shared/data/mnist python scripts/probe_outlines.py [--model RUN] [--count 600]

Prints accuracy and refusals for each. A probe for finding faults, not a set to choose on.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from probe_tight_crops import probe_setup, report_condition
from scipy import ndimage

SIDE = 112


def _disk(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius


def broad_digits(images: np.ndarray, seed: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each digit's broad stroke and its outline, as masks of SIDE x SIDE."""
    rng = np.random.default_rng(seed)
    out = []
    for image in images:
        big = np.asarray(Image.fromarray(image).resize((SIDE, SIDE), Image.Resampling.BICUBIC)) > 100
        broad = ndimage.binary_dilation(big, _disk(int(rng.integers(2, 5))))
        out.append((broad, broad & ~ndimage.binary_erosion(broad, _disk(int(rng.integers(2, 4))))))
    return out


def on_paper(mask: np.ndarray, rng: np.random.Generator) -> Image.Image:
    page = np.full((SIDE + 48, SIDE + 48), 235.0)
    page[24 : 24 + SIDE, 24 : 24 + SIDE] -= 200 * mask
    return Image.fromarray(np.clip(page + rng.normal(0, 3, page.shape), 0, 255).astype(np.uint8))


def main() -> None:
    images, labels, predictor = probe_setup(__doc__, 600)
    masks = broad_digits(images)
    print(f"{'drawn':20s} {'read':>7} {'refused':>8}  commonest confusions (true, read)")
    for name, which in (("solid", 0), ("outlined", 1)):
        rng = np.random.default_rng(4)
        report_condition(name, (on_paper(pair[which], rng) for pair in masks), labels, predictor, width=20,
                         confusions=4)


if __name__ == "__main__":
    main()
