"""Many pictures at once: the folder walk, per-file digits and numbers (an error row per bad file), submissions."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digitrec.core.constants import IMAGE_FORMATS_TEXT, UNSURE_BELOW
from digitrec.core.errors import DigitrecError
from digitrec.core.files import atomic_write_text
from digitrec.data import Digits, iter_image_files, read_image
from digitrec.reading.numbers import Reading

if TYPE_CHECKING:
    from digitrec.inference.engine import Engine


@dataclass
class ImagePrediction:
    file: str
    digit: int | None
    confidence: float | None
    probabilities: list[float] | None
    error: str | None = None

    @property
    def unsure(self) -> bool | None:
        """Read, but with a confidence under UNSURE_BELOW: more often wrong than a user would want."""
        return None if self.confidence is None else self.confidence < UNSURE_BELOW

    def as_dict(self) -> dict:
        out = {"file": self.file, "digit": self.digit, "confidence": self.confidence, "unsure": self.unsure,
               "probabilities": self.probabilities}
        if self.error:
            out["error"] = self.error
        return out


def predict_files(predictor: Engine, target: Path) -> list[ImagePrediction]:
    """Every image under `target` (or `target` itself); a bad file gets an error, the rest their digits."""
    files, base = image_files(target)
    images, results, ok = [], [], []
    for path in files:
        name = str(path.relative_to(base))
        try:
            images.append(read_image(path))
            ok.append(len(results))
            results.append(ImagePrediction(name, None, None, None))
        except DigitrecError as e:
            results.append(ImagePrediction(name, None, None, None, error=e.what))
    if images:
        probs = predictor.probabilities(np.stack(images))
        for i, p in zip(ok, probs, strict=True):
            results[i].digit = int(p.argmax())
            results[i].confidence = float(p.max())
            results[i].probabilities = [round(float(v), 6) for v in p]
    return results


def write_submission(predictor: Engine, digits: Digits, out: Path) -> np.ndarray:
    """Kaggle's `ImageId,Label`, ImageId from 1, one row per input row; written atomically."""
    labels = predictor.probabilities(digits.x).argmax(1)
    buffer = io.StringIO()
    buffer.write("ImageId,Label\n")
    buffer.writelines(f"{i},{d}\n" for i, d in enumerate(labels, start=1))
    atomic_write_text(Path(out), buffer.getvalue())
    return labels


@dataclass
class FileReading:
    file: str
    reading: Reading | None
    error: str | None = None

    def as_dict(self) -> dict:
        if self.reading is None:
            return {"file": self.file, "text": None, "confidence": None, "digits": [], "error": self.error}
        return {"file": self.file, **self.reading.as_dict()}


def read_files(predictor: Engine, target: Path, digits_only: bool = False) -> list[FileReading]:
    """Every picture under `target` (or `target` itself) read as a number (`digits_only`: signs left out); a
    bad file gets its error."""
    files, base = image_files(target)
    results = []
    for path in files:
        name = str(path.relative_to(base))
        try:  # each path is a picture of the walk or its Unreadable: never `read`, whose is_dir follows links
            results.append(FileReading(name, predictor.read_file(path, digits_only)))
        except DigitrecError as e:
            results.append(FileReading(name, None, e.what))
    return results


def image_files(target: Path) -> tuple[list[Path], Path]:
    """The pictures a file or folder holds, in `data.iter_image_files` order, and the folder their names in
    results start from (`target`'s parent). A missing target, a FIFO or device, a folder without pictures:
    one error naming it."""
    target = Path(target)
    if not target.exists():
        raise DigitrecError("no such file or folder", where=str(target))
    if not target.is_dir() and not target.is_file():  # a FIFO or a device would block reading
        raise DigitrecError("not a regular file", where=str(target), expected="an image file or a folder")
    files = list(iter_image_files(target)) if target.is_dir() else [target]
    if not files:
        raise DigitrecError("no image files found", where=str(target), expected=f"{IMAGE_FORMATS_TEXT} files")
    return files, target.parent
