"""Paper and light: polarity, the paper's level under uneven light and shadows, and its grain (`_flatten_paper`)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from digitrec.imaging.morphology import edge_padded, max_filter, min_filter

SMALL_PICTURE = 64  # pixels a side: up to this, grain and paper are measured on every pixel, not a quarter
# The paper's level is the least of each block's 3x3 neighbourhood, unless that stands more than this share
# of the ink's contrast above the least of its 5x5 (chosen on realworld-val: 0.3 and 0.5 read marker and
# boxed better and every other set the same, 0.3 more boxed digits; 0.2 moved small and scans a digit each;
# the 5x5 everywhere lost 2 % of ruled paper).
INSIDE_INK = 0.3
# A shadow's edge is looked for in pictures of one digit larger than this a side (photographs of a page: an old scan or
# a box enlarged to fill its picture has strokes as broad as the squares that find the edge, and looked for there it
# cost realworld-val's scans 104 digits of 1,000), and in every line of writing (`ink_map`: lines of 70-130 px
# photographed with a shadow's hard edge 0.2-0.33 darker read 36-67 % of validation numbers, 87-96 % with it; no kind of
# the number validation bench moved by more than one number), and a "shadow" deeper than this share of the ink's
# contrast is ink (a marker's filled loop). Chosen on realworld-val and `scripts/probe.py photos`: with 0.6 the probe's
# shadows read 1-2 % worse; 0.8 read them as well, but under an earlier, looser test for an edge it cost marker two
# digits. A shadow's edge is a step of the paper's level of at least SHADOW_STEP of the ink's contrast (about where the
# ink's threshold would let it through): at 0.3 edges 40 levels dark were missed (89.7 % of the probe's read; 98.8 % at
# 0.1), 0.05 read framed and ruled validation digits a little better (7 and 1 more) and the probe's lighting gradients a
# little worse (1 more).
SHADOWED_ABOVE = 128
SHADOW_DEPTH = 0.7
SHADOW_STEP = 0.1
# Polarity. Where less than BORDER_SPLIT or more than 1 - BORDER_SPLIT of the border is lighter than the middle level,
# the border is paper; in between, the digit fills its picture and the corners decide: squares 1/CORNER_PART of the
# smaller side, their median against the middle level. Where that median sits within CORNER_TIE grey levels of
# MID_GREY and on the middle level itself (black and white: a bar stretched corner to corner), the shade that covers
# more of the picture is paper (decision 0007: boxed views of 3,000 validation digits read 97.07 -> 97.37 %).
BORDER_SPLIT = 0.2
CORNER_PART = 10
CORNER_TIE = 1
MID_GREY = 127.5
# A frame along the picture's edge (a form's box, a scanner's margin; decision 0008): two rings 1/RING_PART and
# 2/RING_PART of the smaller side in (at least RING_MIN px), looked at only where the picture is more than
# RING_ROOM such steps across, overrule the border when in both at most RING_ASIDE is of the border's shade.
RING_PART = 12
RING_MIN = 2
RING_ROOM = 6
RING_ASIDE = 0.2
# The paper's level is taken on a grid of PAPER_GRID x PAPER_GRID blocks, each the least of its NEAR_BLOCKS x
# NEAR_BLOCKS neighbourhood, or of its FAR_BLOCKS x FAR_BLOCKS inside ink (see INSIDE_INK); near a shadow's edge
# the greatest of those least values over NEAR_BLOCKS x NEAR_BLOCKS.
PAPER_GRID = 8
NEAR_BLOCKS = 3
FAR_BLOCKS = 5
# Grain as a standard deviation: the median absolute step between neighbours is STEP_SIGMAS of Gaussian grain's
# deviation (0.6745 * sqrt 2: the median of |x - y| for two independent draws), then divided by GRAIN_EASE (lowers
# the grain, and with it the ink threshold, by a tenth; no measurement of the factor is recorded); the paper's own
# spread is MAD_SIGMAS times its median absolute deviation (a normal distribution's factor).
STEP_SIGMAS = 0.954
GRAIN_EASE = 1.1
MAD_SIGMAS = 1.4826


def _flatten_paper(gray: np.ndarray, line: bool = False) -> tuple[np.ndarray, float, float]:
    """Light ink on a black, flat background, whatever the polarity and the lighting, and the paper's
    grain. `line`: a line of writing (a shadow's edge is looked for whatever its size).

    Polarity: the border is paper, unless the digit fills it (an old scan), then the corners are; light and
    dark are taken relative to the picture's own range (`_middle_level`).
    Lighting: the paper's level is the darkest (in light-ink polarity) of each of 8x8 blocks, taken
    over its neighbours too so that a block inside a thick stroke gets its neighbours' paper, then
    smoothed back to full size: uneven light, soft shadows and tinted paper are taken away; near a shadow's
    sharp edge across a photographed page the level is found pixel by pixel (`_shadow_edge`). Grain: the typical
    step between neighbouring pixels (a standard deviation from their median absolute difference), which
    ink edges, being few, do not move, or the paper's own spread, whichever is larger."""
    h, w = gray.shape
    # Medians of a quarter of the pixels: the same answer for a quarter of the time. Not in a small picture
    # that the digit fills (a 16x16 box): there, pixels two apart are mostly across a stroke's edge, and
    # their steps would pass for grain and the digit for a blank page.
    sample = gray[::2, ::2] if min(h, w) > SMALL_PICTURE else gray
    means = _mean2(sample)
    middle = _middle_level(means)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    light_border = np.count_nonzero(border > middle) / border.size
    if not BORDER_SPLIT < light_border < 1 - BORDER_SPLIT:
        light_paper = light_border > 0.5
        # A frame along the picture's edge (a form's box cropped at its line, a scanner's black margin) is not
        # the paper: where two rings further in both clearly say the other shade, they are the paper.
        d = max(RING_MIN, min(h, w) // RING_PART)
        if min(h, w) > RING_ROOM * d and all(_ring_is(gray, depth, not light_paper, middle) for depth in (d, 2 * d)):
            light_paper = not light_paper
    else:  # a digit filling its box still leaves the corners blank
        k = max(1, min(h, w) // CORNER_PART)
        corners = np.concatenate([gray[:k, :k], gray[:k, -k:], gray[-k:, :k], gray[-k:, -k:]], axis=None)
        corner = float(np.median(corners))
        # Corners half ink and half paper sit exactly halfway (a bar stretched from corner to corner). Then
        # the shade farther from mid-grey is the paper (white paper is whiter than ink is black), as it always
        # was; in black and white, where neither is farther, it is the shade that covers more of the picture.
        if corner != middle:
            light_paper = corner > middle
        elif abs(corner - MID_GREY) > CORNER_TIE:
            light_paper = corner > MID_GREY
        else:
            light_paper = 2 * np.count_nonzero(gray > middle) > gray.size
    if light_paper:  # dark ink on light paper
        gray, sample, means = 255 - gray, 255 - sample, 255 - means
    noise = float(np.median(np.abs(np.diff(sample, axis=1)))) / STEP_SIGMAS / GRAIN_EASE if sample.shape[1] > 1 else 0.0
    # The paper's level from the quarter sample: it varies slowly, and the surface is resized anyway.
    sh, sw = sample.shape
    side = max(1, -(-max(sh, sw) // PAPER_GRID))
    rows, cols = -(-sh // side), -(-sw // side)
    least = edge_padded(means, rows * side, cols * side).reshape(rows, side, cols, side).min(axis=(1, 3))
    blocks = min_filter(least, NEAR_BLOCKS)
    # A block whose whole neighbourhood is ink (inside a marker's filled loop, a stretched stroke's slab)
    # would pass the ink off as paper and leave a hollow outline: there the wider neighbourhood's paper is
    # taken. Light and shadow do not climb that far within one block's reach.
    contrast = float(sample.max() - blocks.min())  # the 5x5's least is the 3x3's least, overall
    reach = INSIDE_INK * contrast
    if float(blocks.max() - blocks.min()) > reach:  # else no block can stand that far above its 5x5
        wider = min_filter(least, FAR_BLOCKS)
        blocks = np.where(blocks - wider > reach, wider, blocks)
    edge = _shadow_edge(means, least, blocks, side, contrast) if line or min(h, w) > SHADOWED_ABOVE else None
    if edge is not None:
        # Each block's paper the greatest of its neighbourhoods' least (an opening, not only the least): on
        # the shadowed side of its edge the least around a block is the lit paper across it.
        blocks = max_filter(blocks, NEAR_BLOCKS)
    scale = (cols * side * w / sw, rows * side * h / sh)
    paper = Image.fromarray(blocks.astype(np.float32), mode="F").resize((round(scale[0]), round(scale[1])),
                                                                          Image.Resampling.BILINEAR)
    paper = np.asarray(paper, dtype=np.float32)[:h, :w]
    if edge is not None:
        paper = np.maximum(paper, np.asarray(Image.fromarray(edge, mode="F").resize((w, h), Image.Resampling.BILINEAR)))
    ink = gray - paper
    if edge is not None and light_paper:
        # In shadow the ink is darker too, by the same share of the light as the paper: its strength is
        # measured against the paper it lies on, as in full light.
        lit = 255 - paper
        ink *= float(lit.max()) / np.maximum(lit, 1.0)
    # Grain that varies slowly (JPEG smooths the pixel-to-pixel steps) shows in the paper's own spread,
    # which a digit filling most of its picture inflates: that one sets the ink threshold, not blankness.
    few = ink[::2, ::2]
    return ink, noise, max(noise, MAD_SIGMAS * float(np.median(np.abs(few - np.float32(np.median(few))))))


def _shadow_edge(means: np.ndarray, least: np.ndarray, blocks: np.ndarray, side: int,
                 contrast: float) -> np.ndarray | None:
    """The paper's level, pixel by pixel, near a shadow's edge across the page, or None where there is none.

    An edge: the paper's level of blocks two apart differs by more than SHADOW_STEP of the contrast and three times
    the typical such difference (a gradient of light changes as much everywhere, a shadow's edge changes at
    once). Blocks whose least is darker than SHADOW_DEPTH of the ink's contrast are ink, not paper. The
    blocks follow the edge only to within a block and miss a shadow's corner narrower than three; near it
    (and near blocks whole in shadow) the level is the greatest least of the squares, a quarter of the
    picture wide, that contain each pixel (a grey opening: it keeps a straight edge where it is and takes
    away every stroke narrower than the square)."""
    shade = np.where(least - blocks.min() < SHADOW_DEPTH * contrast, least, blocks)
    least_step = SHADOW_STEP * contrast
    if float(shade.max() - shade.min()) <= least_step:
        return None  # the common case: no two blocks differ enough (two reductions of an 8x8 grid)
    across, down = np.abs(shade[:, 2:] - shade[:, :-2]), np.abs(shade[2:] - shade[:-2])
    sharp = max(least_step, 3 * float(np.median(np.concatenate([across.ravel(), down.ravel()]))))
    step = np.zeros(blocks.shape, bool)
    step[:, 1:-1] |= across > sharp
    step[1:-1] |= down > sharp
    if not step.any():
        return None
    dark = max_filter(step | (least - blocks > INSIDE_INK * contrast), 5)
    near = np.kron(dark, np.ones((side, side), bool))[: means.shape[0], : means.shape[1]]
    level = ndimage.grey_opening(means, size=2 * side + 1)
    level = np.where(near & (level - blocks.min() < SHADOW_DEPTH * contrast), level, 0)
    if not level.any():
        return None
    # The square does not fit into a shadow's corner narrower than itself: from the shadow around it, its
    # level spreads a pixel at a time over paper (and ink) at least as dark, never above what is there.
    capped = np.where(near, means, 0)
    for turn in range(4 * side):
        spread = np.minimum(max_filter(level, 3), capped)
        if turn % 8 == 7 and np.array_equal(spread, level):
            break
        level = spread
    return np.pad(level, ((0, 1), (0, 1)), mode="edge").astype(np.float32)


def _middle_level(means: np.ndarray) -> float:
    """What divides light from dark: halfway between the picture's darkest and lightest 2x2 means (a hot
    pixel counts a quarter). Not a fixed mid-grey: paper photographed in dim light is darker than that and
    still lighter than its ink."""
    return (float(means.min()) + float(means.max())) / 2


def _ring_is(gray: np.ndarray, depth: int, light: bool, middle: float) -> bool:
    """Whether the ring of pixels `depth` in from the picture's edge is lighter (or darker) than `middle` but for
    at most RING_ASIDE of it."""
    d = depth
    ring = np.concatenate([gray[d, d:-d], gray[-d - 1, d:-d], gray[d:-d, d], gray[d:-d, -d - 1]])
    share = np.count_nonzero(ring > middle) / ring.size
    return share >= 1 - RING_ASIDE if light else share <= RING_ASIDE


def _mean2(a: np.ndarray) -> np.ndarray:
    """Means of 2x2 neighbourhoods (one row and column fewer): grain averaged down, strokes kept."""
    return (a[:-1, :-1] + a[1:, :-1] + a[:-1, 1:] + a[1:, 1:]) / 4 if min(a.shape) > 1 else a
