"""The bench makers (scripts/make_values.py, make_numbers.py's fonts group), the fonts' validation/test split,
and the confidence figures (`digitrec.reading.confidence`): quick, from pen-drawn synthetic digits."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_digits
from test_cli import run_main

from digitrec.core.errors import DigitrecError
from digitrec.reading.confidence import calibration, score_fields
from digitrec.reading.page_score import score_page
from digitrec.reading.score import load_numbers

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _script(name: str):
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))  # make_values imports make_numbers, as when run from scripts/
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def make_values():
    return _script("make_values")


@pytest.fixture(scope="module")
def make_numbers():
    return _script("make_numbers")


@pytest.fixture(scope="module")
def few_digits():
    return synthetic_digits(60, seed=7)


def _rows(folder: Path, name: str) -> list[dict]:
    with open(folder / name, newline="") as f:
        return list(csv.DictReader(f))


def test_make_values_writes_a_folder_read_scores(tmp_path, capsys, make_values, few_digits):
    out = tmp_path / "values"
    assert make_values.write_values(out, few_digits, 3, 0, "none") == 9
    rows = _rows(out, "values.csv")
    assert [r["group"] for r in rows] == ["spaced"] * 3 + ["touching"] * 3 + ["photographed"] * 3
    for r in rows:
        assert (out / r["file"]).is_file() and r["file"].startswith(r["group"] + "/")
        assert set(r["text"]) & set("0123456789") and set(r["text"]) & set(".,-/:")
    assert [(f, t, g) for f, t, g in load_numbers(out)] == [(r["file"], r["text"], r["group"]) for r in rows]
    code, report, _ = run_main(capsys, "read", str(out), "--score", "--json")
    groups = json.loads(report)["groups"]
    assert code == 0 and {g: s["n"] for g, s in groups.items()} == {"photographed": 3, "spaced": 3, "touching": 3}


def test_values_with_commas_are_quoted_and_read_back(tmp_path, make_values, few_digits):
    texts = [make_values.value_text(np.random.default_rng(s)) for s in range(200)]
    assert any("," in t for t in texts) and any("/" in t for t in texts) and any(":" in t for t in texts)
    assert any(t.startswith("-") for t in texts) and any("." in t for t in texts)
    out = tmp_path / "values"
    make_values.write_values(out, few_digits, 12, 3, "none")
    texts = [t for _, t, _ in load_numbers(out)]
    assert any("," in t for t in texts)  # a quoted field, read back whole
    assert (out / "values.csv").read_text().count('"') == 2 * sum("," in t for t in texts)


def test_font_halves_are_disjoint_and_cover_the_installed_handwriting_fonts(make_numbers):
    validation, test = set(make_numbers.FONTS_VALIDATION), set(make_numbers.FONTS_TEST)
    assert validation and test and not validation & test
    family = {name: name.lower()[:3] for name in validation | test}  # bec, dkg, fem | com, dan, bre
    assert not {family[n] for n in validation} & {family[n] for n in test}  # no family in both halves
    realworld = _script("make_realworld")
    assert {p.name for p in realworld.handwriting_fonts()} <= validation | test
    for half in ("val", "test"):
        assert {p.name for p in make_numbers.handwriting_fonts(half)} <= set(make_numbers.FONT_HALVES[half])


def test_numbers_fonts_group_leaves_the_other_groups_as_they_were(tmp_path, make_numbers, few_digits):
    if not make_numbers.handwriting_fonts("val"):
        pytest.skip("no validation handwriting fonts installed")
    with_fonts, without = tmp_path / "with", tmp_path / "without"
    assert make_numbers.write_numbers(with_fonts, few_digits, 2, 5, "val") == 10
    assert make_numbers.write_numbers(without, few_digits, 2, 5, "none") == 8
    rows = _rows(with_fonts, "numbers.csv")
    fonts = [r for r in rows if r["group"] == "fonts-val"]
    assert len(fonts) == 2 and all(r["text"].isdigit() and (with_fonts / r["file"]).is_file() for r in fonts)
    assert [r for r in rows if r["group"] != "fonts-val"] == _rows(without, "numbers.csv")
    for r in _rows(without, "numbers.csv"):
        assert (with_fonts / r["file"]).read_bytes() == (without / r["file"]).read_bytes()


def test_missing_fonts_skip_the_group_with_a_one_line_note(tmp_path, capsys, monkeypatch, make_values, few_digits):
    numbers = sys.modules["make_numbers"]  # the module make_values imported its font helpers from
    monkeypatch.setattr(numbers, "FONT_DIRS", (str(tmp_path / "no-fonts"),))
    out = tmp_path / "values"
    assert make_values.write_values(out, few_digits, 1, 0, "test") == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no test handwriting fonts" in err and "skipped" in err
    assert {g for _, _, g in load_numbers(out)} == {"spaced", "touching", "photographed"}


@pytest.mark.parametrize(("text", "ok"), [("12.50", True), ("-3", True), ("24/12/2026", True), ("14:05", True),
                                          ("1,250", True), ("-", False), ("12a", False), ("1 2", False)])
def test_bench_texts_may_hold_signs_but_need_a_digit(tmp_path, text, ok):
    (tmp_path / "values.csv").write_text(f'file,text,group\n0.png,"{text}",a\n')
    if ok:
        assert load_numbers(tmp_path) == [("0.png", text, "a")]
    else:
        with pytest.raises(DigitrecError, match="line 2"):
            load_numbers(tmp_path)


def test_numbers_csv_comes_before_values_csv(tmp_path):
    (tmp_path / "numbers.csv").write_text("file,text\n0.png,12\n")
    (tmp_path / "values.csv").write_text("file,text\n0.png,1.2\n")
    assert load_numbers(tmp_path) == [("0.png", "12", "all")]


def test_calibration_by_hand():
    confidence = [0.99, 0.98, 0.97, 0.96, 0.95, 0.9, 0.8, 0.7, 0.6, None]  # the last was not read
    right = [True, True, True, False, True, True, True, False, True, False]
    c = calibration(right, confidence)
    # keeping 90 % is keeping 9 of 10: the threshold is the 9th highest, 0.6; 7 of those 9 are right.
    assert (c.keep_threshold, c.kept, c.kept_accuracy) == (0.6, 0.9, pytest.approx(7 / 9))
    # 0.5 % of 10 fields allows no wrong field kept: down to 0.97 (3 right), 0.96 keeps a wrong one.
    assert (c.read_threshold, c.read_rate, c.read_error) == (0.97, pytest.approx(0.3), 0.0)
    c = calibration(right, confidence, keep=0.5, error_rate=0.1)
    assert (c.keep_threshold, c.kept, c.kept_accuracy) == (0.95, 0.5, pytest.approx(0.8))
    # one wrong field in ten allowed: 0.8 keeps 7, 6 right; 0.7 would keep a second wrong one.
    assert (c.read_threshold, c.read_rate, c.read_error) == (0.8, pytest.approx(0.6), pytest.approx(0.1))


def test_calibration_ties_and_nothing_within_the_error_rate():
    c = calibration([True, False, True, True], [0.9, 0.9, 0.9, 0.5], keep=0.25)
    assert (c.keep_threshold, c.kept, c.kept_accuracy) == (0.9, 0.75, pytest.approx(2 / 3))  # ties kept together
    assert (c.read_threshold, c.read_rate, c.read_error) == (None, 0.0, 0.0)  # the top confidence holds a wrong one
    with pytest.raises(ValueError):
        calibration([], [])


def test_score_fields_per_group_counts_unread_fields_as_wrong():
    report = score_fields([("1.5", "1.5", 0.99, "a"), ("2", "7", 0.4, "a"), ("3:00", None, None, "b")])
    assert report["all"]["n"] == 3 and report["all"]["string_accuracy"] == pytest.approx(1 / 3)
    assert report["groups"]["a"]["string_accuracy"] == 0.5 and report["groups"]["b"]["string_accuracy"] == 0.0
    assert report["groups"]["b"]["calibration"]["keep_threshold"] == 0.0
    assert report["all"]["calibration"]["read_threshold"] == 0.99


def test_the_page_bench_reports_fields_right_by_resolution_and_by_look():
    """benchmarks/read_pages.py's second table: the pages in MNIST digits scored by dpi and by look, the font
    pages left out, as the first table scores them; a bench whose pages never recorded a condition has none."""
    benchmarks = SCRIPTS.parent / "benchmarks"
    if str(benchmarks) not in sys.path:
        sys.path.insert(0, str(benchmarks))  # read_pages imports common, as when run from benchmarks/
    spec = importlib.util.spec_from_file_location("read_pages", benchmarks / "read_pages.py")
    read_pages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(read_pages)

    def field(text, x):
        return {"text": text, "box": [x, 10, x + 50, 40]}

    records = [
        {"file": "a.jpg", "hand": "mnist", "dpi": 150, "look": "scanned", "fields": [field("12", 0), field("7", 100)]},
        {"file": "b.jpg", "hand": "mnist", "dpi": 300, "look": "scanned", "fields": [field("3", 0)]},
        {"file": "d.jpg", "hand": "mnist", "dpi": 96, "look": "scanned", "fields": [field("5", 0)]},
        {"file": "c.jpg", "hand": "font", "dpi": 150, "look": "photographed", "fields": [field("9", 0)]},
    ]
    read = {"a.jpg": [field("12", 0), field("1", 100)], "b.jpg": [field("3", 0)], "c.jpg": [], "d.jpg": [field("5", 0)]}
    rows = {r["condition"]: r for r in read_pages.by_condition(records, read)}
    assert list(rows) == ["96 dpi", "150 dpi", "300 dpi", "scanned"]  # in number order; a font page's look is none
    assert (rows["150 dpi"]["fields"], rows["150 dpi"]["fields right %"], rows["150 dpi"]["pages right %"]) == \
        (2, "50.0", "0.0")
    assert (rows["300 dpi"]["fields right %"], rows["scanned"]["fields"], rows["scanned"]["fields right %"]) == \
        ("100.0", 4, "75.0")
    assert read_pages.by_condition([{k: v for k, v in r.items() if k != "dpi"} for r in records], read) == \
        [rows["scanned"] | {"condition": "scanned"}]
    assert (rows["150 dpi"]["digits right %"], rows["300 dpi"]["digits right %"]) == ("66.7", "100.0")
    # what the targets ask of the digits on these pages: 97 % of fields of 2 and 1 digits, 85 % of pages of 3
    first_page = score_page(records[0]["fields"], read["a.jpg"])
    assert read_pages.digits_asked([first_page]) == f"{100 * ((1 + 4 * 1.94) ** 0.5 - 1) / 2:.1f} / " \
        f"{100 * 0.85 ** (1 / 3):.1f}"
    for r in records:
        r["layout"] = "list"
    table, _, _ = read_pages.report(records, read, {r["file"]: 10.0 for r in records})
    mnist = {row["group"]: row for row in table}["list"]
    assert mnist["digits right %"] == "80.0"  # 4 of the 5 digits of the MNIST pages' fields (12, 7 read 1, 3, 5)
    # 3 of those 4 fields have every digit right; independent misreads at 0.8: (0.8 ** 2 + 3 * 0.8) / 4
    assert mnist["all digits right: read / if independent %"] == "75.0 / 76.0"
    fonts = {row["group"]: row for row in table}["font-list"]
    assert fonts["digits right %"] == "-" and fonts["all digits right: read / if independent %"] == "-"


def test_pen_misreads_reads_the_held_out_digits_redrawn_and_draws_the_misread_ones_unlabelled(digits_dir, digits,
                                                                                           tmp_path, capsys,
                                                                                           monkeypatch):
    """scripts/pen_misreads.py: the held-out 5 % of the training digits, as scanned and redrawn with one pen, read by
    each model and by their mean; the views the mean misreads on a sheet, unlabelled, their digits and readings
    apart; outputs checked before any work."""
    from PIL import Image

    from digitrec.data import stratified_split
    from digitrec.data.pages import pen_glyph
    from digitrec.inference.engine import load_predictor

    pen_misreads = _script("pen_misreads")
    _, held_out = stratified_split(digits["train"].y, 0.05, 0)
    held_out = held_out[:60]
    truth, scanned = digits["train"].y[held_out], digits["train"].x[held_out]
    pictures, views = pen_misreads.pen_views(scanned, 3)
    first = pen_glyph(scanned[0], int(np.random.default_rng(3).uniform(40, 100)), 5.0)
    assert pictures[0].shape[0] == int(max(first.shape) * 1.5) + 4  # drawn at the seed's first height
    assert np.median(pictures[0]) == pen_misreads.PAPER and pictures[0].min() <= pen_misreads.INK + 10  # dark ink
    bundled = load_predictor()

    class EveryThirdOff:  # reads every third pen view (every fourth scanned digit) as the next digit: every
        def probabilities(self, x):  # other one of them surely, the rest at 0.6
            p = bundled.probabilities(x)
            step = 3 if np.array_equal(x, views) else 4
            own = np.eye(10)[p[::step].argmax(1)]
            sure = np.where(np.arange(len(own)) % 2 == 0, 1.0, 0.6)[:, None]
            p[::step] = sure * np.roll(own, 1, axis=1) + (1 - sure) * own
            return p

    monkeypatch.setattr(pen_misreads, "load_predictor", lambda path: bundled if path is None else EveryThirdOff())
    sheet, answers = tmp_path / "sheet.png", tmp_path / "answers.json"
    argv = ["--data", str(digits_dir), "--count", "60", "--seed", "3", "--model", "bundled", "--model", "off",
            "--sheet", str(sheet), "--answers", str(answers)]
    assert pen_misreads.run(argv) == 0
    table = capsys.readouterr().out.splitlines()

    def pct(p):
        return f"{100 * np.mean(p.argmax(1) == truth):.2f} %"

    off = EveryThirdOff()
    mean = (bundled.probabilities(views) + off.probabilities(views)) / 2
    assert table[0] == "| model | 60 held-out digits as scanned | redrawn with one pen (seed 3) |"
    assert table[2] == f"| bundled | {pct(bundled.probabilities(scanned))} | {pct(bundled.probabilities(views))} |"
    assert table[3] == f"| off | {pct(off.probabilities(scanned))} | {pct(off.probabilities(views))} |"
    scanned_mean = (bundled.probabilities(scanned) + off.probabilities(scanned)) / 2
    assert table[4] == f"| mean of all | {pct(scanned_mean)} | {pct(mean)} |"
    read = mean.argmax(1)
    wrong = np.flatnonzero(read != truth)
    assert len(wrong) >= 10 and len(wrong) < len(np.flatnonzero(off.probabilities(views).argmax(1) != truth))
    saved = json.loads(answers.read_text())
    assert [(a["view"], a["digit"], a["read"], a["mnist_train_index"]) for a in saved] == \
        [(k, int(truth[n]), int(read[n]), int(held_out[n])) for k, n in enumerate(wrong)]
    drawn = np.asarray(Image.open(sheet).convert("L"))
    cell = pen_misreads.CELL
    assert drawn.shape == (-(-len(wrong) // 8) * cell, 8 * cell)
    for k, n in enumerate(wrong):  # each cell holds its view, and nothing but its number above it
        view = Image.fromarray(pictures[n])
        view.thumbnail((cell - 14, cell - 14))
        x, y = (k % 8) * cell, (k // 8) * cell
        assert np.array_equal(drawn[y + 12 : y + 12 + view.height, x + 7 : x + 7 + view.width], np.asarray(view))
        assert (drawn[y + 12 + view.height : y + cell, x : x + cell] == 255).all()
    assert f"{len(wrong)} misread views drawn in {sheet}" in table[-1]

    before = sheet.read_bytes()
    assert pen_misreads.run(argv) == 2  # there already: kept
    assert "already exists" in capsys.readouterr().err and sheet.read_bytes() == before
    for bad, said in ((["--sheet", str(tmp_path / "sheet.jpg")], "a path ending in .png"),
                      (["--answers", str(tmp_path)], "is a folder"),
                      (["--sheet", str(digits_dir / "x.png")], "inside an input folder"),
                      (["--model", str(tmp_path / "none")], "no such run folder")):
        monkeypatch.undo()
        assert pen_misreads.run(["--data", str(digits_dir), "--count", "5", *bad]) == 2
        assert said in capsys.readouterr().err
    assert not (digits_dir / "x.png").exists() and not (tmp_path / "sheet.jpg").exists()
    with pytest.raises(SystemExit):
        pen_misreads.main(["--count", "0"])
