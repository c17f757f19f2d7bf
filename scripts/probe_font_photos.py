"""Handwriting-style digits photographed: digits from the handwriting fonts of the project's `fonts` set,
each glyph drawn once (size, place, turn) and then shown three ways: on clean paper as in the `fonts` set,
photographed as the `photos` set's digits are (uneven light, grain, blur, a warm tint, JPEG), and
photographed turned twice as far (up to 20 degrees). Read through `preprocess.to_mnist`.

    python scripts/probe_font_photos.py [--model RUN] [--count 1050]

Prints accuracy per condition: how much a camera costs over the glyph itself. A probe for finding faults,
not a set to choose on: the fonts are the `fonts` set's own, so its shapes are not new.
"""

from __future__ import annotations

import argparse
import io

import numpy as np
from make_realworld import glyph_layer, handwriting_fonts
from PIL import Image, ImageFilter, ImageFont
from probe_tight_crops import report_condition

from digitrec import synthetic
from digitrec.predict import load_predictor


def on_clean_paper(alpha: np.ndarray, rng: np.random.Generator) -> Image.Image:
    page = rng.uniform(200, 255) * (1 - alpha) + rng.uniform(0, 60) * alpha + rng.normal(0, 4, alpha.shape)
    image = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1)))


def photographed(alpha: np.ndarray, rng: np.random.Generator) -> Image.Image:
    return Image.open(io.BytesIO(synthetic.photograph(alpha, rng)))


def glyph(fonts: list, index: int, max_turn: float) -> np.ndarray:
    """The index-th digit's glyph: the same size, place and (scaled) turn whatever `max_turn` is."""
    rng = np.random.default_rng([7, index])
    size = int(rng.integers(120, 320))
    font = ImageFont.truetype(str(fonts[(index // 10) % len(fonts)]), int(size * rng.uniform(0.35, 0.7)))
    return glyph_layer(font, index % 10, size, rng, max_turn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="run folder (default: the bundled model)")
    parser.add_argument("--count", type=int, default=1050, help="digits (ten a font in turn)")
    args = parser.parse_args()
    fonts = handwriting_fonts()
    if not fonts:
        raise SystemExit("no handwriting fonts installed (see make_realworld.py's docstring for the packages)")
    predictor = load_predictor(args.model)
    labels = np.arange(args.count) % 10
    print(f"{len(fonts)} fonts, {args.count} digits")
    print(f"{'condition':36s} {'read':>7} {'refused':>8}  commonest confusions (true, read)")
    conditions = (("clean paper, turned up to 10 deg", 10, on_clean_paper),
                  ("photographed, turned up to 10 deg", 10, photographed),
                  ("photographed, turned up to 20 deg", 20, photographed))
    for name, turn, show in conditions:
        paper = np.random.default_rng(11)
        pictures = [show(glyph(fonts, i, turn), paper) for i in range(args.count)]
        report_condition(name, pictures, labels, predictor, width=36, confusions=4)


if __name__ == "__main__":
    main()
