"""Whole numbers: a picture of one line of digits -> the digits, left to right, each with its box; and the
signs people write inside numbers (`.` `,` `-` `/` `:`) where the line model reads them.

Segmentation guided by recognition. The picture becomes an ink map (the one preprocessing path).
Its connected pieces of ink, a piece wider than a digit cut at the thin places of its ink (touching
neighbours), are the atoms, ordered left to right. Every atom, and every run of two to four neighbouring
atoms with no paper between them and at most two digit heights wide, is a candidate digit (a 5 with a
detached top, a 4 drawn in two strokes, a crossed 7 are two or three atoms), all read by the classifier in
one batch (the other runs in a second, only where these make no split); dynamic programming then picks the
split of the line into digits whose readings are most probable together, weighed by how plausible each
digit's width is.
A small atom may be left out as a mark that is not a digit (a comma, a dash, a stray dot): `rejected`.
Signs come from the line model (segmentation reads digits only): each is put between the digits where the
line model read it, boxed by the ink under its columns.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from digitrec.core.arrays import softmax
from digitrec.core.errors import BlankImageError, NoDigitError
from digitrec.imaging.fit import ink_to_mnist, to_mnist
from digitrec.imaging.ink import ink_map
from digitrec.imaging.morphology import EIGHT_CONNECTED
from digitrec.imaging.slant import deslanted
from digitrec.reading.line import BLANK, MARGIN, STRIDE, WORK_HEIGHT, LineDigit, LineInput, LineModel, decode, to_line
from digitrec.reading.values import NO_CALENDAR, decode_value, is_impossible_date, is_value

# Where segmentation reads one digit at least this sure and the line model two, one of them less sure than
# DOUBT_PAIR, the picture is one digit (read as `predict` reads it). Chosen on validation numbers and
# digits: agreement with `predict` 99.87 -> 99.93 %, overlapping numbers 93.0 -> 92.7 %, the rest unchanged.
SURE_SINGLE = 0.99
DOUBT_PAIR = 0.97
# ... or when it is this many times surer than the pair as a whole (validation: agreement 99.90 -> 99.93 %,
# one number of 4,000 gained, none lost).
SINGLE_OVER_PAIR = 1.5
# Where both readers find as many digits and differ on some, each such digit is segmentation's when its
# confidence is at least this times the line model's, else the line model's (chosen on validation numbers).
SEGMENT_OVER_LINE = 1.1
MAX_ATOMS = 4  # a digit is at most this many atoms
# A run of two atoms or more with paper between them (in the atoms' order, by their middles) or wider than
# MAX_DIGIT_WIDTH digit heights (a width cost over 8) is read only where the other runs make no split at all
# (a blot, a row of dots); one atom is always read. Such runs were 55 % of 17,576 on validation values and pages
# (50 % with a gap, 19 % too wide) and none of the 2,984 chosen: without them every validation number, value and
# page field reads the same, a line a third sooner (decision 0022).
MAX_DIGIT_WIDTH = 2.0
DIGIT_COST = 1.0  # log-probability each digit must earn: one digit is not read as two without reason
SKIP_COST = 1.5  # log-probability of leaving a small mark out as not a digit
GAP_COST = 3.0  # log-probability of reading atoms with paper between them as one digit
CUT_COST = 1.5  # log-probability of cutting one piece of ink in two
CUT_BELOW = 0.6  # a piece is cut only where its column holds less than this share of its fullest column
SMALL = 0.5  # an atom lower than this share of the line's digit height may be such a mark
# Where segmentation sees one digit and the line model two, ink narrower than this share of the digit
# height is one digit (two digits side by side are about as wide as they are tall). Chosen on validation.
ONE_DIGIT_WIDTH = 0.9
# Bounded work for any picture, checked before any piece of it reaches preprocessing or the network:
# - MIN_DIGIT_HEIGHT: a picture lower than this many pixels holds no digit (the smallest font that draws the ten
#   digits apart is 3x5): a 640x1 picture was read as "55222". Nor does ink spanning fewer than MIN_INK_HEIGHT
#   of the picture's rows (a rule, a row of dashes). Not 5 there: in an 8x8 scan the ink over the threshold often
#   spans 3-4 rows, and 31 of 300 MNIST test digits reduced to 8x8 and read right would have been refused; at 3,
#   none of those 300 at 28, 12, 8 or 6 pixels a side reads differently.
# - MAX_ASPECT: a picture more than this many times as wide as it is high is no line of digits. The widest
#   validation line (8 digits) is 6.8 to 1, so 32 to 1 leaves room for about 35 digits. Past it the ink map's
#   paper estimate, sized by the picture's longer side, costs the square of the width: a 40000x12 PNG of 7.8 KB
#   took 2.4 GB and 11 s in `ink_map` alone; at 32 to 1 it takes at most about 70 MB and 0.2 s.
# - MAX_PIECES: a line is cut into at most this many pieces (atoms); every run of up to MAX_ATOMS of them is a
#   candidate digit, each through `ink_to_mnist` and the network, at about 1 ms a candidate. Validation lines of
#   8 digits have at most 22 pieces (2.75 a digit), so 128 leaves room for a 35-digit line and bounds a picture
#   of noise at about 500 candidates, half a second, instead of 20,162 pieces, 80,000 candidates and 2.4 GB.
# A sign reader's reading of a line stands only where it reads a sign this surely, the lowest threshold at which
# plain numbers lose nothing, and where its text is a value's shape (`values.is_value`). Validation, read with
# the shapes of values (`values.decode_value`), threshold 0.5 / 0.6 / 0.7 / 0.9: of 4,600 plain numbers, 2 / 1
# / 0 / 0 that the digits' line model reads right read with a false point (`4.81`, at 0.61); 1,350 values with
# signs 96.3 / 96.2 / 96.1 / 95.4 % right (a time or a date whose sign was read below the threshold loses
# it). 600 plain numbers in the project's pen-drawn digits, whose 1s have a flag, at 0.7: 592 right, 8 with a
# 1 read surely as a slash (`474/459`); 598 with the shape required, no value lost.
# A value the sign reader reads with a sign under SIGN_SURE, read then without it, keeps that doubt: its
# confidence times one less the sign's. Validation values (900 pen-drawn): at the threshold that keeps 90 %,
# 97.4 % right without it and 97.5 % with it; the read rate at a 0.5 % error rate 52.7 and 54.3 %; plain
# numbers (2,000) the same.
SIGN_SURE = 0.7
MIN_DIGIT_HEIGHT = 5
MIN_INK_HEIGHT = 3
MAX_ASPECT = 32
MAX_PIECES = 128


@dataclass
class DigitReading:
    digit: int | str  # 0-9, or a sign read inside the number: one of `.` `,` `-` `/` `:`
    confidence: float
    box: list[int]  # [x0, y0, x1, y1] in the input picture's pixels


@dataclass
class Reading:
    text: str
    confidence: float
    digits: list[DigitReading] = field(default_factory=list)
    rejected: int = 0  # marks that are neither digits nor signs read as such (a stray dot, a dash)
    crops: np.ndarray | None = field(default=None, repr=False)  # the 28x28 each digit (or sign) was read from

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


def read_number(picture: Image.Image | np.ndarray, predictor, line_model: LineModel | None = None,
                digits_only: bool = False, deslant: bool = True) -> Reading:
    """Read one line of digits with a predictor (its `logits` and `config.temperature`) and, when the run
    has one, its line model; with the signs the line model reads between them unless `digits_only`.

    Two readers of the same ink map: segmentation (below) and the line model, which reads the whole line
    at once and was trained on touching and overlapping digits (`_with_line_model`). Without a line model,
    segmentation alone (digits only). When the line model has a sign reader beside it (`line_model.signs`,
    trained with the signs inside numbers) and signs are wanted, the sign reader's reading stands where it
    reads a sign at SIGN_SURE or more and makes a value's shape; elsewhere the digits' own line model reads
    the line, so a number written without signs reads as it does without a sign reader unless a sign is read
    in it that surely, making a value (none of 4,600 validation numbers). The ink map and segmentation are
    made once for both. With `deslant`, a line leaning further than MNIST's writers leant is read at their usual
    slant (`imaging.slant`), its boxes given back in the picture's pixels (a row of digit boxes is read without:
    each digit stands alone in its box). A date no calendar has is read again with the network's other readings
    of its digits (`_possible`, which calls `predictor.probabilities`)."""
    _check_shape(picture)
    try:
        ink, scale = ink_map(picture, WORK_HEIGHT)
    except BlankImageError as e:
        raise BlankImageError(f"no digits found: {e.what}", expected="a picture with handwritten digits") from None
    # a line leaning further than MNIST's writers leant, read at their usual slant
    ink, shear = deslanted(ink) if deslant else (ink, None)
    atoms, height = _atoms(ink)
    if not atoms:
        raise BlankImageError("no digits found", expected="a picture with handwritten digits")
    _check_ink_height(ink, scale)
    try:
        segmented = _segmented(ink, atoms, height, predictor)
    except NoDigitError:
        segmented = None
    reading, doubted = None, 0.0
    signs = getattr(line_model, "signs", None)
    if signs is not None and not digits_only:
        try:
            reading = _with_line_model(picture, predictor, signs, False, ink, atoms, height, segmented)
        except (NoDigitError, BlankImageError):
            reading = None  # the digits' line model reads it, or says why it cannot (a broken model: raised)
        if reading is not None and not signed_value(reading):
            # no sign read surely, or signs that make no value (`474/459`: a flagged 1 read as /); a value read
            # with a doubtful sign leaves that doubt on the reading without it
            doubted = max(_sign_confidences(reading), default=0.0) if is_value(reading.text) else 0.0
            reading = None
    if reading is None:
        reading = _with_line_model(picture, predictor, line_model, digits_only, ink, atoms, height, segmented)
    if reading is None:
        raise NoDigitError("no digits found", expected="a picture with handwritten digits")
    if doubted:  # the reading says no sign stands where the sign reader saw one, `doubted` likely
        reading.confidence = round(reading.confidence * (1.0 - doubted), 6)
    if is_impossible_date(reading.text):
        reading = _possible(reading, predictor)
    for d in reading.digits:  # boxes from the ink map's pixels to the picture's
        x0, y0, x1, y1 = shear.box_back(d.box) if shear is not None else d.box
        d.box = [int(x0 * scale), int(y0 * scale), int(math.ceil(x1 * scale)), int(math.ceil(y1 * scale))]
    return reading


def _possible(reading: Reading, predictor) -> Reading:
    """A date no calendar has (`values.is_impossible_date`: `2975-01-26`) read again with the network's other
    readings of its digits (`predictor.probabilities` of the 28x28s they were read from): of the texts that one
    or two digits' second or third readings make, those that are calendar dates weigh their digits' probability
    ratios, the text read weighs NO_CALENDAR (as `values.decode_value` weighs a date's shape that is no calendar
    date), and the heaviest is taken, its changed digits at their share of the weight together. Where the text
    read stays, its confidence is NO_CALENDAR times what it was: a date no calendar has is not written, so the
    reading is almost surely wrong and goes to a person whatever the threshold."""
    places = [n for n, d in enumerate(reading.digits) if isinstance(d.digit, int)]
    options: list[tuple[float, dict[int, int]]] = [(NO_CALENDAR, {})]
    if reading.crops is not None and len(reading.crops) == len(reading.digits) and places:
        p = predictor.probabilities(reading.crops[places])
        read = [reading.digits[n].digit for n in places]
        own = np.array([max(float(p[k, d]), 1e-6) for k, d in enumerate(read)])  # 1e-6: no division by zero
        others = [[int(c) for c in np.argsort(-p[k])[:3] if c != read[k]][:2] for k in range(len(places))]
        changes = [{k: c} for k in range(len(places)) for c in others[k]]
        changes += [{k: c, j: e} for k in range(len(places)) for j in range(k + 1, len(places))
                    for c in others[k] for e in others[j]]
        for change in changes:
            text = [str(d.digit) for d in reading.digits]
            for k, c in change.items():
                text[places[k]] = str(c)
            if not is_impossible_date("".join(text)):
                options.append((float(np.prod([p[k, c] / own[k] for k, c in change.items()])), change))
    weight, change = max(options, key=lambda o: o[0])
    if not change:
        reading.confidence = round(reading.confidence * NO_CALENDAR, 6)
        return reading
    share = (weight / sum(w for w, _ in options)) ** (1 / len(change))  # the changed digits' product: the share
    digits = list(reading.digits)
    for k, c in change.items():
        digits[places[k]] = DigitReading(c, round(share, 6), digits[places[k]].box)
    confidence = float(np.prod([d.confidence for d in digits]))
    return Reading("".join(str(d.digit) for d in digits), round(confidence, 6), digits, reading.rejected,
                   reading.crops)


def signed_value(reading: Reading) -> bool:
    """Whether a reading is a value written with its signs (a date, a time, an amount with its point or its
    thousands, a number below zero, a range): a sign read at SIGN_SURE or more, in a value's shape
    (`values.is_value`). A sign reader's reading stands only so; printed words read as digits make none."""
    return max(_sign_confidences(reading), default=0.0) >= SIGN_SURE and is_value(reading.text)


def _sign_confidences(reading: Reading) -> list[float]:
    return [d.confidence for d in reading.digits if isinstance(d.digit, str)]


def _with_line_model(picture: Image.Image | np.ndarray, predictor, line_model: LineModel | None, digits_only: bool,
                     ink: np.ndarray, atoms: list[_Atom], height: float, reading: Reading | None) -> Reading | None:
    """Segmentation's reading (None: it found none) combined with the line model's. Where the line model sees
    one digit, the picture is read as `predict` reads it (so the two agree on single digits); where both
    readers agree, segmentation's reading stands, with its exact boxes; where they disagree, the line
    model's, which is right far more often on validation lines (MODEL_CARD.md), each digit boxed by the ink
    under the columns it was read from. A digits-only model's digits are its best path; a sign reader's digits
    and signs come from one reading weighed by the shapes of values (`values.decode_value`), the signs then put
    between the digits (`_with_signs`)."""
    if line_model is None:
        return reading
    line = to_line(ink, height)
    probabilities = line_model.probabilities(line.pixels)
    if digits_only or probabilities.shape[1] <= BLANK + 1:
        line_digits, signs = decode(probabilities, only_digits=True), []
    else:  # digits and signs from one reading, weighed by the shapes of values (`values.decode_value`)
        chars = decode_value(probabilities)
        line_digits, signs = [c for c in chars if not c.is_sign], [c for c in chars if c.is_sign]
    text = "".join(str(d.digit) for d in line_digits)
    segmented = len(reading.digits) if reading is not None else 0
    pair = np.prod([d.confidence for d in line_digits]) if len(line_digits) == 2 else 1.0
    doubtful_pair = segmented == 1 and len(line_digits) == 2 and (
        (reading.confidence >= SURE_SINGLE and min(d.confidence for d in line_digits) < DOUBT_PAIR)
        or reading.confidence >= SINGLE_OVER_PAIR * pair)
    one_digit = len(line_digits) == 1 or (segmented <= 1 and not line_digits) or doubtful_pair
    if reading is not None and one_digit and not signs:  # with a sign beside it, the picture is no one digit
        reading = _as_one_digit(picture, predictor, reading)
    elif reading is not None and text != reading.text and len(line_digits) == len(reading.digits):
        reading = _digit_by_digit(reading, line_digits)
    elif line_digits and (reading is None or text != reading.text):
        reading = _from_line(ink, line, line_digits, atoms, height, reading)
    if reading is not None and signs:
        reading = _with_signs(ink, line, line_digits, signs, atoms, height, reading)
    return reading


def _check_shape(picture: Image.Image | np.ndarray) -> None:
    """Refuses, from its size alone, a picture that can hold no line of digits (MIN_DIGIT_HEIGHT, MAX_ASPECT)."""
    size = picture.size if isinstance(picture, Image.Image) else np.shape(picture)[1::-1]
    if len(size) != 2:
        return  # not a picture at all: `ink_map` says so
    width, height = size
    if height < MIN_DIGIT_HEIGHT:
        raise NoDigitError(f"no digits found: the picture is {_pixels(height)} high",
                           expected=f"digits at least {MIN_DIGIT_HEIGHT} pixels high")
    if width > MAX_ASPECT * height:
        raise NoDigitError(f"no digits found: the picture is {width}x{height} pixels, {width / height:.0f} times "
                           "as wide as it is high", expected=f"one line of digits, at most {MAX_ASPECT} to 1")


def _check_ink_height(ink: np.ndarray, scale: float) -> None:
    """Refuses ink that spans fewer than MIN_INK_HEIGHT of the picture's rows (a rule, a row of dashes)."""
    rows = np.flatnonzero((ink > 0.3).any(axis=1))
    span = round((rows[-1] + 1 - rows[0]) * scale)
    if span < MIN_INK_HEIGHT:
        raise NoDigitError(f"no digits found: the ink is {_pixels(span)} high",
                           expected=f"digits at least {MIN_DIGIT_HEIGHT} pixels high")


def _pixels(count: int) -> str:
    return f"{count} pixel{'s' * (count != 1)}"


def _too_many_pieces(count: int) -> NoDigitError:
    return NoDigitError(f"no digits found: {count:,} pieces of ink (noise, not writing)",
                        expected=f"one line of digits, at most {MAX_PIECES} pieces of ink")


def _as_one_digit(picture: Image.Image | np.ndarray, predictor, segmented: Reading) -> Reading:
    """The picture as one digit, through `predict`'s own path (the whole picture to 28x28), boxed where
    segmentation found its ink."""
    try:
        image = to_mnist(picture)
    except NoDigitError:
        return segmented
    p = softmax(predictor.logits(image[None]), predictor.config.temperature)[0]
    boxes = np.array([d.box for d in segmented.digits])
    box = [int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max())]
    digit = DigitReading(int(p.argmax()), round(float(p.max()), 6), box)
    return Reading(str(digit.digit), digit.confidence, [digit], segmented.rejected, image[None])


def _segmented(ink: np.ndarray, atoms: list[_Atom], height: float, predictor) -> Reading:
    """Segmentation's reading, boxes in the ink map's pixels. The split is chosen on the network's raw
    probabilities: calibration sharpens them, and a sharp reading of two touching digits as one would
    outbid the pair. The confidences reported are the calibrated ones."""
    spans = [(i, j) for i in range(len(atoms)) for j in range(i + 1, min(len(atoms), i + MAX_ATOMS) + 1)]
    likely = [s for s in spans if s[1] == s[0] + 1 or _may_be_one_digit(atoms[s[0] : s[1]], height)]
    candidates = _candidates(ink, atoms, height, predictor, likely)
    path, rejected = _best_split(atoms, candidates, height)
    if not path:  # no split of the likely candidates (a blot, a row of dots): every run is read, at its cost
        candidates |= _candidates(ink, atoms, height, predictor, [s for s in spans if s not in likely])
        path, rejected = _best_split(atoms, candidates, height)
    if not path:
        raise NoDigitError("no digits found", expected="a picture with handwritten digits")
    chosen = [candidates[k] for k in path]
    digits = [DigitReading(int(c.sure.argmax()), round(float(c.sure.max()), 6), list(c.box)) for c in chosen]
    confidence = float(np.prod([d.confidence for d in digits]))
    return Reading("".join(str(d.digit) for d in digits), round(confidence, 6), digits, rejected,
                   np.stack([c.image for c in chosen]))


@dataclass
class _Candidate:
    """A run of atoms read as one digit."""

    box: tuple[int, int, int, int]  # in the ink map
    image: np.ndarray = field(repr=False)  # its 28x28
    raw: np.ndarray  # the network's probabilities, for the split
    sure: np.ndarray  # calibrated, for the confidence reported
    width_cost: float  # `_width_cost` of the digit it reads


def _candidates(ink: np.ndarray, atoms: list[_Atom], height: float, predictor,
                spans: list[tuple[int, int]]) -> dict[tuple[int, int], _Candidate]:
    """The runs of atoms that read as a digit (preprocessing refuses the others), all read in one batch."""
    crops = {}
    for span in spans:
        crop, box = _crop(ink, atoms[span[0] : span[1]])
        try:
            crops[span] = (box, ink_to_mnist(crop))
        except NoDigitError:
            continue
    if not crops:
        return {}
    logits = predictor.logits(np.stack([image for _, image in crops.values()]))
    raw, calibrated = softmax(logits), softmax(logits, predictor.config.temperature)
    return {span: _Candidate(box, image, p, q, _width_cost(atoms[span[0] : span[1]], int(p.argmax()), height))
            for (span, (box, image)), p, q in zip(crops.items(), raw, calibrated, strict=True)}


def _digit_by_digit(segmented: Reading, line_digits: list[LineDigit]) -> Reading:
    """Both readers found the same digits in the same places and differ on some: each is segmentation's
    reading when it is clearly surer than the line model's (segmentation's network reads one clean digit
    better than the line model does), else the line model's; boxes and crops are segmentation's."""
    digits = [own if own.digit == other.digit or own.confidence >= SEGMENT_OVER_LINE * other.confidence
              else DigitReading(other.digit, round(other.confidence, 6), own.box)
              for own, other in zip(segmented.digits, line_digits, strict=True)]
    confidence = float(np.prod([d.confidence for d in digits]))
    return Reading("".join(str(d.digit) for d in digits), round(confidence, 6), digits, segmented.rejected,
                   segmented.crops)


def _from_line(ink: np.ndarray, line: LineInput, line_digits: list[LineDigit], atoms: list[_Atom], height: float,
               segmented: Reading | None) -> Reading:
    """The line model's reading. Its boxes: segmentation's when it found as many digits (the same digits,
    read differently), else the ink under the columns each digit was read from."""
    digits, crops = [], []
    same_count = segmented is not None and len(segmented.digits) == len(line_digits)
    for n, d in enumerate(line_digits):
        if same_count:
            box = segmented.digits[n].box
        else:
            x0, x1 = line.ink_columns(d.first_frame, d.last_frame)
            x0, x1 = max(0, x0), min(ink.shape[1], max(x1, x0 + 1))
            rows = np.flatnonzero((ink[:, x0:x1] > 0.3).any(axis=1))
            box = [x0, int(rows[0]), x1, int(rows[-1]) + 1] if len(rows) else [x0, 0, x1, ink.shape[0]]
        digits.append(DigitReading(d.digit, round(d.confidence, 6), box))
        try:
            crops.append(ink_to_mnist(ink[box[1] : box[3], box[0] : box[2]]))
        except (NoDigitError, IndexError, ValueError):
            crops.append(np.zeros((28, 28), np.uint8))
    inside = [(d.box[0], d.box[2]) for d in digits]
    rejected = sum(1 for a in atoms if a.y1 - a.y0 < SMALL * height
                   and not any(x0 <= a.centre <= x1 for x0, x1 in inside))
    confidence = float(np.prod([d.confidence for d in digits]))
    return Reading("".join(str(d.digit) for d in digits), round(confidence, 6), digits, rejected, np.stack(crops))


def _with_signs(ink: np.ndarray, line: LineInput, line_digits: list[LineDigit], signs: list[LineDigit],
                atoms: list[_Atom], height: float, reading: Reading) -> Reading:
    """The digits read, with the line model's signs between them: each sign goes after as many digits as the
    line model read before it (where its columns lie among the digits' it read with them), boxed
    by the pieces of ink under its columns that no digit holds (a colon's two dots: the two nearest)."""
    digit_frames = [(d.first_frame + d.last_frame) / 2 for d in line_digits]
    if len(digit_frames) != len(reading.digits):  # the digits chosen are not the line model's: place by x
        digit_frames = [(((d.box[0] + d.box[2]) / 2 - line.left) * line.scale + MARGIN) / STRIDE
                        for d in reading.digits]
    chars: list[tuple[float, DigitReading, np.ndarray]] = []
    crops = reading.crops if reading.crops is not None else np.zeros((len(reading.digits), 28, 28), np.uint8)
    for d, frame, crop in zip(reading.digits, digit_frames, crops, strict=True):
        chars.append((frame, d, crop))
    held = [(d.box[0], d.box[2]) for d in reading.digits]
    used: set[int] = set()
    for sign in signs:
        box, pieces = _sign_box(ink, line, sign, atoms, height, held, used)
        used |= pieces
        try:
            crop = ink_to_mnist(ink[box[1] : box[3], box[0] : box[2]])
        except (NoDigitError, IndexError, ValueError):
            crop = np.zeros((28, 28), np.uint8)
        chars.append(((sign.first_frame + sign.last_frame) / 2, DigitReading(sign.char, round(sign.confidence, 6),
                                                                              box), crop))
    chars.sort(key=lambda c: c[0])
    chars = _one_sign_between_digits(chars)
    digits = [c[1] for c in chars]
    small = sum(1 for i in used if atoms[i].y1 - atoms[i].y0 < SMALL * height)
    confidence = float(np.prod([d.confidence for d in digits]))
    return Reading("".join(str(d.digit) for d in digits), round(confidence, 6), digits,
                   max(0, reading.rejected - small), np.stack([c[2] for c in chars]))


def _one_sign_between_digits(chars: list[tuple[float, DigitReading, np.ndarray]]) -> list:
    """Of signs read side by side, with no digit between them, the surest alone: people write one sign
    between two digits (12.50, 24/12, 14:05), and two in a row are one sign read twice (a slash as '-/')."""
    kept: list[tuple[float, DigitReading, np.ndarray]] = []
    for char in chars:
        if kept and isinstance(char[1].digit, str) and isinstance(kept[-1][1].digit, str):
            if char[1].confidence > kept[-1][1].confidence:
                kept[-1] = char
            continue
        kept.append(char)
    return kept


def _sign_box(ink: np.ndarray, line: LineInput, sign: LineDigit, atoms: list[_Atom], height: float,
              held: list[tuple[int, int]], used: set[int]) -> tuple[list[int], set[int]]:
    """A sign's box in the ink map, and the atoms it holds: the atoms nearest its columns (within half a
    digit) whose centre no digit's box covers, else the ink under its columns."""
    x0, x1 = line.ink_columns(sign.first_frame, sign.last_frame)
    centre = (x0 + x1) / 2
    free = [i for i, a in enumerate(atoms) if i not in used and abs(a.centre - centre) <= 0.5 * height
            and not any(h0 <= a.centre <= h1 for h0, h1 in held)]
    free.sort(key=lambda i: abs(atoms[i].centre - centre))
    pieces = set(free[: 2 if sign.char == ":" else 1])
    if pieces:
        chosen = [atoms[i] for i in pieces]
        return [min(a.x0 for a in chosen), min(a.y0 for a in chosen), max(a.x1 for a in chosen),
                max(a.y1 for a in chosen)], pieces
    x0, x1 = max(0, x0), min(ink.shape[1], max(x1, x0 + 1))
    rows = np.flatnonzero((ink[:, x0:x1] > 0.3).any(axis=1))
    return ([x0, int(rows[0]), x1, int(rows[-1]) + 1] if len(rows) else [x0, 0, x1, ink.shape[0]]), set()


def _atoms(ink: np.ndarray) -> tuple[list[_Atom], float]:
    """Connected pieces of ink (specks of a few pixels dropped), a piece wider than a digit cut at the
    thin places of its ink, left to right; and the line's digit height."""
    labels, count = ndimage.label(ink > 0.3, structure=EIGHT_CONNECTED)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    pieces = [(i, b) for i, b in enumerate(ndimage.find_objects(labels), start=1) if b is not None and sizes[i] >= 6]
    if not pieces:
        return [], 0.0
    heights = np.array([b[0].stop - b[0].start for _, b in pieces])
    height = float(np.median(heights[heights >= 0.5 * heights.max()]))
    pieces = [(i, b) for i, b in pieces if sizes[i] >= 0.01 * height**2]  # specks of paper grain
    if len(pieces) > MAX_PIECES:  # counted before any is cut, and again with the cuts before any is made
        raise _too_many_pieces(len(pieces))
    places = [_cut_places(labels[rows, cols] == label, height) for label, (rows, cols) in pieces]
    if len(pieces) + sum(map(len, places)) > MAX_PIECES:
        raise _too_many_pieces(len(pieces) + sum(map(len, places)))
    atoms = []
    for (label, (rows, cols)), cuts in zip(pieces, places, strict=True):
        mask = labels[rows, cols] == label
        seams = [np.zeros(mask.shape[0], int)]
        for place in cuts:
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
    options = np.full((3, band.shape[1]), np.inf)  # from the left, straight down, from the right; filled in place
    columns = np.arange(band.shape[1])
    for y in range(1, h):
        options[0, 1:] = total[:-1] + 0.05
        options[1] = total
        options[2, :-1] = total[1:] + 0.05
        choice = options.argmin(axis=0)
        came[y] = choice - 1
        total = band[y] + options[choice, columns]
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


def _may_be_one_digit(atoms: list[_Atom], height: float) -> bool:
    """Whether a run of atoms is a likely digit: no gap that `_gap_cost` charges for and at most MAX_DIGIT_WIDTH
    heights wide."""
    wide = max(a.x1 for a in atoms) - min(a.x0 for a in atoms) > MAX_DIGIT_WIDTH * height
    return not wide and _gap_cost(atoms, height) == 0.0


def _gap_cost(atoms: list[_Atom], height: float) -> float:
    """Atoms with paper between them are rarely one digit (a digit's detached stroke overlaps the rest of it in
    x): each clear gap costs, the wider the more. Only runs read where no likely split exists have one."""
    cost, right = 0.0, atoms[0].x1
    for atom in atoms[1:]:
        if atom.x0 > right:
            cost += GAP_COST + 10 * (atom.x0 - right) / height
        right = max(right, atom.x1)
    return cost


def _best_split(atoms: list[_Atom], candidates: dict[tuple[int, int], _Candidate],
                height: float) -> tuple[list[tuple[int, int]], int]:
    """The runs of atoms that make the most probable digits together, and how many small atoms were left
    out as marks that are not digits (dynamic programming from left to right)."""
    best: list[tuple[float, list, int]] = [(0.0, [], 0)] + [(-math.inf, [], 0)] * len(atoms)
    for j in range(1, len(atoms) + 1):
        atom = atoms[j - 1]
        if atom.y1 - atom.y0 < SMALL * height and best[j - 1][0] - SKIP_COST > best[j][0]:
            best[j] = (best[j - 1][0] - SKIP_COST, best[j - 1][1], best[j - 1][2] + 1)
        for i in range(max(0, j - MAX_ATOMS), j):
            candidate = candidates.get((i, j))
            if candidate is None or best[i][0] == -math.inf:
                continue
            # Cutting through one piece of ink: its parts often read as digits too, so the cut must pay.
            cut = CUT_COST if i > 0 and atoms[i - 1].label == atoms[i].label else 0.0
            total = best[i][0] + math.log(max(float(candidate.raw.max()), 1e-9)) - DIGIT_COST - \
                candidate.width_cost - cut - _gap_cost(atoms[i:j], height)
            if total > best[j][0]:
                best[j] = (total, best[i][1] + [(i, j)], best[i][2])
    return best[-1][1], best[-1][2]
