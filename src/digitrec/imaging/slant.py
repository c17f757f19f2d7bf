"""A line of writing's slant, and a line that leans further than MNIST's writers did read at their usual slant.

A line model reads a line column by column and both readers learnt MNIST's digits, which lean as their writers
leant. A steeper hand is out of what they learnt: in a handwriting font's italic (slant about -0.55), 59 % of
validation numbers read right, 83-93 % sheared to MNIST's usual slant. The slant is the x drift per row of the
strokes' near-upright edges (SLANT_EDGE): of 2,000 validation lines of MNIST digits, the median is -0.18 and 94.5 %
lie within SLANT_KEPT, where a line is read as written; outside it, a line is sheared toward SLANT_TARGET
(their median) until its slant is within SLANT_KEPT. Chosen on validation lines: MNIST's read as many right
in all, the fonts' half better (decision 0024).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

SLANT_KEPT = (-0.45, 0.1)  # slants read as written (x drift per row; negative leans right)
SLANT_EDGE = 0.2  # edges at least this share of the strongest are measured: a stroke's, not its soft rim's
MAX_SHEAR = 1.5  # a line is never sheared by more than this (56 degrees): the line grows by as much times its height
SHEAR_ROUNDS = 3  # a steep line measured again sheared: at most this many shears in all
SLANT_TARGET = -0.18  # a line leaning further, either way, is sheared to lean this much


def slant(ink: np.ndarray) -> float:
    """The line's slant: the x drift per row of its strokes' near-upright edges (within 45 degrees of upright),
    their median weighted by edge strength; 0 where there are none. Negative where the writing leans right.
    Edges, not the pieces' second moments: a round 0 or digits run together have moments that no stroke leans."""
    inked_rows, inked_columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not len(inked_rows):
        return 0.0
    ink = ink[max(0, inked_rows[0] - 1) : inked_rows[-1] + 2, max(0, inked_columns[0] - 1) : inked_columns[-1] + 2]
    across = ndimage.sobel(ink, axis=1)
    down = ndimage.sobel(ink, axis=0)
    power = across * across + down * down  # squared: the square root only where it weighs
    strongest = float(power.max())
    if not strongest > 0:
        return 0.0
    edges = (power > SLANT_EDGE**2 * strongest) & (np.abs(down) <= np.abs(across))
    if not edges.any():
        return 0.0
    drift = -down[edges] / across[edges]
    weight = np.sqrt(power[edges])
    order = np.argsort(drift)
    cumulative = np.cumsum(weight[order])
    return float(drift[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def deslanted(ink: np.ndarray) -> tuple[np.ndarray, Shear | None]:
    """The line as it is read, and the shear that made it (None: read as written, its slant within SLANT_KEPT).
    Outside it, the line is sheared toward SLANT_TARGET; edges leaning over 45 degrees are not measured, so a
    steeper line reads less steep than it is and is measured again sheared, up to SHEAR_ROUNDS shears in all,
    until its slant is within SLANT_KEPT."""
    measured = slant(ink)
    if SLANT_KEPT[0] <= measured <= SLANT_KEPT[1]:
        return ink, None
    alpha = float(np.clip(measured - SLANT_TARGET, -MAX_SHEAR, MAX_SHEAR))
    for shears in range(1, SHEAR_ROUNDS + 1):
        shear = Shear(ink.shape, alpha)
        sheared = shear.apply(ink)
        left = slant(sheared) if shears < SHEAR_ROUNDS else SLANT_TARGET
        if SLANT_KEPT[0] <= left <= SLANT_KEPT[1]:
            break
        alpha = float(np.clip(alpha + left - SLANT_TARGET, -MAX_SHEAR, MAX_SHEAR))
    return sheared, shear


class Shear:
    """A line sheared by `alpha` about its middle row: x' = x - alpha (y - middle) + pad, so a slant of alpha
    becomes upright; `box_back` maps a box in the sheared line to the box that holds it in the line."""

    def __init__(self, shape: tuple[int, int], alpha: float):
        self.alpha, self.middle = alpha, (shape[0] - 1) / 2
        self.pad = int(math.ceil(abs(alpha) * shape[0] / 2)) + 1
        self.width = shape[1]

    def apply(self, ink: np.ndarray) -> np.ndarray:
        """The line sheared: the sheared line's (y, x') is the line at (y, x' + alpha (y - middle) - pad), each row
        moved whole and read between its two nearest pixels (a tenth of scipy's affine transform's time)."""
        rows, width = ink.shape
        out_width = width + 2 * self.pad
        margin = 2 * self.pad + 2  # paper either side, so that every row's window lies inside
        framed = np.pad(ink, ((0, 0), (margin, margin)))
        out = np.empty((rows, out_width), ink.dtype)
        for y in range(rows):
            drift = self.alpha * (y - self.middle) - self.pad
            start = math.floor(drift)
            share = np.float32(drift - start)
            window = framed[y, start + margin : start + margin + out_width + 1]
            out[y] = window[:-1] * (1 - share) + window[1:] * share
        return out

    def box_back(self, box: list[int]) -> list[int]:
        x0, y0, x1, y1 = box
        drift = [self.alpha * (y - self.middle) for y in (y0, y1)]
        left = min(max(0, math.floor(x0 + min(drift) - self.pad)), self.width - 1)
        right = max(min(self.width, math.ceil(x1 + max(drift) - self.pad)), left + 1)
        return [left, y0, right, y1]
