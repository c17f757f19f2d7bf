"""The page bench: the page renderer (digitrec.data.pages), its bench folder, and the page scorer
(digitrec.reading.page_score). Synthetic pen digits stand in for MNIST: no data set needed."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from digitrec.data import pages, synthetic
from digitrec.reading.page_score import (
    confidence_report,
    needed_digit_accuracy,
    overlap,
    score_page,
    score_pages,
)


@pytest.fixture(scope="module")
def hand() -> pages.DigitHand:
    drawn, labels = synthetic.drawn_digits(40, seed=0, size=56)
    return pages.DigitHand([255 - np.asarray(d) for d in drawn], labels)


@pytest.fixture(scope="module")
def rendered(hand) -> dict[tuple[str, str], pages.Page]:
    return {(layout, look): pages.render_page(layout, hand, seed=11 + n, look=look, dpi=150, keep_layers=True)
            for n, layout in enumerate(pages.LAYOUTS) for look in pages.LOOKS}


def _inside(inner, outer, slack: int = 1) -> bool:
    return (outer[0] - slack <= inner[0] and outer[1] - slack <= inner[1]
            and inner[2] <= outer[2] + slack and inner[3] <= outer[3] + slack)


def _disjoint(a, b) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_the_same_seed_draws_the_same_page_and_another_seed_another(hand):
    one = pages.render_page("table", hand, seed=3, dpi=150)
    again = pages.render_page("table", hand, seed=3, dpi=150)
    other = pages.render_page("table", hand, seed=4, dpi=150)
    assert np.array_equal(one.pixels, again.pixels)
    assert one.fields == again.fields and one.printed == again.printed
    assert one.encode() == again.encode()
    assert [f.text for f in one.fields] != [f.text for f in other.fields]


def test_every_layout_and_look_gives_an_a4_page_with_fields(rendered):
    for (layout, look), page in rendered.items():
        assert page.size == (1240, 1754) and page.dpi == 150
        assert page.pixels.ndim == (2 if look == "scanned" else 3)
        assert len(page.fields) >= 3, (layout, look)
        assert {f.layout for f in page.fields} == {layout}
        payload, suffix = page.encode()
        assert suffix == ".jpg" and Image.open(io.BytesIO(payload)).size == page.size


def test_field_boxes_cover_all_the_handwriting_and_each_holds_some(rendered):
    for key, page in rendered.items():
        labels, _ = ndimage.label(page.ink > 0.5)
        for piece in ndimage.find_objects(labels):
            box = [piece[1].start, piece[0].start, piece[1].stop, piece[0].stop]
            assert any(_inside(box, f.box) for f in page.fields), (key, box)
        for f in page.fields:
            x0, y0, x1, y1 = f.box
            assert page.ink[y0:y1, x0:x1].max() > 0.5, (key, f)


def test_fields_overlap_neither_each_other_nor_printed_words(rendered):
    for key, page in rendered.items():
        w, h = page.size
        for n, f in enumerate(page.fields):
            assert 0 <= f.box[0] < f.box[2] <= w and 0 <= f.box[1] < f.box[3] <= h
            assert all(_disjoint(f.box, g.box) for g in page.fields[n + 1 :]), (key, f)
            assert all(_disjoint(f.box, word) for word in page.printed), (key, f)
        assert page.printed  # a title, labels or headers: printed words that are not fields


def test_fields_come_in_reading_order(rendered):
    for key, page in rendered.items():
        for a, b in zip(page.fields, page.fields[1:], strict=False):
            same_line = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1]) > 0.3 * (a.box[3] - a.box[1])
            assert (same_line and b.box[0] >= a.box[2]) or (b.box[1] + b.box[3]) / 2 > a.box[3], (key, a, b)


def test_values_are_what_people_write_in_each_layout(rendered):
    value = re.compile(r"^-?\d+([.,:/-]\d+)*$")
    for (layout, _), page in rendered.items():
        for f in page.fields:
            assert value.match(f.text), f
            if layout == "boxes":
                assert f.kind in ("squares", "joined", "comb") and f.text.isdigit() and 4 <= len(f.text) <= 12
            elif layout == "table":
                assert f.kind == "cell"
            else:
                assert f.kind in pages.VALUE_KINDS
        if layout == "boxes":  # one style of boxes a page, as a printed form has
            assert len({f.kind for f in page.fields}) == 1, page.fields


def test_a_hand_without_signs_writes_digits_only(hand, monkeypatch):
    monkeypatch.setattr(hand, "signs", False)
    for seed in range(3):
        page = pages.render_page("list", hand, seed=seed, dpi=150, look="scanned")
        assert page.fields and all(f.text.isdigit() for f in page.fields)


def test_signs_come_from_the_sign_renderer_where_it_exists(hand):
    if not hand.signs:
        pytest.skip("digitrec.data.signs has no render_sign")
    texts = [f.text for seed in range(3) for f in pages.render_page("list", hand, seed=seed, dpi=150).fields]
    assert any(not t.isdigit() for t in texts)


def test_a_page_of_a_given_size_and_field_count(hand):
    page = pages.render_page("list", hand, seed=1, size=(1200, 1500), fields=8)
    assert page.size == (1200, 1500) and len(page.fields) == 8


def test_handwriting_fonts_write_fields_too():
    fonts = pages.handwriting_fonts()
    if not fonts:
        pytest.skip("no handwriting fonts installed")
    page = pages.render_page("list", pages.FontHand(fonts), seed=2, dpi=150, keep_layers=True)
    assert page.fields
    for f in page.fields:
        x0, y0, x1, y1 = f.box
        assert page.ink[y0:y1, x0:x1].max() > 0.5


def test_the_bench_folder_holds_every_page_and_its_truth(hand, tmp_path):
    records = pages.write_bench(tmp_path, [("mnist", hand, 1)], seed=5, dpi=150)
    assert [r["layout"] for r in records] == list(pages.LAYOUTS)
    stored = json.loads((tmp_path / "pages.json").read_text())
    assert stored["pages"] == records == pages.read_bench(tmp_path)
    for r in records:
        assert Image.open(tmp_path / r["file"]).size == tuple(r["size"])
        assert r["file"].startswith(r["layout"] + "/") and r["hand"] == "mnist"
    assert score_pages(records, {r["file"]: r["fields"] for r in records})["all"]["pages_right"] == 1.0


# ---------------------------------------------------------------- the scorer on hand-made pages

A, B, C = [0, 0, 100, 20], [0, 40, 100, 60], [0, 80, 100, 100]


def _f(text, box, confidence=None):
    out = {"text": text, "box": box}
    if confidence is not None:
        out["confidence"] = confidence
    return out


def test_overlap_is_shared_area_over_the_smaller_box_and_over_the_union():
    assert overlap([0, 0, 10, 10], [5, 0, 15, 10]) == (0.5, pytest.approx(1 / 3))
    assert overlap([0, 0, 10, 10], [20, 20, 30, 30]) == (0.0, 0.0)


def test_every_field_right_in_order_is_a_right_page():
    truth = [_f("12", A), _f("3.5", B)]
    result = score_page(truth, [_f("12", [2, 1, 98, 22]), _f(" 3.5", [0, 38, 90, 61])])
    assert (result.right, result.extra, result.page_right) == (2, 0, True)


def test_a_missed_field_and_a_wrong_text_count_against():
    truth = [_f("12", A), _f("34", B), _f("56", C)]
    result = score_page(truth, [_f("12", A), _f("37", C)])
    assert (result.right, result.wrong, result.missed, result.merged, result.page_right) == (1, 1, 1, 0, False)


def test_a_split_field_counts_against_but_is_not_invented():
    result = score_page([_f("1234", A)], [_f("12", [0, 0, 50, 20]), _f("34", [50, 0, 100, 20])])
    assert (result.right, result.wrong, result.split, result.invented) == (0, 1, 1, 0)
    summary = score_pages([{"file": "p", "layout": "list", "fields": [_f("1234", A)]}],
                          {"p": [_f("12", [0, 0, 50, 20]), _f("34", [50, 0, 100, 20])]})["all"]
    assert summary["fields_right"] == 0 and summary["invented_pages"] == 0


def test_two_fields_read_as_one_are_a_merge():
    result = score_page([_f("12", A), _f("34", B)], [_f("1234", [0, 0, 100, 60])])
    assert (result.right, result.missed, result.merged, result.page_right) == (0, 1, 1, False)


def test_a_field_read_where_none_is_written_is_invented():
    result = score_page([_f("12", A)], [_f("12", A), _f("1", [300, 300, 320, 330])])
    assert (result.right, result.invented, result.page_right) == (1, 1, False)


def test_fields_read_out_of_reading_order_count_against():
    result = score_page([_f("12", A), _f("34", B), _f("56", C)], [_f("34", B), _f("12", A), _f("56", C)])
    assert (result.right, result.out_of_order, result.page_right) == (2, 1, False)


def test_scores_per_layout_with_shares_of_fields_pages_and_invented_pages():
    truth = [{"file": "a", "layout": "list", "fields": [_f("1", A), _f("2", B)]},
             {"file": "b", "layout": "list", "fields": [_f("3", A)]},
             {"file": "c", "layout": "table", "fields": [_f("4", A)]}]
    read = {"a": [_f("1", A), _f("2", B)], "b": [_f("8", A), _f("9", C)], "c": [_f("4", A)]}
    scores = score_pages(truth, read)
    listed = scores["groups"]["list"]
    assert listed["fields_right"] == pytest.approx(2 / 4)  # 2 right of 3 true fields and 1 invented
    assert (listed["pages_right"], listed["invented_pages"]) == (0.5, 0.5)
    assert scores["groups"]["table"]["pages_right"] == 1.0
    assert scores["all"]["pages"] == 3 and scores["all"]["fields"] == 4
    assert score_pages(truth, [read["a"], read["b"], read["c"]])["all"] == scores["all"]
    assert score_pages(truth, {})["all"]["missed"] == 4


def test_digits_right_are_each_field_found_whole_less_the_edit_distance_to_what_was_read():
    truth = [_f("12/05", A), _f("3456", B), _f("78", C)]
    result = score_page(truth, [_f("12.06", A), _f("34567", B)])  # one digit changed, one added, one field missed
    assert (result.digits, result.digits_right) == (8, 3 + 3)  # the field missed is counted as missed
    scores = score_pages([{"file": "p", "layout": "list", "fields": truth}],
                         {"p": [_f("12/05", A), _f("", B), _f("78", C)]})["all"]
    assert scores["digits_right"] == pytest.approx(6 / 10)
    assert scores["found_all_digits_right"] == pytest.approx(2 / 3)
    assert scores["found_all_digits_right_if_independent"] == pytest.approx((0.6**4 + 0.6**4 + 0.6**2) / 3)
    assert scores["pages_right_if_independent"] == pytest.approx(0.6**10)  # all ten digits of the page
    out_of_order = score_page([_f("12", A), _f("34", B)], [_f("35", B), _f("17", A)])
    assert (out_of_order.digits, out_of_order.digits_right) == (2, 1)  # the field out of order is not paired
    invented_digits = score_page([_f("1", A)], [_f("1234567", A)])
    assert (invented_digits.digits, invented_digits.digits_right) == (1, 0)  # never below none right


def test_a_field_split_or_merged_leaves_the_digits_right_to_the_fields_found_whole():
    split = score_page([_f("1234", A), _f("56", B)], [_f("12", [0, 0, 50, 20]), _f("34", [50, 0, 100, 20]),
                                                      _f("56", B)])
    assert (split.split, split.digits, split.digits_right) == (1, 2, 2)
    merged = score_page([_f("12", A), _f("34", B), _f("56", C)], [_f("1234", [0, 0, 100, 60]), _f("58", C)])
    assert (merged.merged, merged.digits, merged.digits_right) == (1, 2, 1)
    assert "digits_right" not in score_pages([{"file": "p", "layout": "list", "fields": [_f("12", A)]}], {})["all"]


def test_the_digits_a_target_asks_solve_the_mean_chance_of_every_digit_right():
    assert needed_digit_accuracy([1, 1], 0.97) == pytest.approx(0.97)
    assert needed_digit_accuracy([8], 0.97) == pytest.approx(0.97 ** (1 / 8))
    p = needed_digit_accuracy([2, 8, 40], 0.85)
    assert (p ** 2 + p ** 8 + p ** 40) / 3 == pytest.approx(0.85)
    assert needed_digit_accuracy([4] * 10, 0.97) < needed_digit_accuracy([40], 0.97)  # longer fields ask more
    assert needed_digit_accuracy([2, 0], 0.97) == pytest.approx(0.94 ** 0.5)  # a field of no digits is right
    assert needed_digit_accuracy([], 0.97) == 0.0 and needed_digit_accuracy([3], 0.0) == 0.0
    assert needed_digit_accuracy([3], 1.0) == 1.0
    for target in (1.2, -0.1, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 1"):
            needed_digit_accuracy([3], target)
    with pytest.raises(ValueError, match="below 0"):
        needed_digit_accuracy([3, -1], 0.9)


def test_the_confidence_threshold_keeps_ninety_percent_and_says_how_right_they_are():
    items = [(0.99, True)] * 8 + [(0.9, True), (0.5, False)]
    assert confidence_report(items) == {"threshold": 0.9, "kept": 0.9, "accuracy": 1.0, "n": 10}
    assert confidence_report([]) is None
    result = score_page([_f("1", A), _f("2", B)], [_f("1", A, 0.99), _f("7", B, 0.4)])
    assert result.confidences == [(0.99, True), (0.4, False)]


def test_the_docs_example_pages_are_small_and_their_truth_fits_them():
    docs = Path(__file__).resolve().parent.parent / "docs"
    examples = json.loads((docs / "page-examples.json").read_text())["pages"]
    assert [e["layout"] for e in examples] == list(pages.LAYOUTS)
    for example in examples:
        picture = docs / example["file"]
        assert picture.stat().st_size < 200_000
        width, height = Image.open(picture).size
        assert [width, height] == example["size"] and example["fields"]
        assert all(0 <= f["box"][0] < f["box"][2] <= width and 0 <= f["box"][1] < f["box"][3] <= height
                   for f in example["fields"])
