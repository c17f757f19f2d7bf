"""How `read` copes with a shadow's straight edge across a photographed number: the photographed numbers of a
bench made by `make_numbers.py` (validation digits, so that no choice is made on test digits), each darkened
beyond an edge at a random angle and place, then read; strings right per condition.

    python scripts/make_numbers.py --split validation --count 800 --seed 5 --out BENCH
    python scripts/probe_number_shadows.py BENCH [--count 200] [--model RUN]
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec.errors import DigitrecError
from digitrec.predict import load_predictor

# (name, how much darker the far side is, the edge's soft part as a share of the picture)
CONDITIONS = [("no shadow", 0.0, 0.0), ("hard edge, 20 % darker", 0.2, 0.0), ("hard edge, 33 % darker", 0.33, 0.0),
              ("33 % darker over 10 % of the picture", 0.33, 0.1)]


def in_shadow(payload: Path, rng: np.random.Generator, dark: float, penumbra: float) -> bytes:
    """The photo, its light cut by `dark` beyond a straight edge (light falls on ink and paper alike), as JPEG."""
    rgb = np.asarray(Image.open(payload).convert("RGB"), np.float32)
    h, w = rgb.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, np.pi)
    across = (np.cos(angle) * (xs - w / 2) + np.sin(angle) * (ys - h / 2)) / max(h, w) - rng.uniform(-0.2, 0.2)
    beyond = np.clip(0.5 + across / penumbra, 0, 1) if penumbra else (across > 0).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb * (1 - dark * beyond)[..., None], 0, 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench", type=Path)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--model", help="run folder (default: the bundled model)")
    args = parser.parse_args()
    with open(args.bench / "numbers.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["group"] == "photographed"][: args.count]
    predictor = load_predictor(args.model)
    print(f"{'condition':40s} {'read':>7} {'refused':>8}   ({len(rows)} photographed numbers)")
    for name, dark, penumbra in CONDITIONS:
        rng = np.random.default_rng(0)
        right = refused = 0
        for row in rows:
            try:
                right += predictor.read(in_shadow(args.bench / row["file"], rng, dark, penumbra)).text == row["text"]
            except DigitrecError:
                refused += 1
        print(f"{name:40s} {right / len(rows):7.2%} {refused:8d}")


if __name__ == "__main__":
    main()
