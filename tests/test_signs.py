"""Handwritten signs inside numbers: their renderer, values composed with them, and how a line model's
signs are decoded."""

import numpy as np
import pytest

from digitrec.data.signs import SIGNS, VALUE_FORMATS, render_sign, value_ink, value_text
from digitrec.reading.line import CHARS, LINE_CLASSES, decode


def _rows(sign: str, base: int = 60, n: int = 40) -> list[tuple[float, float, float, float]]:
    """(top, bottom, height, width) of `n` renderings of a sign, rows as shares of the digit height from the
    digits' top (1.0: the baseline)."""
    rng = np.random.default_rng(3)
    out = []
    for _ in range(n):
        ink, top = render_sign(sign, base, rng)
        assert ink.dtype == np.float32 and 0.8 <= ink.max() <= 1.0 and ink.min() >= 0
        out.append((top / base, (top + ink.shape[0]) / base, ink.shape[0] / base, ink.shape[1] / base))
    return out


def test_a_dot_sits_on_the_baseline_and_is_small():
    for top, bottom, height, width in _rows("."):
        assert top >= 0.65 and 0.85 <= bottom <= 1.2 and height <= 0.35 and width <= 0.45


def test_a_commas_tail_goes_below_the_baseline():
    for top, bottom, height, _ in _rows(","):
        assert top >= 0.7 and bottom >= 1.1 and height >= 0.2


def test_a_minus_is_at_mid_height_and_wider_than_high():
    widths = []
    for top, bottom, height, width in _rows("-"):
        assert top >= 0.3 and bottom <= 0.8 and width > 1.5 * height
        widths.append(width)
    assert min(widths) < 0.45 < 0.6 < max(widths)  # short and long ones


def test_a_slash_crosses_the_line_leaning_right():
    rng = np.random.default_rng(4)
    for _ in range(30):
        ink, top = render_sign("/", 60, rng)
        assert top <= 0.15 * 60 and top + ink.shape[0] >= 0.9 * 60
        rows = np.flatnonzero(ink.max(axis=1) > 0.5)
        left_of = [np.average(np.arange(ink.shape[1]), weights=ink[r]) for r in (rows[0], rows[-1])]
        assert left_of[0] > left_of[1]  # its top is right of its foot


def test_a_colon_is_two_dots_around_mid_height():
    from scipy import ndimage

    rng = np.random.default_rng(5)
    for _ in range(30):
        ink, top = render_sign(":", 60, rng)
        _, count = ndimage.label(ink > 0.5)
        assert count == 2 and top >= 0.1 * 60 and top + ink.shape[0] <= 1.15 * 60


def test_values_use_every_sign_and_compose_with_digits():
    rng = np.random.default_rng(0)
    texts = [value_text(rng) for _ in range(400)]
    assert all(set(t) <= set("0123456789" + SIGNS) for t in texts)
    assert set("".join(texts)) >= set(SIGNS)
    assert all(p[0] != "0" or p.startswith("0.") or p.startswith("0,") for p, _ in VALUE_FORMATS
               if p[0] in "0D")
    sample = np.zeros((2, 28, 28), np.uint8)
    sample[:, 4:24, 12:16] = 255  # two 1s
    ink = value_ink([sample[0], ".", sample[1]], (0.2, 0.4), rng)
    assert ink.dtype == np.float32 and ink.max() > 0.8 and ink.shape[1] > ink.shape[0]


def test_decoding_reads_signs_and_a_digits_only_reading_drops_them():
    assert CHARS == "0123456789.,-/:" and LINE_CLASSES == 16
    blank = LINE_CLASSES - 1
    order = [blank, 1, blank, CHARS.index("."), CHARS.index("."), blank, 5, 0, blank]
    p = np.full((len(order), LINE_CLASSES), 0.005, np.float32)
    for t, c in enumerate(order):
        p[t, c] = 0.9
    read = decode(p)
    assert "".join(d.char for d in read) == "1.50"
    assert [d.is_sign for d in read] == [False, True, False, False]
    assert (read[1].first_frame, read[1].last_frame) == (3, 4)
    assert "".join(d.char for d in decode(p, only_digits=True)) == "150"


@pytest.mark.parametrize("sign", list(SIGNS))
def test_every_sign_renders_at_any_size(sign):
    rng = np.random.default_rng(6)
    for base in (12, 24, 96):
        ink, _ = render_sign(sign, base, rng)
        assert ink.size and ink.max() > 0.5


def _columns(*columns: dict[str, float]) -> np.ndarray:
    """Class probabilities, one column a dict {char: probability}, the rest of each column blank."""
    p = np.zeros((len(columns), LINE_CLASSES), np.float32)
    for t, column in enumerate(columns):
        for char, value in column.items():
            p[t, CHARS.index(char)] = value
        p[t, -1] = 1 - sum(column.values())
    return p


@pytest.mark.parametrize("text, value", [
    ("1234", True), ("12.50", True), ("-3", True), ("-12.6", True), ("1,250", True), ("1,250.00", True),
    ("1.250,00", True), ("24/12/2026", True), ("05.12.26", True), ("2026-12-05", True), ("24/12", True),
    ("14:05", True), ("9:30:15", True), ("555-1234", True),
    ("0.5", True), ("0123", True),
    ("24//2", False), ("241/2", False), ("2026-2-05", False), ("12.", False), ("3-", False), ("1:2", False),
    (".5.", False), ("14:055", False), ("9.22483", False), ("0972.7", False)])
def test_the_shapes_of_values(text, value):
    from digitrec.reading.values import is_value

    assert is_value(text) is value


def test_a_doubtful_column_is_read_as_the_value_it_makes():
    """A slanted 1 after a slash, read as a second slash (0.97) and only a little as a 1 (0.03): the best
    path, '24//2', has no value's shape; with the 1, '24/12' has, and is taken."""
    from digitrec.reading.values import decode_value

    p = _columns({"2": 1.0}, {}, {"4": 1.0}, {}, {"/": 0.95, "1": 0.05}, {}, {"/": 0.97, "1": 0.03}, {}, {"2": 1.0})
    assert "".join(c.char for c in decode(p)) == "24//2"
    read = decode_value(p)
    assert "".join(c.char for c in read) == "24/12"
    assert read[3].confidence == pytest.approx(0.03)  # the 1 taken keeps its own low confidence: a doubt to flag


def test_a_sure_reading_is_kept_whatever_its_shape():
    """The shapes weigh doubts only: a line read surely stands, shape or none ('3-4-5-6'), and a second class
    far less likely than ODD_SHAPE times the first does not win over it."""
    from digitrec.reading.values import decode_value

    sure = _columns({"3": 1.0}, {"-": 1.0}, {"4": 1.0}, {"-": 1.0}, {"5": 1.0}, {"-": 1.0}, {"6": 1.0})
    assert "".join(c.char for c in decode_value(sure)) == "3-4-5-6"
    far = _columns({"2": 1.0}, {}, {"4": 1.0}, {}, {"/": 0.985, "1": 0.012}, {}, {"/": 0.985, "1": 0.012}, {},
                   {"2": 1.0})  # in doubt, but a 1 is 82 times less likely than a slash: over 1 / ODD_SHAPE
    assert "".join(c.char for c in decode_value(far)) == "24//2"


def test_columns_at_a_digits_edge_do_not_crowd_out_the_doubt_that_matters():
    """Columns beside a digit, doubtful between it and the blank, read the same text either way: were they
    among the MAX_DOUBTS tried, the slash read for a 1 would never be tried and `24//2/026` would stand."""
    from digitrec.reading.values import MAX_DOUBTS, decode_value

    soft = {"2": 0.55}
    columns = [{"2": 1.0}, soft, {}, {"4": 1.0}, {"4": 0.55}, {}, {"/": 0.95, "1": 0.05}, {},
               {"/": 0.97, "1": 0.03}, {}, {"2": 1.0}, {"2": 0.55}, {}, {"/": 1.0}, {}]
    for digit in "2026":
        columns += [{digit: 0.55}, {digit: 1.0}, {digit: 0.55}, {}]
    assert sum(1 for c in columns if c and max(c.values()) == 0.55) > MAX_DOUBTS  # edges enough to crowd
    assert "".join(c.char for c in decode_value(_columns(*columns))) == "24/12/2026"


def test_a_point_over_two_columns_can_still_go_back_to_paper():
    """A speck read as a point in two columns (0.6 each, blank 0.4): blanking either column alone reads the
    same text, both together remove the point; `1.2345` (no value: four decimals) reads `12345`."""
    from digitrec.reading.values import decode_value

    columns = [{"1": 1.0}, {}, {".": 0.6}, {".": 0.6}, {}]
    for digit in "2345":
        columns += [{digit: 1.0}, {}]
    assert "".join(c.char for c in decode(_columns(*columns))) == "1.2345"
    assert "".join(c.char for c in decode_value(_columns(*columns))) == "12345"


def _date_columns(day_month: str, first: float, second: float) -> np.ndarray:
    """`17/02/1997`'s columns as a sign reader read a page's date: each slash a 1 at `first` / `second`, a
    slash only at the rest (`day_month`: the four digits between, `1702` or another)."""
    d = day_month
    chars = [{d[0]: 1.0}, {d[1]: 1.0}, {"1": first, "/": 1 - first}, {d[2]: 1.0}, {d[3]: 1.0},
             {"1": second, "/": 1 - second}, {"1": 1.0}, {"9": 1.0}, {"9": 1.0}, {"7": 1.0}]
    return _columns(*[c for char in chars for c in (char, {})])


def test_a_calendar_date_is_read_over_a_number_whose_1s_would_be_its_slashes():
    """Slashes between day and month look like 1s: `1710211997`, read so at 0.79 and 0.935, is the date
    `17/02/1997` once both are slashes, DATE_PRIOR times likelier than a number; the slashes are then read as
    surely as a sign must be to stand (SIGN_SURE). No date (a month 13), no prior: the number stays."""
    from digitrec.reading.numbers import SIGN_SURE
    from digitrec.reading.values import decode_value, is_date

    read = decode_value(_date_columns("1702", 0.789, 0.935))
    assert "".join(c.char for c in read) == "17/02/1997"
    assert min(c.confidence for c in read if c.is_sign) >= SIGN_SURE
    assert "".join(c.char for c in decode_value(_date_columns("1713", 0.789, 0.935))) == "1711311997"
    sure = decode_value(_date_columns("1702", 0.985, 0.985))  # 1s a slash only at 0.015: a number
    assert "".join(c.char for c in sure) == "1710211997"
    assert [sure[2].confidence, sure[5].confidence] == pytest.approx([0.985, 0.985])  # its own, untouched
    assert [t for t in ("17/02/1997", "12/31/99", "2026-12-05", "05.12.26") if is_date(t)] == \
        ["17/02/1997", "12/31/99", "2026-12-05", "05.12.26"]
    assert not any(is_date(t) for t in ("17/13/1997", "32/01/2000", "2026-13-05", "1/1/1899", "24/12", "14:05"))


def test_a_date_with_one_slash_read_right_and_the_other_read_as_a_1_is_the_date():
    """`21/0511957`: the first slash read as a slash, the second as a 1 at 0.974 (a slash second at 0.026). The
    digits with that 1 read as a slash make the date `21/05/1957`, DATE_PRIOR times likelier than the best
    path's odd shape or the number `2110511957` (its first slash read as a 1). A month 13 makes no date."""
    from digitrec.reading.values import decode_value

    assert "".join(c.char for c in decode_value(_date_columns("1702", 0.05, 0.974))) == "17/02/1997"
    assert "".join(c.char for c in decode_value(_date_columns("1713", 0.05, 0.974))) == "1711311997"


def _sure(text: str, confidence: dict[int, float] | None = None) -> np.ndarray:
    """A line read surely, one column a character and a blank column after each (`confidence`: some
    characters' own, by place)."""
    confidence = confidence or {}
    return _columns(*[c for n, char in enumerate(text) for c in ({char: confidence.get(n, 1.0)}, {})])


def test_a_sign_too_many_is_left_out_where_that_alone_makes_a_value():
    """A speck or a digit's broken stroke read surely as a sign leaves no value's shape (`03:5:4`, `.2.7.03.03`):
    the fewest points or colons read under STRAY_BELOW are left out that make one, the surest kept. Where two
    ways are alike (`5807.4.0`:
    `5807.40` or `58074.0`), each has half the weight, and its point is read under SIGN_SURE."""
    from digitrec.reading.numbers import SIGN_SURE
    from digitrec.reading.values import decode_value

    assert "".join(c.char for c in decode_value(_sure("03:5:4", {4: 0.996}))) == "03:54"
    assert "".join(c.char for c in decode_value(_sure(".2.7.03.03", {0: 0.998, 2: 0.891}))) == "27.03.03"
    alike = decode_value(_sure("5807.4.0", {4: 0.995, 6: 0.993}))
    assert "".join(c.char for c in alike) == "5807.40"
    assert max(c.confidence for c in alike if c.is_sign) < SIGN_SURE
    assert "".join(c.char for c in decode_value(_sure("12.50"))) == "12.50"  # a value: as read
    assert "".join(c.char for c in decode_value(_sure("1.2.3.4.5.6"))) == "1.2.3.4.5.6"  # none with two left out
    assert "".join(c.char for c in decode_value(_sure("3-4-5-6"))) == "3-4-5-6"  # dashes are strokes: kept
    # commas group thousands as people do, and a sign read surely is written: neither is left out
    assert "".join(c.char for c in decode_value(_sure("12,34,567"))) == "12,34,567"
    assert "".join(c.char for c in decode_value(_sure("1:2:3"))) == "1:2:3"


def test_a_date_shaped_reading_that_is_no_calendar_date_weighs_as_odd():
    """`07-18-1473`: a date's shape whose year is no 19xx or 20xx; the 9 the year's doubtful column reads second
    makes a calendar date, read so with the weighing in its confidence. Read surely, the year stays."""
    from digitrec.reading.values import decode_value

    def year(second: float) -> np.ndarray:
        chars = [{"0": 1.0}, {"7": 1.0}, {"-": 1.0}, {"1": 1.0}, {"8": 1.0}, {"-": 1.0}, {"1": 1.0},
                 {"4": 1 - second, "9": second}, {"7": 1.0}, {"3": 1.0}]
        return _columns(*[c for char in chars for c in (char, {})])

    assert "".join(c.char for c in decode(year(0.2))) == "07-18-1473"
    read = decode_value(year(0.2))
    assert "".join(c.char for c in read) == "07-18-1973"
    assert 0.5 < read[7].confidence < 0.95  # the 9 taken by the weighing, not by its own 0.2
    assert "".join(c.char for c in decode_value(year(0.005))) == "07-18-1473"  # a sure 4: no doubt to weigh
    # A sort code has a date's shape and is no date: with no calendar date among its readings, nothing is weighed
    chars = [{"2": 1.0}, {"0": 1.0}, {"-": 0.8, "1": 0.2}, {"4": 1.0}, {"5": 1.0}, {"-": 1.0}, {"7": 1.0}, {"7": 1.0}]
    assert "".join(c.char for c in decode_value(_columns(*[c for char in chars for c in (char, {})]))) == "20-45-77"


def test_a_flagged_1_read_surely_as_a_slash_makes_no_date_of_the_other_1s():
    """A pen's flagged 1 is now and then read surely as a slash (`12/1197` for the number `121197`): the line's
    other 1s, read as 1s at 0.999, are not tried as slashes, so the number does not become the date
    `12/11/97` (a sure slash beside a sure 1 is no date's evidence: tried so, flagged pen-drawn numbers
    became sure false dates, `112168` as `1/2/68` at 0.97)."""
    from digitrec.reading.values import decode_value, is_date

    chars = [{"1": 1.0}, {"2": 1.0}, {"/": 0.98}, {"1": 1.0}, {"1": 0.9994, "/": 0.0006}, {"9": 1.0}, {"7": 1.0}]
    text = "".join(c.char for c in decode_value(_columns(*[c for char in chars for c in (char, {})])))
    assert not is_date(text)


@pytest.mark.parametrize("sign", [".", "-", "/"])
def test_specks_that_would_make_a_date_get_no_prior(sign):
    """The prior is for slashes read as 1s: two faint specks between `12`, `05` and `20`, read as a sign at
    0.1 in columns of paper, would make the date `12.05.20`; the number stays, its digits as they were."""
    from digitrec.reading.values import decode_value

    columns = [{"1": 1.0}, {}, {"2": 1.0}, {sign: 0.1}, {"0": 1.0}, {}, {"5": 1.0}, {sign: 0.1}, {"2": 1.0}, {},
               {"0": 1.0}, {}]
    assert "".join(c.char for c in decode_value(_columns(*columns))) == "120520"


def test_a_date_doubted_a_little_is_chosen_but_not_sure():
    """1s read at 0.94, a slash second at 0.06: the date weighs about as much as the number, and its slashes
    are read at about 0.55, under SIGN_SURE: `read` keeps the number, flagged by that doubt."""
    from digitrec.reading.numbers import SIGN_SURE
    from digitrec.reading.values import decode_value

    read = decode_value(_date_columns("1702", 0.94, 0.94))
    assert "".join(c.char for c in read) == "17/02/1997"
    assert 0.4 < min(c.confidence for c in read if c.is_sign) < SIGN_SURE


def test_no_date_is_made_but_of_the_numbers_own_digits_with_1s_as_slashes():
    """What gets the calendar's prior is the best path's digits, some 1s read as slashes, and nothing else:
    specks the best path reads as points under SIGN_SURE (0.6) stay unsure; a 1 over two columns whose tail
    doubts a slash does not become `1/` (a digit kept and a slash added); a date chosen for its shape alone
    (a point in an odd place) keeps its columns' own confidences."""
    from digitrec.reading.numbers import SIGN_SURE
    from digitrec.reading.values import decode_value

    specks = _columns({"1": 1.0}, {}, {"2": 1.0}, {".": 0.6}, {"0": 1.0}, {}, {"5": 1.0}, {".": 0.6}, {"2": 1.0},
                      {}, {"0": 1.0}, {})
    read = decode_value(specks)
    assert max(c.confidence for c in read if c.is_sign) < SIGN_SURE  # `12.05.20`, its points as unsure as read
    tail = {"1": 0.7, "/": 0.3}
    spread = _columns({"0": 1.0}, {}, {"1": 1.0}, tail, {}, {"0": 1.0}, {}, {"1": 1.0}, tail, {}, {"2": 1.0}, {},
                      {"0": 1.0}, {})
    assert "".join(c.char for c in decode_value(spread)) == "010120"


@pytest.mark.parametrize("text, impossible", [
    ("2975-01-26", True), ("63/07/76", True), ("31.13.2024", True), ("2012-98-03", True), ("1890-05-12", True),
    ("1975-01-26", False), ("08/07/76", False), ("31.12.2024", False), ("24-12-2026", False), ("3/2/07", False),
    # codes, durations and scales take these shapes as often as dates do: never checked
    ("20-45-77", False), ("12.34.56", False), ("44.06.24", False), ("12-34-5678", False), ("06-12-3456", False),
    ("45:30", False), ("90:00", False), ("1:75", False), ("18.45.30", False), ("13:61:02", False),
    ("1234", False), ("12.50", False), ("24/12", False), ("1,250", False),
    # a month's length, 29 February in leap years only; a two-digit year is never first (`78/05/25` stays odd)
    ("31/02/2024", True), ("31.04.2026", True), ("2026-06-31", True), ("29/02/2023", True), ("29.02.1900", True),
    ("29/02/2024", False), ("2000-02-29", False), ("29/02/24", False), ("29/02/00", False), ("29/02/23", True),
    ("30/04/2026", False),
    ("78/05/25", True), ("98/12/31", True)])
def test_dates_no_calendar_has(text, impossible):
    from digitrec.reading.values import is_impossible_date

    assert is_impossible_date(text) is impossible


class _FixedNetwork:
    """Reads each 28x28 as the digit written in its first pixel, with the probabilities given for that digit."""

    def __init__(self, table: dict[int, dict[int, float]]):
        self.table = table

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        out = np.full((len(crops), 10), 1e-4, np.float32)
        for row, crop in zip(out, crops, strict=True):
            for digit, p in self.table[int(crop[0, 0])].items():
                row[digit] = p
        return out


def _reading(text: str, confidence: float = 0.99):
    from digitrec.reading.numbers import DigitReading, Reading

    chars = [int(c) if c.isdigit() else c for c in text]
    crops = np.zeros((len(chars), 28, 28), np.uint8)
    for n, c in enumerate(chars):
        crops[n, 0, 0] = c if isinstance(c, int) else 0
    digits = [DigitReading(c, confidence ** (1 / len(chars)), [n, 0, n + 1, 1]) for n, c in enumerate(chars)]
    return Reading(text, confidence, digits, 0, crops)


def test_a_year_no_calendar_has_is_read_with_the_networks_other_reading():
    """`2975-01-26`: the first digit read as a 2 where the network also reads it a little as a 1 (0.1): of the
    texts the other readings make, `1975-01-26` is a calendar date and is taken, its changed digit doubted."""
    from digitrec.reading.numbers import _possible

    sure = {d: {d: 0.999} for d in range(10)}
    network = _FixedNetwork({**sure, 2: {2: 0.88, 1: 0.1}})
    read = _possible(_reading("2975-01-26"), network)
    assert read.text == "1975-01-26"
    assert read.digits[0].digit == 1 and read.digits[0].confidence < 0.9
    assert [d.box for d in read.digits] == [d.box for d in _reading("2975-01-26").digits]


@pytest.mark.parametrize("confidence", [0.99, 0.999, 0.99999])
def test_an_impossible_date_with_no_possible_reading_near_is_flagged_not_changed(confidence):
    """`63/07/76` read surely, the network sure of every digit: the text stays, its confidence NO_CALENDAR times
    what it was, however sure (a person should look)."""
    from digitrec.reading.numbers import _possible
    from digitrec.reading.values import NO_CALENDAR

    network = _FixedNetwork({d: {d: 0.999} for d in range(10)})
    read = _possible(_reading("63/07/76", confidence), network)
    assert read.text == "63/07/76"
    assert read.confidence == pytest.approx(confidence * NO_CALENDAR, abs=1e-6)


def test_two_digits_misread_in_a_year_are_read_again_together():
    """`2912-98-03`: the year's 9 and the month's 9 both read where the network also sees 0s; one change alone
    makes no calendar date, both together make `2012-08-03`, whose two changed digits share its weight."""
    from digitrec.reading.numbers import _possible

    network = _FixedNetwork({**{d: {d: 0.999} for d in range(10)}, 9: {9: 0.7, 0: 0.28}})
    read = _possible(_reading("2912-98-03"), network)
    assert read.text == "2012-08-03"
    before = _reading("2912-98-03").digits
    changed = [d.confidence for d, b in zip(read.digits, before, strict=True) if d.digit != b.digit]
    assert len(changed) == 2 and changed[0] == changed[1]
    assert np.prod(changed) == pytest.approx(0.4**2 / (0.4**2 + 0.02), abs=1e-3)  # (0.28 / 0.7)^2 against 0.02


def test_a_reading_without_crops_is_flagged():
    from digitrec.reading.numbers import _possible
    from digitrec.reading.values import NO_CALENDAR

    reading = _reading("63/07/76")
    reading.crops = None
    assert _possible(reading, None).confidence == pytest.approx(0.99 * NO_CALENDAR, abs=1e-6)


def test_read_checks_its_whole_reading_against_the_calendar(monkeypatch):
    """`read_number` sends a reading that `is_impossible_date` names to `_possible`, whatever reader made it: here
    a plain number the network reads surely is taken for an impossible date, and comes back flagged."""
    from test_read import number_picture

    from digitrec import load_model
    from digitrec.reading import numbers
    from digitrec.reading.values import NO_CALENDAR

    model = load_model()
    picture = number_picture("2026", seed=1)
    plain = model.read(picture)
    monkeypatch.setattr(numbers, "is_impossible_date", lambda text: text == "2026")
    flagged = model.read(picture)
    assert flagged.text == plain.text == "2026"
    assert flagged.confidence == pytest.approx(plain.confidence * NO_CALENDAR, abs=1e-5)

