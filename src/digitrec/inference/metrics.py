"""Honest metrics on held-out data: accuracy (with a 95% interval), loss, per-class scores, confusion."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec import data
from digitrec.core import settings
from digitrec.core.constants import NUM_CLASSES, UNSURE_BELOW
from digitrec.core.errors import DigitrecError
from digitrec.data import Digits
from digitrec.inference.runs import RunConfig

ECE_BINS = 15


@dataclass
class Evaluation:
    accuracy: float
    loss: float
    n: int
    confusion: np.ndarray  # [true, predicted], of the pictures read
    probabilities: np.ndarray
    labels: np.ndarray
    refused: dict[str, str] = field(default_factory=dict)  # file -> why no digit was read: each an error
    read: np.ndarray | None = None  # [N] bool: False for a refused picture (None: every one was read)

    @property
    def predictions(self) -> np.ndarray:
        """The digit read for each picture; -1 where none was (a refused picture)."""
        predicted = self.probabilities.argmax(1)
        return predicted if self.read is None else np.where(self.read, predicted, -1)

    @property
    def interval95(self) -> tuple[float, float]:
        return wilson_interval(int(round(self.accuracy * self.n)), self.n)

    def per_class(self) -> list[dict]:
        rows = []
        for d in range(NUM_CLASSES):
            tp = int(self.confusion[d, d])
            predicted, actual = int(self.confusion[:, d].sum()), int(self.confusion[d].sum())
            precision = tp / predicted if predicted else 0.0
            recall = tp / actual if actual else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            rows.append({"digit": d, "precision": precision, "recall": recall, "f1": f1, "support": actual})
        return rows

    @property
    def ece(self) -> float:
        return expected_calibration_error(self.probabilities, self.labels, predicted=self.predictions)

    def unsure(self) -> dict:
        """How many readings fall below UNSURE_BELOW, and how accurate the rest are."""
        sure = self.probabilities.max(1) >= UNSURE_BELOW
        right = self.predictions == self.labels
        return {"threshold": UNSURE_BELOW, "share_unsure": float(1 - sure.mean()) if self.n else 0.0,
                "accuracy_when_sure": float(right[sure].mean()) if sure.any() else None}

    def as_dict(self) -> dict:
        low, high = self.interval95
        return {
            "accuracy": self.accuracy,
            "accuracy_ci95": [low, high],
            "loss": self.loss,
            "ece": self.ece,
            "unsure": self.unsure(),
            "n": self.n,
            "errors": int(self.n - round(self.accuracy * self.n)),
            "refused": self.refused,
            "per_class": self.per_class(),
            "confusion": self.confusion.tolist(),
        }


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's score interval for a proportion: unlike p ± z·se it stays inside [0, 1] and is honest
    near 100 %, where digit accuracies live."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS,
                               predicted: np.ndarray | None = None) -> float:
    """How far confidence is from accuracy: readings grouped into equal-width confidence bins, the gap
    between each bin's mean confidence and its accuracy, weighted by the bin's share (Guo et al. 2017).
    `predicted`: the digits read, where they are not simply the most probable (-1: none read)."""
    if len(labels) == 0:
        return 0.0
    confidence = probabilities.max(1)
    right = (probabilities.argmax(1) if predicted is None else predicted) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gaps = [abs(right[which == b].mean() - confidence[which == b].mean()) * (which == b).mean()
            for b in range(bins) if (which == b).any()]
    return float(sum(gaps))


def evaluate(probabilities: np.ndarray, digits: Digits) -> Evaluation:
    """Score probabilities [N, 10] against the labels of `digits`. A picture `digits` lists as refused (no
    digit in it) is an error: no digit read, an even 0.1 for each in the loss and the calibration."""
    labels = digits.y
    read = np.ones(len(labels), dtype=bool)
    read[list(digits.refused)] = False
    probabilities = np.where(read[:, None], probabilities, 1 / NUM_CLASSES).astype(np.float32)
    predicted = np.where(read, probabilities.argmax(1), -1)
    picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels[read], predicted[read]), 1)
    files = digits.files or [str(i) for i in range(len(labels))]
    return Evaluation(
        accuracy=float((predicted == labels).mean()),
        loss=float(-np.log(picked).mean()),
        n=len(labels),
        confusion=confusion,
        probabilities=probabilities,
        labels=labels,
        refused={files[i]: why for i, why in sorted(digits.refused.items())},
        read=None if read.all() else read,
    )


def held_out(path, run_config: RunConfig | None = None) -> tuple[Digits, str]:
    """The data a model is judged on, never what it trained on.

    A source's test split where it has one (MNIST, npz). A labelled file or folder without one is
    held out whole, unless it is the run's own training data: then its validation part, rebuilt
    from the run's seed and fraction."""
    if path is None and run_config and not settings.data_path():
        path = run_config.data.path
    resolved = data.resolve_data_path(path)
    splits = data.load_splits(resolved, keep_refused=True)
    if "test" in splits and splits["test"].y is not None:
        return splits["test"], "test"
    if "train" not in splits or splits["train"].y is None:
        raise DigitrecError("data has no labels to evaluate against", where=str(resolved))
    if run_config and run_config.data.path and Path(run_config.data.path) == resolved.resolve():
        recipe = run_config.recipe
        _, val_index = data.stratified_split(splits["train"].y, recipe.val_fraction, recipe.split_seed)
        if not len(val_index):
            raise DigitrecError("the model trained on all of this data; nothing is held out", where=str(resolved))
        return splits["train"].subset(val_index), "validation"
    return splits["train"], "held-out"
