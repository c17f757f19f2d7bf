"""Whole pages (`digitrec.reading.page.read_page`, `model.read_page`, `digitrec read --page`): every handwritten
field of a form, a table or rows of digit boxes read, in reading order; printed words, rules and box lines give
nothing; a blank page gives no fields; a picture of one line reads as `read` reads it."""

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from digitrec.cli import main
from digitrec.core.errors import DigitrecError, NoDigitError
from digitrec.data import pages, synthetic
from digitrec.inference.engine import load_predictor
from digitrec.reading.page import MAX_PAGE_PIXELS, open_page, read_page
from digitrec.reading.page_score import score_pages

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


@pytest.fixture(scope="module")
def model():
    return load_predictor()


@pytest.fixture(scope="module")
def hand():
    """Pen-drawn synthetic digits (no MNIST needed), as the renderer takes them: light ink on black; values of
    digits alone (the signs are the line model's to read, tested with it)."""
    images, labels = synthetic.drawn_digits(200, seed=3)
    hand = pages.DigitHand([255 - np.asarray(im.convert("L")) for im in images], labels)
    hand.signs, hand.sign_maker = False, None
    return hand


def _paper(width: int = 1200, height: int = 1500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(235, 3, (height, width)), 0, 255).astype(np.uint8)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def test_blank_page_has_no_fields(model):
    page = read_page(Image.fromarray(_paper()), model, model.line_model)
    assert (page.width, page.height, page.fields) == (1200, 1500, [])


def test_printed_words_and_rules_only_give_nothing(model):
    picture = Image.fromarray(_paper())
    draw = ImageDraw.Draw(picture)
    draw.text((100, 80), "Registration form", font=ImageFont.truetype(FONT, 48), fill=30)
    font = ImageFont.truetype(FONT, 28)
    for n, label in enumerate(["Amount:", "Date of birth", "Postal code", "Meter reading", "Invoice no."]):
        y = 220 + 140 * n
        draw.text((100, y), label, font=font, fill=30)
        draw.line([(400, y + 40), (1000, y + 40)], fill=40, width=3)
    for x in range(400, 1000, 80):  # a row of empty digit boxes
        draw.rectangle([x, 1000, x + 80, 1090], outline=40, width=3)
    assert read_page(picture, model, model.line_model).fields == []


def test_one_line_picture_reads_as_read_does(model):
    rng = np.random.default_rng(5)
    images, labels = synthetic.drawn_digits(4, seed=11)
    ink = synthetic.number_ink([np.asarray(synthetic.crop_to_ink(255 - np.asarray(im.convert("L").resize((28, 28)))))
                                for im in images], (0.2, 0.5), rng)
    payload, _ = synthetic.number_on_paper(ink, rng, photographed=False)
    picture = Image.open(io.BytesIO(payload))
    page = read_page(picture, model, model.line_model)
    assert [f.text for f in page.fields] == [model.read(picture).text]
    assert page.fields[0].characters and all(len(c.box) == 4 for c in page.fields[0].characters)


def test_one_digit_pictures_read_as_read_does(model):
    """A picture that is no page (one digit: drawn, photographed in its box, an array of floats) gets `read`'s
    answer; a picture too small to hold a digit, no fields (not an error)."""
    rng = np.random.default_rng(0)
    images, _ = synthetic.drawn_digits(5, seed=1)
    photo = Image.open(io.BytesIO(synthetic.photo_of(np.asarray(images[2].convert("L").resize((28, 28))), rng)))
    for picture in (images[0], photo, np.asarray(images[4].convert("L"), np.float32) / 255):
        assert [f.text for f in read_page(picture, model, model.line_model).fields] == [model.read(picture).text]
    for size in ((1, 1), (1000, 1)):
        assert read_page(Image.new("L", size, 255), model, model.line_model).fields == []


@pytest.mark.parametrize("layout", pages.LAYOUTS)
def test_rendered_pages_read_in_order(model, hand, layout):
    """A page of each layout from the page renderer: every field found once, in reading order, nothing read from
    its printed words, grid or box lines; the digits right (the signs are the line model's business)."""
    records, read = [], {}
    for seed in (1, 2):
        page = pages.render_page(layout, hand, seed, look="scanned", dpi=150)
        payload, _ = page.encode()
        name = f"{layout}-{seed}"
        records.append(page.truth(name))
        read[name] = read_page(Image.open(io.BytesIO(payload)), model, model.line_model).fields
    result = score_pages(records, read)["all"]
    for kind in ("invented", "missed", "merged", "split", "out_of_order"):
        assert result[kind] == 0, result
    for record in records:
        assert [_digits(f.text) for f in read[record["file"]]] == [_digits(f["text"]) for f in record["fields"]]


def test_a_row_of_boxes_is_read_as_it_leans_and_other_fields_may_be_sheared(model, hand, monkeypatch):
    """Each digit of a row of boxes stands alone in its box: the row is read without the shear a leaning line
    gets (decision 0024); a list's values are read with it."""
    from digitrec.reading import page as page_module

    calls = []
    original = page_module.read_number

    def spy(picture, predictor, line_model=None, digits_only=False, deslant=True):
        calls.append((digits_only, deslant))
        return original(picture, predictor, line_model, digits_only, deslant)

    monkeypatch.setattr(page_module, "read_number", spy)
    for layout in ("boxes", "list"):
        calls.clear()
        payload, _ = pages.render_page(layout, hand, 1, look="scanned", dpi=150).encode()
        read_page(Image.open(io.BytesIO(payload)), model, model.line_model)
        assert calls
        assert all(deslant is (layout == "list") for _, deslant in calls), (layout, calls)


def test_page_over_the_size_limit_is_refused(model):
    side = int(MAX_PAGE_PIXELS**0.5) + 10
    with pytest.raises(DigitrecError) as error:
        read_page(np.full((side, side), 255, np.uint8), model)
    assert "over the page limit" in str(error.value) and "\n" not in str(error.value)


def test_cli_refuses_an_oversize_page_in_one_line(tmp_path, capsys):
    side = int(MAX_PAGE_PIXELS**0.5) + 10
    path = tmp_path / "huge.png"
    Image.new("L", (side, side), 255).save(path)
    assert main(["read", str(path), "--page"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitrec: error: ") and "page limit" in err and "\n" not in err


@pytest.fixture(scope="module")
def table_page(hand, tmp_path_factory):
    page = pages.render_page("table", hand, 4, look="scanned", dpi=150, fields=4)
    payload, suffix = page.encode()
    path = tmp_path_factory.mktemp("page") / f"table{suffix}"
    path.write_bytes(payload)
    return path, page


def test_cli_page_json(table_page, capsys):
    path, page = table_page
    assert main(["read", str(path), "--page", "--json"]) == 0
    [answer] = json.loads(capsys.readouterr().out)
    assert answer["file"] == path.name and (answer["width"], answer["height"]) == page.size
    assert len(answer["fields"]) == len(page.fields)
    for field in answer["fields"]:
        assert set(field) == {"text", "confidence", "box", "characters"}
        assert len(field["box"]) == 4 and len(field["characters"]) >= len(_digits(field["text"]))


def test_cli_page_out_csv(table_page, tmp_path, capsys):
    path, page = table_page
    out = tmp_path / "fields.csv"
    assert main(["read", str(path), "--page", "--out", str(out)]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["file", "field", "text", "confidence", "x0", "y0", "x1", "y1"]
    assert [r[1] for r in rows[1:]] == [str(n) for n in range(1, len(page.fields) + 1)]
    assert all(r[0] == path.name for r in rows[1:])
    capsys.readouterr()
    user_file = tmp_path / "mine.csv"
    user_file.write_text("not digitrec's\n")
    assert main(["read", str(path), "--page", "--out", str(user_file)]) == 2  # the overwrite rules of every verb
    assert user_file.read_text() == "not digitrec's\n"
    assert "digitrec: error:" in capsys.readouterr().err


def test_model_read_page_takes_paths_and_bytes(model, table_page):
    path, page = table_page
    by_path = model.read_page(path)
    by_bytes = model.read_page(path.read_bytes())
    assert [f.text for f in by_path.fields] == [f.text for f in by_bytes.fields]
    assert len(by_path.fields) == len(page.fields)


@pytest.mark.cluster
@pytest.mark.slow
def test_pages_on_the_cluster(table_page, tmp_path):
    """`read --page --cluster`: one Parquet row a page, its fields as `read --page --json` gives them; a blank
    page has none, and no error."""
    pq = pytest.importorskip("pyarrow.parquet")
    from digitrec.cluster import batch, connect

    path, page = table_page
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / path.name).write_bytes(path.read_bytes())
    Image.fromarray(_paper(600, 800)).save(folder / "blank.png")
    connect.connect(None)
    try:
        batch.read_archive(str(folder), tmp_path / "out", mode="page")
    finally:
        connect.shutdown()
    rows = {row["file"]: row for row in pq.read_table(tmp_path / "out").to_pylist()}
    table = rows[f"pages/{path.name}"]
    assert table["error"] is None and table["count"] == len(page.fields) == len(json.loads(table["fields"]))
    assert rows["pages/blank.png"]["count"] == 0 and rows["pages/blank.png"]["error"] is None


# 6,000,000 x 2 pixels takes 2-9 s: in the full suite only.
THIN = [(1, 12000), (12000, 1), (100000, 3), (3, 100000), pytest.param((6000000, 2), marks=pytest.mark.slow), (5, 5000)]


def _thin(shape: tuple[int, int], ink: bool) -> np.ndarray:
    picture = np.full(shape, 255, np.uint8)
    if ink:
        picture[::7, ::5] = 0
    return picture


@pytest.mark.parametrize("shape", THIN)
@pytest.mark.parametrize("ink", [False, True])
def test_thin_pictures_give_no_fields_or_a_digitrec_error(model, shape, ink):
    """A picture thinner than the page's reduction factor is never reduced to no rows at all."""
    try:
        page = read_page(_thin(shape, ink), model, model.line_model)
    except DigitrecError as error:
        assert "\n" not in str(error)
    else:
        assert (page.width, page.height, page.fields) == (shape[1], shape[0], [])


def test_a_thin_page_costs_memory_in_proportion_to_its_pixels():
    """The paper's level is made at the picture's own size: a picture one pixel high once made arrays 16 times
    its size (a block's side), 3 GB at the page limit. Measured with numpy's own allocations (tracemalloc)."""
    import tracemalloc

    from digitrec.reading.page import _ink

    work = np.full((1, 1_000_000), 250, np.float32)
    work[0, ::50] = 20
    tracemalloc.start()
    try:
        _ink(work, small=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * work.nbytes  # the 16-fold padding alone was 16 times


def test_pictures_of_no_grey_levels_are_refused_in_one_line_and_a_list_is_read(model):
    """A mode PIL makes no grey of, an array of text or of objects: a DigitrecError of one line; a nested list of
    numbers is an array like any other."""
    for bad in (Image.new("La", (50, 50)), np.array([["a", "b"], ["c", "d"]]), np.array([[object(), 1]], dtype=object)):
        with pytest.raises(DigitrecError) as caught:
            read_page(bad, model, model.line_model)
        assert "\n" not in str(caught.value)
    with pytest.raises(DigitrecError, match="rows of different lengths"):
        read_page([[1, 2], [3]], model, model.line_model)
    assert read_page([[255, 255], [255, 255]], model, model.line_model).fields == []


def test_white_ink_on_a_transparent_layer_is_read_on_a_page_as_read_reads_it(model):
    """Ink on a transparent layer goes on paper of the other shade, as for one number (`imaging.decode`): white
    strokes on a clear layer once read as a blank page."""
    layer = Image.new("RGBA", (300, 120), (255, 255, 255, 0))
    draw = ImageDraw.Draw(layer)
    for x in (40, 120, 200):
        draw.line([(x, 20), (x + 10, 100)], fill=(255, 255, 255, 255), width=8)
    assert [f.text for f in read_page(layer, model, model.line_model).fields] == [model.read(layer).text] == ["111"]


def test_a_page_with_clear_parts_keeps_its_own_paper_there(table_page, model):
    """A page whose paper colour is made transparent (a GIF's, a PNG-8's) or that lies on a larger clear canvas:
    the clear part is more of its paper (it was put on black, the page read as blank); a layer of one shade of
    ink goes on paper of the other shade (`imaging.decode`)."""
    import io

    path, page = table_page
    gray = open_page(path.read_bytes()).convert("L")
    truth = [f.text for f in read_page(gray, model, model.line_model).fields]
    palette = gray.quantize(16)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", transparency=int(np.bincount(np.asarray(palette).ravel()).argmax()))
    canvas = Image.new("RGBA", (2 * gray.width, 2 * gray.height), (0, 0, 0, 0))
    canvas.paste(gray.convert("RGBA"), (gray.width // 2, gray.height // 2))
    for picture in (open_page(buffer.getvalue()), canvas):
        assert [f.text for f in read_page(picture, model, model.line_model).fields] == truth


def test_cli_reads_a_folder_of_thin_pictures_in_one_line_each(tmp_path, capsys):
    for n, shape in enumerate(THIN[:4]):
        Image.fromarray(_thin(shape, n % 2 == 1)).save(tmp_path / f"thin{n}.png")
    assert main(["read", str(tmp_path), "--page"]) in (0, 2)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    for n in range(4):
        assert main(["read", str(tmp_path / f"thin{n}.png"), "--page"]) in (0, 2)
        err = capsys.readouterr().err.strip()
        assert err == "" or (err.startswith("digitrec: error: ") and "\n" not in err)


def test_the_page_route_answers_thin_pictures_without_a_server_error(model):
    from fastapi.testclient import TestClient

    from digitrec.serving.app import create_app

    client = TestClient(create_app(model))
    for shape in THIN[:4]:
        payload = io.BytesIO()
        Image.fromarray(_thin(shape, True)).save(payload, "PNG")
        answer = client.post("/api/page", content=payload.getvalue(), headers={"content-type": "image/png"})
        assert answer.status_code == 200 or 400 <= answer.status_code < 500, answer.text
        assert answer.json().get("fields", []) == [] or answer.status_code == 200


def _grid_pieces(count: int, seed: int = 0) -> list:
    from digitrec.reading.page import _Piece

    rng = np.random.default_rng(seed)
    pieces = []
    for n in range(count):
        x, y = 24 * (n % 100) + int(rng.integers(0, 12)), 34 * (n // 100) + int(rng.integers(0, 8))
        h = int(rng.integers(8, 30))
        pieces.append(_Piece(n + 1, x, y, x + int(rng.integers(4, 20)), y + h, 50, int(rng.integers(0, 3)) - 1))
    return pieces


def test_grouping_many_pieces_takes_bounded_memory():
    """6,000 pieces (the page's cap) grouped with memory in tens of MB, not n x n matrices (1.7 GB)."""
    import tracemalloc

    from digitrec.reading.page import MAX_PAGE_PIECES, _groups

    pieces = _grid_pieces(MAX_PAGE_PIECES)
    tracemalloc.start()
    try:
        groups = _groups(pieces, 0.3, cells=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sum(len(g) for g in groups) == len(pieces)
    assert peak < 60e6, f"peak {peak / 1e6:.0f} MB"


def test_grouping_in_slices_finds_the_same_groups(monkeypatch):
    from digitrec.reading import page

    pieces = _grid_pieces(700, seed=5)
    whole = page._groups(pieces, 0.3, least_gap=10, cells=True)
    monkeypatch.setattr(page, "GROUP_ROWS", 7)
    sliced = page._groups(pieces, 0.3, least_gap=10, cells=True)
    assert 1 < len(whole) < len(pieces)
    assert sorted([p.label for p in g] for g in whole) == sorted([p.label for p in g] for g in sliced)


def test_the_classifier_is_loaded_without_pickles(monkeypatch):
    from digitrec.reading import page

    seen = []
    load = np.load
    monkeypatch.setattr(np, "load", lambda *args, **kwargs: seen.append(kwargs) or load(*args, **kwargs))
    page._classifier.cache_clear()
    try:
        assert set(page._classifier()) >= {"w1", "b1", "w2", "b2"}
    finally:
        page._classifier.cache_clear()
    assert seen == [{"allow_pickle": False}]


def test_page_constants_state_rules_not_tuning_history():
    from digitrec.reading import page

    source = Path(page.__file__).read_text(encoding="utf-8").splitlines()
    comments = [line for line in source if line.lstrip().startswith("#")]
    assert comments and not [c for c in comments if re.search(r"\d\s*->\s*\d|\bwere\b|\bturned\b", c)]


def _comb_page(hand, texts: list[str], side: int = 90, missing: int | None = None, grey: int = 60,
               tick: int = 3) -> Image.Image:
    """A row a text: a printed label and a comb (a rule with a tick `tick` pixels wide at each box's edge, open at
    the top, printed at `grey`), one digit of `hand` in each box, narrow digits (1s) leaving wide paper between
    them; `missing`: a tick left out."""
    page = Image.fromarray(_paper(1200, 300 + 200 * len(texts)))
    draw = ImageDraw.Draw(page)
    rng = np.random.default_rng(0)
    for row, text in enumerate(texts):
        left, foot = 420, 300 + 200 * row
        draw.text((40, foot - 70), "Account no.", fill=30, font=ImageFont.truetype(FONT, 28))
        draw.line((left, foot, left + side * len(text), foot), fill=grey, width=3)
        for b in set(range(len(text) + 1)) - {missing}:
            draw.line((left + side * b, foot - int(0.4 * side), left + side * b, foot), fill=grey, width=tick)
        sheet = np.asarray(page, np.float32).copy()
        for b, char in enumerate(text):
            glyph = hand.glyph(char, int(0.7 * side), 4.0, rng)
            h, w = glyph.shape
            x, y = left + side * b + (side - w) // 2, foot - int(0.1 * side) - h
            sheet[y : y + h, x : x + w] = np.minimum(sheet[y : y + h, x : x + w], 235 - 215 * glyph)
        page = Image.fromarray(sheet.astype(np.uint8))
        draw = ImageDraw.Draw(page)
    return page


def test_a_comb_row_of_narrow_digits_is_one_field(model, hand):
    """A comb's boxes are open at the top, so no paper is enclosed: the digits standing on its rule between its
    ticks are one field however much paper lies between them (1s in boxes three writing heights wide)."""
    fields = read_page(_comb_page(hand, ["1171141", "41171"]), model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == ["1171141", "41171"]
    alone = read_page(_comb_page(hand, ["1171141"]), model, model.line_model).fields  # no line read with its label
    assert [_digits(f.text) for f in alone] == ["1171141"]


@pytest.mark.parametrize("grey", [195, 205])
def test_a_comb_printed_in_grey_is_one_field(model, hand, grey):
    """A comb printed in grey is ink only at the faint level, where rules are found, while the writing's pieces
    are found at the strong one: its ticks are looked for at the faint level too, and its digits are still one
    field (its ticks unseen, the row split at its widest gaps)."""
    fields = read_page(_comb_page(hand, ["1171141"], grey=grey), model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == ["1171141"]


def test_a_combs_hairline_ticks_are_ticks(model, hand):
    """A comb's ticks a pixel wide hold less ink than a speck of dirt: they are ticks all the same (taken for
    specks, they joined the field as marks, read as 1s, and the comb went unseen)."""
    fields = read_page(_comb_page(hand, ["7581319", "40728"], tick=1), model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == ["7581319", "40728"]


def test_a_comb_missing_a_tick_is_still_one_field(model, hand):
    """A tick lost (broken into specks on a coarse scan, or joined to a digit) leaves the comb's ticks two rows,
    of five and two: the row goes on over a gap of two boxes, and its digits stay one field."""
    fields = read_page(_comb_page(hand, ["1171141"], missing=5), model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == ["1171141"]


def test_a_turned_tables_row_reads_left_to_right():
    """On a page turned 1.4 degrees a row's right-hand numbers stand higher than its left-hand ones: measured
    across the turn (the slope of the page's rules), they are still one line, read left to right."""
    from digitrec.reading.page import _Piece, _reading_order, _slope

    row = [_Piece(1, 229, 342, 296, 369, 500, 1), _Piece(2, 632, 332, 723, 361, 500, 1),
           _Piece(3, 946, 327, 1025, 354, 500, 1)]
    below = [_Piece(4, 225, 390, 292, 419, 500, 1)]
    fields = [[row[2]], [row[1]], [row[0]], below]
    assert [f[0].label for f in _reading_order(fields)] != [1, 2, 3, 4]  # level, the row falls apart
    rules = np.zeros((600, 1200), bool)
    for top in (300, 380):
        for x in range(100, 1100):
            rules[top - int(0.024 * x) : top - int(0.024 * x) + 2, x] = True
    slope = _slope(rules, 28.0)
    assert slope == pytest.approx(-0.024, abs=0.002)
    assert [f[0].label for f in _reading_order(fields, slope)] == [1, 2, 3, 4]


def test_a_short_field_written_high_in_a_row_reads_after_the_tall_one_before_it():
    """A row of a table: `7,72` written tall and low in its cell (rows 417-483), `2` short and high in the next
    (399-445). `2`, first by its top, does not hold `7,72`'s middle (450), but `7,72` holds `2`'s (422): one
    line, read left to right. The next row's field, below both, is a line of its own."""
    from digitrec.reading.page import _Piece, _reading_order

    tall, short = _Piece(1, 383, 417, 532, 483, 900, 1), _Piece(2, 1232, 399, 1281, 445, 300, 1)
    below = _Piece(3, 346, 512, 574, 575, 900, 1)
    assert [f[0].label for f in _reading_order([[short], [below], [tall]])] == [1, 2, 3]


def test_one_stray_long_stroke_does_not_turn_the_page():
    """The turn is measured only where two long rules or more agree, and never past 2 degrees: a single long
    stroke across a page without rules (a line drawn by hand at 2.3 degrees) leaves the page level."""
    from digitrec.reading.page import _slope

    rules = np.zeros((600, 1200), bool)
    for x in range(100, 1100):
        rules[500 - int(0.04 * x) : 500 - int(0.04 * x) + 2, x] = True
    assert _slope(rules, 28.0) == 0.0
    rules[:] = False
    for top in (200, 400):  # two level rules, one with an upright at its end (a table's border)
        rules[top : top + 2, 100:1100] = True
    rules[200:400, 1098:1100] = True
    assert _slope(rules, 28.0) == pytest.approx(0.0, abs=0.001)


def test_a_lone_capital_after_a_printed_word_is_printed():
    """`Team A` in a table's header: the classifier takes the lone capital for a handwritten 4; on the line
    of the printed word, as tall and close as print, it is print. Writing beside a label (taller, or farther
    off, or in another cell) stays writing."""
    from digitrec.reading.page import _after_print, _Piece

    team = [_Piece(1, 82, 205, 93, 220, 60, 1), _Piece(2, 101, 208, 127, 220, 60, 1)]
    capital = [_Piece(3, 133, 204, 145, 219, 70, 1)]
    taller = [_Piece(4, 133, 196, 150, 221, 90, 1)]  # a digit 1.7 times the print's height
    farther = [_Piece(5, 160, 205, 172, 220, 70, 1)]  # two print heights off
    elsewhere = [_Piece(6, 133, 204, 145, 219, 70, 2)]  # past a rule
    words = [team, capital, taller, farther, elsewhere]
    assert _after_print(words, [True, False, False, False, False]) == [True, True, False, False, False]
    assert _after_print(words, [False] * 5) == [False] * 5  # no print, nothing changed
    # `Weight (kg)`: a unit in parentheses, four pieces taken for writing in a font the classifier did not learn
    weight = [_Piece(7, 82, 205, 93, 224, 60, 1), _Piece(8, 96, 205, 140, 229, 60, 1)]  # its g below the line
    unit = [_Piece(9, 146, 203, 150, 226, 30, 1), _Piece(10, 152, 205, 160, 220, 50, 1),
            _Piece(11, 162, 209, 170, 224, 50, 1), _Piece(12, 172, 203, 176, 226, 30, 1)]
    longer = [*unit, _Piece(13, 178, 205, 186, 220, 50, 1)]
    value = [_Piece(14 + k, 146 + 12 * k, 205, 156 + 12 * k, 224, 60, 1) for k in range(4)]  # `2468` at print size
    assert _after_print([weight, unit], [True, False]) == [True, True]
    assert _after_print([weight, longer], [True, False]) == [True, False]  # five pieces: a value, left alone
    assert _after_print([weight, value], [True, False]) == [True, False]  # four digits, no brackets: writing


def test_a_dot_too_small_for_a_piece_joins_the_field_it_stands_in():
    """A pen's point can be smaller than a speck of dirt (a piece's floor): kept aside as a mark, it joins the
    field it stands in, between the field's first and last piece and down to its foot; a mark outside the field,
    above it or far below its foot stays out."""
    from digitrec.reading.page import _Piece, _with_marks

    digits = [_Piece(1, 100, 100, 120, 130, 200, 1), _Piece(2, 124, 100, 144, 130, 200, 1),
              _Piece(3, 160, 100, 180, 130, 200, 1)]
    point = _Piece(4, 149, 126, 152, 129, 9, 0)
    above = _Piece(5, 149, 80, 152, 83, 9, 0)
    beyond = _Piece(6, 190, 126, 193, 129, 9, 0)
    below = _Piece(7, 149, 150, 152, 153, 9, 0)
    joined = _with_marks(digits, [point, above, beyond, below], 30.0)
    assert [p.label for p in joined] == [1, 2, 4, 3]
    assert _with_marks(digits, [], 30.0) is digits


class _FailingLineModel:
    """A line model whose every read fails as onnxruntime's do for a model made for other strips."""

    signs = None
    path = "RUN/lines/line.onnx"

    def probabilities(self, strip: np.ndarray) -> np.ndarray:
        raise DigitrecError("the line model cannot read a strip 96 pixels wide", where=self.path)


def test_a_line_model_that_fails_fails_the_page_not_its_fields(model, table_page):
    """A field with no digits is no field; a line model that cannot read is no reason to answer an empty
    page: the read fails in one line naming the model."""
    from digitrec.imaging.decode import open_image

    path, page = table_page
    picture = open_image(path.read_bytes())
    assert len(read_page(picture, model, model.line_model).fields) == len(page.fields)
    with pytest.raises(DigitrecError, match="cannot read a strip") as failed:
        read_page(picture, model, _FailingLineModel())
    assert failed.value.where == "RUN/lines/line.onnx"


def test_a_sparse_page_on_paper_with_light_specks_is_read_dark_on_light(model, hand):
    """A form of two short fields holds less than half a percent of ink; paper with a little glare (light
    specks) then outweighs it in the page's extreme levels. The ink is the tail that reaches farthest from
    the paper, so the page is read as dark ink on light paper, not as a blank negative."""
    picture = _two_fields(hand, seed=1, glare=0.008).astype(np.uint8)
    assert (picture < 128).mean() < 0.005
    fields = read_page(Image.fromarray(picture), model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == ["4071", "2598"]


@pytest.mark.parametrize("degrees", [4, 9])
def test_a_box_page_turned_past_2_degrees_reads_as_level(model, hand, degrees):
    """A photo of a form is often turned past the 2 degrees at which a rule still runs along rows; turned
    level first, its rows of boxes lose their walls as a level page's do (no wall read as a 1), and each
    field's box is given in the picture's own pixels, around the digits where they stand there."""
    page = pages.render_page("boxes", hand, 3, look="scanned", dpi=150)
    payload, _ = page.encode()
    level = Image.open(io.BytesIO(payload)).convert("L")
    want = [_digits(f["text"]) for f in page.truth("p")["fields"]]
    assert [_digits(f.text) for f in read_page(level, model, model.line_model).fields] == want
    turned = level.rotate(degrees, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=235)
    fields = read_page(turned, model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == want
    ink = np.asarray(turned) < 128
    for f in fields:
        x0, y0, x1, y1 = f.box
        assert 0 <= x0 < x1 <= turned.width and 0 <= y0 < y1 <= turned.height
        assert ink[y0:y1, x0:x1].mean() > 0.02  # the box holds the field's writing, not paper beside it


def test_the_turn_is_taken_only_where_the_ink_shows_it():
    """A sparse form's few short words, level, do not show an angle (their ink is hardly more concentrated
    along any line than along the rows): the page stays level. Ruled lines 3 degrees off show theirs."""
    import math

    from digitrec.reading.page import _skew

    ink = np.zeros((1200, 900), bool)
    for n in range(8):
        for k in range(6):
            ink[200 + 40 * n : 222 + 40 * n, 100 + 22 * k : 114 + 22 * k] = True  # six glyphs a line
    assert _skew(ink) == 0.0
    ruled = np.zeros_like(ink)
    for row in range(20):
        y = 100 + 50 * row + (np.arange(800) * math.tan(math.radians(3))).astype(int)
        ruled[y[y < 1200], np.arange(50, 850)[y < 1200]] = True
    assert math.degrees(_skew(ruled)) == pytest.approx(3.0, abs=0.1)
    assert math.degrees(_skew(ruled[:, ::-1])) == pytest.approx(-3.0, abs=0.1)


def test_a_field_whose_sign_alone_is_doubtful_is_kept(model, table_page, monkeypatch):
    """A field read less surely than the floor is no field (most such are printed words read as digits), but
    the floor weighs the digits alone: a date whose digits are sure and whose slash is doubtful is a field."""
    from digitrec.imaging.decode import open_image
    from digitrec.reading import page as page_module
    from digitrec.reading.numbers import DigitReading, Reading

    def date(*args, **kwargs):
        digits = [DigitReading(2, 0.99, [0, 0, 10, 20]), DigitReading(4, 0.98, [12, 0, 22, 20]),
                  DigitReading("/", 0.2, [24, 0, 30, 20]), DigitReading(1, 0.99, [32, 0, 40, 20]),
                  DigitReading(2, 0.97, [42, 0, 52, 20])]
        return Reading("24/12", float(np.prod([d.confidence for d in digits])), digits)

    monkeypatch.setattr(page_module, "read_number", date)
    path, page = table_page
    fields = read_page(open_image(path.read_bytes()), model, model.line_model).fields
    assert fields and {f.text for f in fields} == {"24/12"} and len(fields) == len(page.fields)


def _two_fields(hand, seed: int = 2, glare: float = 0.0) -> np.ndarray:
    """A 1200x1500 sheet with `4071` and `2598` written on it in `hand`; `glare`: that share of the paper's
    pixels light specks."""
    sheet = _paper(1200, 1500).astype(np.float32)
    rng = np.random.default_rng(seed)
    if glare:
        sheet[rng.random(sheet.shape) < glare] = 252
    for n, text in enumerate(["4071", "2598"]):
        _write(sheet, hand, text, 300, 300 + 200 * n + 60, rng, gap=12)
    return sheet


def test_a_desks_edge_along_the_picture_is_no_field(model, hand):
    """A photo taken with a strip of the desk along one side, narrower than the blocks the paper's level is
    measured in, is a long dark stroke at the picture's edge: no field is written there."""
    sheet = _two_fields(hand)
    sheet[1350:, -10:] = 60  # the desk beyond the sheet's edge, in the lower right corner
    fields = read_page(Image.fromarray(sheet.astype(np.uint8)), model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == ["4071", "2598"]
    tight = _two_fields(hand)[: 300 + 200 + 60]  # cropped on the second number's foot: digits touch the edge
    fields = read_page(Image.fromarray(tight.astype(np.uint8)), model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == ["4071", "2598"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_page_is_analysed_with_its_writing_at_least_writing_px_high(hand, seed):
    """The work scale is chosen on a coarse sketch, whose blocks merge what they hold; measured again at the
    work scale, writing lower than WRITING_PX on a reduced page is analysed at a finer scale."""
    from digitrec.reading.page import WRITING_PX, _analyse

    page = pages.render_page("list", hand, seed, look="photographed", dpi=300)
    payload, _ = page.encode()
    layout = _analyse(Image.open(io.BytesIO(payload)))
    assert layout.factor == 1 or layout.height >= WRITING_PX, (layout.factor, layout.height)


def _write(sheet: np.ndarray, hand, text: str, x: int, foot: int, rng, gap: int = 10) -> int:
    for char in text:
        glyph = hand.glyph(char, 60, 4.0, rng)
        h, w = glyph.shape
        sheet[foot - h : foot, x : x + w] = np.minimum(sheet[foot - h : foot, x : x + w], 235 - 215 * glyph)
        x += w + gap
    return x


def test_writing_that_runs_on_into_the_next_column_is_cut_under_its_head(model, hand):
    """A table without uprights: a cell's number written up to the next column's number is cut where that
    column's head begins over the gap between them; a title's second word over a field's gap cuts nothing."""
    sheet = _paper(1200, 900).astype(np.float32)
    rng = np.random.default_rng(5)
    end = _write(sheet, hand, "3684", 200, 350, rng)
    _write(sheet, hand, "173", end + 35, 350, rng)  # about half a digit's height after the 4
    _write(sheet, hand, "5092", 860, 350, rng)
    picture = Image.fromarray(sheet.astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    font = ImageFont.truetype(FONT, 30)
    draw.text((100, 60), "Customer details", font=font, fill=30)
    for x, head in ((200, "Score"), (end + 40, "Qty"), (850, "Result")):
        draw.text((x, 180), head, font=font, fill=30)
    for y in (240, 400, 560):
        draw.line((150, y, 1100, y), fill=60, width=2)
    fields = read_page(picture, model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == ["3684", "173", "5092"]



def test_a_number_written_with_a_space_under_its_own_head_is_one_field(model, hand):
    """`1 250` in a table's column, starting left of its head: both parts stand in that head's column (the
    columns split halfway between heads), so it is one field. On a two-column form the line of labels above
    holds fields beside its labels: it is no table's header, and a date that crosses under it is not cut."""
    sheet = _paper(1200, 900).astype(np.float32)
    rng = np.random.default_rng(10)
    end = _write(sheet, hand, "1", 470, 350, rng)
    _write(sheet, hand, "250", end + 35, 350, rng)
    picture = Image.fromarray(sheet.astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    font = ImageFont.truetype(FONT, 30)
    for x, head in ((150, "Item"), (520, "Amount")):
        draw.text((x, 180), head, font=font, fill=30)
    for y in (240, 400):
        draw.line((100, y, 1100, y), fill=60, width=2)
    fields = read_page(picture, model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == ["1250"]

    from digitrec.reading.page import _header_rows, _Piece, _split_at_columns

    labels = [[_Piece(1, 100, 100, 150, 130, 400, 1), _Piece(2, 155, 100, 200, 130, 400, 1)],
              [_Piece(3, 600, 100, 640, 130, 400, 1), _Piece(4, 645, 100, 690, 130, 400, 1)]]
    beside = [_Piece(5, 720, 95, 760, 135, 600, 1)]  # a field written beside the second label
    date = [_Piece(6, 300, 200, 390, 260, 600, 1), _Piece(7, 425, 200, 520, 260, 600, 1)]
    assert _header_rows(labels, [True, True], beside, 60.0) == []
    assert _split_at_columns(date, [], [], 60.0) == [date]  # so nothing above the date cuts it
    rows = _header_rows(labels, [True, True], [], 60.0)  # a table's header: no writing on its line
    assert rows == [[(100, 100, 200, 130), (600, 100, 690, 130)]]
    cell = [_Piece(8, 300, 200, 390, 260, 600, 1), _Piece(9, 600, 200, 690, 260, 600, 1)]
    assert _split_at_columns(cell, rows, [130], 60.0) == [cell[:1], cell[1:]]


def test_the_writing_is_measured_without_the_desk_along_the_picture():
    """A strip of desk beside a photographed sheet touches the picture's edge and is no writing: the page's
    writing height is its glyphs'. A tight crop of one line, all of whose glyphs touch the edge, is measured
    on them all the same."""
    from scipy import ndimage

    from digitrec.imaging.morphology import EIGHT_CONNECTED
    from digitrec.reading.page import _writing_height

    ink = np.zeros((600, 400), bool)
    ink[100:292, :13] = True  # the desk, down the left edge
    ink[300:480, 390:] = True  # and the right
    for k in range(10):
        ink[50 + 30 * (k % 3) : 59 + 30 * (k % 3), 60 + 25 * k : 68 + 25 * k] = True  # glyphs 9 high
    labels, count = ndimage.label(ink, structure=EIGHT_CONNECTED)
    assert _writing_height(labels, count, ink.shape) == pytest.approx(9.0)
    line = np.zeros((20, 120), bool)
    for k in range(4):
        line[:, 5 + 30 * k : 20 + 30 * k] = True  # digits from the top edge to the bottom one
    labels, count = ndimage.label(line, structure=EIGHT_CONNECTED)
    assert _writing_height(labels, count, line.shape) == pytest.approx(20.0)


def test_a_value_written_with_its_signs_is_a_field_however_doubtful_its_digits(model, table_page, monkeypatch):
    """Printed words read as digits make random digits, not a date: a reading with a sign read surely in a
    value's shape is a field even where its digits are doubtful (a handwriting font's 1 and 7 alike); the same
    digits without the sign are not."""
    from digitrec.imaging.decode import open_image
    from digitrec.reading import page as page_module
    from digitrec.reading.numbers import DigitReading, Reading

    def reading(sign: str | None):
        def read(*args, **kwargs):
            digits = [DigitReading(2, 0.6, [0, 0, 10, 20]), DigitReading(4, 0.5, [12, 0, 22, 20]),
                      DigitReading(1, 0.6, [32, 0, 40, 20]), DigitReading(2, 0.6, [42, 0, 52, 20])]
            if sign:
                digits.insert(2, DigitReading(sign, 0.95, [24, 0, 30, 20]))
            text = "".join(str(d.digit) for d in digits)
            return Reading(text, float(np.prod([d.confidence for d in digits])), digits)
        return read

    path, _ = table_page
    picture = open_image(path.read_bytes())
    monkeypatch.setattr(page_module, "read_number", reading("/"))
    assert {f.text for f in read_page(picture, model, model.line_model).fields} == {"24/12"}
    monkeypatch.setattr(page_module, "read_number", reading(None))
    assert read_page(picture, model, model.line_model).fields == []


def test_a_number_cropped_tight_with_its_point_reads_as_read_does(model, hand):
    """Digits touching the picture's top and bottom are writing, not a strip along its edge: the point beside
    them, the only piece clear of the edge, does not measure the writing (it read as eight 1s)."""
    for seed in range(2):
        sheet = _paper(400, 200, seed).astype(np.float32)
        rng = np.random.default_rng(seed)
        end = _write(sheet, hand, "40", 20, 120, rng)
        sheet[112:119, end + 2 : end + 9] = 30  # the point, at the foot
        _write(sheet, hand, "75", end + 16, 120, rng)
        ys, xs = np.nonzero(sheet < 150)
        tight = sheet[ys.min() : ys.max() + 1, max(0, xs.min() - 15) : xs.max() + 15]
        picture = Image.fromarray(tight.astype(np.uint8))
        assert [f.text for f in read_page(picture, model, model.line_model).fields] == [model.read(picture).text]


@pytest.mark.parametrize("degrees", [-9, 9])
def test_a_strip_of_desk_along_a_turned_photos_edge_is_no_field(model, hand, degrees):
    """On a photo turned and set level, the picture's edge is where the level canvas stops showing it: a strip
    of desk along that edge touches it there, however far from the canvas's own sides."""
    sheet = _two_fields(hand)
    for y in (250, 450, 650, 850):
        sheet[y : y + 3, 150:1050] = 50  # rules: the page's angle shows
    photo = np.asarray(Image.fromarray(sheet.astype(np.uint8)).rotate(degrees, resample=Image.Resampling.BILINEAR,
                                                                       fillcolor=235)).copy()
    photo[:300, :8] = photo[1100:, :8] = 60  # the desk down the left edge, above and below
    fields = read_page(Image.fromarray(photo), model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == ["4071", "2598"]


def test_a_small_wide_picture_is_set_level_and_a_huge_one_is_not(model, hand):
    """Setting a page level is bounded by the canvas's pixels, not by its share of the picture's: a row of 16
    digit boxes (1734 x 400) 6 degrees off is set level and read; a 13000 x 1000 strip 9 degrees off would need
    a 39-megapixel canvas and is read as it is."""
    import math

    from digitrec.reading.page import MAX_LEVEL_PIXELS, _analyse, _canvas

    text = "8652300018695697"
    picture = Image.fromarray(_paper(1734, 400))
    draw = ImageDraw.Draw(picture)
    side, left, top = 100, 67, 150
    draw.rectangle((left, top, left + side * len(text), top + side), outline=60, width=3)
    for b in range(1, len(text)):
        draw.line((left + side * b, top, left + side * b, top + side), fill=60, width=3)
    sheet = np.asarray(picture, np.float32).copy()
    rng = np.random.default_rng(4)
    for b, char in enumerate(text):
        glyph = hand.glyph(char, 70, 4.0, rng)
        h, w = glyph.shape
        x, y = left + side * b + (side - w) // 2, top + (side - h) // 2
        sheet[y : y + h, x : x + w] = np.minimum(sheet[y : y + h, x : x + w], 235 - 215 * glyph)
    level = Image.fromarray(sheet.astype(np.uint8))
    assert [_digits(f.text) for f in read_page(level, model, model.line_model).fields] == [text]
    turned = level.rotate(6, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=235)
    assert [_digits(f.text) for f in read_page(turned, model, model.line_model).fields] == [text]
    assert math.prod(_canvas((1000, 13000), math.radians(9))) > MAX_LEVEL_PIXELS
    assert math.prod(_canvas((3024, 4032), math.radians(10))) <= MAX_LEVEL_PIXELS
    assert _analyse(Image.fromarray(_paper(1300, 100)).resize((13000, 1000))) is None  # blank, bounded


def test_a_sketch_that_looks_blank_with_large_blocks_is_looked_at_again(monkeypatch):
    """On a photographed page's small sketch, blocks of an eighth of its side can spread the desk's edge and the
    light's slope into the paper's grain until no ink stands out: the sketch is looked at again with page
    blocks before the page is called blank."""
    from digitrec.reading import page as page_module

    real = page_module._ink
    seen = []

    def ink(work, small):
        seen.append(small)
        return None if small else real(work, small)  # the large blocks see nothing

    monkeypatch.setattr(page_module, "_ink", ink)
    gray = _paper(2000, 2800)
    gray[1000:1060, 800:1000] = 40  # some writing
    assert page_module._work_factor(gray) is not None and seen == [True, False]


def test_a_field_whose_digits_are_doubtful_is_no_field(model, table_page, monkeypatch):
    """A label in a font the printed-or-handwritten network does not know reads as digits no one wrote, at
    0.43 (`Qty:` as `004`): under LEAST_CONFIDENCE it is no field."""
    from digitrec.imaging.decode import open_image
    from digitrec.reading import page as page_module
    from digitrec.reading.numbers import DigitReading, Reading

    digits = [DigitReading(0, 0.75, [0, 0, 10, 20]), DigitReading(0, 0.9, [12, 0, 22, 20]),
              DigitReading(4, 0.64, [24, 0, 34, 20])]
    monkeypatch.setattr(page_module, "read_number", lambda *a, **k: Reading("004", 0.432, digits))
    path, _ = table_page
    assert read_page(open_image(path.read_bytes()), model, model.line_model).fields == []


def test_a_row_of_digit_boxes_is_a_field_however_doubtful(model, hand, monkeypatch):
    """The confidence floor is for printed words taken for writing: a row of closed digit boxes read as at most
    one digit a box is a field however doubtful (a long row's confidence is many digits' product), for a person
    to check; read as more digits than it has boxes, it is print and meets the floor."""
    from digitrec.reading import page as page_module
    from digitrec.reading.numbers import DigitReading, Reading

    page = pages.render_page("boxes", hand, 3, look="scanned", dpi=150)
    assert len(page.fields) >= 3 and all(len(f.text) >= 2 for f in page.fields)
    for count, kept in ((2, True), (40, False)):
        digits = [DigitReading(7, 0.6, [12 * n, 0, 12 * n + 10, 20]) for n in range(count)]
        reading = Reading("7" * count, 0.6 ** count, digits)
        monkeypatch.setattr(page_module, "read_number", lambda *a, reading=reading, **k: reading)
        fields = read_page(Image.fromarray(page.pixels), model, model.line_model).fields
        assert len(fields) == (len(page.fields) if kept else 0)


def test_a_word_in_one_small_cell_is_no_row_of_boxes(model, monkeypatch):
    """A table's small cell holds a printed row name as a digit box holds a digit: `Sun` taken for writing,
    read as digits at 0.36, stands in one box, not in a row of them, and the floor drops it."""
    from digitrec.reading import page as page_module
    from digitrec.reading.numbers import DigitReading, Reading

    monkeypatch.setattr(page_module, "_printed_words", lambda layout, words: [False] * len(words))
    digits = [DigitReading(d, 0.8, [10 * n, 0, 10 * n + 8, 20]) for n, d in enumerate((5, 4, 1, 7))]
    monkeypatch.setattr(page_module, "read_number", lambda *a, **k: Reading("5417", 0.36, digits))
    for words in (["Sun"], ["Sun", "Mon"]):  # one cell; two side by side, read as more digits than cells
        picture = Image.fromarray(_paper(1000, 600))
        draw = ImageDraw.Draw(picture)
        for x in range(100, 550, 90):  # a row of small cells, 90 px a side
            draw.rectangle([x, 200, x + 90, 290], outline=40, width=3)
        for n, word in enumerate(words):
            draw.text((106 + 90 * n, 210), word, font=ImageFont.truetype(FONT, 36), fill=30)
        assert read_page(picture, model, model.line_model).fields == [], words


def test_the_dots_of_a_dotted_rule_are_no_marks():
    """A dotted leader is a row of marks: its dots are taken away before the marks are counted (a page with more
    marks than pieces is grain, and its marks are dropped), while a point written just above it stays, as does
    a mark off the row."""
    from digitrec.reading.page import _off_dotted_rules, _Piece

    dots = [_Piece(n, 100 + 9 * n, 200, 103 + 9 * n, 203, 9, 0) for n in range(60)]  # 540 px, writing 30 high
    point = _Piece(100, 250, 193, 254, 197, 16, 0)  # a pen's point on the writing's foot, above the dots
    grain = _Piece(101, 400, 50, 402, 52, 4, 0)
    kept = _off_dotted_rules([*dots, point, grain], (400, 800), 30.0)
    assert sorted(p.label for p in kept) == [100, 101]
    short = dots[:5]  # 45 px of dots: shorter than a rule, a row of points or dirt
    assert _off_dotted_rules(short, (400, 800), 30.0) == short
    drop = [round(n * 9 * 0.025) for n in range(60)]  # the leader 1.4 degrees off the level: 13 px over its length
    tilted = [_Piece(n, 100 + 9 * n, 200 + d, 103 + 9 * n, 203 + d, 9, 0) for n, d in enumerate(drop)]
    assert sorted(p.label for p in _off_dotted_rules([*tilted, point, grain], (400, 800), 30.0)) == [100, 101]


@pytest.mark.parametrize("tilt", [0.0, 1.2])
def test_a_point_written_over_a_dotted_leader_is_read(model, hand, tilt):
    """Values written on dotted leaders, level or a little off it (under MIN_TURN, so not set level): the
    leaders' dots outnumber the writing's pieces, yet a point written small (a mark) is still read."""
    sheet = _paper(1200, 900).astype(np.float32)
    rng = np.random.default_rng(5)
    for n, (before, after) in enumerate([("12", "50"), ("73", "25")]):
        foot = 250 + 250 * n
        x = _write(sheet, hand, before, 300, foot, rng, gap=12)
        yy, xx = np.mgrid[-3:4, -3:4]
        sheet[foot - 8 + yy[yy**2 + xx**2 <= 9], x + 4 + xx[yy**2 + xx**2 <= 9]] = 30  # the point, 7 px across
        _write(sheet, hand, after, x + 22, foot, rng, gap=12)
        for dot in range(100, 1100, 9):  # the leader: 3x3 dots a little below the writing's foot
            y = foot + 6 + round((dot - 300) * np.tan(np.radians(tilt)))
            sheet[y : y + 3, dot : dot + 3] = 90
    fields = read_page(Image.fromarray(sheet.astype(np.uint8)), model, model.line_model).fields
    assert [f.text for f in fields] == ["12.50", "73.25"]


def test_a_page_jpeg_is_drafted_only_where_that_leaves_its_writing_tall_enough(model, hand, monkeypatch):
    """`open_page` decodes a JPEG page whole (`open_image` drafts one over DRAFT_ABOVE a side, by the factor
    `draft_factor` gives); `read_page` analyses it reduced by that factor as the decoder would have, and whole
    where the writing would then be under WHOLE_BELOW pixels (a page's points and a digit's gaps are a pixel or two
    there). Either way the fields and their boxes are the picture's own."""
    import io

    from digitrec.imaging.decode import draft_factor, open_image
    from digitrec.reading import page as page_module
    from digitrec.reading.page import open_page

    for size in [(1200, 1500), (1654, 2339), (2049, 100), (2047, 1500), (2480, 3508), (4096, 3003), (4093, 500)]:
        buffer = io.BytesIO()
        Image.new("L", size, 200).save(buffer, format="JPEG")
        assert open_image(buffer.getvalue()).size[0] == -(-size[0] // draft_factor(size)), size
        assert open_page(buffer.getvalue()).size == size

    from fastapi.testclient import TestClient

    from digitrec.serving.app import create_app

    client = TestClient(create_app(model))
    seen, analyse = [], page_module._analyse
    monkeypatch.setattr(page_module, "_analyse", lambda picture, writing=0.0: seen.append(picture.size)
                        or analyse(picture, writing))
    for glyph, whole_too in [(44, True), (90, False)]:  # written 22 and 45 pixels high in the drafted picture
        rng = np.random.default_rng(4)
        sheet = _paper(2100, 2600).astype(np.float32)
        for n, text in enumerate(["4071", "2598"]):
            x = 600
            for char in text:
                ink = hand.glyph(char, glyph, glyph / 15, rng)
                h, w = ink.shape
                foot = 600 + 500 * n
                sheet[foot - h : foot, x : x + w] = np.minimum(sheet[foot - h : foot, x : x + w], 235 - 215 * ink)
                x += w + glyph // 5
        buffer = io.BytesIO()
        Image.fromarray(sheet.astype(np.uint8)).save(buffer, format="JPEG", quality=92)
        seen.clear()
        page = read_page(open_page(buffer.getvalue()), model, model.line_model)
        assert seen == [(1050, 1300)] + [(2100, 2600)] * whole_too, (glyph, seen)
        seen.clear()  # the same through the Python API's bytes and the server's route
        assert [f.text for f in model.read_page(buffer.getvalue()).fields] == ["4071", "2598"]
        answer = client.post("/api/page", content=buffer.getvalue(), headers={"content-type": "image/jpeg"})
        assert [f["text"] for f in answer.json()["fields"]] == ["4071", "2598"]
        assert seen == ([(1050, 1300)] + [(2100, 2600)] * whole_too) * 2, (glyph, seen)
        assert (page.width, page.height) == (2100, 2600)
        assert [f.text for f in page.fields] == ["4071", "2598"]
        assert [f.box[0] // 10 for f in page.fields] == [60, 60], [f.box for f in page.fields]
        assert [abs(f.box[3] - (600 + 500 * n)) <= 4 for n, f in enumerate(page.fields)] == [True, True]



def test_what_is_left_of_a_grids_upright_is_no_writing():
    """A turned grid's upright breaks where it leans a column over, and the rules miss a piece of it: a thin
    bar with the upright running on from its end is no writing. A 1 written on a rule, or standing close
    beside an upright, is."""
    from digitrec.reading.page import _upright_stub

    rules = np.zeros((200, 300), bool)
    rules[:80, 50:52] = rules[120:, 51:53] = True  # an upright, broken from 80 to 120 where it leans over
    rules[150:152, :] = True  # a row's rule
    assert _upright_stub((slice(80, 120), slice(50, 53)), rules, 30.0)
    assert not _upright_stub((slice(110, 150), slice(150, 153)), rules, 30.0)  # a 1 standing on the rule
    assert not _upright_stub((slice(90, 130), slice(60, 63)), rules, 30.0)  # a 1 beside the upright
    assert not _upright_stub((slice(80, 120), slice(40, 60)), rules, 30.0)  # wide: a digit across it
    assert not _upright_stub((slice(20, 50), slice(47, 50)), rules, 30.0)  # a 1 written against the upright
    assert _upright_stub((slice(20, 50), slice(52, 53)), rules, 30.0)  # a sliver of the leaning upright itself


def test_a_part_of_pages_is_opened_one_page_at_a_time(model, table_page, tmp_path, monkeypatch):
    """A cluster actor reads a part of up to 256 pages: each is decoded as it is read (256 pages decoded whole
    at once would hold gigabytes); a file that is no picture is its row's error, the rest are read."""
    pa = pytest.importorskip("pyarrow")
    from digitrec.cluster import batch
    from digitrec.reading import page as page_module

    path, page = table_page
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"no picture at all")
    opened, read_when = [], []
    open_page = page_module.open_page
    monkeypatch.setattr(page_module, "open_page", lambda payload, *a: opened.append(1) or open_page(payload, *a))
    reader = batch._reader_for(None, "page")()
    read_page = reader.predictor.read_page
    reader.predictor.read_page = lambda picture: read_when.append(len(opened)) or read_page(picture)
    rows = pa.table({"index": [0, 1, 2], "file": ["a.jpg", "bad.jpg", "c.jpg"],
                     "path": [str(path), str(bad), str(path)]})
    answers = reader.answer(rows).to_pylist()
    assert read_when == [1, 3]  # the second page opened (and refused) only after the first was read
    assert [a["count"] for a in answers] == [len(page.fields), None, len(page.fields)]
    assert answers[1]["error"] and "\n" not in answers[1]["error"] and answers[0]["error"] is None


def test_a_page_too_grainy_to_analyse_whole_is_read_as_drafted(model, hand, monkeypatch):
    """Where the whole picture holds too many pieces of ink to analyse (its grain, at a scale finer than the
    draft's), the drafted analysis stands: the page is read, not refused."""
    from digitrec.core.errors import NoDigitError
    from digitrec.reading import page as page_module
    from digitrec.reading.page import open_page

    rng = np.random.default_rng(4)
    sheet = _paper(2100, 2600).astype(np.float32)
    _write(sheet, hand, "4071", 600, 600, rng, gap=9)
    _write(sheet, hand, "2598", 600, 1100, rng, gap=9)
    buffer = io.BytesIO()
    Image.fromarray(sheet.astype(np.uint8)).save(buffer, format="JPEG", quality=92)
    analyse = page_module._analyse

    def grainy_when_whole(picture, writing=0.0):
        if picture.size == (2100, 2600):
            raise NoDigitError("no fields found: 9,000 pieces of ink (noise, not a page of writing)")
        return analyse(picture, writing)

    monkeypatch.setattr(page_module, "WHOLE_BELOW", 10_000)  # the whole picture always tried
    monkeypatch.setattr(page_module, "_analyse", grainy_when_whole)
    page = read_page(open_page(buffer.getvalue()), model, model.line_model)
    assert [f.text for f in page.fields] == ["4071", "2598"] and page.fields[0].box[0] // 10 == 60


def test_a_large_page_with_one_field_reads_the_field(model, hand):
    """One number written on a large page is that page's one field, read from its own crop: read whole, as
    `read` reads a picture of one line, the page was reduced until the number was a digit or two (`4`)."""
    rng = np.random.default_rng(4)
    sheet = _paper(2100, 2600).astype(np.float32)
    _write(sheet, hand, "4071", 525, 600, rng, gap=9)
    page = read_page(Image.fromarray(sheet.astype(np.uint8)), model, model.line_model)
    assert [f.text for f in page.fields] == ["4071"] and page.fields[0].box[0] // 25 == 21


def test_a_value_written_close_after_its_label_is_read(model, hand):
    """`Amount due 989` with the value a few pixels after the print: grouped as one word, whose mean made all of
    it print and lost the value. The word is cut where print meets taller writing; print alone stays print."""
    sheet = _paper(1200, 900).astype(np.float32)
    rng = np.random.default_rng(11)
    labels = ("Amount due", "Reference", "Total")
    font = ImageFont.truetype(FONT, 24)
    picture = Image.fromarray(sheet.astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    ends = []
    for n, label in enumerate(labels):
        draw.text((100, 220 + 200 * n), label, font=font, fill=30)
        ends.append(draw.textbbox((100, 220 + 200 * n), label, font=font)[2])
    sheet = np.asarray(picture, np.float32).copy()
    for n, (end, text) in enumerate(zip(ends, ("989", "4071", "2598"), strict=True)):
        _write(sheet, hand, text, end + 6, 220 + 200 * n + 26, rng)  # 6 px after the label, on its baseline
    fields = read_page(Image.fromarray(sheet.astype(np.uint8)), model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == ["989", "4071", "2598"]
    assert all(f.box[0] >= end for f, end in zip(fields, ends, strict=True))  # the label is not in the field


def test_a_comma_hanging_below_the_line_stays_in_its_field(model, hand):
    """A comma's top just above the digits' foot: its rows overlap theirs too little to join them as a piece of
    the line, and alone it was a field of its own, read as a 1. Low and short, it hangs from the line and joins."""
    sheet = _paper(1200, 700).astype(np.float32)
    rng = np.random.default_rng(6)
    end = _write(sheet, hand, "4", 300, 300, rng)
    picture = Image.fromarray(sheet.astype(np.uint8))
    ImageDraw.Draw(picture).line((end + 12, 296, end + 4, 326), fill=20, width=7)  # 4 px over the foot, 26 below
    sheet = np.asarray(picture, np.float32).copy()
    _write(sheet, hand, "011", end + 30, 300, rng)
    fields = read_page(Image.fromarray(sheet.astype(np.uint8)), model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == ["4011"]


def test_a_date_frame_of_two_boxes_keeps_the_tick_between_them(model, hand):
    """A form's date: a frame for the day and one for the month, two boxes each, a short tick rising between them
    from the floor, and one for the year, four boxes; the same line again, empty. The frames are wider than a
    box for one digit: their ticks stay ticks, not 1s, and the empty frames give nothing."""
    side = 80
    page = Image.fromarray(_paper(1200, 800))
    draw = ImageDraw.Draw(page)
    for foot in (300, 600):
        for left, boxes in ((200, 2), (420, 2), (640, 4)):
            draw.rectangle((left, foot - side, left + boxes * side, foot), outline=50, width=3)
            for b in range(1, boxes):
                draw.line((left + b * side, foot - side // 2, left + b * side, foot), fill=50, width=3)
    sheet = np.asarray(page, np.float32).copy()
    rng = np.random.default_rng(4)
    for left, text in ((200, "05"), (420, "11")):
        for b, char in enumerate(text):
            glyph = hand.glyph(char, int(0.6 * side), 4.0, rng)
            h, w = glyph.shape
            x, bottom = left + side * b + (side - w) // 2, 300 - int(0.2 * side)
            sheet[bottom - h : bottom, x : x + w] = np.minimum(sheet[bottom - h : bottom, x : x + w], 235 - 215 * glyph)
    fields = read_page(Image.fromarray(sheet.astype(np.uint8)), model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == ["05", "11"]


def test_a_1_standing_a_row_above_its_boxs_floor_is_its_digit():
    """A thin upright bar standing on a rule, its top free, is a comb's tick, its foot within two rows of the rule
    (a coarse scan breaks it off). Inside a closed box a printed tick touches the floor (a date's frame of two
    boxes, `test_a_date_frame_of_two_boxes_keeps_the_tick_between_them`), and a 1 written down to a row above
    the floor is the box's digit: taken for a tick, it was lost and its row read as two fields."""
    from digitrec.reading.page import _tick

    rules = np.zeros((100, 100), bool)
    rules[10:12, 20:80] = rules[58:60, 20:80] = True  # a box's roof and floor
    one = (slice(32, 57), slice(48, 52))  # 25 rows high, a row of paper between its foot and the floor
    tick = (slice(33, 58), slice(48, 52))  # standing on the floor
    assert _tick(one, rules, 32.0) and _tick(tick, rules, 32.0)  # in an open row: both are ticks
    assert not _tick(one, rules, 32.0, reach=1) and _tick(tick, rules, 32.0, reach=1)  # in a closed box


def test_a_walls_sliver_beside_a_boxs_digit_is_no_stroke():
    """On a page turned less than the turn it is set level for, a box's wall steps a column over, and the rules
    leave its edge beside it: a sliver along the wall, clear of the box's digit, is the wall's. A sliver that
    touches the digit's columns is the digit's (a stroke cut off where it met the wall), and one alone in its box
    is a 1 written against the wall. Slivers along a floor are left alone: as often a digit's foot."""
    from digitrec.reading.page import _Piece, _sliver, _strokes_of_slivers

    rules = np.zeros((100, 100), bool)
    rules[10:60, 20:22] = rules[10:12, 20:80] = rules[58:60, 20:80] = True  # a box's left wall, roof and floor
    assert _sliver((slice(15, 50), slice(22, 23)), rules)  # along the wall, a column wide
    assert not _sliver((slice(15, 50), slice(22, 26)), rules)  # a 1's width against the wall: a stroke
    assert not _sliver((slice(15, 50), slice(40, 41)), rules)  # a hair-thin stroke in the box's middle
    assert not _sliver((slice(56, 58), slice(30, 60)), rules)  # along the floor
    digit = _Piece(1, 35, 15, 55, 55, 400, -1, box=7)
    wall = _Piece(2, 22, 15, 23, 50, 30, -1, box=7)
    stem = _Piece(3, 55, 20, 56, 50, 30, -1, box=7)  # touches the digit's columns
    alone = _Piece(4, 22, 15, 23, 50, 30, -1, box=8)  # nothing else in its box
    speck = _Piece(5, 54, 20, 55, 25, 5, -1, box=7)  # too small for a piece: a mark
    pieces, marks = _strokes_of_slivers([wall, stem, alone, speck], [digit], least=16)
    assert [p.label for p in pieces] == [3, 4]
    assert [m.label for m in marks] == [5] and marks[0].box == 0


def test_pieces_in_closed_boxes_are_taken_for_ticks_only_on_the_floor(model, hand, monkeypatch):
    """`_analyse` asks `_tick` for a touching foot (reach 1) of the pieces in a row of closed boxes, two rows
    (the default) of the rest."""
    from digitrec.reading import page as page_module

    reaches, original = [], page_module._tick
    monkeypatch.setattr(page_module, "_tick", lambda box, rules, height, reach=2: reaches.append(reach)
                        or original(box, rules, height, reach))
    payload, _ = pages.render_page("boxes", hand, 1, look="scanned", dpi=150).encode()
    read_page(Image.open(io.BytesIO(payload)), model, model.line_model)
    assert 1 in reaches and 2 in reaches


def _box_row(hand, text: str, side: int = 60, tall: float = 0.95, place: float = 0.5) -> Image.Image:
    """A printed label and a row of closed digit boxes, one digit of `hand` in each; each 1 a straight bar
    `tall` of the box high, `place` of the way across it, as people write a 1 that fills its box."""
    rng = np.random.default_rng(0)
    page = Image.fromarray(_paper(400 + side * len(text), 3 * side, seed=1))
    draw = ImageDraw.Draw(page)
    left, top = 300, side
    draw.text((40, top + side // 4), "Account no.", fill=30, font=ImageFont.truetype(FONT, 24))
    for b in range(len(text)):
        draw.rectangle((left + side * b, top, left + side * (b + 1), top + side), outline=60, width=2)
    sheet = np.asarray(page, np.float32).copy()
    for b, char in enumerate(text):
        if char == "1":
            x, h = left + side * b + int(place * side), int(tall * side)
            sheet[top + (side - h) // 2 : top + (side + h) // 2, x - 2 : x + 2] = 30
            continue
        glyph = hand.glyph(char, int(0.65 * side), 4.0, rng)
        h, w = glyph.shape
        x, y = left + side * b + (side - w) // 2, top + (side - h) // 2
        sheet[y : y + h, x : x + w] = np.minimum(sheet[y : y + h, x : x + w], 235 - 215 * glyph)
    return Image.fromarray(sheet.astype(np.uint8))


@pytest.mark.parametrize("text", ["4171958", "71113", "1111"])
@pytest.mark.parametrize("place", [0.3, 0.5, 0.7])
def test_a_straight_1_filling_its_box_is_no_wall(model, hand, text, place):
    """A 1 written as a straight bar from near the roof to near the floor reaches from rule to rule as a wall does;
    it stands between two walls, where a box is, and is read (taken for a wall, it was lost: `47958`, `73`, no
    field at all). In `1111` the walls and the 1s stand evenly spaced: no box is half as wide as high."""
    fields = read_page(_box_row(hand, text, place=place), model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == [text]


def test_walls_are_those_that_make_the_most_even_boxes():
    """`_even_walls`: the first and last uprights are walls; between them, those that make boxes of one width,
    none narrower than the narrowest a digit's box can be; an upright between two walls is a stroke."""
    from digitrec.reading.page import _even_walls

    walls = np.arange(0, 301, 60.0)  # six walls, five boxes 60 wide (and high: no box narrower than 36)
    assert _even_walls(walls, 36.0).all()
    with_ones = np.sort(np.r_[walls, 78.0, 162.0, 270.0])  # 1s near a box's left wall, its right, its middle
    assert (_even_walls(with_ones, 36.0) == np.isin(with_ones, walls)).all()
    ones_everywhere = np.arange(0, 301, 30.0)  # `11111`: walls and 1s evenly spaced, 30 too narrow for a box
    assert (_even_walls(ones_everywhere, 36.0) == np.isin(ones_everywhere, walls)).all()
    for mixed in ([0.0, 60.0, 100.0, 160.0, 220.0], [0.0, 40.0, 80.0, 120.0, 200.0], [0.0, 44.0, 88.0, 188.0, 232.0]):
        assert _even_walls(np.array(mixed), 26.0).all()  # boxes of mixed widths, none too narrow: all walls


def test_walls_stay_walls_in_a_tall_grid_and_beside_a_sections_border():
    """`_strokes_among_walls` on the column runs of uprights: a grid of ten rows of boxes (each wall a run in each
    of its two columns, a row) has no strokes, nor has a row of boxes beside the taller uprights of the section's
    border around it (a taller upright is no wall of a row of boxes: the narrowest box is measured by theirs)."""
    from digitrec.reading.page import _strokes_among_walls

    grid = [(c, 10 + 44 * row, 50 + 44 * row) for row in range(10) for x in range(0, 241, 40) for c in (x, x + 1)]
    cols, tops, bottoms = (np.array(v) for v in zip(*grid, strict=True))
    assert not _strokes_among_walls(cols, tops, bottoms).any()
    boxes = [(c, 30, 70) for x in range(40, 281, 40) for c in (x, x + 1)]
    border = [(c, 0, 100) for x in (10, 300) for c in (x, x + 1)]  # 100 high, 30 from the boxes' end walls
    cols, tops, bottoms = (np.array(v) for v in zip(*(boxes + border), strict=True))
    assert not _strokes_among_walls(cols, tops, bottoms).any()


@pytest.mark.parametrize("text", ["41", "17"])
def test_the_wall_between_two_boxes_is_no_1(model, hand, text):
    """A row of two boxes is one printed frame, too short for its roof to be a rule: the wall inside it, from its
    roof to its floor in one piece with it, is frame too (it was read as a 1: `411`)."""
    fields = read_page(_box_row(hand, text, tall=0.7), model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == [text]


def test_a_row_of_boxes_read_with_a_digit_too_many_is_read_box_by_box(model, hand, monkeypatch):
    """A box holds one digit: where the line is read with one digit more or fewer than the boxes written (a looped
    2 read `62`, a 1 at the row's end lost), each box is read alone as `predict` reads a digit; where the count
    is right, the line's reading stands (and where it is far off, print in small cells, the confidence floor
    decides: `test_a_row_of_digit_boxes_is_a_field_however_doubtful`)."""
    from digitrec.reading import page as page_module
    from digitrec.reading.numbers import DigitReading, Reading

    picture = _box_row(hand, "40729", tall=0.7)
    assert [f.text for f in read_page(picture, model, model.line_model).fields] == ["40729"]

    def one_too_many(*args, **kwargs):  # the line read as a looped 2 is: `62`
        digits = [DigitReading(int(c), 0.99, [12 * n, 0, 12 * n + 10, 20]) for n, c in enumerate("406729")]
        return Reading("406729", 0.94, digits)

    monkeypatch.setattr(page_module, "read_number", one_too_many)
    fields = read_page(picture, model, model.line_model).fields
    assert [f.text for f in fields] == ["40729"]
    assert len(fields[0].characters) == 5 and all(c.box[2] > c.box[0] for c in fields[0].characters)
    xs = [c.box[0] for c in fields[0].characters]
    assert xs == sorted(xs) and xs[1] - xs[0] > 40  # each digit boxed where it stands, a box apart

    def right_count(*args, **kwargs):
        digits = [DigitReading(int(c), 0.99, [12 * n, 0, 12 * n + 10, 20]) for n, c in enumerate("40728")]
        return Reading("40728", 0.95, digits)

    monkeypatch.setattr(page_module, "read_number", right_count)
    assert [f.text for f in read_page(picture, model, model.line_model).fields] == ["40728"]  # the line's reading


def test_a_dotted_list_on_a_large_jpeg_is_measured_as_drafted(model, hand):
    """An A4 scan at 300 dpi (a JPEG drafted by 2) of values 40 px high on dotted leaders: drafted, the writing
    measures under 28 px, so the page is analysed whole, where the leaders' 5 px dots are pieces, 900 of them,
    and the labels' print the tallest twentieth. Measured so, the writing came out a third of its height and
    the page read as strokes and dots (or was refused as noise); it is at least 0.8 of what the draft showed."""
    sheet = _paper(2480, 3508).astype(np.float32)
    page = Image.fromarray(sheet.astype(np.uint8))
    draw = ImageDraw.Draw(page)
    texts = ["6905", "4172", "3385", "770", "52", "9041"]
    for n in range(len(texts)):
        draw.text((200, 370 + 160 * n), "Amount", fill=40, font=ImageFont.truetype(FONT, 22))
    sheet = np.asarray(page, np.float32).copy()
    rng = np.random.default_rng(5)
    for n, text in enumerate(texts):
        x, foot = 500, 400 + 160 * n
        for char in text:
            glyph = hand.glyph(char, 40, 4.0, rng)
            h, w = glyph.shape
            sheet[foot - h : foot, x : x + w] = np.minimum(sheet[foot - h : foot, x : x + w], 235 - 215 * glyph)
            x += w + 10
        for dot in range(400, 2200, 12):
            sheet[foot + 6 : foot + 11, dot : dot + 5] = 80
    payload = io.BytesIO()
    Image.fromarray(sheet.astype(np.uint8)).save(payload, "JPEG", quality=90)
    fields = read_page(open_page(payload.getvalue()), model, model.line_model).fields
    assert [f.text for f in fields] == texts


def test_digit_boxes_standing_apart_do_not_measure_the_writing():
    """Each box of a row whose boxes stand apart is a piece of its own, taller than the digit it holds: the
    writing is measured by the digits (40 high), not by the boxes (53)."""
    from scipy import ndimage

    from digitrec.reading.page import _writing_height

    ink = np.zeros((300, 1200), bool)
    for b in range(14):
        x = 20 + 80 * b
        ink[100:153, x : x + 53] = True
        ink[102:151, x + 2 : x + 51] = False  # a frame two pixels wide
        ink[106:146, x + 24 : x + 29] = True  # its digit, 40 high
    for b in range(3):
        ink[220:248, 20 + 40 * b : 40 + 40 * b] = True  # a printed label's letters
    labels, count = ndimage.label(ink)
    assert _writing_height(labels, count, ink.shape) == pytest.approx(40, abs=1)


def test_the_pieces_a_faint_grid_breaks_into_do_not_measure_the_writing():
    """A faint grid's rules break into corners and crosses, each a piece far taller than the writing in the cells
    and sparse: the writing is measured by the digits."""
    from scipy import ndimage

    from digitrec.reading.page import _writing_height

    ink = np.zeros((1500, 1200), bool)  # crosses under a fifth of the page: no whole grid
    for k in range(12):
        x, y = 60 + 90 * k, 100 + 30 * (k % 4)
        ink[y : y + 150, x : x + 2] = True  # a cross: an upright and a rule through it, 150 x 120
        ink[y + 75 : y + 77, x - 60 : x + 60] = True
        ink[400:436, x + 10 : x + 15] = True  # a digit, 36 high
        ink[400:404, x + 15 : x + 35] = True
    labels, count = ndimage.label(ink)
    assert _writing_height(labels, count, ink.shape) == pytest.approx(36, abs=1)


def test_a_box_whose_ink_is_no_digit_leaves_the_lines_reading(model, hand, monkeypatch):
    """Read box by box, a box whose ink `predict` would refuse (a point alone in its box, a blot) leaves the
    line's reading in place: the field is not lost."""
    from digitrec.core.errors import NoDigitError
    from digitrec.reading import page as page_module
    from digitrec.reading.numbers import DigitReading, Reading

    def one_too_many(*args, **kwargs):
        digits = [DigitReading(int(c), 0.99, [12 * n, 0, 12 * n + 10, 20]) for n, c in enumerate("406729")]
        return Reading("406729", 0.94, digits)

    calls = []

    def refuses_the_third(picture):
        calls.append(1)
        if len(calls) == 3:
            raise NoDigitError("no digit found: a blot or smudge")
        return to_mnist(picture)

    from digitrec.imaging.fit import to_mnist

    monkeypatch.setattr(page_module, "read_number", one_too_many)
    monkeypatch.setattr(page_module, "to_mnist", refuses_the_third)
    fields = read_page(_box_row(hand, "40729", tall=0.7), model, model.line_model).fields
    assert len(calls) == 3 and [f.text for f in fields] == ["406729"]


def test_the_soft_rim_of_dark_ticks_is_no_faint_tick():
    """`_faint_ticks` looks among the faint ink for a grey comb's ticks; the faint ink around a dark tick (its soft
    rim, blurred by the scan) is left out of what it is given, as `_analyse` leaves it, so a dark tick is one
    tick, not three."""
    from digitrec.imaging.morphology import max_filter
    from digitrec.reading.page import _faint_ticks

    rules = np.zeros((100, 300), bool)
    rules[80:82, 20:280] = True
    inked = np.zeros_like(rules)
    for x in (100, 160):
        inked[60:80, x : x + 2] = True  # dark ticks, 20 high, standing on the rule
    printed = max_filter(inked, 3) | rules  # their rims reach the faint level
    regions, cells = np.ones(rules.shape, int), np.zeros(2, bool)
    assert _faint_ticks(printed & ~max_filter(inked, 3) & ~rules, rules, regions, cells, 28.0) == []
    grey = np.zeros_like(rules)
    grey[60:80, 220:222] = True  # a grey tick: faint ink only
    assert len(_faint_ticks((printed | grey) & ~max_filter(inked, 3) & ~rules, rules, regions, cells, 28.0)) == 1


def test_a_point_standing_a_gap_from_the_digits_either_side_stays_in_its_field(hand):
    """A point a word's gap from the digits before and after it is a word of its own, which the classifier takes
    for print: it was lost (`80.26` read `8026`). A word of dots is marks, joined to the field it stands in."""
    from digitrec.reading.page import _analyse, _fields

    sheet = _paper(1200, 600).astype(np.float32)
    rng = np.random.default_rng(4)
    end = _write(sheet, hand, "80", 300, 300, rng)
    point = (end + 20, end + 26)  # a word's gap (0.3 of the writing) and more either side
    sheet[293:300, point[0] : point[1]] = 25
    _write(sheet, hand, "26", end + 46, 300, rng)
    fields = _fields(_analyse(Image.fromarray(sheet.astype(np.uint8))))
    assert len(fields) == 1
    assert any(p.x0 >= point[0] - 1 and p.x1 <= point[1] + 1 for p in fields[0])


def test_a_stroke_through_a_rule_keeps_its_tail_and_a_digit_below_does_not_join():
    """The rule's pixels straight between a field's ink and a short piece under the rule are the field's, with
    that piece (a comma's tail written through the line); a tall piece under the rule (the next row's digit) and
    ink that only stands on the rule are not."""
    from digitrec.reading.page import _across_rules

    labels = np.zeros((40, 30), np.int32)
    rules = np.zeros((40, 30), bool)
    rules[20:23] = True
    labels[10:20, 4:7] = 1  # the field's stroke, down to the rule
    labels[23:27, 4:7] = 2  # its tail under the rule
    labels[10:20, 14:17] = 3  # another stroke of the field, standing on the rule
    labels[23:40, 14:17] = 4  # a tall piece under it: the next row's digit
    heights = {1: 10, 2: 4, 3: 10, 4: 17}
    mask = _across_rules(np.isin(labels, [1, 3]), rules, labels, 20.0, heights)
    assert mask[20:27, 4:7].all()  # bridged, tail and all
    assert not mask[20:40, 14:17].any()
    assert not mask[20:23, 8:13].any()  # the rule beside the strokes stays rule
    assert (_across_rules(labels == 3, np.zeros_like(rules), labels, 20.0, heights) == (labels == 3)).all()
    # the crop cuts the next row's digit short: its height on the page keeps it out
    cut = labels[:30]
    assert not _across_rules(np.isin(cut, [1, 3]), rules[:30], cut, 20.0, heights)[23:30, 14:17].any()
    # a piece of no known height (too small for a mark) is measured in the crop, unless the crop cuts it
    unknown = {1: 10, 3: 10}
    assert _across_rules(np.isin(labels, [1, 3]), rules, labels, 20.0, unknown)[23:27, 4:7].all()
    assert not _across_rules(np.isin(cut, [1, 3]), rules[:30], cut, 20.0, unknown)[23:30, 14:17].any()


def test_a_1_written_alone_in_a_cell_is_a_field(model, hand):
    """A 1 alone in a table's cell is one thin bar, which the printed-or-handwritten classifier takes for print
    (it was lost); the same bar where a sheet's edge meets a dark desk is no field."""
    sheet = _paper(1200, 900).astype(np.float32)
    rng = np.random.default_rng(5)
    picture = Image.fromarray(sheet.astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for y in (200, 320, 440):
        draw.line((200, y, 1000, y), fill=40, width=2)
    for x in (200, 600, 1000):
        draw.line((x, 200, x, 440), fill=40, width=2)
    sheet = np.asarray(picture, np.float32).copy()
    _write(sheet, hand, "47", 300, 290, rng)
    _write(sheet, hand, "35", 700, 410, rng)
    sheet[226:290, 760:766] = 25  # the 1, alone in its cell
    fields = read_page(Image.fromarray(sheet.astype(np.uint8)), model, model.line_model).fields
    assert [f.text for f in fields] == ["47", "1", "35"]


def test_a_bar_beside_a_dark_desk_is_no_lone_1():
    """A lone 1 has paper either side of it; the sheet's shadowed edge against a desk is such a bar too."""
    from digitrec.reading.page import _Layout, _lone_ones, _Piece

    gray = _paper(400, 300)
    gray[100:164, 200:206] = 25
    bar = _Piece(1, 200, 100, 206, 164, 384, 1)
    layout = _Layout(gray, 1, gray < 128, np.zeros_like(gray, bool), np.zeros(gray.shape, np.int32), [bar], 64.0)
    assert _lone_ones([[bar]], [True], layout) == [False]  # writing
    assert _lone_ones([[bar, bar]], [True], layout) == [True]  # a word of two pieces
    assert _lone_ones([[_Piece(1, 200, 100, 206, 130, 180, 1)]], [True], layout) == [True]  # under LONE_ONE
    # printed words on its line on both sides: a separator (`Name | Date`), print
    name, date = [_Piece(2, 120, 110, 190, 160, 900, 1)], [_Piece(3, 216, 110, 290, 160, 900, 1)]
    assert _lone_ones([name, [bar], date], [True, True, True], layout) == [True, True, True]
    assert _lone_ones([name, [bar]], [True, True], layout) == [True, False]  # print on one side: a 1 after a label
    gray[:, :197] = 90  # the desk up to three pixels of the bar
    assert _lone_ones([[bar]], [True], layout) == [True]


def test_a_small_word_in_a_column_of_printed_row_names_is_print():
    """A table's row names are a column of print: a small word starting where two printed words of its size
    start is print (the classifier took `Tue` for writing, read `748`); writing beside them, or a small word
    under one printed word only, stays writing."""
    from digitrec.reading.page import _in_a_column_of_print, _Piece

    def word(x: int, y: int, tall: int) -> list:
        return [_Piece(1, x, y, x + 8, y + tall, 60, 1), _Piece(2, x + 9, y + tall - 8, x + 20, y + tall, 50, 1)]

    names = [word(123, 325, 10), word(124, 376, 10), word(124, 428, 10), word(124, 480, 10)]
    tue, value, lone = word(123, 531, 11), word(330, 517, 26), word(600, 531, 11)
    words = names + [tue, value, word(600, 300, 10), lone]
    printed = [True, True, True, True, False, False, True, False]
    assert _in_a_column_of_print(words, printed, 28.0) == [True, True, True, True, True, False, True, False]
    far = word(123, 1166, 11)  # at the names' left edge, far below them: writing in the margin
    assert _in_a_column_of_print(names + [far], [True] * 4 + [False], 28.0) == [True] * 4 + [False]


def test_a_word_of_dots_is_a_point_or_a_colon_and_small_print_is_not():
    """Only a point or a colon's two dots (compact, filled, a fifth of the writing or smaller) are taken out of
    print as marks; small printed letters (rings and strokes, a third of their box inked) and words of three
    pieces stay print."""
    from digitrec.reading.page import _dots, _Piece

    point = _Piece(1, 100, 100, 106, 105, 24, 1)
    colon = [point, _Piece(2, 100, 85, 106, 90, 24, 1)]
    comma = _Piece(3, 100, 100, 104, 110, 26, 1)
    ring = _Piece(4, 100, 100, 110, 110, 35, 1)  # a small printed `o`
    bar = _Piece(5, 100, 100, 102, 110, 20, 1)  # an `l`: five times as long as wide
    assert _dots([point], 60.0) and _dots(colon, 60.0) and _dots([comma], 60.0)
    assert not _dots([ring], 60.0) and not _dots([bar], 60.0)
    assert not _dots(colon + [point], 60.0)
    assert not _dots([_Piece(6, 100, 100, 114, 112, 150, 1)], 60.0)  # over a fifth of the writing


def test_printed_separators_are_no_fields(model, hand):
    """A printed `|` between printed words (`Name | Date | Amount`) is as tall as writing and alone a word: it
    is print, not a 1 written alone; the number written below is the page's one field."""
    from PIL import ImageFont

    picture = Image.fromarray(_paper(1200, 700))
    font = ImageFont.truetype(FONT, 48)
    draw = ImageDraw.Draw(picture)
    draw.text((100, 100), "Name   |   Date   |   Amount", font=font, fill=30)
    draw.text((100, 200), "Home   |   About   |   Contact", font=font, fill=30)
    sheet = np.asarray(picture, np.float32).copy()
    _write(sheet, hand, "4071", 300, 450, np.random.default_rng(8))
    fields = read_page(Image.fromarray(sheet.astype(np.uint8)), model, model.line_model).fields
    assert [_digits(f.text) for f in fields] == ["4071"]


def test_too_many_fields_are_refused_before_marks_are_sought_in_each(table_page, model, monkeypatch):
    """Seeking the marks inside each field costs fields x marks: a page over MAX_FIELDS is refused first."""
    import digitrec.reading.page as page_module

    def never(*args, **kwargs):
        raise AssertionError("marks sought in the fields of a page that is refused")

    path, _ = table_page
    monkeypatch.setattr(page_module, "MAX_FIELDS", 1)
    monkeypatch.setattr(page_module, "_with_marks", never)
    with pytest.raises(NoDigitError, match="groups of writing"):
        read_page(open_page(path.read_bytes()), model, model.line_model)


@pytest.mark.parametrize("density", [0.4, 0.5, 0.55])
def test_noise_as_dense_as_the_paper_is_no_page_of_fields(model, density):
    """Half a picture's pixels dark at random is one piece of ink, under the pieces' cap: it was read as dozens
    of fields, some at 0.99. A sheet dark over MAX_DARK_SHARE is refused in one line; the table page of the
    bench (ink on a small share of it) still reads."""
    noise = np.where(np.random.default_rng(0).random((500, 500)) < density, 0, 255).astype(np.uint8)
    with pytest.raises(NoDigitError, match="of the sheet is dark") as caught:
        read_page(noise, model, model.line_model)
    assert "\n" not in str(caught.value)


def test_a_page_dark_only_at_its_desk_or_grainy_is_read(table_page, model):
    """The desk around a photographed sheet is no dark paper: the share counts the sheet alone. A scan's grain
    is not dark either (a page dimmed and grained by 16 grey levels once measured 39 % dark and was refused)."""
    from digitrec.reading.page import MAX_DARK_SHARE, _ink

    path, page = table_page
    gray = np.asarray(open_page(path.read_bytes()).convert("L"), np.float32)
    framed = np.full((gray.shape[0] + 400, gray.shape[1] + 400), 40, np.float32)  # a dark desk, 200 px a side
    framed[200:-200, 200:-200] = gray
    grainy = np.clip(gray * 0.8 + np.random.default_rng(0).normal(0, 16, gray.shape), 0, 255).astype(np.float32)
    for picture in (gray, framed, grainy):
        assert _ink(picture, False).dark < MAX_DARK_SHARE / 2
        read = read_page(picture.astype(np.uint8), model, model.line_model).fields
        assert [f.text for f in read] == [f.text for f in page.fields]
