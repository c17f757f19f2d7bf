"""Scoring whole numbers read: a bench folder's numbers.csv, edit distance, string and digit accuracy."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from digitrec.core.errors import DigitrecError


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the digits inserted, dropped or changed to turn `a` into `b`."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def score_numbers(answers: list[tuple[str, str | None, str]]) -> dict:
    """(true text, text read or None, group) -> string accuracy and digit accuracy (1 - edit distance /
    length), overall, per group and per length."""
    def summary(rows: list[tuple[str, str | None, str]]) -> dict:
        right = [read == true for true, read, _ in rows]
        digits = [max(0.0, 1 - edit_distance(true, read or "") / len(true)) for true, read, _ in rows]
        return {"n": len(rows), "string_accuracy": float(np.mean(right)), "digit_accuracy": float(np.mean(digits))}

    groups = sorted({g for _, _, g in answers})
    lengths = sorted({len(t) for t, _, _ in answers})
    return {"all": summary(answers),
            "groups": {g: summary([r for r in answers if r[2] == g]) for g in groups},
            "lengths": {n: summary([r for r in answers if len(r[0]) == n]) for n in lengths}}


NUMBERS = "numbers.csv"
VALUES = "values.csv"  # scripts/make_values.py's bench: the same columns, texts with signs
NUMBERS_MAX_BYTES = 64 << 20  # a bench of a million numbers is 40 MB: more is not a bench, and is read whole
NUMBERS_MAX_FIELD = 4096  # characters: a path's limit on Linux; no line of digits in one picture is longer
_DIGITS = frozenset("0123456789")
_TEXT = _DIGITS | frozenset(".,-/:")  # the signs people write inside numbers: 12.50, -3, 24/12/2026, 14:05


def load_numbers(folder: Path) -> list[tuple[str, str, str]]:
    """A folder's numbers.csv, or else its values.csv (file,text[,group], as scripts/make_numbers.py and
    make_values.py write them; a UTF-8 byte-order mark is accepted) -> (file, text, group) rows. Anything else
    is refused in one line naming the file, the line and what was expected: a row with too few or too many
    fields, a text without digits or with characters other than digits and signs, a file listed twice, bytes
    that are not UTF-8, a field over NUMBERS_MAX_FIELD, a file that cannot be read."""
    path = Path(folder) / NUMBERS
    if not path.is_file() and (Path(folder) / VALUES).is_file():
        path = Path(folder) / VALUES
    if not path.is_file():
        raise DigitrecError("no numbers.csv or values.csv to score against", where=str(folder),
                            expected="file,text,group rows")
    text = _numbers_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader, [])]
        if "file" not in header or "text" not in header:
            raise DigitrecError(f"header {','.join(header)[:80]!r} has no file and text columns",
                                where=f"{path}, line 1", expected="a first line file,text,group")
        rows, seen = [], {}
        for row in reader:
            if row:  # blank lines are skipped
                rows.append(_number_row(row, header, f"{path}, line {reader.line_num}", seen))
    except csv.Error as e:
        raise DigitrecError(f"not a CSV row ({e})", where=f"{path}, line {reader.line_num}",
                            expected="file,text,group rows") from None
    if not rows:
        raise DigitrecError("numbers.csv lists no pictures", where=str(path), expected="file,text,group rows")
    return rows


def _numbers_text(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(NUMBERS_MAX_BYTES + 1)
    except OSError as e:
        raise DigitrecError(f"cannot read numbers.csv ({e.strerror or e})", where=str(path)) from None
    if len(raw) > NUMBERS_MAX_BYTES:
        raise DigitrecError(f"numbers.csv is over {NUMBERS_MAX_BYTES >> 20} MB", where=str(path),
                            expected="a file,text,group list of a bench's pictures")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DigitrecError(f"byte 0x{raw[e.start]:02x} is not UTF-8 text", where=f"{path}, line {line}",
                            expected="numbers.csv saved as UTF-8") from None


def _number_row(row: list[str], header: list[str], where: str, seen: dict[str, str]) -> tuple[str, str, str]:
    """One row of numbers.csv as (file, text, group); `seen`: file -> where it was first listed."""
    if len(row) != len(header):
        raise DigitrecError(f"{len(row)} fields, the header has {len(header)}", where=where,
                            expected=",".join(header) + " (quote a file name that holds a comma)")
    longest = max(row, key=len)
    if len(longest) > NUMBERS_MAX_FIELD:
        raise DigitrecError(f"a field of {len(longest):,} characters", where=where,
                            expected=f"fields of at most {NUMBERS_MAX_FIELD:,}")
    cells = dict(zip(header, row, strict=True))
    file, text, group = cells["file"], cells["text"].strip(), cells.get("group", "").strip() or "all"
    if not file.strip():
        raise DigitrecError("no file name", where=where, expected="the picture's path in the folder")
    if not set(text) & _DIGITS or not set(text) <= _TEXT:
        raise DigitrecError(f"text {text!r}" if text else "empty text", where=where,
                            expected="the digits 0-9 the picture shows, and the signs . , - / : among them")
    if file in seen:
        raise DigitrecError(f"{file[:80]!r} is listed again (first at {seen[file].rsplit(', ', 1)[-1]})",
                            where=where, expected="each picture once")
    seen[file] = where
    return file, text, group


def score_folder(folder: Path, readings: dict[str, str | None]) -> dict:
    """`score_numbers` for a folder's numbers.csv (file,text[,group]) and the texts read, keyed by file."""
    return score_numbers([(text, readings.get(file), group) for file, text, group in load_numbers(folder)])
