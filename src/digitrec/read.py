"""Whole numbers: a picture of one line of digits -> the digits, left to right, each with its box.

Segmentation guided by recognition. The picture becomes an ink map (the one preprocessing path);
connected ink is grouped into marks (a 5's detached top, a 4 drawn in two strokes, a crossed 7 stay
one mark); marks much smaller than the line's digits are rejected (a comma, a dash, a stray dot);
a mark wider than one digit (touching or overlapping neighbours) is cut where the classifier reads
the pieces best: candidate cuts at the thin places of its ink, and the best set of cuts found by
dynamic programming over the classifier's log-probabilities, all pieces read in one batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from digitrec.errors import BlankImageError, NoDigitError
from digitrec.preprocess import ink_map, ink_to_mnist

WORK_HEIGHT = 96  # the line is read at about this height: digits 40-90 px tall, enough for a 20x20 fit
MIN_MARK_SHARE = 0.35  # a mark lower than this share of the line's digit height is not a digit
MAX_PIECES = 10  # at most this many digits in one touching run
CUT_PENALTY = 0.7  # log-probability a cut must win back: one digit is not read as two without reason


@dataclass
class DigitReading:
    digit: int
    confidence: float
    box: list[int]  # [x0, y0, x1, y1] in the input picture's pixels


@dataclass
class Reading:
    text: str
    confidence: float
    digits: list[DigitReading] = field(default_factory=list)
    rejected: int = 0  # marks that are not digits (a comma, a dash, a dot)
    crops: np.ndarray | None = field(default=None, repr=False)  # the 28x28 each digit was read from

    def as_dict(self) -> dict:
        return {"text": self.text, "confidence": self.confidence, "digits": [asdict(d) for d in self.digits],
                "rejected": self.rejected}


@dataclass
class _Mark:
    x0: int
    y0: int
    x1: int
    y1: int
    labels: set[int]

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def read_number(picture: Image.Image | np.ndarray, probabilities) -> Reading:
    """Read one line of digits. `probabilities`: uint8 [N, 28, 28] -> [N, 10] (a predictor's)."""
    ink, scale = ink_map(picture, WORK_HEIGHT)
    labels, marks = _marks(ink)
    if not marks:
        raise BlankImageError("no digits found", expected="a picture with handwritten digits")
    height = float(np.median([m.height for m in marks if m.height >= 0.5 * max(m.height for m in marks)]))
    digits_marks = [m for m in marks if m.height >= MIN_MARK_SHARE * height]
    rejected = len(marks) - len(digits_marks)
    pieces = []
    for mark in digits_marks:
        for x0, x1 in _candidate_cuts(ink, labels, mark, height):
            crop = _crop_of(ink, labels, mark, x0, x1)
            if crop is not None:
                pieces.append((mark, x0, x1, crop))
    readable = [(m, x0, x1, c) for m, x0, x1, c in pieces]
    images = []
    for _, _, _, crop in readable:
        try:
            images.append(ink_to_mnist(crop))
        except NoDigitError:
            images.append(None)
    batch = np.stack([im if im is not None else np.zeros((28, 28), np.uint8) for im in images]) if images else \
        np.zeros((0, 28, 28), np.uint8)
    probs = probabilities(batch) if len(batch) else np.zeros((0, 10), np.float32)
    scores = {(id(m), x0, x1): (float(p.max()), int(p.argmax()), im) for (m, x0, x1, _), p, im
              in zip(readable, probs, images, strict=True) if im is not None}
    readings, kept = [], []
    for mark in digits_marks:
        for x0, x1, (confidence, digit, image) in _best_cuts(mark, height, scores):
            ys = np.nonzero(_mask(labels, mark, x0, x1).any(axis=1))[0]
            y0, y1 = (mark.y0 + int(ys.min()), mark.y0 + int(ys.max()) + 1) if len(ys) else (mark.y0, mark.y1)
            box = [int(x0 * scale), int(y0 * scale), int(math.ceil(x1 * scale)), int(math.ceil(y1 * scale))]
            readings.append(DigitReading(digit, round(confidence, 6), box))
            kept.append(image)
    if not readings:
        raise NoDigitError("no digits found", expected="a picture with handwritten digits")
    confidence = float(np.prod([r.confidence for r in readings]))
    return Reading("".join(str(r.digit) for r in readings), round(confidence, 6), readings, rejected,
                   np.stack(kept))


def _marks(ink: np.ndarray) -> tuple[np.ndarray, list[_Mark]]:
    """Connected ink, grouped into marks: pieces that share most of their columns are one mark (the
    strokes of one digit), left to right. Specks of a few pixels are dropped."""
    labels, count = ndimage.label(ink > 0.3, structure=np.ones((3, 3)))
    boxes = ndimage.find_objects(labels)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    pieces = [_Mark(b[1].start, b[0].start, b[1].stop, b[0].stop, {i}) for i, b in enumerate(boxes, start=1)
              if b is not None and sizes[i] >= 6]
    pieces.sort(key=lambda m: m.x0)
    marks: list[_Mark] = []
    for piece in pieces:
        merged = False
        for mark in marks:
            shared = min(mark.x1, piece.x1) - max(mark.x0, piece.x0)
            if shared >= 0.6 * min(mark.width, piece.width):
                mark.x0, mark.y0 = min(mark.x0, piece.x0), min(mark.y0, piece.y0)
                mark.x1, mark.y1 = max(mark.x1, piece.x1), max(mark.y1, piece.y1)
                mark.labels |= piece.labels
                merged = True
                break
        if not merged:
            marks.append(piece)
    marks.sort(key=lambda m: m.x0)
    return labels, marks


def _mask(labels: np.ndarray, mark: _Mark, x0: int, x1: int) -> np.ndarray:
    window = labels[mark.y0 : mark.y1, x0:x1]
    return np.isin(window, list(mark.labels))


def _crop_of(ink: np.ndarray, labels: np.ndarray, mark: _Mark, x0: int, x1: int) -> np.ndarray | None:
    mask = _mask(labels, mark, x0, x1)
    if mask.sum() < 6:
        return None
    return np.where(mask, ink[mark.y0 : mark.y1, x0:x1], 0)


def _cut_places(ink: np.ndarray, labels: np.ndarray, mark: _Mark, height: float) -> list[int]:
    """Columns where a wide mark may be cut: the thin places of its ink (local minima of the column
    sums), at least a fifth of a digit from the ends and from each other."""
    columns = _mask(labels, mark, mark.x0, mark.x1).sum(axis=0).astype(float)
    columns = ndimage.uniform_filter1d(columns, 3)
    step = max(2, int(0.2 * height))
    places = []
    for x in range(step, len(columns) - step):
        if columns[x] <= columns[x - 1] and columns[x] <= columns[x + 1] and columns[x] < 0.6 * columns.max():
            if not places or x - places[-1] >= step:
                places.append(x)
            elif columns[x] < columns[places[-1]]:
                places[-1] = x
    return [mark.x0 + x for x in places]


def _candidate_cuts(ink, labels, mark: _Mark, height: float) -> list[tuple[int, int]]:
    """Every stretch between two cut places (or the mark's ends) narrow enough to be one digit."""
    places = [mark.x0, *_cut_places(ink, labels, mark, height), mark.x1] if mark.width > 0.9 * height \
        else [mark.x0, mark.x1]
    mark.places = places  # type: ignore[attr-defined]
    spans = []
    for i in range(len(places)):
        for j in range(i + 1, min(len(places), i + 4)):
            if places[j] - places[i] <= 1.3 * height or (i == 0 and j == len(places) - 1):
                spans.append((places[i], places[j]))
    return spans


def _best_cuts(mark: _Mark, height: float, scores: dict) -> list[tuple[int, int, tuple]]:
    """The split of a mark into digits whose readings are most probable together (dynamic programming
    over its cut places); a digit costs CUT_PENALTY, so one digit is not read as two without reason."""
    places = mark.places  # type: ignore[attr-defined]
    best: list[tuple[float, list]] = [(0.0, [])] + [(-math.inf, [])] * (len(places) - 1)
    for j in range(1, len(places)):
        for i in range(max(0, j - 3), j):
            score = scores.get((id(mark), places[i], places[j]))
            if score is None or best[i][0] == -math.inf:
                continue
            total = best[i][0] + math.log(max(score[0], 1e-6)) - CUT_PENALTY
            if total > best[j][0] and len(best[i][1]) < MAX_PIECES:
                best[j] = (total, best[i][1] + [(places[i], places[j], score)])
    return best[-1][1]
