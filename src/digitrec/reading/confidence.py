"""Confidence a user can act on: how many fields a threshold keeps and how many of those are right.

A bench's fields (strings) each come with their confidence; a user keeps those at or above a threshold and
sends the rest to a person. Two figures, as check-reading systems report them:
- at the threshold that keeps at least `keep` of the fields (90 %), the share of the kept fields that are right;
- the read rate at an error rate (0.5 %): the lowest threshold at which the fields kept *and wrong* are at most
  that share of all fields; the read rate is the share of all fields kept and right (read, error and reject
  rates add up to 1).
A field that could not be read (no text) has confidence 0 and is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Calibration:
    n: int
    keep: float  # the share of fields asked to keep
    keep_threshold: float  # the highest confidence threshold that keeps at least `keep` of the fields
    kept: float  # the share of fields at or above it
    kept_accuracy: float  # the share of those right
    error_rate: float  # the error rate asked for (wrong and kept, a share of all fields)
    read_threshold: float | None  # the lowest threshold within that error rate; None: none is (keep nothing)
    read_rate: float  # right and kept at read_threshold, a share of all fields
    read_error: float  # wrong and kept at read_threshold, a share of all fields

    def as_dict(self) -> dict:
        return asdict(self)


def calibration(right: Sequence[bool], confidence: Sequence[float | None], keep: float = 0.9,
                error_rate: float = 0.005) -> Calibration:
    """The two figures above for fields that are `right` or not, each with its `confidence` (None: unread)."""
    if len(right) != len(confidence) or not len(right):
        raise ValueError(f"{len(right)} answers and {len(confidence)} confidences: expected as many, at least one")
    ok = np.asarray(right, bool)
    conf = np.array([0.0 if c is None or not math.isfinite(c) else float(c) for c in confidence], np.float64)
    n = len(ok)
    threshold = float(np.sort(conf)[::-1][max(1, math.ceil(keep * n - 1e-9)) - 1])
    kept = conf >= threshold  # ties at the threshold are all kept: a user cannot tell them apart
    # Every distinct confidence as a threshold, highest first: each keeps its own fields and all above it.
    values, where = np.unique(conf, return_inverse=True)
    wrong = np.cumsum(np.bincount(where, weights=~ok, minlength=len(values))[::-1])
    right_kept = np.cumsum(np.bincount(where, weights=ok, minlength=len(values))[::-1])
    within = int(np.sum(wrong <= error_rate * n + 1e-9))  # wrong only grows as the threshold falls
    if within:
        read = (float(values[::-1][within - 1]), right_kept[within - 1] / n, wrong[within - 1] / n)
    else:
        read = (None, 0.0, 0.0)
    return Calibration(n, keep, threshold, float(kept.mean()), float(ok[kept].mean()), error_rate,
                       read[0], float(read[1]), float(read[2]))


def score_fields(rows: Sequence[tuple[str, str | None, float | None, str]], keep: float = 0.9,
                 error_rate: float = 0.005) -> dict:
    """(true text, text read or None, confidence or None, group) -> per group and over all: the number of fields,
    the share of strings right and `calibration`'s figures."""
    def summary(part: Sequence[tuple[str, str | None, float | None, str]]) -> dict:
        right = [read == true for true, read, _, _ in part]
        figures = calibration(right, [c if read is not None else None for _, read, c, _ in part], keep, error_rate)
        return {"n": len(part), "string_accuracy": float(np.mean(right)), "calibration": figures.as_dict()}

    groups = sorted({g for *_, g in rows})
    return {"all": summary(rows), "groups": {g: summary([r for r in rows if r[3] == g]) for g in groups}}
