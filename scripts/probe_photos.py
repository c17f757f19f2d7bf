"""Photographed digits in harder light and worse cameras than the project's `photos` set: MNIST validation
digits (held out by the run's split, never trained on) as dark ink on paper photographed as JPEG, one
condition at a time pushed past the set's range: a small digit in a large photo, heavy blur, JPEG quality
8-15, a strong lighting gradient, a shadow's edge across the page (hard or soft), low contrast, heavy
noise, blue ink on a yellow note, dim light. Read through `preprocess.to_mnist`.

    DIGITREC_DATA=../shared/data/mnist python scripts/probe_photos.py [--model RUN] [--count 600]

Prints accuracy and refusals per condition. A probe for finding faults, not a set to choose on.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter
from probe_tight_crops import probe_setup, report_condition

from digitrec import preprocess

CONDITIONS = {
    "as the photos set": {},
    "small digit (8-15 %) in 600 px": {"size": 600, "share": (0.08, 0.15)},
    "heavy blur (3-5 px)": {"blur": (3, 5)},
    "JPEG quality 8-15": {"quality": (8, 15)},
    "lighting gradient +-90": {"gradient": 90},
    "shadow's edge, hard, 70 darker": {"shadow": 70},
    "shadow's edge over 10 %, 70 darker": {"shadow": 70, "penumbra": 0.1},
    "shadow's edge over 25 %, 70 darker": {"shadow": 70, "penumbra": 0.25},
    "shadow's edge, hard, 40 darker": {"shadow": 40},
    "low contrast (ink 120-150, paper 170-200)": {"ink": (120, 150), "paper": (170, 200)},
    "heavy noise (15-25)": {"grain": (15, 25)},
    "blue ink on a yellow note": {"note": True},
    "dim light (paper 60-100, ink 10-30)": {"paper": (60, 100), "ink": (10, 30)},
}


def photo(image: np.ndarray, rng: np.random.Generator, size: int = 300, share: tuple = (0.3, 0.7),
          blur: tuple = (0, 1.5), quality: tuple = (50, 90), gradient: float = 30, shadow: float = 0,
          penumbra: float = 0.0, ink: tuple = (20, 70), paper: tuple = (170, 235), grain: tuple = (2, 7),
          note: bool = False) -> bytes:
    """The digit on paper as a JPEG photo, as `synthetic.photo_of` makes it, with every range a keyword."""
    side = int(size * rng.uniform(*share))
    digit = Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC)
    digit = digit.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BICUBIC, expand=True)
    layer = np.zeros((size, size), np.float32)
    top, left = (int(rng.integers(0, max(1, size - extent))) for extent in (digit.size[1], digit.size[0]))
    layer[top : top + digit.size[1], left : left + digit.size[0]] = \
        np.asarray(digit, np.float32)[: size - top, : size - left] / 255
    ys, xs = np.mgrid[0:size, 0:size] / size
    light = rng.uniform(*paper) + rng.uniform(-gradient, gradient) * xs + rng.uniform(-gradient, gradient) * ys
    if shadow:  # a straight edge at any angle and place, the far side darker
        angle = rng.uniform(0, np.pi)
        across = np.cos(angle) * (xs - 0.5) + np.sin(angle) * (ys - 0.5) - rng.uniform(-0.3, 0.3)
        light = light - shadow * (np.clip(0.5 + across / penumbra, 0, 1) if penumbra else across > 0)
    page = (light + rng.normal(0, rng.uniform(*grain), light.shape)) * (1 - layer) + rng.uniform(*ink) * layer
    gray = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(*blur)))
    rgb = np.asarray(gray, np.float32)[..., None] * np.array([1.0, 0.97, 0.9])
    if note:
        inked = layer[..., None]
        rgb = rgb / 255 * np.array([255, 240, 140]) * (1 - inked) + np.array([40, 50, 150]) * inked
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buffer, format="JPEG",
                                                               quality=int(rng.integers(*quality)))
    return buffer.getvalue()


def main() -> None:
    images, labels, predictor = probe_setup(__doc__, 600)
    print(f"{'condition':44s} {'read':>7} {'refused':>8}  commonest confusions (true, read)")
    for name, settings in CONDITIONS.items():
        rng = np.random.default_rng(0)
        photos = (preprocess.open_image(photo(image, rng, **settings)) for image in images)
        report_condition(name, photos, labels, predictor)


if __name__ == "__main__":
    main()
