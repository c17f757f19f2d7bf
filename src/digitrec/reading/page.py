"""Whole pages: every handwritten field on a form, a table or a row of digit boxes, each read as a number.

A page (a photo or scan up to A4 at 300 dpi) is analysed reduced, its handwriting WRITING_PX high or more:
1. ink: dark or light ink on paper of either shade, the paper's light levelled block by block;
2. rules: long straight runs of ink across the page (underlines, a table's grid, the frame of a row of digit
   boxes) and the short uprights that join one rule to another (the walls between boxes) are taken away;
3. pieces: what ink is left, in connected pieces (specks dropped), grouped into words by line and gap,
   never across a rule;
4. printed or handwritten: a small network (`_features`: each piece's shape, its size against the page's
   writing and its word's, where it stands against the word's baseline) tells printed words (labels,
   headings) and rules' stubs from handwriting; they give nothing;
5. fields: the handwritten words, one field each (a row of digit boxes, all its boxes together), each
   read with `read_number` from the picture's own pixels, the rest of the page masked out.
Fields come in reading order: by line (top to bottom), then left to right.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image
from scipy import ndimage

from digitrec.core.errors import BlankImageError, DigitrecError, NoDigitError, TooLargeError
from digitrec.imaging.decode import DRAFTED, JPEG_FORMATS, MAX_IMAGE_PIXELS, draft_factor, gray_of, open_image
from digitrec.imaging.fit import to_mnist
from digitrec.imaging.morphology import EIGHT_CONNECTED, closing, max_filter
from digitrec.reading.line import LineModel
from digitrec.reading.numbers import DigitReading, Reading, read_number, signed_value

# A4 at 300 dpi is 2480x3508, 8.7 megapixels; a phone's 12-megapixel photo (4032x3024) fits too. Past this a
# page is refused before any of it is analysed.
MAX_PAGE_PIXELS = 13_000_000
PRINTED_FILE = "printed.npz"  # the printed-or-handwritten classifier's weights, in digitrec/bundled
# A page larger than PAGE_WORK a side is analysed reduced by a whole factor, its handwriting (measured on a
# sketch SKETCH pixels on its longer side) kept WRITING_PX pixels high or more (validation fields right at 32
# and at 24: list 83.7 and 80.6 %, table 88.2 and 86.9 %, boxes 65.1 and 67.1 %). The sketch's blocks merge
# what they hold and can measure the writing too tall; measured again at the work scale, writing under
# WRITING_PX on a reduced page is analysed at the finer scale that holds it (validation fields right, the
# sketch's scale and the finer one: list 78.9 and 81.4 %, boxes 88.2 and 89.0 %, table 91.1 % both; a list page's
# points smaller than a speck at the coarse scale).
WRITING_PX = 32
SKETCH = 500
PAGE_WORK = 1000
# Work pixels: the paper's level is the lightest of each block (and its neighbours') BLOCK a side on a page, an
# eighth of the picture's shorter side on a smaller picture (one digit photographed large: strokes 30 px wide).
# A sketch of a page that looks blank with blocks of an eighth of its side is looked at again with BLOCK: on
# a photographed page those (41 px on a 330 px sketch) spread the desk's edge and the light's slope into the
# paper's grain, enough to hide a page of five fields (validation box pages, fields right: 83.0 % without the
# second look, 84.3 % with it). Only then: with BLOCK on every sketch the writing's measured height moves, and
# with it the work scale, and a table page read at twice the scale lost 17 fields.
BLOCK = 16
SMALL_PICTURE = 600
# Bounded work: a page holding more pieces of ink than this is noise, not a form; more fields than
# MAX_FIELDS is no form either (an A4 form of 1 cm lines holds about 100).
MAX_PAGE_PIECES = 6000
MAX_FIELDS = 200
# Noise as dense as the paper (half a 500 x 500 picture's pixels dark at random) is one piece of ink, passes
# MAX_PAGE_PIECES and would otherwise read as up to 32 fields, some at 0.99. A picture more than MAX_DARK_SHARE of
# whose sheet is darker than its paper by DARK of the paper's light (or by five times its grain, up to twice that:
# a scan's grain alone is not dark) is no page of writing (`_ink`; the validation pages, desks left out: at most
# 5.6 %). A picture of one line of writing is read as `read` reads it before (thick marker filling a small
# picture).
MAX_DARK_SHARE, DARK, DARK_SAMPLE = 0.25, 0.25, 200_000  # DARK_SAMPLE: the sheet's pixels looked at, at most
GROUP_ROWS = 64  # pieces set against all the others at a time when grouping: 64 x 6000 pairs, 3 MB a matrix
# A field whose digits are read less surely than this is no field: most such are printed words taken for writing
# (a label in a font the printed-or-handwritten network did not learn: `Qty:` read as `004` at 0.43). Its signs
# do not count: a date with a doubtful slash is still a field (validation list pages, fields right 77.2 % with
# the signs counted, 77.9 % without). Chosen on validation pages of MNIST digits (40 a layout) and in the
# validation half of the handwriting fonts (15 a layout), the fewest pages with an invented field over all,
# then the most fields right: at 0.3 / 0.4 / 0.45 / 0.5, 7 / 6 / 4 / 4 such pages (font lists 4 / 3 / 1 / 1 of
# 15); fields right, MNIST boxes and lists 88.6 / 88.6 / 88.2 / 88.2 % and 81.1 / 81.1 / 80.7 / 80.0 %, font
# lists 81.3 / 82.1 / 83.7 / 83.7 %, tables the same. A value written with its signs (`numbers.signed_value`) is a field
# whatever its digits' confidence: printed words read as digits make no date (validation MNIST lists 81.4 and
# 81.8 % of fields right without and with that exception; font pages' fields right and invented the same, two
# fields read wrong instead of missed). Writing across two closed digit boxes or more, read as at most one digit
# a box, is a field whatever its confidence: a long row's confidence is the product of many digits' (validation
# box pages: a row of twelve read right at 0.43; fields right 89.9 % with the rule and 89.4 % without, the fonts'
# 81.0 and 79.8 %, none invented). Print in boxes reads as more digits than boxes (`Sun` `Mon` in two small
# table cells as `5417`, a form's grey `DDMMYYYY` hints as 14 digits) and still meets the floor; a comb's boxes
# are not counted, so its rows keep the floor.
LEAST_CONFIDENCE = 0.45
# What a field's ink may turn out to be (no field); a model that fails is no such and fails the page.
NOT_A_NUMBER = (NoDigitError, BlankImageError, TooLargeError)
# Polarity: the paper is the page's middle level and the ink the tail that reaches farther from it, looked at in
# the darkest and lightest POLARITY_TAIL % of about POLARITY_SAMPLE pixels (every few rows and columns: a stroke
# is wider than the step). A sparse form's writing can cover less than 0.5 % of the page, so the 0.5 and 99.5
# percentiles both fall in the paper's grain and tell nothing (validation list pages, fields right: 78.9 % by
# the tails, 77.9 % by the percentiles, a page of four fields read as a blank negative).
POLARITY_SAMPLE, POLARITY_TAIL = 250_000, 0.05
# A page whose lines run MIN_TURN degrees or more off the level (up to MAX_TURN) is set level before it is
# analysed: rules are found as runs along rows, which hold for about 2 degrees, and past that a row of boxes
# falls into pieces whose walls read as 1s. The angle is measured on at most SKEW_POINTS pixels of ink, on a
# grid of TURN_STEP degrees, and taken only where the ink is at least SKEW_GAIN times as concentrated along it
# as along the rows (short words alone do not show the page's angle). Validation, fields right without and with
# it: boxes 84.3 and 88.2 %, list 78.9 and 78.9 %, table 91.1 and 90.9 %; pages with an invented field the same
# but for one table page (2.5 and 5.0 %). A rendered page of boxes 8 degrees off read 0 of its 7 fields with
# MAX_TURN at 6 and all 7 at 10 (decision 0016).
MIN_TURN, MAX_TURN, TURN_STEP, SKEW_POINTS, SKEW_GAIN = 1.5, 10.0, 0.5, 60_000, 1.3
# Bounded work: a picture is set level only where the canvas that holds it level is at most MAX_LEVEL_PIXELS (a
# 13-megapixel page 9 degrees off: 1.0 s and 276 MB to read, against 0.7 s and 224 MB as it is; a 13000 x 1000
# strip 9 degrees off would need 39 megapixels, 5.4 s and 1.2 GB, and is read as it is).
MAX_LEVEL_PIXELS = 20_000_000
# A JPEG page up to MAX_PAGE_PIXELS is decoded whole (`open_page`). One that `open_image` would draft (over 2048
# pixels a side) is analysed reduced as the draft would (by 2, 4 or 8), and whole where its writing would then be
# under WHOLE_BELOW pixels: there a point is a pixel or two, and a digit's gaps close (decision 0018). Validation
# pages, fields right boxes / list / table (pages right): all drafted 88.2 / 83.5 / 92.0 % (21 / 11 / 13 of 40);
# whole under 28: 89.0 / 86.3 / 91.5 % (21 / 15 / 14); under 32: 86.9 / 87.3 / 91.9 % (19 / 17 / 15), p50 a
# page 321 / 450 / 630 ms against 275 / 267 / 333 ms under 28.
WHOLE_BELOW = 28
# Analysed whole, a page's writing is at least this share of its height measured drafted (times the draft): whole,
# the dots of a dotted leader are pieces, hundreds of them, and the labels' print their tallest twentieth (a list
# page's writing of 54 measured as 13, its digits then cut into strokes and its dots read as 1s).
DRAFTED_WRITING = 0.8
# A piece whose ink fills under SPARSE of its box does not measure the writing: a faint grid the ink breaks into
# corners and crosses, each a piece 80-160 px high beside writing of 36 (a digit's stroke at the work scale, two
# pixels wide or more, fills more of its box: a slanted 1 in 32 x 20 about 11 %). Validation tables, fields
# right 94.2 / 94.4 % without and with; the second bench's fonts' tables 82.9 / 86.0 %.
SPARSE = 0.07
# A picture whose one field is lower than this share of its height is a page with one field, read from the
# field's own crop (a 4-digit number 60 px high on a 2100x2600 page, read whole as `read` reads it: `4`).
ONE_LINE_SHARE = 0.1
MIN_INK = 24.0  # grey levels: ink weaker than this (and than 8 grain deviations) is a blank page
# Grouping, in shares of the page's writing height: glyphs of one word at most WORD_GAP apart (at 0.45 a label
# and the value beside it join into one word: validation fields right at 0.3 and at 0.45, list 82.7 and 78.8 %,
# table 84.9 and 81.9 %); handwritten words of one field at most FIELD_GAP; a field lower than MIN_FIELD is a
# speck.
WORD_GAP = 0.3
# Pieces join when their rows overlap over a third of the lower one's height, or when one at most HANGING the
# other's height, no wider than high, hangs below its foot within WORD_GAP of it (a comma, its top just above
# the line; a minus is wider): alone it was a field read as a 1 (validation fields right without and with:
# table 93.3 and 94.1 %, list 86.3 and 86.6 %, boxes the same).
HANGING = 0.6
# A short word on a printed word's line, at most PRINT_GAP of the print's height from it, its foot within
# PRINT_BASELINE of the print's and no taller than PRINT_SIZE times it, is printed (`_after_print`). Validation,
# without this rule and with it: pages with an invented field, table 10.0 and 2.5 %, list 5.0 and 2.5 %; fields
# right, table 89.4 and 89.8 %, list 74.8 and 75.4 %; boxes the same; at 0.5 and 0.8 alike (lone capitals and
# a stub taken away, no field lost).
# A short word is of two pieces, or of up to AFTER_PRINT_PIECES in brackets (`Weight (kg)`, in a font the
# classifier did not learn, read as 1191): validation pages in the fonts' half, a list page with an invented
# field 6.7 and 0 % without and with the brackets; the pages of MNIST digits the same fields.
PRINT_GAP, PRINT_BASELINE, PRINT_SIZE = 0.5, 0.15, 1.1
AFTER_PRINT_PIECES = 4
# A value written close after its label (or before a printed unit) joins it into one word, whose mean makes all
# of it print and the value is lost (`Amount due 989`). Such a word is cut where MIXED_PRINT or more of the
# pieces on one side are printed by the classifier's mean and at most MIXED_HAND on the other, the print side at
# least two pieces and the writing at least MIXED_TALLER times the print's tallest piece (`_split_mixed`).
# Validation fields right without and with the cut: list 85.6 and 86.3 %, table 93.3 and boxes 90.7 % both.
MIXED_PRINT, MIXED_HAND, MIXED_TALLER = 0.7, 0.3, 1.5
# A piece smaller than a speck of dirt (0.01 of the writing height squared) but of MIN_MARK pixels or more is a
# mark: a pen's point on a drafted page can be that small. It joins the field it stands in (`_with_marks`), on
# a page with at most MARKS_PER_PIECE marks a piece (more: grain, where a point cannot be told from dirt; the
# validation pages have 0.01-0.6 marks a piece, the grainy ones 4-10). Validation fields right without marks
# and with them: list 75.4 and 76.5 %, table 89.8 and 90.4 %, boxes 83.0 and 83.4 %; with them on grainy pages
# too, list 71.2 % (specks read as points).
MIN_MARK, MARK_BELOW, MARKS_PER_PIECE = 4, 0.15, 1.0
# The dots of a printed dotted rule (a leader to write on) are marks too, hundreds of them, and would make the
# page grainy: they are taken away first (`_off_dotted_rules`: marks at most DOT_GAP writing heights apart in a
# row at least RULE long, most (DOT_SHARE) within DOT_ROW of a straight line through them). Validation list
# pages, fields right without and with it: 85.2 and 85.6 % (3 pages of 40 on dotted leaders, 570-1470 marks; a
# point written on them is read).
DOT_GAP, DOT_ROW, DOT_SHARE = 0.6, 0.1, 0.8
# A point or colon standing a word's gap from the digits either side (`80 . 26`) is a word of dots, taken for print
# by the classifier, and was lost (`8026`): such a word's pieces (one or two, DOT_SIZE of the writing height or
# less either way, no longer than DOT_ASPECT times their width, half inked: small print's letters are not) are
# marks, kept where they stand inside a field (`_dots`). Validation lists' fields right without and with it and
# TAIL_HEIGHT's rule: 84.6 and 86.8 % (the second bench), 86.6 and 87.0 % (the first); no layout worse.
DOT_SIZE, DOT_ASPECT = 0.2, 2.5
# A stroke written through a printed rule (a comma's tail, a 7's foot) is cut in two where the rule is taken away:
# the rule's pixels straight between the field's ink and ink below it are the field's, with the pieces so reached
# that are under TAIL_HEIGHT of the writing on the page (`_across_rules`; a digit of the next row is taller).
TAIL_HEIGHT = 0.6
# A 1 written alone (a table's cell, a list's value) is one thin bar, which the classifier takes for print: a word
# of one upright piece LONE_ONE of the writing height or taller, with paper either side (within LONE_PAPER grey
# levels of the page's) and not printed words on its line on both sides within LONE_CLEAR writing heights (a
# separator, `Name | Date`), is writing (`_lone_ones`). The second validation bench's tables without and with:
# 91.1 and 91.3 %; without the paper either side, three pages had the sheet's edge read as a 1.
LONE_ONE, LONE_PAPER, LONE_CLEAR = 0.8, 40, 3.0
# A table's column of row names is print, all of it: a small word (under COLUMN_SMALL of the writing) that starts
# where COLUMN_PRINTS printed words of its size start (left edges within COLUMN_EDGE of the writing height, heights
# within COLUMN_SIZE of its own), one of them within COLUMN_REACH writing heights above or below, is print too
# (`_in_a_column_of_print`). Validation tables without and with: 94.4 and 94.6 %, 91.3 and 91.5 % (an invented
# field on 5.0 and 2.5 % of the second's pages).
COLUMN_SMALL, COLUMN_PRINTS, COLUMN_EDGE, COLUMN_SIZE, COLUMN_REACH = 0.6, 2, 0.3, 0.3, 3.0
FIELD_GAP = 1.0
# A field is cut at a gap of COLUMN_GAP writing heights or more where the writing after the gap starts in a later
# column of the nearest header row above it (a line of printed heads and no handwriting), columns split halfway
# between heads (`_split_at_columns`). Validation fields right without and with the cut: table 91.1 and 91.9 %
# (three merged fields of six gone), list 81.4 % both, boxes 89.0 % both.
COLUMN_GAP = 0.5
# A field all of whose pieces have EDGE_SHARE of their ink or more within EDGE_ZONE work pixels of the picture's
# edge is the sheet's edge or the desk beside it (a strip narrower than the blocks the paper is measured in), not
# writing: validation list pages with an invented field 5.0 % without the rule, 2.5 % with it (a strip of desk
# read as `1`). A digit on a tight crop's edge, or cut by it, has about a tenth of its ink there.
EDGE_ZONE, EDGE_SHARE = 4, 0.2
HEAD_PIECES = 2  # a head is a printed word of this many pieces or more (a lone stroke taken for print is none)
MIN_FIELD = 0.35
# Digit boxes: paper enclosed by rules at most CELL_SIDE writing heights a side; the digits of neighbouring
# boxes at most CELL_GAP writing heights apart are one field.
CELL_SIDE = 2.5
CELL_GAP = 2.2
RULE = 2.5  # a rule is at least this many writing heights long
# An upright straight from rule to rule at least this many writing heights long is a wall (digits nearly fill
# their boxes on some forms: at 0.9 the walls of such rows stay, and are read as 1s).
WALL = 0.5
# A straight 1 filling its box (or a 6's back) reaches from rule to rule as the walls do: in a row of MIN_WALLS to
# MAX_ROW such uprights, of much the same height (the taller at most SAME_ROW times the shorter), an upright
# nearer to a wall than NARROWEST_BOX of the row's height is a stroke (no digit's box is so narrow: `1111` in
# boxes makes its walls and 1s evenly spaced); only so, an upright left out costing STROKE_COST, more than any
# uneven box (`_even_walls`). Past MAX_UPRIGHTS on a page (hatching), every upright is a wall.
MIN_WALLS, MAX_ROW, MAX_UPRIGHTS, SAME_ROW, NARROWEST_BOX, STROKE_COST = 4, 100, 2000, 1.3, 0.6, 10.0
# A separate printed box this many times as wide as high holds more than one box: its inner walls are frame too.
ONE_FRAME = 1.5
# Work pixels: a rule's breaks this short are bridged, along a row and down a column (a photographed grid's
# faint uprights: validation table fields right 82.9 % with 5, 81.0 % with none). Along a row none: the digits
# of a number stand closer (bridging 7 makes a whole number written on a dotted line a rule; bridging 3 loses
# 8 % of list fields).
GAP = (1, 5)
# A thin upright with a rule running on from its end for STUB_RUN writing heights is what is left of a grid's
# upright (`_upright_stub`), no writing: validation table pages with an invented field 2.5 % without the rule
# (a tilted table's broken uprights read as six `1`s) and 0 % with it; fields right, table 91.5 and 92.5 %,
# boxes 89.0 and 89.4 %, list 86.3 % both.
STUB_RUN = 0.5
SLIVER = 2  # work pixels: what a leaning upright leaves beside itself (1-2 px on the validation tables)
TICK = (0.25, 0.85)  # a comb's tick rises this share of the writing height
# A comb: at least COMB_TICKS ticks on one rule; its digits are one field, however thin (validation box pages,
# fields right 74.7 % without and 83.0 % with, fields split in two 13 and 1).
COMB_TICKS = 3
# A comb's tick can be lost (broken into specks on a coarse scan, joined to a digit): a row of COMB_TICKS ticks
# or more goes on over a gap of twice its ticks' distance, within MISSED_TICK of that distance, so the digits
# after it stay the comb's (`_one_tick_lost`; validation box pages, fields right 90.7 and 91.2 % without and
# with; without, a comb's last two digits read with signs, `6297,01`). A tick lost among a row's first three
# splits the comb.
MISSED_TICK = 0.3
CELL = -1  # the region of every piece inside a digit box
# Reading order across the page's turn, measured on rules at least SKEW_RULE writing heights wide (validation
# table pages, tilted up to 2 degrees: fields out of order 15 without, 0 with; fields right 72.9 and 74.4 %).
SKEW_RULE = 10
SKEW_AGREE = 0.005  # two rules' slopes this close agree on the turn
MAX_SLOPE = 0.035  # 2 degrees: a page further off the level is set level first (MIN_TURN)
# Ink: over STRONG of the page's strongest ink (and over the grain). Printed rules, boxes and grids are looked
# for in ink over FAINT of it: grey box lines beside dark pen strokes fall under STRONG, and their digits would
# be read as one line with the boxes' walls. Validation pages, fields right boxes / list / table, and pages with
# an invented field: FAINT 0.2 (as STRONG) 71.0 / 38.8 / 71.9 %, 0 / 5 / 12.5 %; 0.12 74.7 / 38.1 / 72.9 %,
# 2.5 / 5 / 10 %; 0.08 73.1 / 38.1 / 73.0 %, 5 / 5 / 7.5 %.
STRONG = 0.2
FAINT = 0.12
DESK = 0.6  # a block whose lightest pixel is darker than this share of the sheet's is no paper (the desk)


@dataclass
class Character:
    char: str
    confidence: float
    box: list[int]  # [x0, y0, x1, y1] in the picture's pixels


@dataclass
class Field:
    text: str
    confidence: float
    box: list[int]
    characters: list[Character] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"text": self.text, "confidence": self.confidence, "box": self.box,
                "characters": [{"char": c.char, "confidence": c.confidence, "box": c.box} for c in self.characters]}


@dataclass
class Page:
    width: int
    height: int
    fields: list[Field] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"width": self.width, "height": self.height, "fields": [f.as_dict() for f in self.fields]}


@dataclass
class _Piece:
    """A connected piece of ink at work scale: its box (x0, y0, x1, y1), pixel count and region (paper
    enclosed by the same rules)."""

    label: int
    x0: int
    y0: int
    x1: int
    y1: int
    area: int
    region: int
    comb: bool = False  # written above a comb (a rule with ticks rising from it): one box of a row
    box: int = 0  # which digit box it stands in (the box's region), 0 where none

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def boxed(self) -> bool:
        """Written in one box of a row of digit boxes: a closed box (CELL) or a comb's."""
        return self.region == CELL or self.comb


@dataclass
class _Layout:
    """What the analysis found, at work scale: the ink, the rules taken away, the pieces and their labels."""

    gray: np.ndarray  # the picture at full size, dark ink on light paper, uint8
    factor: int  # picture pixels per work pixel
    ink: np.ndarray  # bool, work scale, rules taken away
    rules: np.ndarray  # bool, work scale
    labels: np.ndarray  # int32, work scale: each piece's pixels
    pieces: list[_Piece]
    height: float  # the typical height of the page's tallest writing, work pixels
    slope: float = 0.0  # the page's turn: rows drop this many pixels a pixel to the right (from its rules)
    marks: list[_Piece] = field(default_factory=list)  # pieces too small to be a piece: a dot, or a speck
    turn: _Turn | None = None  # how `gray` was turned level from the picture (None: it was level)
    edge: np.ndarray | None = None  # bool, work scale: the picture's edge (where a level canvas stops showing it)
    heights: dict[int, int] | None = None  # each piece's and mark's height, by label (`_heights`, made when asked)
    dark: float = 0.0  # the share of the sheet that is dark (`_ink`)


@dataclass
class _Turn:
    """A page turned level: `gray` is the picture turned by `angle` (radians; its rows dropped tan(angle) a
    pixel to the right) about its centre, on a canvas `size` (width, height) that holds all of it."""

    angle: float
    picture: tuple[int, int]  # the picture's width and height
    size: tuple[int, int]

    def affine(self, dx: float = 0.0, dy: float = 0.0) -> tuple[float, ...]:
        """The canvas's pixel (u, v) -> the picture's (a u + b v + c, d u + e v + f), as PIL's AFFINE takes
        it: (a, b, c, d, e, f); (dx, dy): where the picture's corner lies in the array sampled."""
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        cu, cv = self.size[0] / 2, self.size[1] / 2
        cx, cy = self.picture[0] / 2 + dx, self.picture[1] / 2 + dy
        return cos, -sin, cx - cos * cu + sin * cv, sin, cos, cy - sin * cu - cos * cv

    def to_picture(self, box: list[int]) -> list[int]:
        """A box in the level page's pixels -> the box that holds it in the picture's."""
        a, b, c, d, e, f = self.affine()
        x0, y0, x1, y1 = box
        us, vs = np.array([x0, x1, x1, x0], float), np.array([y0, y0, y1, y1], float)
        xs, ys = a * us + b * vs + c, d * us + e * vs + f
        w, h = self.picture
        return [int(np.clip(math.floor(xs.min()), 0, w)), int(np.clip(math.floor(ys.min()), 0, h)),
                int(np.clip(math.ceil(xs.max()), 0, w)), int(np.clip(math.ceil(ys.max()), 0, h))]


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True along each row: (row, start, stop) arrays, row by row, left to right."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), bool)
    padded[:, 1:-1] = mask
    # Paper on both ends: each row's changes alternate start, stop (one scan for both: half the time of two)
    rows, changes = np.nonzero(padded[:, 1:] != padded[:, :-1])
    return rows[0::2], changes[0::2], changes[1::2]


def _paint(shape: tuple[int, int], rows: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The mask of the given runs along rows (few: only runs long enough to be rules are painted)."""
    mask = np.zeros(shape, bool)
    for row, start, stop in zip(rows.tolist(), starts.tolist(), stops.tolist(), strict=True):
        mask[row, start:stop] = True
    return mask


def _check_size(picture: Image.Image | np.ndarray) -> tuple[int, int]:
    try:
        size = picture.size if isinstance(picture, Image.Image) else np.shape(picture)[1::-1]
    except ValueError:  # rows of different lengths
        raise DigitrecError("image array has rows of different lengths", expected="a 2-D grayscale image") from None
    if len(size) != 2 or min(size) < 1:
        raise DigitrecError(f"image array has shape {np.shape(picture)}", expected="a 2-D grayscale image")
    width, height = (int(v) for v in size)
    if width * height > MAX_PAGE_PIXELS:
        raise TooLargeError(f"page is {width}x{height} pixels, over the page limit",
                            expected=f"at most {MAX_PAGE_PIXELS:,} pixels (A4 at 300 dpi is 2480x3508)")
    return width, height


def _gray(picture: Image.Image | np.ndarray) -> np.ndarray:
    """The picture's luminance, uint8, dark ink on light paper whatever its own polarity: its grey levels as
    every picture gets them (`imaging.decode`: transparent parts backed by the picture's paper, or a layer of ink
    by paper of the other shade; 16-bit and float pictures stretched to 0-255)."""
    try:
        values = gray_of(picture if isinstance(picture, Image.Image) else np.asarray(picture), factor=1)
    except ValueError as e:  # a mode PIL makes no grey of (`La`)
        raise DigitrecError(f"the picture has no grey levels to read ({e})",
                            expected="a picture: grey, RGB, with or without transparency") from None
    gray = np.clip(values, 0, 255).astype(np.uint8)
    step = max(1, math.isqrt(gray.size // POLARITY_SAMPLE))
    low, middle, high = np.percentile(gray[::step, ::step], (POLARITY_TAIL, 50, 100 - POLARITY_TAIL))
    if high - middle > middle - low:  # the ink is the longer tail: light ink on dark paper
        gray = 255 - gray
    return gray


def _reduced(gray: np.ndarray, factor: int) -> np.ndarray:
    """The page at work scale: the darkest pixel of each factor x factor block, so that a rule one pixel wide
    stays as dark as it was (an average would pale it into the paper)."""
    if factor == 1:
        return gray.astype(np.float32)
    return _blocks(gray, factor, np.minimum).astype(np.float32)


def _blocks(array: np.ndarray, side: int, pick) -> np.ndarray:
    """`pick` (np.minimum or np.maximum) over each side x side block, the edge's part-blocks left out: one
    axis at a time, each a reduction over contiguous memory (a 4-D view's reduction costs three times more)."""
    h, w = (array.shape[0] // side) * side, (array.shape[1] // side) * side
    rows = pick.reduce(array[:h, :w].reshape(h // side, side, w), axis=1)
    return pick.reduce(rows.reshape(h // side, w // side, side), axis=2)


def _paper_level(work: np.ndarray, small: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """The paper's light at each pixel of a work picture (the lightest pixel of each BLOCK square and its
    neighbours, smoothed back to full size; where `small`, blocks an eighth of its shorter side), where the desk
    is (bool: blocks far darker than the paper, and the block beside them), and the sheet's own level."""
    h, w = work.shape
    side = max(BLOCK, min(h, w) // 8) if small else BLOCK
    # Each block's lightest pixel, the edge's part-blocks included; and the paper at the picture's own size. Nothing
    # is made at the blocks' whole size: on a picture one pixel high that is 16 times the picture (3 GB at the limit).
    lightest = np.maximum.reduceat(np.maximum.reduceat(work, np.arange(0, h, side), axis=0), np.arange(0, w, side),
                                   axis=1)
    blocks = max_filter(lightest, 3)
    sheet = float(np.median(blocks))
    desk = max_filter(lightest < DESK * sheet, 3)
    paper = np.asarray(Image.fromarray(blocks, mode="F").resize((w, h), Image.Resampling.BILINEAR,
                                                                 box=(0, 0, w / side, h / side)))
    return paper, np.repeat(np.repeat(desk, side, axis=0)[:h], side, axis=1)[:, :w], sheet


class _Inked(NamedTuple):
    strong: np.ndarray  # bool, work scale: ink
    faint: np.ndarray  # bool, work scale: ink as pale as a printed line may be
    dark: float  # the share of the sheet (the desk left out) that is dark (MAX_DARK_SHARE)


def _ink(work: np.ndarray, small: bool) -> _Inked | None:
    """Ink at work scale (bool), the paper's light levelled (`_paper_level`: a stroke is narrower than a block;
    `small`, the work picture under SMALL_PICTURE a side). Outside the sheet (the desk around a photographed
    page) nothing is ink. None: a blank page. With it, the share of the sheet darker than its paper by DARK of
    the paper's light or more, or by its grain if that is more (up to twice DARK): grain alone is not dark."""
    paper, desk, sheet = _paper_level(work, small)
    ink = paper - work
    ink[desk] = 0
    h, w = work.shape
    middle, grain = _middle_and_grain(ink[::3, ::3])
    means = _blocks(ink, 2, np.add) / 4 if min(h, w) >= 2 else ink  # 2x2 means: a hot pixel is no ink
    strongest = float(means.max()) - middle
    if strongest < max(8 * grain, MIN_INK):
        return None
    on_sheet = ink[~desk]
    on_sheet = on_sheet[:: max(1, on_sheet.size // DARK_SAMPLE)]
    dark = 0.0
    if on_sheet.size:
        low, noise = _middle_and_grain(on_sheet)
        dark = float((on_sheet > min(max(DARK * sheet, low + 5 * noise), 2 * DARK * sheet)).mean())
    return _Inked(ink > middle + max(5 * grain, STRONG * strongest), ink > middle + max(5 * grain, FAINT * strongest),
                  dark)


def _middle_and_grain(values: np.ndarray) -> tuple[float, float]:
    """The median of ink levels and their spread about it (the median absolute deviation, scaled to a normal
    law's standard deviation): the paper's own level and grain, where most of a sample is paper."""
    middle = float(np.median(values))
    return middle, 1.4826 * float(np.median(np.abs(values - middle)))


def _writing_height(labels: np.ndarray, count: int, shape: tuple[int, int]) -> float:
    """The height of the page's tallest writing, work pixels: the 95th percentile of the pieces' heights,
    leaving out specks, rules (pieces far longer than high), grids (a fifth of the page and sparse: a
    line of digits filling a small picture is ink over a fifth of its box), pieces of a grid (under SPARSE of
    their box inked), boxes standing apart (four sides inked: `_four_sides`), and, where anything else is left,
    strips along the picture's edge, four times as long as they are across (a strip of desk beside a
    photographed sheet, 192 x 13 pixels, measured a form's writing of 9 as 47; digits cropped tight are no
    strips, and a point beside them does not measure them)."""
    found = [(n, b) for n, b in enumerate(ndimage.find_objects(labels, count), start=1) if b is not None]
    spans = np.array([[b[0].start, b[0].stop, b[1].start, b[1].stop] for _, b in found]).reshape(-1, 4)
    h, w = spans[:, 1] - spans[:, 0], spans[:, 3] - spans[:, 2]
    area = np.bincount(labels.ravel(), minlength=count + 1)[[n for n, _ in found]]
    large = (h >= 0.2 * shape[0]) | (w >= 0.2 * shape[1])
    keep = (h >= 4) & (w < 8 * h) & (h < 15 * w) & ~(large & (area < 0.1 * h * w)) & (area >= SPARSE * h * w)
    # a digit box standing apart is a piece of its own, taller than the digit it holds: it measures the box
    hollow = keep & (h >= 8) & (w >= 0.4 * h) & (w <= 2.5 * h) & (area < 0.5 * h * w)
    for k in np.flatnonzero(hollow):
        n, box = found[k]
        keep[k] = not _four_sides(labels[box] == n)
    side = ((spans[:, 2] <= 0) | (spans[:, 3] >= shape[1])) & (h >= 4 * w)
    end = ((spans[:, 0] <= 0) | (spans[:, 1] >= shape[0])) & (w >= 4 * h)
    if (keep & ~(side | end)).any():
        keep &= ~(side | end)
    return float(np.percentile(h[keep], 95)) if keep.any() else 8.0


def _rules(ink: np.ndarray, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Printed rules (bool): runs of ink along a row at least RULE writing heights long, and uprights either as
    long or straight from one rule to another at least WALL writing heights apart (the walls of a row of digit
    boxes, of a table's cells). A rule turned up to 2 degrees still runs on: the two rows either side of each
    row join it (the two columns either side, for a long upright; one, for a wall: a digit's slanted stroke
    does not run on so far); so does an upright broken in places (its short breaks, GAP, are bridged). Returns
    the rules' ink and the walls they make (the runs whole), which no paper crosses."""
    long = max(15, int(RULE * height))
    thick = closing(max_filter(ink, (5, 1)), (1, GAP[0]))
    rows, starts, stops = _runs(thick)
    keep = stops - starts >= long
    walls = _paint(ink.shape, rows[keep], starts[keep], stops[keep])
    across = walls & ink
    near = max_filter(across, (5, 3)).T  # the transposed page: columns are rows
    for side, shortest, joined in ((5, long, False), (3, WALL * height, True)):
        rest = closing(max_filter(ink & ~across, (1, side)), (GAP[1], 1)).T
        cols, tops, bottoms = _runs(rest)
        keep = bottoms - tops >= shortest
        if joined:
            last = rest.shape[1] - 1
            keep &= near[cols, np.maximum(tops - 1, 0)] & near[cols, np.minimum(bottoms, last)]
            keep[np.flatnonzero(keep)[_strokes_among_walls(cols[keep], tops[keep], bottoms[keep])]] = False
        walls |= _paint(rest.shape, cols[keep], tops[keep], bottoms[keep]).T
    return across | (walls & ink), walls


def _strokes_among_walls(cols: np.ndarray, tops: np.ndarray, bottoms: np.ndarray) -> np.ndarray:
    """Which uprights from rule to rule (column runs, by column) are a digit's stroke, not a wall: a row of boxes'
    walls stand a box apart, and a 1 written as a straight bar filling its box (or a 6's back) stands between two
    of them. The runs are joined into uprights (neighbouring columns, spans overlapping), the uprights into rows
    of boxes (`_rows_of_uprights`); in a row of MIN_WALLS to MAX_ROW uprights, the walls are chosen by
    `_even_walls`, the others are strokes. Past MAX_UPRIGHTS on a page (hatching, not boxes), all are walls."""
    strokes = np.zeros(len(cols), bool)
    uprights: list[list[int]] = []  # runs, by index, of each upright
    ending: dict[int, list[int]] = {}  # the uprights whose last run is in a column, by column
    for i in np.argsort(cols, kind="stable").tolist():
        column = int(cols[i])
        before = ending.get(column - 1, [])
        for u in before:
            j = uprights[u][-1]
            if tops[i] < bottoms[j] and tops[j] < bottoms[i]:
                uprights[u].append(i)
                before.remove(u)
                break
        else:
            uprights.append([i])
            u = len(uprights) - 1
        ending.setdefault(column, []).append(u)
    if len(uprights) > MAX_UPRIGHTS:
        return strokes
    x = np.array([cols[u].mean() for u in uprights])
    top = np.array([tops[u].min() for u in uprights])
    foot = np.array([bottoms[u].max() for u in uprights])
    for row in _rows_of_uprights(x, top, foot):
        if MIN_WALLS <= len(row) <= MAX_ROW:
            walls = _even_walls(x[row], NARROWEST_BOX * float(np.median(foot[row] - top[row])))
            for n in np.array(row)[~walls]:
                strokes[uprights[n]] = True
    return strokes


def _rows_of_uprights(x: np.ndarray, top: np.ndarray, foot: np.ndarray) -> list[list[int]]:
    """Uprights (indices, left to right) in rows of boxes: of much the same height (the taller at most SAME_ROW
    times the shorter: a section's border beside a row of boxes is no wall of it), spans overlapping by half,
    neighbours no further apart than CELL_SIDE of their height."""
    xs, tops, feet = x.tolist(), top.tolist(), foot.tolist()
    rows: list[list[int]] = []
    open_rows: list[list[int]] = []  # rows whose last upright may still have a neighbour to its right
    for n in np.argsort(x, kind="stable").tolist():
        span = feet[n] - tops[n]
        open_rows = [r for r in open_rows if xs[n] - xs[r[-1]] <= CELL_SIDE * max(span, feet[r[-1]] - tops[r[-1]])]
        for row in open_rows:
            last = row[-1]
            shorter, taller = sorted((span, feet[last] - tops[last]))
            overlap = min(feet[n], feet[last]) - max(tops[n], tops[last])
            if overlap >= 0.5 * shorter and taller <= SAME_ROW * shorter:
                row.append(n)
                break
        else:
            rows.append([n])
            open_rows.append(rows[-1])
    return rows


def _even_walls(xs: np.ndarray, narrowest: float) -> np.ndarray:
    """Which of a row's uprights (x, left to right) are its walls: the first and the last, and between them as
    many as leave no box narrower than `narrowest` (an upright nearer than that to a wall is a stroke in its box),
    and of the ways to keep that many, the one whose boxes are the most even. For each width the neighbouring
    uprights suggest (one or two apart), the walls are chosen by dynamic programming: each upright left out
    costs STROKE_COST, more than any box's departure from that width (squared as a share of it) in a row of
    boxes; so a row of boxes of mixed widths keeps its walls, and of a 1 near a box's right wall and the wall,
    the one that leaves even boxes stays."""
    n = len(xs)
    widths = {round(float(d)) for k in (1, 2) for d in xs[k:] - xs[:-k]}
    best_cost, best = np.inf, np.ones(n, bool)
    for width in (w for w in widths if w >= narrowest):
        cost, back = np.full(n, np.inf), np.zeros(n, int)
        cost[0] = 0.0
        for j in range(1, n):
            box = xs[j] - xs[:j]
            tried = np.where(box >= narrowest, cost[:j] + ((box - width) / width) ** 2
                             + STROKE_COST * (j - 1 - np.arange(j)), np.inf)
            back[j] = int(np.argmin(tried))
            cost[j] = tried[back[j]]
        if cost[-1] < best_cost:
            best_cost, best = cost[-1], np.zeros(n, bool)
            j = n - 1
            while j:
                best[j], j = True, back[j]
            best[0] = True
    return best


def _four_sides(mask: np.ndarray) -> bool:
    """Whether a piece is a box: each of its four sides (a band of 8 % of its smaller side, 2 pixels at least)
    nearly all ink."""
    band = max(2, round(0.08 * min(mask.shape)))
    sides = (mask[:band].any(axis=0), mask[-band:].any(axis=0), mask[:, :band].any(axis=1),
             mask[:, -band:].any(axis=1))
    return min(side.mean() for side in sides) >= 0.9


def _frames(labels: np.ndarray, count: int, height: float) -> np.ndarray:
    """Separate printed boxes (bool): pieces one to CELL_SIDE writing heights a side whose four sides are
    nearly all ink (a digit touching its box is part of the piece); the band along each side is the box, and in
    a frame ONE_FRAME times as wide as high or more, the walls inside it (columns of it from roof to floor: a
    short row of boxes, too short for its roof to be a rule)."""
    frames = np.zeros(labels.shape, bool)
    for n, box in enumerate(ndimage.find_objects(labels, count), start=1):
        if box is None:
            continue
        h, w = box[0].stop - box[0].start, box[1].stop - box[1].start
        if not (0.9 * height <= h <= CELL_SIDE * height and 0.6 * height <= w <= CELL_SIDE * height):
            continue
        mask = labels[box] == n
        band = max(2, round(0.08 * min(h, w)))
        if not _four_sides(mask):
            continue
        edge = np.zeros(mask.shape, bool)
        edge[:band], edge[-band:], edge[:, :band], edge[:, -band:] = True, True, True, True
        if w >= ONE_FRAME * h:  # a frame of several boxes: its walls run from its roof to its floor, one piece with it
            edge[:, band:-band] |= mask[:, band:-band].mean(axis=0) >= 0.95
        frames[box] |= mask & edge
    return frames


def _work_factor(gray: np.ndarray) -> int | None:
    """How much the page is reduced for analysis: its writing kept at least WRITING_PX pixels high, as
    measured on a sketch of the page (longer side SKETCH); never past PAGE_WORK pixels a side at most
    reduced, nor enlarged. None: a blank page."""
    short = min(gray.shape)  # a thin picture is never reduced to nothing (a row at least remains)
    most = min(max(1, -(-max(gray.shape) // PAGE_WORK)), short)
    if most == 1:
        return 1
    sketch = min(max(1, -(-max(gray.shape) // SKETCH)), short)
    reduced = _reduced(gray, sketch)
    small = min(reduced.shape) < SMALL_PICTURE
    masks = _ink(reduced, small) or (_ink(reduced, False) if small and min(gray.shape) >= SMALL_PICTURE else None)
    if masks is None:
        return None
    labels, count = ndimage.label(masks[0], structure=EIGHT_CONNECTED)
    height = _writing_height(labels, count, masks[0].shape) * sketch
    return int(np.clip(height // WRITING_PX, 1, most))


def _analyse(picture: Image.Image | np.ndarray, writing: float = 0.0) -> _Layout | None:
    """The page's layout; `writing`: the least its writing's height can be, in the picture's pixels (measured
    on it drafted: there a dotted leader's dots are too small to count, here they are most of its pieces)."""
    gray = _gray(picture)
    factor = _work_factor(gray)
    if factor is None:
        return None
    shown = None  # where a page set level shows the picture (its corners are none of it)

    def ink_at(factor: int) -> tuple[np.ndarray, np.ndarray] | None:
        work = _reduced(gray, factor)
        masks = _ink(work, min(gray.shape) < SMALL_PICTURE)  # a page reduced is still a page
        if masks is None or shown is None:
            return masks
        area = _shown_at(shown, factor)
        return masks._replace(strong=masks.strong & area, faint=masks.faint & area)

    masks = ink_at(factor)
    if masks is None:
        return None
    turn = None
    angle = _skew(masks[0])
    if abs(angle) >= math.radians(MIN_TURN) and math.prod(_canvas(gray.shape, angle)) <= MAX_LEVEL_PIXELS:
        gray, shown, turn = _level(gray, angle)
        masks = ink_at(factor)
        if masks is None:
            return None
    inked, printed, dark = masks  # printed lines may be far paler than the writing
    labels, count = ndimage.label(inked, structure=EIGHT_CONNECTED)
    if count > MAX_PAGE_PIECES:
        raise _too_many(count)
    height = _writing_height(labels, count, inked.shape)
    finer = max(1, int(height * factor // WRITING_PX))
    if finer < factor:  # the sketch's coarse blocks merge what they hold and measure the writing too tall
        factor, masks = finer, ink_at(finer)
        if masks is None:
            return None
        inked, printed, dark = masks
        labels, count = ndimage.label(inked, structure=EIGHT_CONNECTED)
        if count > MAX_PAGE_PIECES:
            raise _too_many(count)
        height = _writing_height(labels, count, inked.shape)
    height = max(height, writing / factor)
    rules, walls = _rules(printed, height)
    printed_labels, printed_count = ndimage.label(printed, structure=EIGHT_CONNECTED)
    frames = _frames(printed_labels, printed_count, height) if printed_count <= MAX_PAGE_PIECES else \
        _frames(labels, count, height)
    rules |= frames
    rest = inked & ~rules
    labels, count = ndimage.label(rest, structure=EIGHT_CONNECTED)
    if count > MAX_PAGE_PIECES:
        raise _too_many(count)
    regions, _ = ndimage.label(~(walls | frames))  # 4-connected: paper never crosses a rule, even a turned one
    cells = _cells(regions, height)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    least = max(4, 0.01 * height**2)  # specks of dirt and grain
    pieces, ticks, marks, slivers = [], [], [], []
    for n, box in enumerate(ndimage.find_objects(labels, count), start=1):
        if box is None or areas[n] < MIN_MARK:
            continue
        ys, xs = box
        # a stub, a sliver and a tick are thin uprights (`_upright_stub`, `_sliver`, `_tick`): only those are
        # looked at closer, small as they may be (a comb's tick a pixel wide holds less ink than a speck)
        upright = xs.stop - xs.start <= max(3, 0.25 * (ys.stop - ys.start))
        if areas[n] >= least or upright:
            inside = regions[box][labels[box] == n]
            inside = inside[inside > 0]
            region = int(np.bincount(inside).argmax()) if len(inside) else 0
            piece = _Piece(n, xs.start, ys.start, xs.stop, ys.stop, int(areas[n]), CELL if cells[region] else region,
                           box=region if cells[region] else 0)
            if upright and _upright_stub(box, rules, height):
                continue
            if upright and piece.box and _sliver(box, rules):
                slivers.append(piece)
                continue
            # inside a closed box, a tick stands on the floor; a thin upright clear of it is the box's 1
            if upright and _tick(box, rules, height, reach=1 if piece.box else 2):
                ticks.append(box)
                continue
            if areas[n] >= least:
                pieces.append(piece)
                continue
        if len(marks) < MAX_PAGE_PIECES:  # a speck, or a pen's dot: kept for the fields it stands in (`_with_marks`)
            marks.append(_Piece(n, xs.start, ys.start, xs.stop, ys.stop, int(areas[n]), 0))
    strokes, dots = _strokes_of_slivers(slivers, pieces, least)
    pieces, marks = pieces + strokes, (marks + dots)[:MAX_PAGE_PIECES]
    ticks += _faint_ticks(printed & ~max_filter(inked, 3) & ~rules, rules, regions, cells, height)
    _mark_combs(pieces, ticks, height)
    edge = np.zeros(labels.shape, bool)  # within EDGE_ZONE of the picture's edge, or of where a canvas stops showing it
    edge[:EDGE_ZONE], edge[-EDGE_ZONE:], edge[:, :EDGE_ZONE], edge[:, -EDGE_ZONE:] = True, True, True, True
    if shown is not None:
        edge |= max_filter(~_shown_at(shown, factor), 2 * EDGE_ZONE + 1)
    return _Layout(gray, factor, rest, rules, labels, pieces, height, _slope(rules, height), marks, turn, edge,
                   dark=dark)


def _shown_at(shown: np.ndarray, factor: int) -> np.ndarray:
    """Where a level canvas shows the picture, at work scale: a work pixel only where all its pixels do."""
    return _blocks(shown, factor, np.minimum) if factor > 1 else shown


def _skew(ink: np.ndarray) -> float:
    """The page's turn (radians; rows dropping to the right are positive), up to MAX_TURN either way: the
    angle at which the ink, summed along lines at that angle, is most concentrated (rules, lines of print and
    of writing), found on a grid of TURN_STEP and then TURN_STEP / 10 around the best; 0 unless it is at
    least SKEW_GAIN times as concentrated there as along the rows."""
    ys, xs = np.nonzero(ink)
    if len(ys) < 2:
        return 0.0
    step = max(1, len(ys) // SKEW_POINTS)
    ys, xs = ys[::step].astype(np.float64), xs[::step].astype(np.float64) - ink.shape[1] / 2
    limit = math.radians(MAX_TURN)

    def sharpness(angle: float) -> float:
        rows = np.round(ys - xs * math.tan(angle)).astype(np.int64)
        counts = np.bincount(rows - rows.min())
        return float(np.dot(counts, counts))

    coarse = math.radians(TURN_STEP)
    best = max(np.arange(-limit, limit + coarse / 2, coarse), key=sharpness)
    fine = coarse / 10
    best = float(np.clip(max(np.arange(best - coarse, best + coarse + fine / 2, fine), key=sharpness), -limit, limit))
    return best if sharpness(best) >= SKEW_GAIN * sharpness(0.0) else 0.0


def _canvas(shape: tuple[int, int], angle: float) -> tuple[int, int]:
    """The width and height of the canvas that holds a picture of `shape` (rows, columns) turned by `angle`."""
    h, w = shape
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    return int(math.ceil(w * c + h * s)), int(math.ceil(w * s + h * c))


def _level(gray: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray, _Turn]:
    """The picture turned level about its centre, on a canvas that holds all of it; where on the canvas the
    picture is (bool: its corners are none of it, and hold no ink); and the turn. The corners are filled with
    the picture's edge drawn out, so the paper's level runs on smoothly into them."""
    h, w = gray.shape
    turn = _Turn(angle, (w, h), _canvas(gray.shape, angle))
    # The canvas, mapped back onto the picture, spans it and h s c more columns and w s c more rows either side.
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    across, down = int(math.ceil(h * s * c)) + 2, int(math.ceil(w * s * c)) + 2
    matrix = turn.affine(across, down)
    padded = np.pad(gray, ((down, down), (across, across)), mode="edge")
    level = Image.fromarray(padded).transform(turn.size, Image.Transform.AFFINE, matrix, Image.Resampling.BILINEAR)
    shown = np.zeros(padded.shape, np.uint8)
    shown[down + 1 : down + h - 1, across + 1 : across + w - 1] = 255  # a pixel in from the edge: no blend of corner
    inside = Image.fromarray(shown).transform(turn.size, Image.Transform.AFFINE, matrix, Image.Resampling.NEAREST)
    return np.asarray(level), np.asarray(inside) > 0, turn


def _slope(rules: np.ndarray, height: float) -> float:
    """How far the page's rows drop a pixel to the right, from its long rules (each at least SKEW_RULE writing
    heights wide): each rule's slope fitted through the middles of its columns as thick as its pen (where an
    upright joins or crosses it, a column is thicker), their median when at least two rules agree within
    SKEW_AGREE; 0 otherwise, and never past MAX_SLOPE (2 degrees): one stray long stroke does not turn the
    page."""
    labels, count = ndimage.label(rules, structure=EIGHT_CONNECTED)
    slopes = []
    for n, box in enumerate(ndimage.find_objects(labels, count), start=1):
        if box is None or box[1].stop - box[1].start < SKEW_RULE * height:
            continue
        mask = labels[box] == n
        thick = mask.sum(axis=0)
        inked = thick[thick > 0]
        thin = np.flatnonzero((thick > 0) & (thick <= max(3, 2 * np.median(inked))))  # the rule's own pen
        if len(thin) < SKEW_RULE * height:
            continue
        middles = (np.argmax(mask[:, thin], axis=0) + thick[thin] / 2).astype(float)
        slopes.append(float(np.polyfit(thin.astype(float), middles, 1)[0]))
    if len(slopes) < 2:
        return 0.0
    middle = float(np.median(slopes))
    if sum(abs(v - middle) <= SKEW_AGREE for v in slopes) < 2:
        return 0.0
    return float(np.clip(middle, -MAX_SLOPE, MAX_SLOPE))


def _mark_combs(pieces: list[_Piece], ticks: list[tuple[slice, slice]], height: float) -> None:
    """Marks the pieces written in a comb: at least COMB_TICKS ticks standing on one rule (their feet within a
    fifth of the writing height), at most CELL_SIDE writing heights apart; a piece whose foot is on or just
    above that rule, below the ticks' tops, its middle between the first tick and the last, is one box's digit
    (a row of such boxes is open at the top, so no paper is enclosed and `_cells` cannot tell)."""
    reach = CELL_SIDE * height
    rows: list[list[tuple[int, int, float]]] = []  # each row's ticks: (top, foot, x), left to right
    open_rows: list[list[tuple[int, int, float]]] = []  # rows whose last tick is within reach of the next one
    for top, foot, x in sorted(((t[0].start, t[0].stop, (t[1].start + t[1].stop) / 2) for t in ticks),
                               key=lambda tick: tick[2]):
        open_rows = [row for row in open_rows if x - row[-1][2] <= reach or _one_tick_lost(row, x)]
        for row in open_rows:
            if abs(row[-1][1] - foot) <= 0.2 * height and x > row[-1][2]:
                row.append((top, foot, x))
                break
        else:
            rows.append([(top, foot, x)])
            open_rows.append(rows[-1])
    combs = [(min(t[0] for t in r), min(t[1] for t in r), max(t[1] for t in r), r[0][2], r[-1][2])
             for r in rows if len(r) >= COMB_TICKS]
    for piece in pieces:
        middle = (piece.x0 + piece.x1) / 2
        piece.comb = any(left <= middle <= right and max(tops, first - 1.5 * height) <= piece.y1 <= last + 2
                         for tops, first, last, left, right in combs)


def _faint_ticks(faint: np.ndarray, rules: np.ndarray, regions: np.ndarray, cells: np.ndarray,
                 height: float) -> list[tuple[slice, slice]]:
    """A comb printed in grey: its ticks are ink only at the faint level (the writing's pieces are found at the
    strong one, and `faint` leaves out the soft rim around them), so they are looked for among the pieces of
    faint ink too, in the rows a tick's height above a rule (labelling the whole page's faint ink costs 10-80
    ms), outside closed boxes (a comb is open at the top). A band too grainy to label gives none."""
    has_rule = np.r_[0, np.cumsum(rules.any(axis=1))]
    reach = int(TICK[1] * height) + 2
    rows = np.arange(len(rules))
    near = has_rule[np.minimum(rows + reach + 1, len(rules))] - has_rule[rows] > 0  # a rule at most `reach` below
    ticks = []
    for start, stop in zip(*_runs(near[None])[1:], strict=True):
        labels, count = ndimage.label(faint[start:stop], structure=EIGHT_CONNECTED)
        if count > MAX_PAGE_PIECES:
            continue
        for box in ndimage.find_objects(labels, count):
            if box is not None:
                box = (slice(box[0].start + start, box[0].stop + start), box[1])
                if not cells[regions[box[0].start, box[1].start]] and _tick(box, rules, height):
                    ticks.append(box)
    return ticks


def _one_tick_lost(row: list[tuple[int, int, float]], x: float) -> bool:
    """Whether a tick at `x` follows a comb's row of COMB_TICKS ticks or more over one tick lost: twice the
    row's tick distance (its median) from its last tick, within MISSED_TICK of that distance."""
    if len(row) < COMB_TICKS:
        return False
    pitch = float(np.median(np.diff([t[2] for t in row])))
    return abs(x - row[-1][2] - 2 * pitch) <= MISSED_TICK * pitch


def _tick(box: tuple[slice, slice], rules: np.ndarray, height: float, reach: int = 2) -> bool:
    """A printed tick: a thin upright bar standing on a rule (its foot within `reach` rows of it), lower than
    the writing, its top free (the walls of a comb, a row of boxes open at the top, rise TICK of the box or less;
    a digit in a box is written clear of its floor). Inside a closed box (a date's frame of two boxes, a tick
    between them) a tick touches its floor: a 1 written down to the floor a row above it is the box's digit."""
    ys, xs = box
    h, w = ys.stop - ys.start, xs.stop - xs.start
    if not (TICK[0] * height <= h <= TICK[1] * height and w <= max(3, 0.25 * h)):
        return False
    columns = slice(max(0, xs.start - 1), xs.stop + 1)
    below = rules[ys.stop : ys.stop + reach, columns].any()
    above = rules[max(0, ys.start - 2) : ys.start, columns].any()
    return bool(below and not above)


def _sliver(box: tuple[slice, slice], rules: np.ndarray) -> bool:
    """What an upright leaves of itself beside it: at most SLIVER wide, an upright beside it (a column over) all
    along it. A page turned less than MIN_TURN is not set level, and a box's walls step a column over along
    their height: their edges stay as ink, read as 1s. (Along a floor, such a sliver is as often a digit's foot
    cut off by the floor: those stay.)"""
    ys, xs = box
    h, w = ys.stop - ys.start, xs.stop - xs.start
    return w <= SLIVER < h and bool(rules[ys, max(0, xs.start - 1) : xs.stop + 1].any(axis=1).mean() >= 0.9)


def _strokes_of_slivers(slivers: list[_Piece], pieces: list[_Piece],
                        least: float) -> tuple[list[_Piece], list[_Piece]]:
    """Of the slivers in digit boxes, the strokes (as pieces, and as marks where smaller than `least`): a box
    holds one digit, so a sliver clear of the other pieces in its box (a column apart or more) is the wall's and
    goes; one touching a piece's columns is that digit's stroke cut off by the wall, and one alone in its box is
    a 1 written against the wall (a wall's edge beside it that runs on into the wall is `_upright_stub`'s)."""
    in_box: dict[int, list[_Piece]] = {}
    for p in pieces:
        if p.box:
            in_box.setdefault(p.box, []).append(p)
    kept_pieces, kept_marks = [], []
    for s in slivers:
        others = in_box.get(s.box, [])
        if others and not any(p.x0 - 1 <= s.x1 and s.x0 <= p.x1 + 1 for p in others):
            continue
        if s.area >= least:
            kept_pieces.append(s)
        else:
            kept_marks.append(_as_mark(s))
    return kept_pieces, kept_marks


def _upright_stub(box: tuple[slice, slice], rules: np.ndarray, height: float) -> bool:
    """A piece of a grid's upright that the rules missed (on a turned page an upright breaks where it leans a
    column over): a thin upright bar with a rule running on straight from its top or its foot, down or up the
    same columns for STUB_RUN writing heights; beside the upright (a leaning upright leaves a sliver of its own
    width), at most SLIVER wide. A 1 written on a rule touches a rule along it, not one going on from it; a 1
    written against a wall is a pen's width beside it."""
    ys, xs = box
    h, w = ys.stop - ys.start, xs.stop - xs.start
    if w > max(3, 0.25 * h):
        return False
    run = max(2, int(STUB_RUN * height))
    columns = slice(max(0, xs.start - 1), xs.stop + 1)  # a leaning upright goes on a column over
    if w > SLIVER and rules[ys, columns].any(axis=1).mean() >= 0.9:
        return False  # an upright all along it and a pen's width of its own: a 1 written against a wall
    below = rules[ys.stop : ys.stop + run, columns].any(axis=1)
    above = rules[max(0, ys.start - run) : ys.start, columns].any(axis=1)
    return bool((len(below) == run and below.mean() >= 0.9) or (len(above) == run and above.mean() >= 0.9))


def _cells(regions: np.ndarray, height: float) -> np.ndarray:
    """Which regions are boxes for one digit each (paper enclosed by rules, at most CELL_SIDE writing heights
    a side): a row of them is one field, their digits grouped across the walls."""
    boxes = ndimage.find_objects(regions)
    small = np.zeros(len(boxes) + 1, bool)
    most = CELL_SIDE * height
    for n, box in enumerate(boxes, start=1):
        if box is not None:
            small[n] = box[0].stop - box[0].start <= most and box[1].stop - box[1].start <= most
    return small


def _too_many(count: int) -> NoDigitError:
    return NoDigitError(f"no fields found: {count:,} pieces of ink (noise, not a page of writing)",
                        expected=f"a page with at most {MAX_PAGE_PIECES:,} pieces of ink")


def _groups(pieces: list[_Piece], gap: float, least_gap: float = 0.0, cells: bool = False) -> list[list[_Piece]]:
    """Pieces joined into groups: two pieces in the same region (no rule between them), side by side on one
    line (overlapping rows over at least a third of the lower one's height) and at most `gap` times the taller
    one's height apart (at least `least_gap` pixels), chained; each group left to right. `cells`: a piece in a
    digit box also joins a piece beside it in another box, or outside one (a box left open), CELL_GAP apart."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not pieces:
        return []
    x0, y0, x1, y1, region = (np.array([getattr(p, k) for p in pieces]) for k in ("x0", "y0", "x1", "y1", "region"))
    boxed = np.array([p.boxed for p in pieces])
    h = y1 - y0
    near = []
    for start in range(0, len(pieces), GROUP_ROWS):  # GROUP_ROWS pieces against all at a time: bounded memory
        i = slice(start, start + GROUP_ROWS)
        cell = (boxed[i, None] | boxed[None]) & cells
        reach = np.where(cell, max(gap, CELL_GAP), gap)
        overlap = np.minimum(y1[i, None], y1[None]) - np.maximum(y0[i, None], y0[None])
        apart = np.maximum(x0[None] - x1[i, None], x0[i, None] - x1[None])
        smaller, taller = np.minimum(h[i, None], h[None]), np.maximum(h[i, None], h[None])
        first_smaller = h[i, None] < h[None]
        # a comma hanging below the line: short, no wider than high, its top above the taller piece's foot
        hanging = (overlap > 0) & (smaller <= HANGING * taller) & \
            np.where(first_smaller, y1[i, None] > y1[None], y1[None] > y1[i, None]) & \
            (np.where(first_smaller, x1[i, None] - x0[i, None], x1[None] - x0[None]) <= smaller) & \
            (np.maximum(x0[None] - x1[i, None], x0[i, None] - x1[None]) <= WORD_GAP * taller)
        rows, cols = np.nonzero(((region[i, None] == region[None]) | cell) &
                                ((overlap >= smaller / 3) | hanging) &
                                (apart <= np.maximum(reach * np.maximum(h[i, None], h[None]), least_gap)))
        near.append((rows + start, cols))
    rows, cols = (np.concatenate(v) for v in zip(*near, strict=True))
    pairs = coo_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(len(pieces), len(pieces)))
    _, group = connected_components(pairs, directed=False)
    out: dict[int, list[_Piece]] = {}
    for piece, g in zip(pieces, group, strict=True):
        out.setdefault(int(g), []).append(piece)
    return [sorted(g, key=lambda p: p.x0) for g in out.values()]


SHAPE = 12  # a piece's shape, for the printed-or-handwritten decision, is its mask brought to SHAPE x SHAPE


def _features(layout: _Layout, word: list[_Piece]) -> np.ndarray:
    """Each piece of a word as numbers for the printed-or-handwritten decision: its shape (its mask centred
    in a square, SHAPE x SHAPE), and its size, proportions, fill and pen against the page's writing and
    the word's tallest glyph, where it stands against the word's baseline, and the word's own size."""
    height = layout.height
    tallest = max(p.height for p in word)
    x = np.array([(p.x0 + p.x1) / 2 for p in word])
    bottoms = np.array([p.y1 for p in word], float)
    dx = x[None] - x[:, None]
    pairs = np.abs(dx) > 0
    slope = float(np.clip(np.median((bottoms[None] - bottoms[:, None])[pairs] / dx[pairs]), -0.07, 0.07)) \
        if pairs.any() else 0.0
    rest = bottoms - slope * x
    offsets = (rest - np.median(rest)) / tallest
    rows = []
    for piece, offset in zip(word, offsets, strict=True):
        mask = layout.labels[piece.y0 : piece.y1, piece.x0 : piece.x1] == piece.label
        h, w = mask.shape
        side = max(h, w)
        square = np.zeros((side, side), np.float32)
        square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = mask
        shape = np.asarray(Image.fromarray(square, mode="F").resize((SHAPE, SHAPE), Image.Resampling.BOX)).ravel()
        edges = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1]) + \
            2 * (h + w)
        pen = 2 * piece.area / max(edges, 1)
        rows.append(np.concatenate([shape, [
            math.log(h / height), math.log(w / h), piece.area / (h * w), pen / h, pen / height,
            h / tallest, float(np.clip(offset, -1, 1)), math.log(tallest / height), math.log(len(word)),
            float(piece.region == CELL)]]))
    return np.array(rows, np.float32)


def _printed_words(layout: _Layout, words: list[list[_Piece]]) -> list[bool]:
    """Which words are printed (or no writing at all: a rule's stub, paper dirt): the bundled classifier's
    mean probability over a word's pieces (`scripts/train_printed.py`)."""
    return [bool(p.mean() > 0.5) for p in _printed_pieces(layout, words)]


def _printed_pieces(layout: _Layout, words: list[list[_Piece]]) -> list[np.ndarray]:
    """The classifier's probability that each piece of each word is printed, read within its word."""
    if not words:
        return []
    weights = _classifier()
    features = np.concatenate([_features(layout, w) for w in words])
    hidden = np.maximum(features @ weights["w1"] + weights["b1"], 0)
    printed = 1 / (1 + np.exp(-(hidden @ weights["w2"] + weights["b2"]).ravel()))
    return np.split(printed, np.cumsum([len(w) for w in words])[:-1])


def _split_mixed(layout: _Layout, words: list[list[_Piece]]) -> tuple[list[list[_Piece]], list[bool]]:
    """Words cut where printing meets larger writing (a label and the value written close after it), and which
    are printed (`_printed_words`). The cut leaves MIXED_PRINT or more printed on one side and MIXED_HAND or
    less on the other, the printed side two pieces or more, the writing MIXED_TALLER times its tallest piece;
    the widest such difference wins. A cut word's parts are classified again, each as a word of its own."""
    out, printed, parts = [], [], []
    for word, chances in zip(words, _printed_pieces(layout, words), strict=True):
        cut = _mixed_cut(word, chances)
        if cut:
            parts.extend([len(out), len(out) + 1])
            out.extend([word[:cut], word[cut:]])
            printed.extend([False, False])
        else:
            out.append(word)
            printed.append(bool(chances.mean() > 0.5))
    for n, is_printed in zip(parts, _printed_words(layout, [out[n] for n in parts]), strict=True):
        printed[n] = is_printed
    return out, printed


def _mixed_cut(word: list[_Piece], chances: np.ndarray) -> int:
    """Where `_split_mixed` cuts a word (0: nowhere), every cut weighed at once (linear in the word's length)."""
    n = len(word)
    if n < 3:
        return 0
    k = np.arange(1, n)  # the cut falls before piece k
    total = np.concatenate([[0.0], np.cumsum(chances)])
    left, right = total[k] / k, (total[n] - total[k]) / (n - k)
    heights = np.array([p.height for p in word])
    left_tallest, right_tallest = np.maximum.accumulate(heights)[k - 1], np.maximum.accumulate(heights[::-1])[::-1][k]
    best = np.zeros(n - 1)
    for print_mean, print_count, print_tallest, hand_mean, hand_tallest in (
            (left, k, left_tallest, right, right_tallest), (right, n - k, right_tallest, left, left_tallest)):
        ok = (print_count >= 2) & (print_mean >= MIXED_PRINT) & (hand_mean <= MIXED_HAND) & \
            (hand_tallest >= MIXED_TALLER * print_tallest)
        best = np.maximum(best, np.where(ok, print_mean - hand_mean, 0.0))
    return int(k[best.argmax()]) if best.max() > 0 else 0


def _with_marks(pieces: list[_Piece], marks: list[_Piece], height: float) -> list[_Piece]:
    """A field with the marks smaller than a speck that stand inside it: between its first and last piece and
    no more than MARK_BELOW of the writing height under its foot (a point written small; the sign reader
    decides whether it is a sign or dirt)."""
    if not marks:
        return pieces
    x0, y0, x1, y1 = _box(pieces)
    inside = [m for m in marks if x0 < (m.x0 + m.x1) / 2 < x1 and y0 <= m.y0 and m.y1 <= y1 + MARK_BELOW * height]
    return sorted(pieces + inside, key=lambda p: p.x0) if inside else pieces


def _after_print(words: list[list[_Piece]], printed: list[bool]) -> list[bool]:
    """A short word that goes on a printed word's line is printed too: a word of at most AFTER_PRINT_PIECES
    pieces, no taller than the print (PRINT_SIZE), standing on its baseline (PRINT_BASELINE) at most PRINT_GAP
    of its height after it or before it (a table's `Team A`, whose lone capital the classifier takes for a 4;
    `Weight (kg)`)."""
    out = list(printed)
    if not any(printed) or all(printed):
        return out
    boxes = np.array([_box(w) for w in words], np.int64).reshape(-1, 4)
    region = np.array([w[0].region for w in words])
    prints = np.flatnonzero(printed)  # each short word against the printed words only: bounded by words x prints
    tall = boxes[prints, 3] - boxes[prints, 1]
    for n, word in enumerate(words):
        if printed[n] or len(word) > AFTER_PRINT_PIECES or (len(word) > 2 and not _bracketed(word)):
            continue
        box = boxes[n]
        gap = np.maximum(box[0] - boxes[prints, 2], boxes[prints, 0] - box[2])
        out[n] = bool(((region[prints] == region[n]) & (gap >= 0) & (gap <= PRINT_GAP * tall)
                       & (np.abs(box[3] - boxes[prints, 3]) <= PRINT_BASELINE * tall)
                       & (box[3] - box[1] <= PRINT_SIZE * tall)).any())
    return out


def _bracketed(word: list[_Piece]) -> bool:
    """Whether a word's first and last pieces are brackets: thin (at most a third as wide as high) and taller
    than every piece between them (`(kg)`; a number's 1s are as tall as its other digits)."""
    first, last, inside = word[0], word[-1], word[1:-1]
    thin = all(p.x1 - p.x0 <= p.height / 3 for p in (first, last))
    return thin and min(first.height, last.height) > max((p.height for p in inside), default=0)


@functools.cache
def _classifier() -> dict[str, np.ndarray]:
    with np.load(Path(__file__).resolve().parent.parent / "bundled" / PRINTED_FILE, allow_pickle=False) as weights:
        return {k: weights[k].astype(np.float32) for k in weights.files}


def _fields(layout: _Layout) -> list[list[_Piece]]:
    """The handwritten pieces grouped into fields, in reading order."""
    height = layout.height
    words, printed = _split_mixed(layout, _groups(layout.pieces, WORD_GAP))
    printed = _lone_ones(words, printed, layout)
    # What stands in a comb's box is writing, however thin (a 1 of one stroke looks like a printed stub).
    printed = _in_a_column_of_print(words, _after_print(words, printed), height)
    hand = [p for word, is_printed in zip(words, printed, strict=True) for p in word if not is_printed or p.comb]
    fields = _groups(hand, FIELD_GAP, least_gap=FIELD_GAP * height, cells=True)
    rows = _header_rows(words, printed, hand, height)
    feet = [max(b[3] for b in row) for row in rows]
    fields = [part for f in fields for part in _split_at_columns(f, rows, feet, height)]
    dots = [_as_mark(p) for word, is_printed in zip(words, printed, strict=True)
            if is_printed and _dots(word, height) for p in word if not p.comb]
    marks = _off_dotted_rules(layout.marks + dots, layout.labels.shape, height)
    marks = marks if len(marks) <= MARKS_PER_PIECE * len(layout.pieces) else []  # else: grain
    fields = [f for f in fields if max(p.height for p in f) >= MIN_FIELD * height]
    if len(fields) > MAX_FIELDS:  # before the marks are sought in each: that costs fields x marks
        raise NoDigitError(f"no fields found: {len(fields)} groups of writing (noise, not a form)",
                           expected=f"a page with at most {MAX_FIELDS} fields")
    return _reading_order([_with_marks(f, marks, height) for f in fields], layout.slope)


def _lone_ones(words: list[list[_Piece]], printed: list[bool], layout: _Layout) -> list[bool]:
    """Printed words that are 1s written alone, which the classifier takes for printed bars: one thin upright
    piece (at most a quarter as wide as high) of at least LONE_ONE of the writing height, with paper either side
    of it (half a writing height as light as the page's paper within LONE_PAPER grey levels: the edge of a sheet
    on a desk is such a bar too), and no printed word on its line on both sides within LONE_CLEAR writing
    heights (a printed separator, `Name | Date`). Beside a printed word on its baseline it is still print
    (`_after_print`)."""
    height, f = layout.height, layout.factor
    out = list(printed)
    bars = [n for n, word in enumerate(words) if printed[n] and len(word) == 1 and word[0].height >= LONE_ONE * height
            and word[0].x1 - word[0].x0 <= max(3, 0.25 * word[0].height)]
    if not bars:
        return out
    paper = np.percentile(layout.gray[:: 4 * f, :: 4 * f], 75)
    lone = set(bars)
    prints = [n for n in np.flatnonzero(printed) if n not in lone]
    boxes = np.array([_box(words[n]) for n in prints], np.int64).reshape(-1, 4)
    reach, clear = max(2, int(height / 2)), LONE_CLEAR * height
    for n in bars:
        piece = words[n][0]
        rows = slice(piece.y0 * f, piece.y1 * f)
        left = layout.gray[rows, max(0, piece.x0 - reach) * f : piece.x0 * f]
        right = layout.gray[rows, piece.x1 * f : (piece.x1 + reach) * f]
        if left.size == 0 or right.size == 0 or min(np.median(left), np.median(right)) < paper - LONE_PAPER:
            continue
        on_line = (boxes[:, 1] < piece.y1) & (boxes[:, 3] > piece.y0)
        before = on_line & (boxes[:, 2] <= piece.x0) & (piece.x0 - boxes[:, 2] <= clear)
        after = on_line & (boxes[:, 0] >= piece.x1) & (boxes[:, 0] - piece.x1 <= clear)
        out[n] = bool(before.any() and after.any())
    return out


def _in_a_column_of_print(words: list[list[_Piece]], printed: list[bool], height: float) -> list[bool]:
    """A small word that starts where COLUMN_PRINTS printed words of its size start (left edges within
    COLUMN_EDGE of the writing height, tallest pieces within COLUMN_SIZE of its own), itself under COLUMN_SMALL of
    the writing height, is print: a table's column of row names (`Tue` under `Mon`, whose letters the classifier
    took for writing, read `748`)."""
    out = list(printed)
    prints = np.flatnonzero(printed)
    if len(prints) < COLUMN_PRINTS:
        return out
    left = np.array([w[0].x0 for w in words])
    tallest = np.array([max(p.height for p in w) for w in words], np.float64)
    top = np.array([min(p.y0 for p in w) for w in words])
    for n in np.flatnonzero(~np.array(printed) & (tallest < COLUMN_SMALL * height)):
        alike = (np.abs(left[prints] - left[n]) <= COLUMN_EDGE * height) & \
            (np.abs(tallest[prints] - tallest[n]) <= COLUMN_SIZE * tallest[n])
        near = alike & (np.abs(top[prints] - top[n]) <= COLUMN_REACH * height)
        out[n] = int(alike.sum()) >= COLUMN_PRINTS and bool(near.any())
    return out


def _dots(word: list[_Piece], height: float) -> bool:
    """Whether a word is one point or a colon's two: each piece at most DOT_SIZE of the writing height either way,
    at most DOT_ASPECT times as long as it is wide either way and half its box inked (small print's letters are
    neither). A point or a colon written a gap apart from the digits either side is a word of its own, which the
    printed-or-handwritten classifier takes for print. Its pieces are marks (`_with_marks` joins those inside a
    field)."""
    if len(word) > 2:
        return False
    for p in word:
        longer, shorter = max(p.x1 - p.x0, p.height), min(p.x1 - p.x0, p.height)
        if longer > DOT_SIZE * height or longer > DOT_ASPECT * shorter or p.area < 0.5 * longer * shorter:
            return False
    return True


def _as_mark(piece: _Piece) -> _Piece:
    """A piece kept as a mark: in no region and no box, of no comb (`_with_marks` joins it to the field it
    stands in)."""
    return replace(piece, region=0, box=0, comb=False)


def _off_dotted_rules(marks: list[_Piece], shape: tuple[int, int], height: float) -> list[_Piece]:
    """The marks that are not the dots of a printed dotted rule: a row of marks at most DOT_GAP writing heights
    apart, at least RULE writing heights long, most of them (DOT_SHARE) within DOT_ROW of the straight line
    fitted through their middles (a page turned a little leaves its leaders straight, not level). A point
    written on such a line stands above the dots and stays."""
    if not marks:
        return marks
    mask = np.zeros(shape, bool)
    for m in marks:
        mask[m.y0 : m.y1, m.x0 : m.x1] = True
    reach = max(1, int(DOT_GAP * height))
    rows, count = ndimage.label(max_filter(mask, (1, 2 * reach + 1)), structure=EIGHT_CONNECTED)
    spans = ndimage.find_objects(rows, count)
    long_rows = {n + 1 for n, b in enumerate(spans)  # the dots' own span: the reach added either side taken off
                 if b is not None and b[1].stop - b[1].start - 2 * reach >= RULE * height}
    if not long_rows:
        return marks
    members: dict[int, list[_Piece]] = {}
    for m in marks:
        row = int(rows[(m.y0 + m.y1) // 2, (m.x0 + m.x1) // 2])
        members.setdefault(row if row in long_rows else 0, []).append(m)
    kept = list(members.pop(0, []))
    near = max(2.0, DOT_ROW * height)
    for dots in members.values():
        xs = np.array([(m.x0 + m.x1) / 2 for m in dots])
        ys = np.array([(m.y0 + m.y1) / 2 for m in dots])
        if len(dots) < 3 or np.ptp(xs) == 0:
            kept += dots
            continue
        off = np.abs(ys - np.polyval(np.polyfit(xs, ys, 1), xs))
        inliers = off <= near
        if inliers.sum() >= 3:  # fitted again on the dots alone: a point above the row does not tilt it
            off = np.abs(ys - np.polyval(np.polyfit(xs[inliers], ys[inliers], 1), xs))
        on_line = off <= near
        if on_line.mean() < DOT_SHARE:
            kept += dots  # no straight row of dots: marks of writing, or grain
            continue
        kept += [m for m, on in zip(dots, on_line, strict=True) if not on]
    return kept


def _header_rows(words: list[list[_Piece]], printed: list[bool], hand: list[_Piece],
                 height: float) -> list[list[tuple[int, int, int, int]]]:
    """A table's header rows: lines of print holding two heads or more and no handwriting, each head a phrase
    (printed words of HEAD_PIECES pieces or more, no more than a writing height apart: `Customer details` is one
    head), left to right; the rows by their foot, top to bottom. A two-column form's line of labels holds the
    fields written beside them: no header."""
    boxes = sorted((_box(w) for w, is_printed in zip(words, printed, strict=True)
                    if is_printed and len(w) >= HEAD_PIECES), key=lambda b: (b[1] + b[3]) / 2)
    lines: list[list[tuple[int, int, int, int]]] = []
    for b in boxes:  # by the middle of each, a word joins the line whose rows hold that middle
        if lines and min(x[1] for x in lines[-1]) <= (b[1] + b[3]) / 2 <= max(x[3] for x in lines[-1]):
            lines[-1].append(b)
        else:
            lines.append([b])
    hand_rows = np.array([(p.y0, p.y1) for p in hand], np.int64).reshape(-1, 2)
    rows = []
    for line in lines:
        top, bottom = min(b[1] for b in line), max(b[3] for b in line)
        if ((hand_rows[:, 0] < bottom) & (hand_rows[:, 1] > top)).any():
            continue
        heads: list[tuple[int, int, int, int]] = []
        for b in sorted(line):
            if heads and b[0] - heads[-1][2] <= height:
                heads[-1] = (heads[-1][0], min(heads[-1][1], b[1]), max(heads[-1][2], b[2]), max(heads[-1][3], b[3]))
            else:
                heads.append(b)
        if len(heads) >= 2:
            rows.append(heads)
    return sorted(rows, key=lambda row: max(b[3] for b in row))


def _split_at_columns(field: list[_Piece], rows: list[list[tuple[int, int, int, int]]], feet: list[int],
                      height: float) -> list[list[_Piece]]:
    """A field cut where writing runs on into the next column of a table without uprights: at a gap of
    COLUMN_GAP writing heights or more, where the writing after it starts in a later column than the part
    before it, columns split halfway between the heads of the nearest header row above the field (`rows`:
    `_header_rows`, by their foot, top to bottom; `feet`: each row's foot)."""
    if len(field) < 2 or any(p.boxed for p in field):
        return [field]
    nearest = bisect.bisect_right(feet, min(p.y0 for p in field)) - 1
    if nearest < 0:
        return [field]
    heads = rows[nearest]
    bounds = [(left[2] + right[0]) / 2 for left, right in zip(heads[:-1], heads[1:], strict=True)]
    parts, right = [[field[0]]], field[0].x1
    column = int(np.searchsorted(bounds, field[0].x0))
    for piece in field[1:]:
        starts = int(np.searchsorted(bounds, piece.x0))
        if piece.x0 - right >= COLUMN_GAP * height and starts > column:
            parts.append([])
            column = starts
        parts[-1].append(piece)
        right = max(right, piece.x1)
    return parts


def _box(pieces: list[_Piece]) -> tuple[int, int, int, int]:
    return (min(p.x0 for p in pieces), min(p.y0 for p in pieces), max(p.x1 for p in pieces),
            max(p.y1 for p in pieces))


def _reading_order(fields: list[list[_Piece]], slope: float = 0.0) -> list[list[_Piece]]:
    """Top to bottom by line, left to right within a line: a field belongs to the line of the first field
    (by top) whose rows hold its middle, or whose middle its rows hold (a short `2` written high in a table's
    row, a tall `7,72` low in it), heights measured across the page's turn (`slope`), so that on a turned page
    a table's row is still one line."""
    boxes = []
    for f in fields:
        x0, y0, x1, y1 = _box(f)
        drop = slope * (x0 + x1) / 2
        boxes.append((x0, y0 - drop, x1, y1 - drop))
    order = sorted(range(len(fields)), key=lambda i: boxes[i][1])
    lines: list[list[int]] = []
    for i in order:
        middle = (boxes[i][1] + boxes[i][3]) / 2
        for line in lines:
            first = boxes[line[0]]
            if first[1] <= middle <= first[3] or boxes[i][1] <= (first[1] + first[3]) / 2 <= boxes[i][3]:
                line.append(i)
                break
        else:
            lines.append([i])
    return [fields[i] for line in lines for i in sorted(line, key=lambda i: boxes[i][0])]


def _field_picture(layout: _Layout, pieces: list[_Piece]) -> tuple[Image.Image, int, int]:
    """The field's own ink from the picture's pixels, the rest of the page (labels, rules, other fields)
    painted over with the paper around it; and the crop's corner in the picture's pixels."""
    f = layout.factor
    x0, y0, x1, y1 = _box(pieces)
    pad = max(2, int(0.3 * (y1 - y0)))
    x0, y0 = max(0, x0 - pad), max(0, y0 - pad)
    x1, y1 = min(layout.ink.shape[1], x1 + pad), min(layout.ink.shape[0], y1 + pad)
    labels = layout.labels[y0:y1, x0:x1]
    mask = _across_rules(np.isin(labels, [p.label for p in pieces]), layout.rules[y0:y1, x0:x1], labels,
                         layout.height, _heights(layout))
    mask = max_filter(mask, 3)
    mask = np.repeat(np.repeat(mask, f, axis=0), f, axis=1)
    gray = layout.gray[y0 * f : y1 * f, x0 * f : x1 * f]
    mask = mask[: gray.shape[0], : gray.shape[1]]
    paper = np.percentile(gray[~mask], 75) if (~mask).any() else 255
    crop = np.where(mask, gray, np.uint8(paper)).astype(np.uint8)
    return Image.fromarray(crop), x0 * f, y0 * f


def _heights(layout: _Layout) -> dict[int, int]:
    """Each piece's and mark's height on the page, by label (made once a page)."""
    if layout.heights is None:
        layout.heights = {p.label: p.height for p in layout.pieces + layout.marks}
    return layout.heights


def _across_rules(mask: np.ndarray, rules: np.ndarray, labels: np.ndarray, height: float,
                  heights: dict[int, int]) -> np.ndarray:
    """A field's ink with the strokes that cross a printed rule: the rule's pixels straight between the field's
    ink just above and ink just below, and the pieces below reached so, each under TAIL_HEIGHT of the writing on
    the page (`heights`, by label; a comma's tail, a 7's or a 9's foot written through the line; a digit of the
    next row is taller, and a piece of no known height, a tick or a stub, stays out)."""
    if not rules.any():
        return mask
    down = mask.copy()
    for r in range(1, len(mask)):  # the field's ink carried down through the rule's rows, column by column
        down[r] |= rules[r] & down[r - 1]
    reached = np.unique(labels[1:][down[:-1] & rules[:-1] & (labels[1:] > 0) & ~mask[1:]])
    if not len(reached):
        return mask
    tall = {int(n): heights[int(n)] for n in reached if int(n) in heights}
    unknown = [int(n) for n in reached if int(n) not in heights]  # too small for a mark, or a tick or a stub
    if unknown:  # measured in the crop, where not cut by its foot (a piece cut so may be taller)
        spans = ndimage.find_objects(np.where(np.isin(labels, unknown), labels, 0))
        for n in unknown:
            ys = spans[n - 1][0]
            tall[n] = ys.stop - ys.start if ys.stop < len(labels) else math.inf
    short = [n for n, h in tall.items() if h <= TAIL_HEIGHT * height]
    if not short:
        return mask
    tails = np.isin(labels, short)
    up = tails.copy()
    for r in range(len(mask) - 2, -1, -1):  # the tails carried up through the rule's rows
        up[r] |= rules[r] & up[r + 1]
    return mask | tails | (rules & down & up)


def open_page(payload: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """A page's picture from its file's bytes (`open_image`), a JPEG page up to MAX_PAGE_PIXELS decoded whole:
    `read_page` decides how much of it to use."""
    return open_image(payload, max_pixels, whole_up_to=MAX_PAGE_PIXELS)


def read_page(picture: Image.Image | np.ndarray, predictor, line_model: LineModel | None = None,
              digits_only: bool = False) -> Page:
    """Every handwritten field on a page, read as numbers (`read_number`, with the signs written inside them
    unless `digits_only`), in reading order. A blank page has no fields; a picture of one line of writing and
    nothing else is read whole, as `read` reads it."""
    width, height = _check_size(picture)
    page = Page(round(width * _drafted(picture)), round(height * _drafted(picture)))
    picture, layout = _analysed(picture)  # perhaps reduced, with its own DRAFTED scale
    scale = _drafted(picture)
    if layout is None:
        return page
    groups = _fields(layout)
    if _one_line(layout, groups):
        try:  # as `read` reads it (ruled paper included)
            page.fields.append(_as_field(read_number(picture, predictor, line_model, digits_only), 0, 0, 1.0))
            return page
        except NOT_A_NUMBER:
            pass
    if layout.dark > MAX_DARK_SHARE:
        raise NoDigitError(f"no fields found: {layout.dark:.1%} of the sheet is dark (noise, not a page of writing)",
                           expected=f"a page of writing, its sheet at most {MAX_DARK_SHARE:.0%} dark")
    for pieces in groups:
        if all(_edge_band(p, layout) for p in pieces):
            continue  # the sheet's edge or the desk beside it (a band narrower than a block of `_ink`'s)
        crop, left, top = _field_picture(layout, pieces)
        # A row of digit boxes holds one digit a box and no sign: read as digits (the sign reader takes a
        # boxed 1 for a slash: validation box pages, fields right 83.0 % digits only, 81.2 % with signs).
        boxed = sum(p.boxed for p in pieces)
        row_of_boxes = boxed >= 2 and 2 * boxed > len(pieces)  # most of its pieces in boxes
        # the closed digit boxes it stands in: a table's small cell holds a printed row name as a box holds a digit
        boxes_written = len({p.box for p in pieces if p.box})
        try:
            # A row of boxes is read as written, each digit as it leans in its box: sheared, two validation box rows in
            # the fonts read a digit worse and none better (decision 0024).
            reading = read_number(crop, predictor, line_model, digits_only or row_of_boxes, deslant=not row_of_boxes)
            # A box holds one digit: where the line is read with one digit more or fewer than the boxes written (a
            # 2 with a loop read `62`, a 1 at a row's end lost), and every piece stands in a box, each box is read
            # alone (many more: print in small cells, left to the floor below). Validation box pages, fields right
            # 93.4 / 94.3 % (the fonts' 90.5 / 92.9 %) without and with; read so always, 91.2 % against 93.0 %:
            # a box's digit is read better by the line's two readers.
            if row_of_boxes and boxes_written >= 2 and abs(len(reading.digits) - boxes_written) == 1 and all(
                    p.box for p in pieces if p.region != 0):  # marks stand in no region
                reading = _box_by_box(layout, pieces, predictor, left, top) or reading
        except NOT_A_NUMBER:
            continue  # no digits there (a scribble, a blot): no field; a model that fails is raised
        if _digits_confidence(reading) < LEAST_CONFIDENCE and not signed_value(reading) and not (
                row_of_boxes and boxes_written >= 2 and len(reading.digits) <= boxes_written):
            continue  # a printed word taken for writing, read as digits no one wrote
        page.fields.append(_as_field(reading, left, top, scale, layout.turn))
    return page


def _box_by_box(layout: _Layout, pieces: list[_Piece], predictor, left: int, top: int) -> Reading | None:
    """A row of digit boxes read one box at a time, each box's ink (and the marks over it) as `predict` reads
    one digit; boxes as `read_number` gives them, in the field's crop whose corner is (left, top). None where a
    box's ink is no digit `predict` would read."""
    boxes: dict[int, list[_Piece]] = {}
    for p in pieces:
        if p.box:
            boxes.setdefault(p.box, []).append(p)
    marks = [p for p in pieces if not p.box]
    held_by_box, images = [], []
    for held in sorted(boxes.values(), key=lambda ps: min(p.x0 for p in ps)):
        x0, x1 = min(p.x0 for p in held), max(p.x1 for p in held)
        held = held + [m for m in marks if x0 - 1 <= (m.x0 + m.x1) / 2 <= x1 + 1]
        try:
            images.append(to_mnist(_field_picture(layout, held)[0]))
        except NOT_A_NUMBER:
            return None  # a box's ink no digit (a point in its own box): the line's reading stands
        held_by_box.append(held)
    chances = predictor.probabilities(np.stack(images))  # the boxes in one call
    f = layout.factor
    digits = []
    for held, p in zip(held_by_box, chances, strict=True):
        x0, y0, x1, y1 = _box(held)
        digits.append(DigitReading(int(p.argmax()), round(float(p.max()), 6),
                                   [x0 * f - left, y0 * f - top, x1 * f - left, y1 * f - top]))
    confidence = float(np.prod([d.confidence for d in digits]))
    return Reading("".join(str(d.digit) for d in digits), round(confidence, 6), digits, 0, np.stack(images))


def _drafted(picture: Image.Image | np.ndarray) -> float:
    """The original's pixels per pixel of this picture (a JPEG its decoder drafted, or `_analysed` reduced)."""
    return float(picture.info.get(DRAFTED, 1.0)) if isinstance(picture, Image.Image) else 1.0


def _analysed(picture: Image.Image | np.ndarray) -> tuple[Image.Image | np.ndarray, _Layout | None]:
    """The page analysed, and the picture its fields are read from. A JPEG decoded whole that `open_image`
    would draft is analysed drafted as it would be (reduced by the same factor), and whole where its writing
    is then under WHOLE_BELOW pixels high."""
    if not (isinstance(picture, Image.Image) and picture.format in JPEG_FORMATS and DRAFTED not in picture.info):
        return picture, _analyse(picture)
    draft = draft_factor(picture.size)
    if draft == 1:
        return picture, _analyse(picture)
    small = picture.reduce(draft) if picture.mode in ("L", "RGB", "CMYK") else picture.convert("RGB").reduce(draft)
    small.info[DRAFTED] = picture.width / small.width
    layout = _analyse(small)
    if layout is not None and layout.factor == 1 and layout.height < WHOLE_BELOW:
        try:
            return picture, _analyse(picture, DRAFTED_WRITING * layout.height * small.info[DRAFTED])
        except NoDigitError:  # too many pieces at the whole picture's scale (its grain): read as drafted
            pass
    return small, layout


def _edge_band(piece: _Piece, layout: _Layout) -> bool:
    """Whether a piece is the sheet's edge or the desk beside it: EDGE_SHARE of its ink or more lies within
    EDGE_ZONE work pixels of the picture's edge (on a page set level, of where the canvas stops showing the
    picture). A digit standing on a tight crop's edge, or cut by it, has a few per cent of its ink there."""
    if layout.edge is None:
        return False
    box = (slice(piece.y0, piece.y1), slice(piece.x0, piece.x1))
    return int((layout.edge[box] & (layout.labels[box] == piece.label)).sum()) >= EDGE_SHARE * piece.area


def _digits_confidence(reading: Reading) -> float:
    """How surely a reading's digits were read, its signs left out (a doubtful slash is still a field)."""
    return float(np.prod([d.confidence for d in reading.digits if not isinstance(d.digit, str)]))


def _one_line(layout: _Layout, groups: list[list[_Piece]]) -> bool:
    """A picture of one line of writing (or one digit, boxed or not), not a page: one field, not a row of digit
    boxes (a piece or two at most in boxes), at least ONE_LINE_SHARE of the picture's height (one number written
    small on a large page is a page's field: `read`, reducing the whole picture, reads it as a digit or two),
    and what was taken for print beside it (a stroke of a digit, a speck) holds less ink than the field."""
    if len(groups) != 1 or (len(groups[0]) > 2 and any(p.boxed for p in groups[0])):
        return False
    _, y0, _, y1 = _box(groups[0])
    if y1 - y0 < ONE_LINE_SHARE * layout.labels.shape[0]:
        return False
    kept = sum(p.area for p in groups[0])
    return sum(p.area for p in layout.pieces) - kept < kept


def _as_field(reading: Reading, left: int, top: int, scale: float, turn: _Turn | None = None) -> Field:
    """A reading of a crop whose corner is (left, top) in the picture (in the page turned level, when
    `turn`), boxes in the original's pixels."""
    characters = []
    for d in reading.digits:
        box = [left + d.box[0], top + d.box[1], left + d.box[2], top + d.box[3]]
        if turn is not None:
            box = turn.to_picture(box)
        char = str(d.digit)  # a digit 0-9 or a sign read inside the number
        characters.append(Character(char, d.confidence, [int(math.floor(v * scale)) if i < 2 else
                                                         int(math.ceil(v * scale)) for i, v in enumerate(box)]))
    boxes = np.array([c.box for c in characters]).reshape(-1, 4)
    box = [int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max())]
    return Field(reading.text, reading.confidence, box, characters)
