"""Turning a picture from the outside world into an MNIST-style 28x28 image.

This is the only place that resizes, inverts or centres a picture: the CLI, the Python API,
the server and the tests all call `to_mnist`. MNIST's own recipe: grayscale, light ink on
black, cropped to the ink, scaled to fit 20x20 keeping the aspect ratio, and placed in 28x28
so that the centre of mass sits at the centre.
"""

from __future__ import annotations

import contextlib
import io
import re
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage
from scipy.sparse.csgraph import connected_components

from digitrec.core.constants import IMAGE_FORMATS, IMAGE_FORMATS_TEXT, IMAGE_SIZE
from digitrec.core.errors import BlankImageError, DigitrecError, NoDigitError, TooLargeError
from digitrec.imaging.morphology import (
    EIGHT_CONNECTED,
    FOUR_CONNECTED,
    closing,
    edge_padded,
    max_filter,
    median,
    min_cross,
    min_filter,
)

# A picture over this many pixels is refused before it is decoded, from the size its header gives (a
# 20000x20000 "decompression bomb" is a few KB): decoded, 40 megapixels of RGBA are 160 MB. Pillow's own limit is
# set to it too; Pillow then warns of pictures over it (we refuse them ourselves, with a clearer message) and
# refuses those over twice it. Its warnings, and those of damaged metadata it skips, are no business of the user's:
# silenced here once, not around each call (`warnings.catch_warnings` is not thread-safe).
MAX_IMAGE_PIXELS = 40_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
warnings.filterwarnings("ignore", module=r"PIL\.")
FIT_SIZE = 20  # MNIST fits each digit's ink into 20x20, then centres it in 28x28
CANVAS = IMAGE_SIZE
MNIST_PAPER = 8  # grey levels: a 28x28 picture on paper this close to black (or white) may be MNIST's own
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
# A picture under this a side (an old scanner's 8x8 counts, stored as they are) is enlarged, each pixel a
# block, before it is read: in 8x8 nearly every step between neighbours crosses a stroke's edge, so the
# steps would pass for grain and the digit for a blank page.
TINY_PICTURE = 16
WORK_SIZE = 192  # large photos are reduced to this first: enough detail, bounded cost
DRAFT_ABOVE = 1024  # a JPEG larger than this a side is decoded at a reduced scale, at least this large
DRAFTED = "digitrec_drafted"  # image.info key: the original's pixels per decoded pixel
# MNIST's strokes are 2.5 px wide at 28x28 (median; 5-95 %: 1.7-3.9, `stroke_width` on 3,000 training
# digits). A pen outside this range is brought to the median; inside it, a picture is left as drawn.
STROKE_TARGET = 2.5
STROKE_RANGE = (1.8, 3.6)
# Ink that no digit makes: strokes over 9 px wide at 28x28 (a blot, a smudge: MNIST's widest of 30,000
# training digits is 8.0, a felt-tip's 7.8), inked pixels over 62 % of the 20x20 fit, or more than five
# enclosed holes (a scribble; an outlined font's 6 has four). No MNIST training digit has more than four.
MAX_STROKE = 9.0
MAX_INK_SHARE = 0.62
MAX_HOLES = 5
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
JOIN = 1  # pixels: pieces this close are one piece
REACH = 3  # pixels: faint ink and soft edges this close to kept ink are kept


def open_image(payload: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Decode image bytes, refusing what is no picture digitrec reads (IMAGE_FORMATS only) and a picture over
    `max_pixels` (at most MAX_IMAGE_PIXELS) before decoding it: its size is read from its header. Safe to call
    from several threads at once (the server decodes off its event loop)."""
    if not payload:
        raise DigitrecError("empty file", expected=f"an image ({IMAGE_FORMATS_TEXT})")
    max_pixels = min(max_pixels, MAX_IMAGE_PIXELS)
    try:
        image = Image.open(io.BytesIO(payload), formats=IMAGE_FORMATS)  # reads the header only
        width, height = image.size
        if width * height > max_pixels:
            raise TooLargeError(
                f"image is {width}x{height} pixels, over the pixel limit", expected=f"at most {max_pixels:,} pixels"
            )
        if image.format == "JPEG" and max(width, height) > DRAFT_ABOVE:
            # Decoded at 1/2, 1/4 or 1/8 scale by the JPEG decoder itself: a 40-megapixel photo costs
            # a few MB instead of 120, and the network reads 28x28 anyway.
            scale = max(DRAFT_ABOVE / max(width, height), 1 / 8)
            image.draft(image.mode, (round(width * scale), round(height * scale)))
            image.info[DRAFTED] = width / image.size[0]  # boxes are given in the original's pixels
        image.load()
    except DigitrecError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:  # Image.open's, from the header
        # (the warning is raised only where warnings are made errors: `python -W error`)
        size = re.search(r"\((\d+) pixels\)", str(e))
        raise TooLargeError(f"image is {int(size[1]):,} pixels, over the pixel limit" if size else
                            "image is over the pixel limit", expected=f"at most {max_pixels:,} pixels") from None
    except UnidentifiedImageError as e:
        raise DigitrecError(f"not a readable image ({e.__class__.__name__})", expected=IMAGE_FORMATS_TEXT) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DigitrecError(f"corrupt or truncated image ({e})", expected=IMAGE_FORMATS_TEXT) from None
    # a damaged EXIF block (fuzzed: SyntaxError, struct.error, "negative seek") is ignored: read unrotated
    with contextlib.suppress(OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, struct.error):
        ImageOps.exif_transpose(image, in_place=True)  # in place: a copy of a 40-megapixel picture is 160 MB more
    return image


def _grayscale(image: Image.Image) -> np.ndarray:
    """Luminance as float32 [H, W] in 0-255; transparent areas become background."""
    if image.mode in ("I;16", "I;16B", "I", "F"):  # 16 or 32 bits, or floats: no 0-255 scale of their own
        return _array_levels(np.asarray(image))
    if "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255
        lum = np.asarray(rgba.convert("L"), dtype=np.float32)
        if alpha.min() < 1:
            # Ink drawn on a transparent layer: put it on paper of the opposite shade.
            weight = alpha.sum()
            ink_lum = (lum * alpha).sum() / weight if weight else 0
            paper = 255.0 if ink_lum < 128 else 0.0
            return lum * alpha + paper * (1 - alpha)
        return lum
    return np.asarray(image.convert("L"), dtype=np.float32)


def _shrink(image: Image.Image, factor: int | None = None) -> Image.Image:
    """A large picture reduced by a whole factor (averaging blocks: fast, and the strokes stay) to at
    most WORK_SIZE a side, before any of it becomes floats."""
    factor = factor or -(-max(image.size) // WORK_SIZE)
    if factor < 2:
        return image
    if image.mode not in ("L", "RGB", "RGBA", "LA", "I", "F"):
        image = image.convert("RGBA" if "transparency" in image.info or "A" in image.getbands() else "RGB")
    if "A" in image.getbands():
        # Reduced channel by channel: reducing RGBA whole makes a premultiplied copy of the full picture
        # (150 MB more for 40 megapixels), luminance and alpha alone cost a quarter of that each.
        return Image.merge("LA", (image.convert("L").reduce(factor), image.getchannel("A").reduce(factor)))
    return image.reduce(factor)


def _reduce(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    scale = WORK_SIZE / max(h, w)
    if scale >= 1:
        return gray
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(gray, mode="F").resize(size, Image.Resampling.BOX), dtype=np.float32)


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
    if not 0.2 < light_border < 0.8:
        light_paper = light_border > 0.5
        # A frame along the picture's edge (a form's box cropped at its line, a scanner's black margin) is not
        # the paper: where two rings further in both clearly say the other shade, they are the paper.
        d = max(2, min(h, w) // 12)
        if min(h, w) > 6 * d and all(_ring_is(gray, depth, not light_paper, middle) for depth in (d, 2 * d)):
            light_paper = not light_paper
    else:  # a digit filling its box still leaves the corners blank
        k = max(1, min(h, w) // 10)
        corners = np.concatenate([gray[:k, :k], gray[:k, -k:], gray[-k:, :k], gray[-k:, -k:]], axis=None)
        corner = median(corners)
        # Corners half ink and half paper sit exactly halfway (a bar stretched from corner to corner). Then
        # the shade farther from mid-grey is the paper (white paper is whiter than ink is black), as it always
        # was; in black and white, where neither is farther, it is the shade that covers more of the picture.
        if corner != middle:
            light_paper = corner > middle
        elif abs(corner - 127.5) > 1:
            light_paper = corner > 127
        else:
            light_paper = 2 * np.count_nonzero(gray > middle) > gray.size
    if light_paper:  # dark ink on light paper
        gray, sample, means = 255 - gray, 255 - sample, 255 - means
    noise = median(np.abs(np.diff(sample, axis=1))) / 0.954 / 1.1 if sample.shape[1] > 1 else 0.0
    # The paper's level from the quarter sample: it varies slowly, and the surface is resized anyway.
    sh, sw = sample.shape
    side = max(1, -(-max(sh, sw) // 8))
    rows, cols = -(-sh // side), -(-sw // side)
    least = edge_padded(means, rows * side, cols * side).reshape(rows, side, cols, side).min(axis=(1, 3))
    blocks = min_filter(least, 3)
    # A block whose whole neighbourhood is ink (inside a marker's filled loop, a stretched stroke's slab)
    # would pass the ink off as paper and leave a hollow outline: there the wider neighbourhood's paper is
    # taken. Light and shadow do not climb that far within one block's reach.
    contrast = float(sample.max() - blocks.min())  # the 5x5's least is the 3x3's least, overall
    reach = INSIDE_INK * contrast
    if float(blocks.max() - blocks.min()) > reach:  # else no block can stand that far above its 5x5
        wider = min_filter(least, 5)
        blocks = np.where(blocks - wider > reach, wider, blocks)
    edge = _shadow_edge(means, least, blocks, side, contrast) if line or min(h, w) > SHADOWED_ABOVE else None
    if edge is not None:
        # Each block's paper the greatest of its neighbourhoods' least (an opening, not only the least): on
        # the shadowed side of its edge the least around a block is the lit paper across it.
        blocks = max_filter(blocks, 3)
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
    return ink, noise, max(noise, 1.4826 * median(np.abs(few - np.float32(median(few)))))


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
    sharp = max(least_step, 3 * median(np.concatenate([across.ravel(), down.ravel()])))
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
    """Whether the ring of pixels `depth` in from the picture's edge is at least 80 % lighter (or darker)
    than `middle`."""
    d = depth
    ring = np.concatenate([gray[d, d:-d], gray[-d - 1, d:-d], gray[d:-d, d], gray[d:-d, -d - 1]])
    share = np.count_nonzero(ring > middle) / ring.size
    return share >= 0.8 if light else share <= 0.2


def _mean2(a: np.ndarray) -> np.ndarray:
    """Means of 2x2 neighbourhoods (one row and column fewer): grain averaged down, strokes kept."""
    return (a[:-1, :-1] + a[1:, :-1] + a[:-1, 1:] + a[1:, 1:]) / 4 if min(a.shape) > 1 else a


def _peak(ink: np.ndarray) -> float:
    """The ink's strength: the largest mean of a 3x3 neighbourhood, so that a hot pixel of sensor noise
    does not count, a stroke does."""
    if min(ink.shape) < 3:
        return float(ink.max())
    rows = ink[:-2] + ink[1:-1] + ink[2:]
    return float((rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]).max()) / 9


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


def _without_ruled_lines(ink: np.ndarray, threshold: float) -> bool:
    """Takes away, in place, straight lines that cross the whole picture (ruled or squared paper, a form's
    box), slanted up to 6 degrees, and says whether it found any: in the projection along the lines' slant, a
    line is a bin that 70 % of the columns ink, reaching both edges. A digit's strokes never span a picture
    that has room around it; where a stroke crosses a line it is bridged across the band."""
    inked = ink > threshold
    found = False
    for transposed in (False, True):
        view, mask = (ink.T, inked.T) if transposed else (ink, inked)
        h, w = view.shape
        columns = mask.any(axis=0)
        margin, inset = max(1, int(0.03 * w)), max(1, int(FRAME_INSET * w))
        if not (columns[:inset].any() and columns[-inset:].any()):
            continue  # nothing reaches both edges: the common case costs nothing more
        framed_only = not (columns[:margin].any() and columns[-margin:].any())
        band = max(1, int(FRAME_INSET * h))
        if framed_only and min(mask[:band].any(axis=0).mean(), mask[-band:].any(axis=0).mean()) < 0.7:
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
        profile = np.pad(near.sum(axis=1), 9)
        # A line is a sharp peak: five bins away the projection is low (grain spread over the page is not);
        # a broader one, low nine bins away, only as a frame's side (below).
        long = profile >= 0.7 * w
        sharp = long & (np.roll(profile, 5) < 0.5 * profile) & (np.roll(profile, -5) < 0.5 * profile)
        broad = long & ~sharp & (np.roll(profile, 9) < 0.5 * profile) & (np.roll(profile, -9) < 0.5 * profile)
        peaks = np.flatnonzero(sharp | broad)
        bins = peaks - 9 - 1 + low
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
        if view[~on_line].sum() < 0.15 * view.sum():
            continue  # the "line" is the digit itself: a 1 filling a tight crop
        taken = on_line & ~_strokes_on_lines(view, offset, bins)
        view[taken] = 0
        # A stroke crossing the line is bridged: inside the band, a closing (the least of the greatest ink
        # within reach) joins the stroke's ends above and below it, while the line, with nothing to join
        # across it, stays away.
        view[taken] = closing(view, (9, 3))[taken]
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


def stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: twice the inked area over its outline (a stroke of width w and length L
    has area wL and outline 2L), the outline counted along rows and columns and corrected for slant."""
    strongest = ink.max()
    inked = np.zeros((ink.shape[0] + 2, ink.shape[1] + 2) if strongest > 0 else (1, 1), bool)
    if strongest > 0:
        inked[1:-1, 1:-1] = ink > 0.5 * strongest
    outline = np.count_nonzero(inked[1:] != inked[:-1]) + np.count_nonzero(inked[:, 1:] != inked[:, :-1])
    return float(2 * inked.sum() / max(outline, 1) * 4 / np.pi)


def even_stroke(crop: np.ndarray, scale: float, pen: float | None = None) -> np.ndarray:
    """A pen much thinner or thicker than MNIST's, brought to MNIST's width before the crop is shrunk by
    `scale`: grown by a maximum filter, or worn away round, at the crop's own resolution. `pen`: the crop's
    `stroke_width`, where the caller has it already."""
    width = (stroke_width(crop) if pen is None else pen) * scale
    if STROKE_RANGE[0] <= width <= STROKE_RANGE[1]:
        return crop
    size = int(round(abs(STROKE_TARGET - width) / scale))
    size += 1 - size % 2  # odd: the filter stays centred
    if size < 3:
        return crop
    padded = np.zeros((crop.shape[0] + 2 * size, crop.shape[1] + 2 * size), crop.dtype)
    padded[size:-size, size:-size] = crop
    if width < STROKE_RANGE[0]:
        return max_filter(padded, size)
    thinner = _erode_round(padded, size)
    return thinner if thinner.max() > 0.5 else padded  # never erase the digit


def _erode_round(ink: np.ndarray, size: int) -> np.ndarray:
    """Grey erosion by an octagon about `size` across (3x3 squares and crosses in turn, a few times faster
    than a disk): a square's corners would cut a square hole where a marker left a pinhole in a filled
    loop, and square off the curves (realworld-val marker: 98.1 -> 98.5 %, the other sets the same; 98.6 %
    with INSIDE_INK)."""
    for step in range(size // 2):
        ink = min_cross(ink) if step % 2 else min_filter(ink, 3)
    return ink


def _fit(ink: np.ndarray) -> np.ndarray:
    # The box around clear ink (a fifth of the peak), one pixel wider for the soft edges: stray
    # specks of paper grain must not stretch the box and shrink the digit.
    crop = _crop(ink)
    pen = stroke_width(crop)
    paper, holes = _enclosed_paper(crop > 0.5)
    filled = _filled_outline(crop, pen, paper, holes)
    if filled is not None:
        crop, pen = filled, stroke_width(filled)
        paper, holes = _enclosed_paper(crop > 0.5)
    width = pen * FIT_SIZE / max(crop.shape)
    if width > MAX_STROKE:
        raise NoDigitError(f"no digit: a blot or smudge (strokes {width:.0f} px wide at 28x28)",
                           expected="a handwritten digit")
    # Before a thin pen is thickened and closes them; a hole is at least twice the pen's width squared.
    min_area = max(4.0, 2 * pen**2)
    if np.count_nonzero(holes >= min_area) > MAX_HOLES:
        crop, pen = _filled_hatching(crop, paper, holes, min_area, pen)
    crop = _crop(even_stroke(crop, FIT_SIZE / max(crop.shape), pen))
    h, w = crop.shape
    scale = FIT_SIZE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    fitted = Image.fromarray(crop.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(fitted, dtype=np.float32), 0, 1)


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


def _crop(ink: np.ndarray) -> np.ndarray:
    strong = ink > 0.2
    rows = np.flatnonzero(strong.any(axis=1))
    cols = np.flatnonzero(strong.any(axis=0))
    top, bottom = max(rows[0] - 1, 0), min(rows[-1] + 2, ink.shape[0])
    left, right = max(cols[0] - 1, 0), min(cols[-1] + 2, ink.shape[1])
    return ink[top:bottom, left:right]


def _place(fitted: np.ndarray) -> np.ndarray:
    h, w = fitted.shape
    total = fitted.sum()
    ys, xs = np.indices(fitted.shape)
    cy = (ys * fitted).sum() / total if total else h / 2
    cx = (xs * fitted).sum() / total if total else w / 2
    top = min(max(int(round(CANVAS / 2 - cy - 0.5)), 0), CANVAS - h)
    left = min(max(int(round(CANVAS / 2 - cx - 0.5)), 0), CANVAS - w)
    out = np.zeros((CANVAS, CANVAS), dtype=np.float32)
    out[top : top + h, left : left + w] = fitted
    return out


def _array_levels(picture: np.ndarray) -> np.ndarray:
    """An array's values as grey levels 0-255. uint8 is taken as it is; any other numbers (0-1 floats as
    most libraries give them, an old scanner's 0-16 counts, -1..1, 16 bits, True/False) carry no scale of
    their own and are stretched from their least to their greatest value."""
    array = np.asarray(picture)
    if array.dtype == np.uint8:
        return array.astype(np.float32)
    if array.dtype != bool and not np.issubdtype(array.dtype, np.integer) \
            and not np.issubdtype(array.dtype, np.floating):
        raise DigitrecError(f"image array holds {array.dtype} values",
                            expected="real numbers (uint8 0-255, or any range)")
    values = array.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise DigitrecError("image holds no finite pixel values (NaN or infinity)", expected="a picture")
    values = np.where(finite, values, np.median(values[finite]))  # a float TIFF's NaN or inf pixels: paper
    low, high = float(values.min()), float(values.max())
    return ((values - low) * (255 / (high - low)) if high > low else np.zeros_like(values)).astype(np.float32)


def _gray_of(picture: Image.Image | np.ndarray, factor: int | None = None) -> np.ndarray:
    gray = _grayscale(_shrink(picture, factor)) if isinstance(picture, Image.Image) else _array_levels(picture)
    if gray.ndim == 3:
        gray = gray.mean(axis=2)
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise DigitrecError(f"image array has shape {gray.shape}", expected="a 2-D grayscale image")
    return gray


def to_mnist(picture: Image.Image | np.ndarray) -> np.ndarray:
    """Any picture of one digit (either polarity, any size) -> uint8 [28, 28], light ink on black."""
    gray = _gray_of(picture)
    already = _mnist_already(gray)
    if already is not None:
        _check_digit_like(already)
        return already
    return ink_to_mnist(_clean(_ink(_reduce(_enlarge_tiny(gray)))))


def _mnist_already(gray: np.ndarray) -> np.ndarray | None:
    """A picture that already is an MNIST digit, as it is (light ink on black): 28x28, clean paper (MNIST's is
    exactly 0; either polarity), the ink's box at most 20x20 and its larger side at least 16, its centre of
    mass at most a pixel outside MNIST's 13.5-14.5 (where all of 20,000 training digits have theirs), and no
    more of the 20x20 inked than MAX_INK_SHARE. Made again, it would be cropped, resampled and cleaned of a
    detached stroke's piece: MNIST validation digits as PNG files read 99.23 % so, 99.40 % as they are. The
    heaviest (17 of 60,000 training digits, 3 of 10,000 test digits, up to 78 % inked) are made again, which
    brings their pen to MNIST's width, rather than refused as a blot."""
    if gray.shape != (CANVAS, CANVAS):
        return None
    ring = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    paper = median(ring)
    if MNIST_PAPER < paper < 255 - MNIST_PAPER:
        return None
    image = np.clip(gray if paper <= MNIST_PAPER else 255 - gray, 0, 255)
    if (image <= MNIST_PAPER).mean() < 0.5:
        return None
    strong = image > 76
    rows, cols = np.flatnonzero(strong.any(axis=1)), np.flatnonzero(strong.any(axis=0))
    if not len(rows):
        return None
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    if max(height, width) > FIT_SIZE or max(height, width) < 16:
        return None
    ys, xs = np.indices(image.shape)
    centre = (float((ys * image).sum()), float((xs * image).sum()))
    if any(abs(c / image.sum() - 14) > 1.5 for c in centre):
        return None
    if (image > 127).sum() / FIT_SIZE**2 > MAX_INK_SHARE:
        return None
    return np.round(image).astype(np.uint8)


def _enlarge_tiny(gray: np.ndarray) -> np.ndarray:
    """A picture under TINY_PICTURE a side, enlarged by the least whole factor that brings it there
    (each pixel a block: nothing is invented between them), never past WORK_SIZE."""
    h, w = gray.shape
    factor = min(-(-TINY_PICTURE // min(h, w)), max(1, WORK_SIZE // max(h, w)))
    return gray if factor < 2 else np.repeat(np.repeat(gray, factor, axis=0), factor, axis=1)


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


def ink_map(picture: Image.Image | np.ndarray, height: int) -> tuple[np.ndarray, float]:
    """A picture of a line of writing as ink strength 0-1 (polarity, paper, lighting and ruled lines taken
    out) at about `height` pixels high, and the factor from its pixels back to the picture's."""
    size = picture.size[::-1] if isinstance(picture, Image.Image) else np.shape(picture)[:2]
    factor = max(1, size[0] // height)
    if not isinstance(picture, Image.Image):
        return _ink(_gray_of(picture, factor), line=True), 1.0
    return _ink(_gray_of(picture, factor), line=True), factor * picture.info.get(DRAFTED, 1.0)


def ink_to_mnist(ink: np.ndarray) -> np.ndarray:
    """Ink strength 0-1 around one digit -> uint8 [28, 28] the MNIST way (crop, pen width, 20x20 fit,
    centre of mass), refused when it is ink no digit makes."""
    image = np.round(_place(_fit(ink)) * 255).astype(np.uint8)
    _check_digit_like(image)
    return image


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
