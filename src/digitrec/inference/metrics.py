"""Honest metrics on held-out data: accuracy (with a 95% interval), loss, per-class scores, confusion."""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec import data
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
    if path is None and run_config and not os.environ.get(data.DATA_ENV):
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


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the digits inserted, dropped or changed to turn `a` into `b`."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def score_numbers(answers: list[tuple[str, str | None, str]]) -> dict:
    """(true text, text read or None, group) -> string accuracy and digit accuracy (1 - edit distance /
    length), overall, per group and per length."""
    def summary(rows: list[tuple[str, str | None, str]]) -> dict:
        right = [read == true for true, read, _ in rows]
        digits = [max(0.0, 1 - edit_distance(true, read or "") / len(true)) for true, read, _ in rows]
        return {"n": len(rows), "string_accuracy": float(np.mean(right)), "digit_accuracy": float(np.mean(digits))}

    groups = sorted({g for _, _, g in answers})
    lengths = sorted({len(t) for t, _, _ in answers})
    return {"all": summary(answers),
            "groups": {g: summary([r for r in answers if r[2] == g]) for g in groups},
            "lengths": {n: summary([r for r in answers if len(r[0]) == n]) for n in lengths}}


NUMBERS = "numbers.csv"
NUMBERS_MAX_BYTES = 64 << 20  # a bench of a million numbers is 40 MB: more is not a bench, and is read whole
NUMBERS_MAX_FIELD = 4096  # characters: a path's limit on Linux; no line of digits in one picture is longer
_DIGITS = frozenset("0123456789")


def load_numbers(folder: Path) -> list[tuple[str, str, str]]:
    """A folder's numbers.csv (file,text[,group], as scripts/make_numbers.py writes it; a UTF-8 byte-order
    mark is accepted) -> (file, text, group) rows. Anything else is refused in one line naming the file, the
    line and what was expected: a row with too few or too many fields, an empty or non-digit text, a file
    listed twice, bytes that are not UTF-8, a field over NUMBERS_MAX_FIELD, a file that cannot be read."""
    path = Path(folder) / NUMBERS
    if not path.is_file():
        raise DigitrecError("no numbers.csv to score against", where=str(folder), expected="file,text,group rows")
    text = _numbers_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader, [])]
        if "file" not in header or "text" not in header:
            raise DigitrecError(f"header {','.join(header)[:80]!r} has no file and text columns",
                                where=f"{path}, line 1", expected="a first line file,text,group")
        rows, seen = [], {}
        for row in reader:
            if row:  # blank lines are skipped
                rows.append(_number_row(row, header, f"{path}, line {reader.line_num}", seen))
    except csv.Error as e:
        raise DigitrecError(f"not a CSV row ({e})", where=f"{path}, line {reader.line_num}",
                            expected="file,text,group rows") from None
    if not rows:
        raise DigitrecError("numbers.csv lists no pictures", where=str(path), expected="file,text,group rows")
    return rows


def _numbers_text(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(NUMBERS_MAX_BYTES + 1)
    except OSError as e:
        raise DigitrecError(f"cannot read numbers.csv ({e.strerror or e})", where=str(path)) from None
    if len(raw) > NUMBERS_MAX_BYTES:
        raise DigitrecError(f"numbers.csv is over {NUMBERS_MAX_BYTES >> 20} MB", where=str(path),
                            expected="a file,text,group list of a bench's pictures")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DigitrecError(f"byte 0x{raw[e.start]:02x} is not UTF-8 text", where=f"{path}, line {line}",
                            expected="numbers.csv saved as UTF-8") from None


def _number_row(row: list[str], header: list[str], where: str, seen: dict[str, str]) -> tuple[str, str, str]:
    """One row of numbers.csv as (file, text, group); `seen`: file -> where it was first listed."""
    if len(row) != len(header):
        raise DigitrecError(f"{len(row)} fields, the header has {len(header)}", where=where,
                            expected=",".join(header) + " (quote a file name that holds a comma)")
    longest = max(row, key=len)
    if len(longest) > NUMBERS_MAX_FIELD:
        raise DigitrecError(f"a field of {len(longest):,} characters", where=where,
                            expected=f"fields of at most {NUMBERS_MAX_FIELD:,}")
    cells = dict(zip(header, row, strict=True))
    file, text, group = cells["file"], cells["text"].strip(), cells.get("group", "").strip() or "all"
    if not file.strip():
        raise DigitrecError("no file name", where=where, expected="the picture's path in the folder")
    if not text or not set(text) <= _DIGITS:
        raise DigitrecError(f"text {text!r}" if text else "empty text", where=where,
                            expected="the digits 0-9 the picture shows")
    if file in seen:
        raise DigitrecError(f"{file[:80]!r} is listed again (first at {seen[file].rsplit(', ', 1)[-1]})",
                            where=where, expected="each picture once")
    seen[file] = where
    return file, text, group


def score_folder(folder: Path, readings: dict[str, str | None]) -> dict:
    """`score_numbers` for a folder's numbers.csv (file,text[,group]) and the texts read, keyed by file."""
    return score_numbers([(text, readings.get(file), group) for file, text, group in load_numbers(folder)])
