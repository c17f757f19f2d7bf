"""The outline probe's names for a probe script that still imports them from here; the probe itself is
`python scripts/probe.py outlines`."""

from probe import OUTLINE_SIDE as SIDE  # noqa: F401
from probe import broad_digits  # noqa: F401
