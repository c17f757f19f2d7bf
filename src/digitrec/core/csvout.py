"""The CSV tables digitrec writes (`read --out`, a sweep's trials.csv): quoted by the csv module and safe to
open in a spreadsheet.

A file name holding a comma, a quote or a line break is quoted as RFC 4180 says, so each row stays one row.
A text cell that a spreadsheet would take for a formula (it starts with =, +, -, @, a tab or a carriage
return: OWASP's "CSV injection" list) gets a leading ' and is shown as the text it is; a cell that is a plain
number (-0.5) is left alone, and numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: Any) -> Any:
    """`cell` as written to a CSV: a text that would start a formula prefixed with ', anything else as it is."""
    if not isinstance(cell, str) or not cell.startswith(FORMULA_STARTS) or _is_number(cell):
        return cell
    return "'" + cell


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A header and rows as CSV text: every cell through `spreadsheet_safe`, quoted where it must be (a comma,
    a quote, a line break), "\\n" between rows; None is an empty cell."""
    buffer = io.StringIO()
    # The csv module quotes a cell only for the characters of its own line terminator: with "\r\n" a cell with
    # either \r or \n is quoted (with "\n" a lone \r would split the row); each row then ends in "\n" alone.
    writer = csv.writer(buffer, lineterminator="\r\n")
    lines = []
    for row in itertools.chain([header], ([spreadsheet_safe(cell) for cell in row] for row in rows)):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        lines.append(buffer.getvalue()[:-2] + "\n")
    return "".join(lines)
