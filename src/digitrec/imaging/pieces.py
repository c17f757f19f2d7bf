"""A one-digit picture's own ink: specks, hairlines, far crumbs and a form's printed ticks dropped (`_clean`)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.sparse.csgraph import connected_components

from digitrec.imaging.morphology import EIGHT_CONNECTED, max_filter

# A piece of a one-digit picture is kept when it holds at least this share of the largest piece's ink
# and is not much thinner than it (see `_clean`).
MIN_PIECE = 0.04
HAIRLINE = 0.4
# A kept piece holding less than STRAY_MASS of the largest piece's ink is dropped when it is far from the digit:
# more than FAR_PIECE of the largest piece's larger side from each of the digit's pieces, and not joined to one
# by fainter ink. So go a ruled line's stub or a crumb of dirt in a corner; a 5's lifted top, a faint stroke's
# breaks and an old scan's blocks (joined by fainter blocks, or heavier: a 3's top held 38 %) stay. Set on
# validation digits: realworld-val (7 of 11,000 changed, each a speck or a frame's remnant dropped) and
# `scripts/probe.py small-scans`. Past MAX_CHAINED kept pieces (noise, not a digit and its specks) none is
# dropped so: the check compares every two pieces.
FAR_PIECE = 0.5
STRAY_MASS = 0.3
MAX_CHAINED = 64
JOIN = 1  # pixels: pieces this close are one piece
REACH = 3  # pixels: faint ink and soft edges this close to kept ink are kept


def _clean(ink: np.ndarray) -> np.ndarray:
    """Only the digit's own ink, for a picture of one digit: paper grain and what is left of a ruled
    line would otherwise stretch the digit's box (shrinking the digit) and lie as grey noise around it,
    which MNIST never shows. Kept: every piece of clear ink with a real share of the ink (a 5's detached
    top, a stroke broken by a faint pencil) that is not much thinner than the pen; then the soft edges
    and faint ink within reach of what is kept. Dropped: specks, and hairlines far thinner than the pen."""
    clear_anywhere = ink > 0.25
    rows, cols = np.flatnonzero(clear_anywhere.any(axis=1)), np.flatnonzero(clear_anywhere.any(axis=0))
    if not len(rows):
        return ink
    # Worked around the clear ink only, with room for the reach (nothing beyond it is kept): most of a
    # picture is paper, faint grain included.
    box = (slice(max(rows[0] - REACH, 0), rows[-1] + REACH + 1), slice(max(cols[0] - REACH, 0), cols[-1] + REACH + 1))
    part = ink[box]
    clear = (part > 0.25).view(np.uint8)
    # Pieces a pixel apart are one piece: a soft or blocky stroke dips under the cut here and there.
    labels, count = ndimage.label(max_filter(clear, 1 + 2 * JOIN), structure=EIGHT_CONNECTED)
    labels *= clear
    if count > 1:
        inside = clear.astype(bool)
        mass = np.bincount(labels[inside], weights=part[inside], minlength=count + 1)[1:]
        area = np.bincount(labels[inside], minlength=count + 1)[1:]
        # A piece's pen width, as in `stroke_width`: twice its area over its outline (the steps between
        # it and paper along rows and columns); a loop's inner and outer outlines both count.
        padded = np.pad(labels, 1)
        steps = [np.abs(padded[1:] - padded[:-1])[(padded[1:] == 0) != (padded[:-1] == 0)],
                 np.abs(padded[:, 1:] - padded[:, :-1])[(padded[:, 1:] == 0) != (padded[:, :-1] == 0)]]
        outline = np.bincount(np.concatenate(steps), minlength=count + 1)[1:]
        thickness = 2 * area / np.maximum(outline, 1)
        main = int(np.argmax(mass))
        keep = (mass >= MIN_PIECE * mass[main]) & (thickness >= HAIRLINE * thickness[main])
        boxes = ndimage.find_objects(labels, count)
        keep &= ~np.array([_printed_tick(piece, boxes[main]) for piece in boxes])
        stray = keep & (mass < STRAY_MASS * mass[main])
        if stray.any():
            keep &= ~stray | _near_digit(part, labels, boxes, main, keep)
        keep[main] = True
        clear = np.concatenate([[0], keep]).astype(np.uint8)[labels]
    out = np.zeros_like(ink)
    out[box] = np.where(max_filter(clear, 1 + 2 * REACH) > 0, part, 0)
    return out


def _near_digit(part: np.ndarray, labels: np.ndarray, boxes: list[tuple[slice, slice]], main: int,
                kept: np.ndarray) -> np.ndarray:
    """Which kept pieces belong to the digit: the largest, and each one within reach of one that belongs or
    in the same piece of fainter ink; a chain, so a 5 in three strokes keeps its lifted top through its stem.
    A picture in more than MAX_CHAINED pieces is not a digit with a speck beside it: all stay."""
    members = np.flatnonzero(kept)
    if len(members) > MAX_CHAINED:
        return kept
    faint, _ = ndimage.label(part > 0, structure=EIGHT_CONNECTED)
    joined = np.zeros(len(boxes) + 1, int)
    inked = labels > 0
    joined[labels[inked]] = faint[inked]  # every pixel of a piece is faint ink too
    joined = joined[1:][members]
    starts = np.array([[axis.start for axis in boxes[i]] for i in members])
    stops = np.array([[axis.stop for axis in boxes[i]] for i in members])
    # Pixels between two boxes along the axis where they lie farthest apart (negative: they overlap).
    gaps = np.maximum(starts[:, None] - stops[None], starts[None] - stops[:, None]).max(axis=2)
    reach = (gaps <= FAR_PIECE * max(d.stop - d.start for d in boxes[main])) | (joined[:, None] == joined[None])
    _, group = connected_components(reach, directed=False)
    near = np.zeros_like(kept)
    near[members] = group == group[np.searchsorted(members, main)]
    return near


def _printed_tick(piece: tuple[slice, slice], digit: tuple[slice, slice]) -> bool:
    """Whether a piece is a short upright bar beside the digit (no column in common), level with its lower part:
    the printed tick between two cells of a comb field (a form's row of cells open at the top), which
    would otherwise widen the digit's box and shrink the digit. A digit's own detached stroke mostly lies
    under or over the rest of it, or reaches its upper half; a 9's tail broken off beside its loop does not,
    and is taken for a tick (one ball-point test digit of 1,000, MODEL_CARD)."""
    rows, cols = piece
    digit_rows, digit_cols = digit
    apart = cols.start >= digit_cols.stop or cols.stop <= digit_cols.start
    low = rows.start > digit_rows.start + 0.4 * (digit_rows.stop - digit_rows.start)
    return apart and low and rows.stop - rows.start >= 3 * (cols.stop - cols.start)
