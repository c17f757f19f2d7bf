"""Ink strength 0-1 from grey levels (paper, light and ruled lines taken out, a blank refused); a line's ink map."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from digitrec.core.errors import BlankImageError
from digitrec.imaging.decode import DRAFTED, gray_of
from digitrec.imaging.paper import _flatten_paper
from digitrec.imaging.rules import _without_ruled_lines

# A digit (or a line) is cropped to the box around its clear ink, over a fifth of its strength, and one pixel wider
# for the soft edges: specks of paper grain must not stretch the box and shrink the digit (commit 96ef214).
CLEAR_INK = 0.2
CROP_MARGIN = 1


def _ink(gray: np.ndarray, line: bool = False) -> np.ndarray:
    """Ink strength in 0-1: light on dark whatever the input's polarity, paper and lighting removed.

    The paper's grain is measured on the border by its median deviation, not its maximum: in a tight
    crop or an old low-resolution scan the digit touches the border, and a threshold raised by its ink
    would cut soft strokes into thin broken lines."""
    ink, noise, spread = _flatten_paper(gray, line)
    peak = _peak(ink)
    if peak < max(3 * noise, 10.0):
        raise BlankImageError("image is blank (no ink found)", expected="a digit darker or lighter than its background")
    averaged = 3 * spread > 0.3 * peak
    if averaged:  # faint ink on grainy paper: average the grain down before cutting it off
        ink, spread = ndimage.uniform_filter(ink, 3), spread / 3
    threshold = min(max(3 * spread, 0.08 * peak), 0.3 * peak)
    if _without_ruled_lines(ink, threshold) or averaged:  # else the peak is as it was
        peak = _peak(ink)
    if peak <= threshold:
        raise BlankImageError("image holds only lines, no digit", expected="a digit on the paper")
    return np.clip((ink - threshold) / (peak - threshold), 0, 1)


def _peak(ink: np.ndarray) -> float:
    """The ink's strength: the largest mean of a 3x3 neighbourhood, so that a hot pixel of sensor noise
    does not count, a stroke does."""
    if min(ink.shape) < 3:
        return float(ink.max())
    rows = ink[:-2] + ink[1:-1] + ink[2:]
    return float((rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]).max()) / 9


def ink_map(picture: Image.Image | np.ndarray, height: int) -> tuple[np.ndarray, float]:
    """A picture of a line of writing as ink strength 0-1 (polarity, paper, lighting and ruled lines taken
    out) at about `height` pixels high, and the factor from its pixels back to the picture's."""
    size = picture.size[::-1] if isinstance(picture, Image.Image) else np.shape(picture)[:2]
    factor = max(1, size[0] // height)
    if not isinstance(picture, Image.Image):
        return _ink(gray_of(picture, factor), line=True), 1.0
    return _ink(gray_of(picture, factor), line=True), factor * picture.info.get(DRAFTED, 1.0)


def crop_to_ink(ink: np.ndarray) -> tuple[np.ndarray, int, int]:
    """An ink map (0-1) cut to the box around its clear ink (over CLEAR_INK) and CROP_MARGIN px more, and that box's
    top row and left column in `ink`. The ink must hold some clear ink."""
    strong = ink > CLEAR_INK
    rows = np.flatnonzero(strong.any(axis=1))
    cols = np.flatnonzero(strong.any(axis=0))
    top, bottom = max(rows[0] - CROP_MARGIN, 0), min(rows[-1] + 1 + CROP_MARGIN, ink.shape[0])
    left, right = max(cols[0] - CROP_MARGIN, 0), min(cols[-1] + 1 + CROP_MARGIN, ink.shape[1])
    return ink[top:bottom, left:right], int(top), int(left)
