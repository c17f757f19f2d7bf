"""The one error type digitrec raises for bad input.

The CLI turns it into one line on stderr and exit code 2; the server into a 4xx JSON body.
"""

from __future__ import annotations


class DigitrecError(Exception):
    """Bad input: says what was wrong, where (file, line, field) and what was expected."""

    def __init__(self, what: str, where: str | None = None, expected: str | None = None):
        self.what = what
        self.where = where
        self.expected = expected
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.expected:
            text += f" (expected {self.expected})"
        return text
