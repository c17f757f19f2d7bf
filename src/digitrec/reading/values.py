"""The shapes of the values people write, and a line read with them in mind.

A line model reads each column on its own; it does not know that people write `24/12` and not `241/2`, or
that a sign stands between digits. Where its columns are in doubt (a slanted 1 beside a slash, a 1 whose
flag touches a minus), the reading that has a value's shape is taken over a slightly likelier one that has
none, as check readers weigh an amount's grammar: the few most doubtful columns are tried with their second
class, each reading's column probabilities multiplied by its shape's prior (1 for a value's shape,
DATE_PRIOR for a calendar date that is the best path's digits with some 1s read as slashes, ODD_SHAPE for
any other), and the best kept (a column whose second class reads the same text, alone and with its doubtful
neighbour, at a digit's edge, is not tried). A reading with no doubtful column is the best path itself; a
date read by its prior carries that prior in its confidence. A reading still without a value's shape is read
with a point or colon too many left out where that makes one (a speck, a 4's broken stroke: `03:5:4`).

A value's shape (VALUE_SHAPES): a plain number; an amount (a minus before it, thousands grouped by `,` or `.`,
up to three decimals after `.` or `,`, no leading zero but in `0.5`); a date (day, month and year by `.`
`/` `-`, the year first with `-` `/` `.`, a day and month alone by `/`); a time (`14:05`, `14:05:30`); two
numbers joined by `-` (a range, a code, a phone number).
"""

from __future__ import annotations

import calendar
import itertools
import math
import re
from dataclasses import replace

import numpy as np

from digitrec.reading.line import CHARS, LineDigit, collapse

VALUE_SHAPES = re.compile("|".join([
    r"\d+",  # a plain number, a code (leading zeros kept)
    r"-?(?:0|[1-9]\d*)(?:[.,]\d{1,3})?",  # below zero, or with up to three decimals: 12.50 -3 0,5
    r"-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d{1,3})?",  # thousands by commas: 1,250 1,250.50
    r"-?[1-9]\d{0,2}(?:\.\d{3})+(?:,\d{1,3})?",  # thousands by points: 1.250 1.250,50
    r"\d{1,2}([./-])\d{1,2}\1(?:\d{2}|\d{4})",  # day, month, year: 24/12/2026 05.12.26 24-12-2026
    r"\d{4}([./-])\d{2}\2\d{2}",  # year first: 2026-12-05
    r"\d{1,2}/\d{1,2}",  # a day and a month, a fraction: 24/12 3/4
    r"\d{1,2}:\d{2}(?::\d{2})?",  # a time: 14:05 9:30 14:05:30
    r"\d+-\d+",  # a range, a code, a phone number: 10-12 555-1234
]))
ODD_SHAPE = 0.02  # a reading without a value's shape must be this much likelier than one with
DOUBT = 0.99  # a column whose best class is below this is in doubt
SECOND_AT_LEAST = 0.01  # ... if its second class is at least this likely
MAX_DOUBTS = 8  # the most doubtful columns tried (2 ** 8 readings at most)
# A reading with no value's shape is read with one point or colon read under STRAY_BELOW left out, or two, where
# that makes one (`_without_stray_signs`): specks and a digit's broken stroke read as signs. The second validation
# bench's list pages, fields right 87.5 / 89.7 % without and with (the first bench the same), values and plain
# numbers the same texts. Left out so, a value grouped in an unusual way (`12.34.567`) reads as another value.
MAX_STRAY_SIGNS, DOT_SIGNS, STRAY_BELOW = 2, ".:", 0.999
# A calendar date (`is_date`: day and month valid, either order, the year 19xx or 20xx or two digits last) that is
# the best path's own digits, character for character, some of its 1s read as slashes, is this much likelier than
# the number: people's slashes between day and month look like 1s, and a number that is a valid date once two of
# its 1s are slashes is rare. Nothing else gets the prior (no sign added but those slashes, no character added
# or dropped), so specks read as points make no date (decision 0017). Validation at 1 / 300: list pages' fields
# right 84.9 / 85.6 %, values (1,200) 88.8 / 88.9 %, plain numbers (4,000) the same readings; weighing any
# date read values 89.3 % and lists 86.3 %, but made dates of specks. A best path with one slash read right and
# the other read as a 1 (`21/0511957`) gets it too (decision 0026): validation list pages' fields right 87.0 /
# 88.0 % (the second bench 86.8 / 87.5 %), values and plain numbers the same texts; of 800 pen-drawn numbers
# two in five of whose digits are flagged 1s, one became a date read at 0.19 (`2/4/11`).
DATE_PRIOR = 300.0
# Where a doubt makes a calendar date, a reading with a date's shape that is no calendar date (`07-18-1473`)
# weighs NO_CALENDAR, as one without a value's shape, and the calendar date so chosen carries the weighing in
# its confidence (decision 0021); with no calendar date among the readings (a sort code `20-45-77`) none does.
# Validation values (1,200) 88.0 / 88.6 % without and with; pages and plain numbers the same readings.
NO_CALENDAR = 0.02
_DATE = re.compile(r"(\d{1,2})([./-])(\d{1,2})\2(\d{2}|\d{4})|(\d{4})([./-])(\d{2})\6(\d{2})")


def is_value(text: str) -> bool:
    """Whether `text` has the shape of a value people write (VALUE_SHAPES)."""
    return VALUE_SHAPES.fullmatch(text) is not None


def decode_value(probabilities: np.ndarray) -> list[LineDigit]:
    """Class probabilities per column [T, C] (the blank last) -> the characters read, the best path with
    its doubtful columns tried both ways and each reading weighed by its shape (module docstring)."""
    best = probabilities.argmax(axis=1)
    order = np.argsort(-probabilities, axis=1)
    top = probabilities[np.arange(len(best)), best]
    second = probabilities[np.arange(len(best)), order[:, 1]]
    blank = probabilities.shape[1] - 1
    doubtful = [int(t) for t in np.flatnonzero((top < DOUBT) & (second >= SECOND_AT_LEAST))]
    seconds = {t: int(order[t, 1]) for t in doubtful}
    doubtful = [t for t in doubtful if _changes_text(best, [t], seconds, blank)
                or any(n in seconds and _changes_text(best, sorted([t, n]), seconds, blank) for n in (t - 1, t + 1))]
    doubtful = sorted(doubtful, key=lambda t: second[t] / top[t], reverse=True)[:MAX_DOUBTS]
    cost = {t: math.log(top[t] / second[t]) for t in doubtful}  # log-probability lost taking the second
    chosen, chosen_score, chosen_dated = best, -math.inf, False
    scores = []
    plain = "".join(CHARS[c] for c in _classes(best, blank))  # what the best path reads
    tried = []  # (picks, path, its log-probability lost, text) for every way the doubtful columns can be read
    for picks in itertools.product((0, 1), repeat=len(doubtful)):
        path = best.copy()
        lost = 0.0
        for t, pick in zip(doubtful, picks, strict=True):
            if pick:
                path[t], lost = order[t, 1], lost - cost[t]
        tried.append((picks, path, lost, "".join(CHARS[c] for c in _classes(path, blank))))
    calendar = any(is_date(text) for *_, text in tried)  # where a doubt makes a calendar date, NO_CALENDAR weighs
    for _, path, score, text in tried:
        dated = False
        if not is_value(text):
            score += math.log(ODD_SHAPE)
        elif _digits_and_slashes(plain) and _slashes_for_ones(plain, text) and is_date(text):
            score += math.log(DATE_PRIOR)
            dated = True
        elif calendar and _DATE.fullmatch(text) and not is_date(text):
            score += math.log(NO_CALENDAR)
        elif calendar and _DATE.fullmatch(text) and _DATE.fullmatch(plain) and not is_date(plain):
            dated = True
        scores.append(score)
        if score > chosen_score:
            chosen, chosen_score, chosen_dated = path, score, dated
    if not chosen_dated:
        return _without_stray_signs(collapse(probabilities, chosen))
    # A date read so carries the prior's weight in its characters' confidence: each doubtful column's two
    # classes share its probability as the readings tried weigh them (a slash at 0.21 in `17/02/1997`, the
    # date 300 times likelier than the number `1710211997`, is read at 0.8: a sign read surely, `SIGN_SURE`).
    weights = np.exp(np.array(scores) - max(scores))
    weights /= weights.sum()
    taken = np.array([picks for picks, *_ in tried], bool)  # [readings tried, doubtful columns]: the second class taken
    adjusted = probabilities.copy()
    for k, t in enumerate(doubtful):
        second_share = float(weights[taken[:, k]].sum())
        mass = top[t] + second[t]
        adjusted[t, best[t]], adjusted[t, order[t, 1]] = mass * (1 - second_share), mass * second_share
    return collapse(adjusted, chosen)


def _without_stray_signs(chars: list[LineDigit]) -> list[LineDigit]:
    """A reading with no value's shape that makes one with one point or colon left out, or else two, each read
    under STRAY_BELOW: a speck or a digit's broken stroke read as one (`5807.4.0`, `03:5:4`, `.2.7.03.03`). A
    dash or a slash is a stroke, a comma may group thousands as people do (`12,34,567`), and a sign read surer
    than STRAY_BELOW is written: those are never left out (`3-4-5-6` stays). Each way of leaving signs out
    weighs the doubt of the signs it leaves out (one less their confidence); the heaviest is taken, its signs
    read at their confidence times its share of the weight: one way alone keeps them as sure as they were, two
    alike (`5807.4.0`: `5807.40` or `58074.0`) leave no sign sure enough to stand (`numbers.SIGN_SURE`)."""
    text = "".join(c.char for c in chars)
    signs = [i for i, c in enumerate(chars) if c.char in DOT_SIGNS and c.confidence < STRAY_BELOW]
    if not signs or is_value(text):
        return chars
    ways: list[tuple[float, list[LineDigit]]] = []
    for count in range(1, min(MAX_STRAY_SIGNS, len(signs)) + 1):
        for left_out in itertools.combinations(signs, count):
            kept = [c for i, c in enumerate(chars) if i not in left_out]
            kept_text = "".join(c.char for c in kept)
            if is_value(kept_text) and not is_impossible_date(kept_text):
                ways.append((math.prod(max(1.0 - chars[i].confidence, 1e-6) for i in left_out), kept))
        if ways:  # the fewest signs left out
            break
    if not ways:
        return chars
    weight, kept = max(ways, key=lambda way: way[0])
    share = weight / sum(w for w, _ in ways)
    return [replace(c, confidence=c.confidence * share) if c.is_sign else c for c in kept]


def _digits_and_slashes(text: str) -> bool:
    """Whether `text` is digits, perhaps with slashes among them: a date's slash read as a 1 leaves the best path
    so, with or without the other slash read right (`21/0511957`)."""
    return text.replace("/", "").isdigit()


def _slashes_for_ones(plain: str, text: str) -> bool:
    """Whether `text` is the digits `plain`, character for character, with some 1s read as slashes (and any
    other digit perhaps read as another digit): no character added or dropped, no other sign."""
    return len(text) == len(plain) and "/" in text and all(
        t == p or (t == "/" and p == "1") or (t.isdigit() and p.isdigit()) for t, p in zip(text, plain, strict=True))


# The dates checked against the calendar: a year of four digits (day first by `/` or `.`, or year first by `/`
# `.` `-`), or day, month and a two-digit year by slashes. Three pairs by dots or dashes (`12.34.56`, `20-45-77`)
# and two pairs and four digits by dashes (`12-34-5678`) are codes as often; times are not checked at all
# (`45:30` is a duration, `1:75` a scale).
_CHECKED_DATE = re.compile(r"\d{1,2}([./])\d{1,2}\1\d{4}|\d{4}([./-])\d{2}\2\d{2}|\d{1,2}/\d{1,2}/\d{2}")


def is_impossible_date(text: str) -> bool:
    """Whether `text` is a date no calendar has (`2975-01-26`, `63/07/76`, `21/13/2024`, `31/02/2024`): read so,
    a digit of it was misread. Of the shapes in _CHECKED_DATE, what `is_date` refuses: a day or month out of
    range, or a year of four digits outside 1900-2099, which forms seldom hold (decision 0021 assumes as much)."""
    return _CHECKED_DATE.fullmatch(text) is not None and not is_date(text)


def is_date(text: str) -> bool:
    """Whether `text` is a calendar date: day and month (either order) and a year of 2 or 4 digits (19xx,
    20xx), or the year first in four digits; the day within its month's length (29 February only in a leap
    year). A two-digit year written first (`98/12/31`) is not taken: it would make any first pair over 31 a
    year, and `78/05/25` would no longer weigh as odd against the `28/05/25` it was misread from."""
    match = _DATE.fullmatch(text)
    if match is None:
        return False
    if match.group(1) is not None:
        a, b, year = int(match.group(1)), int(match.group(3)), match.group(4)
        if len(year) == 4 and year[:2] not in ("19", "20"):
            return False
        return _day_of(a, b, int(year)) or _day_of(b, a, int(year))
    year, month, day = match.group(5), int(match.group(7)), int(match.group(8))
    return year[:2] in ("19", "20") and _day_of(day, month, int(year))


def _day_of(day: int, month: int, year: int) -> bool:
    """Whether `day` is a day of `month` in `year` (29 February only in a leap year; a year of two digits is
    19xx or 20xx, which are leap years alike but for 00, taken as 2000)."""
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year + 2000 if year < 100 else year, month)[1]


def _changes_text(path: np.ndarray, columns: list[int], seconds: dict[int, int], blank: int) -> bool:
    """Whether reading these neighbouring columns as their second classes changes what the path reads. Only
    they change, so the text changes exactly where their neighbourhood reads differently. A column at a
    digit's edge, taken for the blank or for the digit beside it, changes nothing and is not worth one of the
    MAX_DOUBTS tries, unless with its doubtful neighbour it does (a point over two columns)."""
    start = max(0, columns[0] - 1)
    window = path[start : columns[-1] + 2].copy()
    before = _classes(window, blank)
    for t in columns:
        window[t - start] = seconds[t]
    return _classes(window, blank) != before


def _classes(path: np.ndarray, blank: int) -> list[int]:
    """The classes a path reads, by CTC's rule (repeats merged, blanks dropped)."""
    return [int(c) for n, c in enumerate(path) if c != blank and (n == 0 or c != path[n - 1])]

