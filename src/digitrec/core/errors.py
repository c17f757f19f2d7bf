"""The errors digitrec raises for bad input, each kind its own class.

The CLI turns any of them into one line on stderr and exit code 2; the server maps the class's `kind`
to an HTTP status (never the message text) and answers a 4xx JSON body.
"""

from __future__ import annotations


class DigitrecError(Exception):
    """Bad input: says what was wrong, where (file, line, field) and what was expected."""

    kind = "bad_input"

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

    def located(self, where: str) -> DigitrecError:
        """The same error, of the same kind, naming `where` (a file) instead."""
        return type(self)(self.what, where=where, expected=self.expected)


class BlankImageError(DigitrecError):
    """A picture with no ink to read."""

    kind = "blank"


class TooLargeError(DigitrecError):
    """Input over a size limit (bytes or pixels), refused before it costs memory."""

    kind = "too_large"


class NoDigitError(DigitrecError):
    """Ink that is not a digit: a smudge, a blot, a scribble."""

    kind = "no_digit"
