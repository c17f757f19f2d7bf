"""Scoring pages read: fields aligned with the truth in reading order, per layout.

A true field and a field read are a pair when their boxes overlap (the overlap covers at least half of the
smaller box), each field in at most one pair, the pairs with the most overlap (intersection over union) first.
The pairs must keep reading order: of the pairs, the longest run increasing in both orders is kept and the rest
count as wrong. A true field is right when it is in a kept pair and the text read is its text exactly.
Against a page: a true field missed (no pair), read wrong, merged with another (one field read covers both: one
pair, the other missed), or split (its pair has part of it, the rest is an extra field read); a field read that
overlaps no true field is invented. So the share of fields right is right / (true fields + extra fields read),
and a page is right when all its true fields are right and nothing extra was read.

Digits are scored in the fields found whole (paired in order, neither split nor merged; how fields are found is
counted above): a true field's digits right are its digits less the edit distance to the digits read in its
pair, at least 0. `needed_digit_accuracy` turns a target for fields or pages into the share of digits right it
asks if digits are misread independently and nothing else goes wrong; `summarize` checks that model on the
fields found whole (the share with every digit right, as read and as independent misreads would make it).

No torch here; used by `benchmarks/read_pages.py` and the page reader's tests.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from digitrec.reading.score import edit_distance

MATCH_OVERLAP = 0.5  # share of the smaller box the overlap must cover for a pair
KEEP_SHARE = 0.9  # the confidence report: the threshold that keeps this share of the fields read


def _get(item, name: str, default=None):
    return item.get(name, default) if isinstance(item, Mapping) else getattr(item, name, default)


def _area(box: Sequence[float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _intersection(a: Sequence[float], b: Sequence[float]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def overlap(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(intersection over the smaller box, intersection over union) of two boxes [x0, y0, x1, y1]."""
    inter = _intersection(a, b)
    smaller = min(_area(a), _area(b))
    union = _area(a) + _area(b) - inter
    return (inter / smaller if smaller else 0.0), (inter / union if union else 0.0)


def _normal(text) -> str:
    return "".join(str(text or "").split())


def digits_in(text: object) -> str:
    """The digits 0-9 of a field's text (None: none)."""
    return "".join(c for c in str(text or "") if c in "0123456789")


@dataclass
class PageResult:
    """One page's alignment: counts of true fields right, wrong, missed, merged, out of order, and of fields
    read that split a true field or were invented; `pairs` (true index, read index) kept in reading order."""

    file: str
    group: str
    fields: int
    right: int = 0
    wrong: int = 0
    missed: int = 0
    merged: int = 0
    out_of_order: int = 0
    split: int = 0
    invented: int = 0
    field_digits: list[int] = field(default_factory=list)  # the digits of each true field
    found: list[tuple[int, int]] = field(default_factory=list)  # (digits, digits right) of each field found whole
    pairs: list[tuple[int, int]] = field(default_factory=list)
    confidences: list[tuple[float, bool]] = field(default_factory=list)  # (confidence, right) per field read

    @property
    def extra(self) -> int:
        return self.split + self.invented

    @property
    def page_digits(self) -> int:
        return sum(self.field_digits)

    @property
    def digits(self) -> int:
        return sum(n for n, _ in self.found)

    @property
    def digits_right(self) -> int:
        return sum(right for _, right in self.found)

    @property
    def page_right(self) -> bool:
        return self.right == self.fields and not self.extra


def _longest_increasing(values: list[int]) -> set[int]:
    """Positions of a longest strictly increasing subsequence of `values`."""
    tails: list[int] = []  # tails[k]: the smallest last value of an increasing run of length k+1
    tail_at: list[int] = []
    before = [-1] * len(values)
    for i, v in enumerate(values):
        k = bisect.bisect_left(tails, v)
        if k == len(tails):
            tails.append(v)
            tail_at.append(i)
        else:
            tails[k], tail_at[k] = v, i
        before[i] = tail_at[k - 1] if k else -1
    keep, i = set(), tail_at[-1] if tail_at else -1
    while i >= 0:
        keep.add(i)
        i = before[i]
    return keep


def score_page(truth: Sequence, read: Sequence, file: str = "", group: str = "") -> PageResult:
    """Aligns one page's true fields with the fields read (both in reading order; items are dicts or objects
    with `text` and `box`, read ones optionally `confidence`)."""
    t_boxes = [list(_get(t, "box")) for t in truth]
    r_boxes = [list(_get(r, "box")) for r in read]
    candidates = []
    for i, tb in enumerate(t_boxes):
        for j, rb in enumerate(r_boxes):
            share, iou = overlap(tb, rb)
            if share >= MATCH_OVERLAP:
                candidates.append((iou, share, i, j))
    candidates.sort(key=lambda c: (-c[0], -c[1], c[2], c[3]))
    t_pair: dict[int, int] = {}
    r_pair: dict[int, int] = {}
    for _, _, i, j in candidates:
        if i not in t_pair and j not in r_pair:
            t_pair[i], r_pair[j] = j, i
    ordered = sorted(t_pair.items())
    kept = _longest_increasing([j for _, j in ordered])
    result = PageResult(file, group, len(truth), field_digits=[len(digits_in(_get(t, "text"))) for t in truth])
    right_read: set[int] = set()
    for n, (i, j) in enumerate(ordered):
        if n not in kept:
            result.out_of_order += 1
        elif _normal(_get(truth[i], "text")) == _normal(_get(read[j], "text")):
            result.right += 1
            right_read.add(j)
            result.pairs.append((i, j))
        else:
            result.wrong += 1
            result.pairs.append((i, j))
    merged_into: set[int] = set()  # fields read that cover a true field besides their own
    split_apart: set[int] = set()  # true fields of which another field read has a part (touching one counts)
    for i, tb in enumerate(t_boxes):
        if i in t_pair:
            continue
        result.missed += 1
        covering = [j for j in r_pair if _intersection(tb, r_boxes[j]) >= MATCH_OVERLAP * _area(tb)]
        if covering:
            result.merged += 1
            merged_into.update(covering)
    for j, rb in enumerate(r_boxes):
        if j in r_pair:
            continue
        parts_of = [i for i, tb in enumerate(t_boxes) if _intersection(rb, tb) > 0]
        if parts_of:
            result.split += 1
            split_apart.update(parts_of)
        else:
            result.invented += 1
    for i, j in result.pairs:  # the digits of the fields found whole: their misreads, not the fields' finding
        if i in split_apart or j in merged_into:
            continue
        true_digits, read_digits = digits_in(_get(truth[i], "text")), digits_in(_get(read[j], "text"))
        right = max(0, len(true_digits) - edit_distance(true_digits, read_digits))  # 0 when mostly invented
        result.found.append((len(true_digits), right))
    for j, r in enumerate(read):
        confidence = _get(r, "confidence")
        if confidence is not None:
            result.confidences.append((float(confidence), j in right_read))
    return result


def confidence_report(confidences: Iterable[tuple[float, bool]], keep: float = KEEP_SHARE) -> dict | None:
    """The threshold that keeps at least `keep` of the fields read (the most confident first) and the
    accuracy of the fields kept: how many fields a user need not check, and how often those are right."""
    ranked = sorted(confidences, key=lambda c: -c[0])
    if not ranked:
        return None
    n_keep = max(1, math.ceil(keep * len(ranked) - 1e-9))
    threshold = ranked[n_keep - 1][0]
    kept = [ok for c, ok in ranked if c >= threshold]
    return {"threshold": threshold, "kept": len(kept) / len(ranked), "accuracy": sum(kept) / len(kept),
            "n": len(ranked)}


def summarize(results: Sequence[PageResult]) -> dict:
    """Totals and shares over pages: fields right (of true fields plus extra fields read), pages right, pages
    with an invented field; where fields were found whole, their digits right, the share of them with every
    digit right as read and as independent misreads at that rate would make it, and the pages right such
    misreads alone would leave."""
    fields = sum(r.fields for r in results)
    extra = sum(r.extra for r in results)
    pages = len(results)
    out = {"pages": pages, "fields": fields,
           "fields_right": sum(r.right for r in results) / max(1, fields + extra),
           "pages_right": sum(r.page_right for r in results) / max(1, pages),
           "invented_pages": sum(r.invented > 0 for r in results) / max(1, pages),
           "digits": sum(r.digits for r in results)}
    if out["digits"]:
        found = [f for r in results for f in r.found]
        share = sum(r.digits_right for r in results) / out["digits"]
        out["digits_right"] = share
        out["found_all_digits_right"] = sum(right == n for n, right in found) / len(found)
        out["found_all_digits_right_if_independent"] = sum(share**n for n, _ in found) / len(found)
        out["pages_right_if_independent"] = sum(share**r.page_digits for r in results) / max(1, pages)
    for name in ("right", "wrong", "missed", "merged", "out_of_order", "split", "invented"):
        out[name] = sum(getattr(r, name) for r in results)
    report = confidence_report(c for r in results for c in r.confidences)
    if report is not None:
        out["confidence"] = report
    return out


def needed_digit_accuracy(digit_counts: Sequence[int], target: float) -> float:
    """The share of digits right p at which the mean of p ** n over `digit_counts` (the digits of each field,
    or of each page) reaches `target`: the chance that every digit of a field or page is right when each is
    misread independently and nothing else goes wrong (a field of no digits is always right). Misreads that
    gather in the same fields need less; anything else that goes wrong, more."""
    counts = list(digit_counts)
    if not 0.0 <= target <= 1.0:  # NaN too
        raise ValueError(f"target {target} is not a share between 0 and 1")
    if any(n < 0 for n in counts):
        raise ValueError("a digit count below 0")
    if not counts or target == 0.0:
        return 0.0
    low, high = 0.0, 1.0
    for _ in range(60):  # bisection to well below the 0.1 % the report prints
        middle = (low + high) / 2
        if sum(middle**n for n in counts) / len(counts) < target:
            low = middle
        else:
            high = middle
    return high


def score_pages(truth: Sequence[Mapping], predicted: Mapping[str, Sequence] | Sequence[Sequence],
                key: str = "layout") -> dict:
    """Pages' truth (pages.json's records: file, layout, fields) and the fields read on each (a mapping from
    file to fields, or a list in the truth's order) -> {"groups": {group: summary}, "all": summary,
    "pages": [PageResult]}, grouped by the records' `key` (default: layout)."""
    results = []
    for n, page in enumerate(truth):
        file = str(page.get("file", n))
        read = predicted.get(file, []) if isinstance(predicted, Mapping) else predicted[n]
        results.append(score_page(page["fields"], read or [], file, str(page.get(key, ""))))
    groups = sorted({r.group for r in results})
    return {"groups": {g: summarize([r for r in results if r.group == g]) for g in groups},
            "all": summarize(results), "pages": results}
