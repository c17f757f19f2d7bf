"""Ink that is no digit refused (blots, scribbles), and outlined or hatched lettering filled so that it is read."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from digitrec.core.errors import NoDigitError
from digitrec.imaging.morphology import FOUR_CONNECTED
from digitrec.imaging.pieces import MAX_CHAINED
from digitrec.imaging.stroke import FIT_SIZE, stroke_width

# Ink that no digit makes: strokes over 9 px wide at 28x28 (a blot, a smudge: MNIST's widest of 30,000
# training digits is 8.0, a felt-tip's 7.8), inked pixels over 62 % of the 20x20 fit, or more than five
# enclosed holes (a scribble; an outlined font's 6 has four). No MNIST training digit has more than four.
MAX_STROKE = 9.0
MAX_INK_SHARE = 0.62
MAX_HOLES = 5
# Outlined lettering ("bubble" digits, an outline font): a thin pen drawn around a broad stroke instead of along
# it. The paper inside is one long channel several pens wide; filled, the digit is whole again (unfilled, the
# pen is thickened to MNIST's width and pinches the channel into holes: a scribble, or a 1 read as 0). Enclosed
# paper is such a channel when its area is at least OUTLINE_LENGTH times its width squared (width from area and
# outline, as a stroke's), its width at least OUTLINE_WIDTH pens, and its area at least OUTLINE_ROUNDS times the
# square of the widest circle inside it: a loop rounder than about 3.8 to 1 never is, however grainy its edge
# (a faint pencil 0's was). Set on validation digits (`scripts/probe.py outlines`: 96.3 % read filled, 87.0 % and
# 24 refused unfilled; realworld-val's answers unchanged); at 2 pens wide, a ball-point's narrow loops were filled too.
OUTLINE_LENGTH = 8.0
OUTLINE_WIDTH = 3.0
OUTLINE_ROUNDS = 3.0
# Hatched lettering (a broad digit's outline filled with parallel lines) encloses many holes: the gaps between
# the lines, strips that all run one way. Where a crop has more than MAX_HOLES, the strips (area at least
# HATCH_LENGTH times the square of the widest circle inside, that circle at most HATCH_GAP px at the 20x20 fit)
# whose long axes lie within HATCH_TURN degrees of their common direction are filled, if they are at least
# HATCH_SHARE of the holes; the ink so filled is read if it has at most MAX_HOLES holes and strokes at most
# HATCH_SOLID px wide at 28x28. Anything else is a scribble: holes running every way (a tangle, lines across a
# page), or a hatched patch (filled, a blot). A line drawn twice over (a sketched outline) leaves slivers of paper
# between its strokes: enclosed paper whose widest circle is under SLIVER pens is no hole (the pen brought to
# MNIST's width closes it), and in the 28x28 a hole has at least PINHOLE px (a thickened pen pinches such slivers
# into holes of 1-3 px; no MNIST digit has more than four holes of either size). Set on validation digits
# (scripts/probe_hatched.py): hatched inside an outline 13.3 % read, 515 of 600 refused -> 94.7 %, 19 refused;
# the sketched outline font photographed 3 of 600 refused -> none; scribbles still refused (of 100 each):
# tangles 57 -> 56, lines across a page 93 -> 88, a hatched patch 86 -> 84, a crossed-out digit 40 -> 36, blots
# 11 -> 11, and coils 67 -> 23 (a tight coil's loops are hatching's strips). Looser settings let more scribbles
# through for few more digits (of 300 hatched digits and 50-100 scribbles of each kind: HATCH_TURN 30 read 3 more
# digits and passed 2 more tangles and lines each; HATCH_SHARE 0.5 passed 7 more tangles; HATCH_GAP 2 passed 8
# more coils; SLIVER 0.75 4 more tangles of 150), stricter ones fewer digits (HATCH_LENGTH 2: 91.7 % against
# 96.3 %); PINHOLE 3 left an outlined 8 refused. realworld-val, scripts/probe.py outlines and every MNIST digit
# (70,000, as 28x28 arrays) as before.
HATCH_LENGTH = 1.5
HATCH_GAP = 1.5
HATCH_TURN = 20.0
HATCH_SHARE = 0.6
HATCH_SOLID = 7.0
SLIVER = 0.5
PINHOLE = 4


def _check_digit_like(image: np.ndarray) -> None:
    """Refuses ink that no digit makes (see MAX_INK_SHARE, MAX_HOLES)."""
    inked = image > 127
    share = inked.sum() / FIT_SIZE**2
    if share > MAX_INK_SHARE:
        raise NoDigitError(f"no digit: a blot or smudge ({share:.0%} of the digit's box inked)",
                           expected="a handwritten digit")
    _check_holes(_enclosed_paper(inked)[1], min_area=PINHOLE)


def _check_holes(area: np.ndarray, min_area: float) -> None:
    """Refuses a scribble: paper enclosed by ink (`_enclosed_paper`'s areas) in more than MAX_HOLES places (an 8
    encloses two)."""
    holes = int(np.count_nonzero(area >= min_area))
    if holes > MAX_HOLES:
        raise NoDigitError(f"no digit: a scribble ({holes} enclosed holes)", expected="a handwritten digit")


def _enclosed_paper(inked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paper's 4-connected pieces (label 0: the ink) and each label's area where ink encloses it (0 for the
    ink and for paper open to the picture's edge)."""
    paper, count = ndimage.label(~inked, structure=FOUR_CONNECTED)
    area = np.bincount(paper.ravel(), minlength=count + 1)
    area[0] = 0
    area[np.concatenate([paper[0], paper[-1], paper[:, 0], paper[:, -1]])] = 0
    return paper, area


def _filled_outline(crop: np.ndarray, pen: float, paper: np.ndarray, area: np.ndarray) -> np.ndarray | None:
    """The crop with an outlined digit's channels filled (see OUTLINE_LENGTH), or None where there are none.
    `paper`, `area`: the crop's `_enclosed_paper`. Not inside a frame left around the digit: the gap between
    frame and digit is no channel."""
    # As long as OUTLINE_LENGTH widths and as wide as OUTLINE_WIDTH pens: at least this large.
    candidates = np.flatnonzero(area >= OUTLINE_LENGTH * (OUTLINE_WIDTH * pen) ** 2)
    if not 0 < len(candidates) <= MAX_CHAINED:
        return None  # none, or a page of holes (a grid, a net) that no outline draws: each would be measured
    inked = paper == 0
    band = max(2, round(0.05 * max(crop.shape)))  # a frame askew, and the crop's margin
    sides = (inked[:band].any(axis=0), inked[-band:].any(axis=0), inked[:, :band].any(axis=1),
             inked[:, -band:].any(axis=1))
    if all(side.mean() > 0.9 for side in sides):
        return None
    boxes = ndimage.find_objects(paper)
    inside = np.zeros(crop.shape, bool)
    for label in candidates:
        rows, cols = boxes[label - 1]
        hole = paper[rows, cols] == label
        width = stroke_width(hole)  # the channel measured as a stroke is
        if area[label] >= OUTLINE_LENGTH * width**2 and width >= OUTLINE_WIDTH * pen:
            widest = 2 * float(ndimage.distance_transform_edt(np.pad(hole, 1)).max())
            if area[label] >= OUTLINE_ROUNDS * widest**2:
                inside[rows, cols] |= hole
    return np.maximum(crop, inside.astype(crop.dtype)) if inside.any() else None


def _filled_hatching(crop: np.ndarray, paper: np.ndarray, area: np.ndarray, min_area: float,
                     pen: float) -> tuple[np.ndarray, float]:
    """A crop with more than MAX_HOLES holes of `min_area`: as it is where some are slivers (SLIVER), with hatching's
    gaps filled where it is hatched (HATCH_LENGTH), and its pen; else refused as a scribble. `paper`, `area`: the
    crop's `_enclosed_paper`."""
    widest = 2 * ndimage.maximum(ndimage.distance_transform_edt(paper > 0), paper, np.arange(len(area))) - 1
    holes = (area >= min_area) & (widest >= SLIVER * pen)
    if np.count_nonzero(holes) <= MAX_HOLES:
        return crop, pen
    scale = FIT_SIZE / max(crop.shape)
    strips = (area > 0) & (area >= HATCH_LENGTH * widest**2) & (widest * scale <= HATCH_GAP)
    turn = _directions(paper, area)
    common = np.angle(np.exp(1j * turn[strips & holes]).sum())
    gaps = strips & (np.abs(np.angle(np.exp(1j * (turn - common)))) <= np.deg2rad(2 * HATCH_TURN))
    if np.count_nonzero(gaps & holes) >= HATCH_SHARE * np.count_nonzero(holes):
        filled = np.maximum(crop, gaps[paper].astype(crop.dtype))
        pen = stroke_width(filled)
        left = np.count_nonzero(_enclosed_paper(filled > 0.5)[1] >= min_area)
        if pen * scale <= HATCH_SOLID and left <= MAX_HOLES:
            return filled, pen
    raise NoDigitError(f"no digit: a scribble ({np.count_nonzero(area >= min_area)} enclosed holes)",
                       expected="a handwritten digit")


def _directions(labels: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Each label's long axis (of its second moments) as twice its angle, in radians (-pi to pi)."""
    ys, xs = np.nonzero(labels)
    which = labels[ys, xs]
    count = np.maximum(area, 1).astype(np.float64)
    mean_x, mean_y = (np.bincount(which, v, len(area)) / count for v in (xs, ys))
    dx, dy = xs - mean_x[which], ys - mean_y[which]
    xx, yy, xy = (np.bincount(which, v, len(area)) for v in (dx * dx, dy * dy, dx * dy))
    return np.arctan2(2 * xy, xx - yy)
