"""A line of digits as the line model sees it, and what its output says.

The line model (`models.create_model("crnn")`, trained by `digitrec train-lines`) reads a whole line at
once: a strip LINE_HEIGHT pixels high in which the digits are DIGIT_HEIGHT pixels tall (MNIST's 20-pixel
fit) with MNIST's stroke width, light ink on black, as wide as the line. Its output is one column of
class scores every STRIDE pixels, read with CTC's rule: repeated classes merge, blanks separate. Touching and
overlapping neighbours need no cut: the model was trained on them. Its classes: the ten digits, the five signs
people write inside numbers (CHARS: `.` `,` `-` `/` `:`), and CTC's blank last. A model with eleven classes
(ten digits and the blank) reads digits only.

No torch here: the server and `read` use the exported ONNX file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from digitrec.core.errors import DigitrecError
from digitrec.data.signs import SIGNS
from digitrec.imaging.morphology import EIGHT_CONNECTED
from digitrec.imaging.stroke import STROKE_RANGE, even_stroke, stroke_width

WORK_HEIGHT = 96  # a picture is turned into ink at about this height: digits 40-90 px tall
LINE_HEIGHT = 32
DIGIT_HEIGHT = 20  # the height each digit is brought to, as MNIST fits its digits into 20x20
STRIDE = 4  # input columns per output column
MARGIN = 8  # blank columns either side of the ink: the first and last digit get whole frames
BLANK = 10  # CTC's blank class after the ten digits in a digits-only model (11 classes)
CHARS = "0123456789" + SIGNS  # a line model's classes, the blank after them: class i reads CHARS[i]
LINE_CLASSES = len(CHARS) + 1
MAX_LINE_WIDTH = 2048  # a line wider than this (about 90 digits) is refused rather than read


@dataclass
class LineInput:
    """The strip the line model reads and how its columns map back to the ink map."""

    pixels: np.ndarray  # uint8 [LINE_HEIGHT, W], light ink on black
    scale: float  # strip pixels per ink-map pixel
    left: int  # ink-map column of the strip's column MARGIN
    top: int  # ink-map row of the cropped ink's first row

    def ink_columns(self, first_frame: int, last_frame: int) -> tuple[int, int]:
        """The ink-map columns that output frames first..last (inclusive) look at."""
        x0 = (first_frame * STRIDE - MARGIN) / self.scale + self.left
        x1 = ((last_frame + 1) * STRIDE - MARGIN) / self.scale + self.left
        return int(np.floor(x0)), int(np.ceil(x1))


def digit_height(ink: np.ndarray) -> float:
    """The line's digit height in ink-map pixels: the median height of the tall pieces of ink (a dot, a
    dash or a comma is not a digit, and a detached stroke is lower than its digit)."""
    labels, count = ndimage.label(ink > 0.3, structure=EIGHT_CONNECTED)
    if not count:
        return 0.0
    boxes = [b for b in ndimage.find_objects(labels) if b is not None]
    heights = np.array([b[0].stop - b[0].start for b in boxes])
    return float(np.median(heights[heights >= 0.5 * heights.max()]))


def to_line(ink: np.ndarray, height: float) -> LineInput:
    """An ink map of one line (0-1, light on black) and its digit height -> the line model's strip."""
    strong = ink > 0.2
    rows, cols = np.flatnonzero(strong.any(axis=1)), np.flatnonzero(strong.any(axis=0))
    top, bottom = max(rows[0] - 1, 0), min(rows[-1] + 2, ink.shape[0])
    left, right = max(cols[0] - 1, 0), min(cols[-1] + 2, ink.shape[1])
    crop = ink[top:bottom, left:right]
    scale = DIGIT_HEIGHT / max(height, 1.0)
    # A line taller than the strip (steep baseline drift, a digit far larger than the rest) is shrunk to fit.
    scale = min(scale, (LINE_HEIGHT - 2) / crop.shape[0], (MAX_LINE_WIDTH - 2 * MARGIN) / crop.shape[1])
    pen = stroke_width(crop)
    if not STROKE_RANGE[0] <= pen * scale <= STROKE_RANGE[1]:
        evened = even_stroke(crop, scale, pen)
        pad = (evened.shape[0] - crop.shape[0]) // 2
        crop, top, left = evened, top - pad, left - pad
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small = np.clip(np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize(
        size, Image.Resampling.LANCZOS), np.float32), 0, 1)
    h, w = small.shape
    h = min(h, LINE_HEIGHT)
    small = small[:h]
    # The ink's centre of mass on the strip's middle row, as MNIST centres its digits.
    mass = small.sum(axis=1)
    centre = float((np.arange(h) * mass).sum() / mass.sum()) if mass.sum() > 0 else h / 2
    y = int(np.clip(round(LINE_HEIGHT / 2 - centre - 0.5), 0, LINE_HEIGHT - h))
    strip = np.zeros((LINE_HEIGHT, w + 2 * MARGIN), np.float32)
    strip[y : y + h, MARGIN : MARGIN + w] = small
    return LineInput(np.round(strip * 255).astype(np.uint8), scale, left, top)


def frames(width: int) -> int:
    """Output columns for a strip `width` pixels wide."""
    return width // STRIDE


@dataclass
class LineDigit:
    digit: int  # the class: a digit 0-9, or a sign (CHARS[digit])
    confidence: float
    first_frame: int
    last_frame: int

    @property
    def char(self) -> str:
        return CHARS[self.digit]

    @property
    def is_sign(self) -> bool:
        return self.digit >= 10


def digits_only(probabilities: np.ndarray) -> np.ndarray:
    """[T, C] -> [T, 11]: a sign's probability joins the blank's, so that a sign's columns read as paper
    between digits (a digits-only reading of a model that reads signs)."""
    if probabilities.shape[1] <= BLANK + 1:
        return probabilities
    return np.concatenate([probabilities[:, :BLANK], probabilities[:, BLANK:].sum(axis=1, keepdims=True)], axis=1)


def decode(probabilities: np.ndarray, only_digits: bool = False) -> list[LineDigit]:
    """Class probabilities per output column [T, C] (the blank last) -> the digits and signs, by CTC's best
    path: the most probable class in each column, repeats merged, blanks dropped. `only_digits`: signs read
    as blank."""
    if only_digits:
        probabilities = digits_only(probabilities)
    return collapse(probabilities, probabilities.argmax(axis=1))


def collapse(probabilities: np.ndarray, path: np.ndarray) -> list[LineDigit]:
    """A path of classes, one an output column, read by CTC's rule: repeats merged, blanks dropped. A
    character's confidence is its highest probability over its columns."""
    blank = probabilities.shape[1] - 1
    chars: list[LineDigit] = []
    previous = blank
    for t, c in enumerate(path):
        c = int(c)
        if c != blank and c == previous:
            chars[-1].last_frame = t
            chars[-1].confidence = max(chars[-1].confidence, float(probabilities[t, c]))
        elif c != blank:
            chars.append(LineDigit(c, float(probabilities[t, c]), t, t))
        previous = c
    return chars


def line_split(count: int, fraction: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of MNIST training digits for composing training lines and validation lines: disjoint."""
    order = np.random.default_rng(seed).permutation(count)
    n_val = int(round(count * fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


LINES_DIR = "lines"  # a run folder's line model lives in this subfolder (`digitrec train-lines --out RUN/lines`)
LINE_ONNX = "line.onnx"
SIGNS_DIR = "signs"  # a second line model, trained with the signs inside numbers: RUN/lines/signs/line.onnx


class LineModel:
    """A trained line model's `line.onnx` in onnxruntime: strip -> class probabilities per column."""

    def __init__(self, path: Path, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.path = Path(path)
        try:
            self.runtime = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable models
            raise DigitrecError(f"unreadable line model ({e.__class__.__name__})", where=str(self.path)) from None
        if [i.name for i in self.runtime.get_inputs()] != ["strip"]:
            raise DigitrecError("line model's input is not 'strip'", where=str(self.path),
                                expected="a line.onnx from digitrec train-lines")
        self.signs: LineModel | None = None  # the run's sign reader beside this one (`read_number`)

    @classmethod
    def of_run(cls, run_dir: Path, threads: int = 1) -> LineModel | None:
        """The run folder's line model, or None when it has none (then `read` segments alone), with the sign
        reader beside it (`signs`) when the run has one in lines/signs/."""
        path = Path(run_dir) / LINES_DIR / LINE_ONNX
        signs = Path(run_dir) / LINES_DIR / SIGNS_DIR / LINE_ONNX
        if not path.is_file():
            if signs.is_file():
                raise DigitrecError("a sign reader without the line model it sits beside", where=str(signs),
                                    expected=f"{path} as well (digitrec train-lines --out RUN/lines)")
            return None
        model = cls(path, threads)
        model.classes()
        if signs.is_file():
            model.signs = cls(signs, threads)
            if model.signs.classes() != LINE_CLASSES:
                raise DigitrecError("this line model reads no signs", where=str(signs),
                                    expected="a sign reader from digitrec train-lines --signs")
        return model

    def classes(self) -> int:
        """Its classes, read off two blank strips of different widths: a model that cannot read a strip of
        any width (exported for one) fails here, when it is loaded, not on the first picture."""
        counts = {self.probabilities(np.zeros((LINE_HEIGHT, width), np.uint8)).shape[1]
                  for width in (4 * LINE_HEIGHT, 6 * LINE_HEIGHT + 3 * STRIDE)}
        return counts.pop()

    def probabilities(self, strip: np.ndarray) -> np.ndarray:
        """uint8 [LINE_HEIGHT, W] -> probabilities [W / STRIDE, C] (C: 16 with signs, 11 for digits only)."""
        x = (strip.astype(np.float32) / 255)[None, None]
        try:
            scores = self.runtime.run(None, {"strip": x})[0][0]
        except Exception as e:  # a model made for other strips (a fixed width, another height): onnxruntime's own
            raise DigitrecError(f"the line model cannot read a strip {x.shape[3]} pixels wide "
                                f"({e.__class__.__name__}: {str(e)[:100]})", where=str(self.path),
                                expected="a line.onnx from digitrec train-lines (any width)") from None
        exp = np.exp(scores - scores.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)
