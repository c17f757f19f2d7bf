"""Tightly cropped small pictures, as several collections store digits: MNIST validation digits (held out by
the run's split, never trained on) cropped to their ink and put in a 16x16 box, either fitted (aspect kept)
or stretched to fill it, grey or cut to black and white, scaled up 4x, read through `preprocess.to_mnist`.

    DIGITREC_DATA=../shared/data/mnist python scripts/probe_tight_crops.py [--model RUN] [--count 1500]

Prints accuracy per style, per digit, and the commonest confusions. A probe for finding faults, not a set
to choose on: the project's `boxed` set (make_realworld.py) is the stretched style at other scales.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterable

import numpy as np
from PIL import Image

from digitrec import data, preprocess, synthetic
from digitrec.errors import DigitrecError
from digitrec.predict import OnnxPredictor, Predictor, load_predictor

SIDE = 16
STYLES = {"fitted, grey": (False, False), "stretched, grey": (True, False), "stretched, black and white": (True, True)}


def tight_box(image: np.ndarray, stretch: bool, binary: bool) -> Image.Image:
    crop = Image.fromarray(synthetic.crop_to_ink(image))
    if stretch:
        box = crop.resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    else:
        scale = SIDE / max(crop.size)
        small = crop.resize((max(1, round(crop.size[0] * scale)), max(1, round(crop.size[1] * scale))),
                            Image.Resampling.BILINEAR)
        box = Image.new("L", (SIDE, SIDE), 0)
        box.paste(small, ((SIDE - small.size[0]) // 2, (SIDE - small.size[1]) // 2))
    pixels = np.asarray(box)
    if binary:
        pixels = np.where(pixels > 100, 255, 0).astype(np.uint8)
    return Image.fromarray(255 - pixels).resize((SIDE * 4, SIDE * 4), Image.Resampling.NEAREST)


def probe_setup(description: str, count: int) -> tuple[np.ndarray, np.ndarray, Predictor | OnnxPredictor]:
    """A probe's command line (--model, --data, --count, --val-fraction): the first `count` validation digits
    of seed 0's split, their labels, and the model to read them."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="run folder (default: the bundled model)")
    parser.add_argument("--data", help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--count", type=int, default=count)
    parser.add_argument("--val-fraction", type=float, default=0.05)
    args = parser.parse_args()
    _, val = data.load_for_training(data.resolve_data_path(args.data), args.val_fraction, 0)
    return val.x[: args.count], val.y[: args.count], load_predictor(args.model)


def probe_read(pictures: Iterable, labels: np.ndarray,
               predictor: Predictor | OnnxPredictor) -> tuple[np.ndarray, np.ndarray, int]:
    """Each picture through `preprocess.to_mnist` and the model: the labels of those read, what they were
    read as, and how many were refused."""
    read, truth, refused = [], [], 0
    for picture, label in zip(pictures, labels, strict=True):
        try:
            read.append(preprocess.to_mnist(picture))
            truth.append(label)
        except DigitrecError:
            refused += 1
    guess = predictor.probabilities(np.stack(read)).argmax(1) if read else np.array([], int)
    return np.array(truth, int), guess, refused



def report_condition(name: str, pictures: Iterable, labels: np.ndarray, predictor: Predictor | OnnxPredictor,
                     width: int = 44, confusions: int = 3) -> None:
    """One line of a probe's table: the condition, the share of all `labels` read right (a refused picture
    counts as wrong), how many were refused, and the commonest confusions (true, read)."""
    truth, guess, refused = probe_read(pictures, labels, predictor)
    wrong = guess != truth
    pairs = Counter(zip(truth[wrong].tolist(), guess[wrong].tolist(), strict=True)).most_common(confusions)
    print(f"{name:{width}s} {(len(truth) - wrong.sum()) / len(labels):7.2%} {refused:8d}  {pairs}")

def main() -> None:
    images, labels, predictor = probe_setup(__doc__, 1500)
    for style, (stretch, binary) in STYLES.items():
        truth, guess, refused = probe_read((tight_box(image, stretch, binary) for image in images), labels, predictor)
        wrong = guess != truth
        print(f"{style:28s} {1 - wrong.mean():.2%} of {len(truth)} ({refused} refused)")
        print("    per digit:", " ".join(f"{d}:{(guess[truth == d] == d).mean():.0%}" for d in range(10)))
        pairs = Counter(zip(truth[wrong].tolist(), guess[wrong].tolist(), strict=True))
        print("    confusions (true, read):", pairs.most_common(5))


if __name__ == "__main__":
    main()
