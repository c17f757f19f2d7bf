"""Whole numbers: a picture of one line of digits -> the digits, left to right, each with its box.

Segmentation guided by recognition. The picture becomes an ink map (the one preprocessing path).
Its connected pieces of ink, a piece wider than a digit cut at the thin places of its ink (touching
neighbours), are the atoms, ordered left to right. Every run of one to four neighbouring atoms is a
candidate digit (a 5 with a detached top, a 4 drawn in two strokes, a crossed 7 are two or three
atoms), all read by the classifier in one batch; dynamic programming then picks the split of the line
into digits whose readings are most probable together, weighed by how plausible each digit's width is.
A small atom may be left out as a mark that is not a digit (a comma, a dash, a stray dot): `rejected`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from digitrec.errors import BlankImageError, NoDigitError
from digitrec.inputs import softmax
from digitrec.preprocess import ink_map, ink_to_mnist

WORK_HEIGHT = 96  # the line is read at about this height: digits 40-90 px tall, enough for a 20x20 fit
MAX_ATOMS = 4  # a digit is at most this many atoms
DIGIT_COST = 1.0  # log-probability each digit must earn: one digit is not read as two without reason
SKIP_COST = 1.5  # log-probability of leaving a small mark out as not a digit
GAP_COST = 3.0  # log-probability of reading atoms with paper between them as one digit
CUT_COST = 1.5  # log-probability of cutting one piece of ink in two
CUT_BELOW = 0.6  # a piece is cut only where its column holds less than this share of its fullest column
SMALL = 0.5  # an atom lower than this share of the line's digit height may be such a mark


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
class _Atom:
    """Part of one connected piece of ink: its pixels (`mask`, within the box x0, y0, x1, y1)."""

    label: int
    x0: int
    x1: int
    y0: int
    y1: int
    mask: np.ndarray = field(repr=False)

    @property
    def centre(self) -> float:
        return (self.x0 + self.x1) / 2


def read_number(picture: Image.Image | np.ndarray, predictor) -> Reading:
    """Read one line of digits with a predictor (its `logits` and `config.temperature`).

    The split is chosen on the network's raw probabilities: calibration sharpens them, and a sharp
    reading of two touching digits as one would outbid the pair. The confidences reported are the
    calibrated ones."""
    try:
        ink, scale = ink_map(picture, WORK_HEIGHT)
    except BlankImageError as e:
        raise BlankImageError(f"no digits found: {e.what}", expected="a picture with handwritten digits") from None
    atoms, height = _atoms(ink)
    if not atoms:
        raise BlankImageError("no digits found", expected="a picture with handwritten digits")
    spans = [(i, j) for i in range(len(atoms)) for j in range(i + 1, min(len(atoms), i + MAX_ATOMS) + 1)]
    images, boxes = {}, {}
    for span in spans:
        crop, boxes[span] = _crop(ink, atoms[span[0] : span[1]])
        try:
            images[span] = ink_to_mnist(crop)
        except NoDigitError:
            continue
    keys = list(images)
    logits = predictor.logits(np.stack([images[k] for k in keys])) if keys else np.zeros((0, 10), np.float32)
    raw, calibrated = softmax(logits), softmax(logits, predictor.config.temperature)
    readings = {k: (p, _width_cost(atoms[k[0]:k[1]], int(p.argmax()), height)) for k, p in zip(keys, raw,
                                                                                             strict=True)}
    sure = dict(zip(keys, calibrated, strict=True))
    path, rejected = _best_split(atoms, readings, height)
    if not path:
        raise NoDigitError("no digits found", expected="a picture with handwritten digits")
    digits = []
    for i, j in path:
        p = sure[(i, j)]
        x0, y0, x1, y1 = boxes[(i, j)]
        box = [int(x0 * scale), int(y0 * scale), int(math.ceil(x1 * scale)), int(math.ceil(y1 * scale))]
        digits.append(DigitReading(int(p.argmax()), round(float(p.max()), 6), box))
    confidence = float(np.prod([d.confidence for d in digits]))
    return Reading("".join(str(d.digit) for d in digits), round(confidence, 6), digits, rejected,
                   np.stack([images[k] for k in path]))


def _atoms(ink: np.ndarray) -> tuple[list[_Atom], float]:
    """Connected pieces of ink (specks of a few pixels dropped), a piece wider than a digit cut at the
    thin places of its ink, left to right; and the line's digit height."""
    labels, count = ndimage.label(ink > 0.3, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    pieces = [(i, b) for i, b in enumerate(ndimage.find_objects(labels), start=1) if b is not None and sizes[i] >= 6]
    if not pieces:
        return [], 0.0
    heights = np.array([b[0].stop - b[0].start for _, b in pieces])
    height = float(np.median(heights[heights >= 0.5 * heights.max()]))
    pieces = [(i, b) for i, b in pieces if sizes[i] >= 0.01 * height**2]  # specks of paper grain
    atoms = []
    for label, (rows, cols) in pieces:
        mask = labels[rows, cols] == label
        seams = [np.zeros(mask.shape[0], int)]
        for place in _cut_places(mask, height):
            seams.append(np.maximum(_seam(np.where(mask, ink[rows, cols], 0), place, height), seams[-1] + 1))
        seams.append(np.full(mask.shape[0], mask.shape[1]))
        columns = np.arange(mask.shape[1])[None, :]
        for left, right in zip(seams, seams[1:], strict=False):
            part = mask & (columns >= left[:, None]) & (columns < right[:, None])
            ys, xs = np.nonzero(part)
            if len(ys):
                y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
                atoms.append(_Atom(label, cols.start + int(x0), cols.start + int(x1), rows.start + int(y0),
                                   rows.start + int(y1), part[y0:y1, x0:x1]))
    atoms.sort(key=lambda a: a.centre)
    return atoms, height


def _seam(ink: np.ndarray, place: int, height: float) -> np.ndarray:
    """The path from top to bottom, near column `place`, that crosses the least ink (moving one column
    per row at most, each step sideways costing a little): it follows the paper between two touching or
    overlapping digits where a straight cut would slice through both. Returns its column in every row."""
    h, w = ink.shape
    reach = max(2, int(0.25 * height))
    low, high = max(0, place - reach), min(w, place + reach + 1)
    band = ink[:, low:high].astype(np.float64)
    total = band[0].copy()
    came = np.zeros(band.shape, int)
    for y in range(1, h):
        options = np.stack([np.r_[np.inf, total[:-1] + 0.05], total, np.r_[total[1:] + 0.05, np.inf]])
        choice = options.argmin(axis=0)
        came[y] = choice - 1
        total = band[y] + options[choice, np.arange(len(total))]
    path = np.empty(h, int)
    path[-1] = int(total.argmin())
    for y in range(h - 1, 0, -1):
        path[y - 1] = path[y] + came[y, path[y]]
    return path + low


def _cut_places(mask: np.ndarray, height: float) -> list[int]:
    """Columns where a piece wider than a digit may be cut: the thin places of its ink (local minima of
    the column sums), at least a fifth of a digit from its ends and from each other."""
    if mask.shape[1] <= 0.8 * height:
        return []
    columns = ndimage.uniform_filter1d(mask.sum(axis=0).astype(float), 3)
    step = max(2, int(0.2 * height))
    places: list[int] = []
    for x in range(step, len(columns) - step):
        if columns[x] <= columns[x - 1] and columns[x] <= columns[x + 1] and columns[x] < CUT_BELOW * columns.max():
            if not places or x - places[-1] >= step:
                places.append(x)
            elif columns[x] < columns[places[-1]]:
                places[-1] = x
    return places


def _crop(ink: np.ndarray, atoms: list[_Atom]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The ink of some atoms, alone, and its box (x0, y0, x1, y1) in the ink map."""
    x0, x1 = min(a.x0 for a in atoms), max(a.x1 for a in atoms)
    y0, y1 = min(a.y0 for a in atoms), max(a.y1 for a in atoms)
    keep = np.zeros((y1 - y0, x1 - x0), bool)
    for a in atoms:
        keep[a.y0 - y0 : a.y1 - y0, a.x0 - x0 : a.x1 - x0] |= a.mask
    return np.where(keep, ink[y0:y1, x0:x1], 0), (x0, y0, x1, y1)


def _width_cost(atoms: list[_Atom], digit: int, height: float) -> float:
    """How implausible a digit of this size is, in log-probability: a 1 may be a sliver, no other digit;
    nothing is much wider than it is high, or much lower than the line's digits."""
    ratio = (max(a.x1 for a in atoms) - min(a.x0 for a in atoms)) / height
    tall = (max(a.y1 for a in atoms) - min(a.y0 for a in atoms)) / height
    low = 0.05 if digit == 1 else 0.3
    return 4 * max(0.0, low - ratio) / low + 8 * max(0.0, ratio - 1.0) + 12 * max(0.0, SMALL - tall)


def _gap_cost(atoms: list[_Atom], height: float) -> float:
    """Atoms with paper between them are rarely one digit (a digit's detached stroke overlaps the rest
    of it in x): each clear gap costs, the wider the more."""
    cost, right = 0.0, atoms[0].x1
    for atom in atoms[1:]:
        if atom.x0 > right:
            cost += GAP_COST + 10 * (atom.x0 - right) / height
        right = max(right, atom.x1)
    return cost


def _best_split(atoms: list[_Atom], readings: dict, height: float) -> tuple[list[tuple[int, int]], int]:
    """The runs of atoms that make the most probable digits together, and how many small atoms were left
    out as marks that are not digits (dynamic programming from left to right)."""
    best: list[tuple[float, list, int]] = [(0.0, [], 0)] + [(-math.inf, [], 0)] * len(atoms)
    for j in range(1, len(atoms) + 1):
        atom = atoms[j - 1]
        if atom.y1 - atom.y0 < SMALL * height and best[j - 1][0] - SKIP_COST > best[j][0]:
            best[j] = (best[j - 1][0] - SKIP_COST, best[j - 1][1], best[j - 1][2] + 1)
        for i in range(max(0, j - MAX_ATOMS), j):
            if (i, j) not in readings or best[i][0] == -math.inf:
                continue
            p, width_cost = readings[(i, j)]
            # Cutting through one piece of ink: its parts often read as digits too, so the cut must pay.
            cut = CUT_COST if i > 0 and atoms[i - 1].label == atoms[i].label else 0.0
            total = best[i][0] + math.log(max(float(p.max()), 1e-9)) - DIGIT_COST - width_cost - cut - \
                _gap_cost(atoms[i:j], height)
            if total > best[j][0]:
                best[j] = (total, best[i][1] + [(i, j)], best[i][2])
    return best[-1][1], best[-1][2]
