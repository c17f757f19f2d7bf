"""Ruled lines and printed frames taken out of an ink map, strokes written along them kept (`_without_ruled_lines`)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from digitrec.imaging.morphology import closing

LINE_SLOPES = np.tan(np.radians(np.arange(-6, 6.01, 0.5)))  # a page photographed up to 6 degrees askew
# Ink this many times the ruled line's own strength, inside its band, is a stroke on the line and stays
# (chosen on realworld-val's ruled set: 2.0-3.0 read 98.7-98.9 %, 1.6 98.3 %, 4.0 98.0 %, none 97.8 %).
STROKE_OVER_LINE = 2.5
# A "line" wider than this share of its length is a pen stroke across a tight crop (an old scan's 7, whose
# stem runs from edge to edge), not a ruling: ruled lines are 1-4 px wide across 100-192 px once reduced.
MAX_LINE_WIDTH = 0.08
# Lines that stop short of the picture's edges, by up to this share of it, are taken away only in pairs, one
# within this share of each side: the frame of a box the digit was written in (a form's field).
FRAME_INSET = 0.12
# Ink within this share of both edges reaches them: a ruling, not a frame's side stopping short.
EDGE_MARGIN = 0.03
# A line is a bin (with the two before it) that at least LINE_COVER of the columns ink; a frame's top and bottom
# bands must each be inked across that share too.
LINE_COVER = 0.7
# A ruling is a sharp peak of that projection: SHARP_BINS bins away on both sides it has fallen under PEAK_DROP of
# itself (grain spread over the page does not). A broader peak that has fallen so only BROAD_BINS bins away is a
# frame's printed side, taken away only as one of a pair (decision 0008: the `framed` validation set 82.1 -> 97.6 %).
SHARP_BINS = 5
BROAD_BINS = 9
PEAK_DROP = 0.5
# Where less than this share of the ink lies off the "lines", they are the digit itself (a 1 filling a tight crop).
OFF_LINE_INK = 0.15
# A stroke crossing a taken line is bridged by a closing of this box (rows, columns): tall enough to join the
# stroke's ends across a line's band, narrow enough that the line, with nothing to join across it, stays away.
BRIDGE = (9, 3)


def _without_ruled_lines(ink: np.ndarray, threshold: float) -> bool:
    """Takes away, in place, straight lines that cross the whole picture (ruled or squared paper, a form's
    box), slanted up to 6 degrees, and says whether it found any: in the projection along the lines' slant, a
    line is a bin that LINE_COVER of the columns ink, reaching both edges. A digit's strokes never span a picture
    that has room around it; where a stroke crosses a line it is bridged across the band."""
    inked = ink > threshold
    found = False
    for transposed in (False, True):
        view, mask = (ink.T, inked.T) if transposed else (ink, inked)
        h, w = view.shape
        columns = mask.any(axis=0)
        margin, inset = max(1, int(EDGE_MARGIN * w)), max(1, int(FRAME_INSET * w))
        if not (columns[:inset].any() and columns[-inset:].any()):
            continue  # nothing reaches both edges: the common case costs nothing more
        framed_only = not (columns[:margin].any() and columns[-margin:].any())
        band = max(1, int(FRAME_INSET * h))
        if framed_only and min(mask[:band].any(axis=0).mean(), mask[-band:].any(axis=0).mean()) < LINE_COVER:
            continue  # nor does a frame's pair of sides run along the top and the bottom
        ys, xs = np.nonzero(mask)
        # Every slant's projection at once: one histogram of all of them, each slant's bins in a row of its own.
        projections = np.round(ys - LINE_SLOPES[:, None] * xs).astype(int)
        lowest = projections.min(axis=1)
        shifted = projections - lowest[:, None]
        spans = shifted.max(axis=1) + 1
        rows_of = np.arange(len(LINE_SLOPES))[:, None] * int(spans.max())
        histogram = np.bincount((shifted + rows_of).ravel(), minlength=len(LINE_SLOPES) * int(spans.max()))
        histogram = histogram.reshape(len(LINE_SLOPES), -1)
        best = int(np.argmax(histogram.max(axis=1)))
        counts, low, along = histogram[best, : spans[best]], int(lowest[best]), shifted[best]
        # Columns inked within one bin of each bin: a line blurred over two or three rows still counts once.
        inked_at = np.zeros((int(along.max()) + 3, w), dtype=bool)
        inked_at[along, xs] = True
        near = inked_at.copy()  # each bin, and the two before it
        near[1:] |= inked_at[:-1]
        near[2:] |= inked_at[:-2]
        profile = np.pad(near.sum(axis=1), BROAD_BINS)
        # A line is a sharp peak: SHARP_BINS bins away the projection is low (grain spread over the page is not);
        # a broader one, low BROAD_BINS away, only as a frame's side (below).
        long = profile >= LINE_COVER * w
        sharp = long & (np.roll(profile, SHARP_BINS) < PEAK_DROP * profile) \
            & (np.roll(profile, -SHARP_BINS) < PEAK_DROP * profile)
        broad = long & ~sharp & (np.roll(profile, BROAD_BINS) < PEAK_DROP * profile) \
            & (np.roll(profile, -BROAD_BINS) < PEAK_DROP * profile)
        peaks = np.flatnonzero(sharp | broad)
        bins = peaks - BROAD_BINS - 1 + low
        narrow = _line_widths(counts, bins - low) <= MAX_LINE_WIDTH * w
        bins, broad = bins[narrow], broad[peaks][narrow]
        if len(bins) and not (bins.min() < FRAME_INSET * h and bins.max() > (1 - FRAME_INSET) * h):
            # No frame's two sides: lines short of the edges, and broad ones, are taken only as those.
            bins = bins[:0] if framed_only else bins[~broad]
        if not len(bins):
            continue
        yy, xx = np.mgrid[0:h, 0:w]
        offset = np.round(yy - LINE_SLOPES[best] * xx).astype(int)
        on_line = np.isin(offset, np.unique(np.concatenate([bins + d for d in (-1, 0, 1)])))
        if view[~on_line].sum() < OFF_LINE_INK * view.sum():
            continue  # the "line" is the digit itself: a 1 filling a tight crop
        taken = on_line & ~_strokes_on_lines(view, offset, bins)
        view[taken] = 0
        # A stroke crossing the line is bridged: inside the band, a closing (the least of the greatest ink
        # within reach) joins the stroke's ends above and below it, while the line, with nothing to join
        # across it, stays away.
        view[taken] = closing(view, BRIDGE)[taken]
        found = True
    return found


def _line_widths(counts: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each line's width in pixels: the bins within 4 of its centre holding at least half as many inked
    pixels as its fullest bin."""
    padded = np.pad(counts, (4, 8))  # a line's centre may lie a bin or two past the last inked bin
    windows = padded[centres[:, None] + np.arange(9)]
    return (windows >= 0.5 * windows.max(axis=1, keepdims=True)).sum(axis=1)


def _strokes_on_lines(view: np.ndarray, offset: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Ink in a line's band far stronger than the line itself there: a stroke written along the line (a 2's
    foot, a 5's top), which taking the band away would erase. The line's strength is the running median,
    over half the page, of the band's strongest ink in each column: lines fade across a photo, and a
    digit covers too little of a line to move that median."""
    w = view.shape[1]
    strokes = np.zeros(view.shape, bool)
    for line in bins:
        band = np.abs(offset - line) <= 1
        strength = np.where(band, view, 0).max(axis=0)
        line_level = ndimage.median_filter(strength, size=(w // 2) | 1, mode="nearest")
        strokes |= band & (view > STROKE_OVER_LINE * line_level)
    return strokes
