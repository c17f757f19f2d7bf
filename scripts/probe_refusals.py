"""Refusals and accuracy on folders of real-world sets (make_realworld.py's output): each picture read through
`imaging.fit.to_mnist` (as `digitrec predict` reads a file) and the model. A refused picture counts as wrong.

    DIGITREC_DATA=../shared/data/mnist python scripts/probe_refusals.py realworld-val [--save val.npz]
    python scripts/probe_refusals.py realworld-val --compare val.npz    # what changed since --save

Prints, per set: pictures, accuracy, refused, of those refused as scribbles, and with --compare the 28x28s
and answers that changed (and the files newly refused or newly read).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from digitrec.core.errors import DigitrecError
from digitrec.imaging.decode import open_image
from digitrec.imaging.fit import to_mnist
from digitrec.inference.engine import load_predictor

SUFFIXES = {".png", ".jpg", ".jpeg"}


def read_set(folder: Path) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Every labelled picture under folder/<digit>/: names, labels, 28x28s (zeros where refused), refusals."""
    names, labels, images, errors = [], [], [], []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES):
        names.append(str(path.relative_to(folder)))
        labels.append(int(path.parent.name))
        try:
            images.append(to_mnist(open_image(path.read_bytes())))
            errors.append("")
        except DigitrecError as e:
            images.append(np.zeros((28, 28), np.uint8))
            errors.append(str(e))
    return names, np.array(labels), np.stack(images), errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", type=Path, help="a folder of sets, each SET/<digit>/<file>")
    parser.add_argument("--model", help="run folder (default: the bundled model)")
    parser.add_argument("--save", type=Path, help="write every 28x28, answer and refusal to this .npz")
    parser.add_argument("--compare", type=Path, help="an .npz written by --save: print what changed")
    args = parser.parse_args()
    predictor = load_predictor(args.model)
    before = dict(np.load(args.compare, allow_pickle=False)) if args.compare else {}
    saved = {}
    print(f"{'set':10s} {'pictures':>8} {'read':>7} {'refused':>8} {'scribble':>9}" +
          (f" {'28x28s changed':>15} {'answers changed':>16}" if before else ""))
    for folder in sorted(p for p in args.sets.iterdir() if p.is_dir()):
        names, labels, images, errors = read_set(folder)
        refused = np.array([bool(e) for e in errors])
        guess = np.where(refused, -1, predictor.probabilities(images).argmax(1))
        scribbles = sum("scribble" in e for e in errors)
        line = f"{folder.name:10s} {len(names):8d} {(guess == labels).mean():7.2%} {refused.sum():8d} {scribbles:9d}"
        key = folder.name
        saved |= {f"{key}/names": np.array(names), f"{key}/images": images, f"{key}/guess": guess,
                  f"{key}/errors": np.array(errors)}
        if before:
            old_images, old_guess = before[f"{key}/images"], before[f"{key}/guess"]
            changed = (old_images != images).any(axis=(1, 2))
            line += f" {changed.sum():15d} {(old_guess != guess).sum():16d}"
            for i in np.flatnonzero(old_guess != guess):
                old = before[f"{key}/errors"][i] or f"read {old_guess[i]}"
                new = errors[i] or f"read {guess[i]}"
                line += f"\n    {key}/{names[i]} (a {labels[i]}): {old} -> {new}"
        print(line, flush=True)
        for name, error in zip(names, errors, strict=True):
            if "scribble" in error:
                print(f"    scribble: {key}/{name}: {error}")
    if args.save:
        np.savez_compressed(args.save, **saved)


if __name__ == "__main__":
    main()
