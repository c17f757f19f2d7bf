"""Whole numbers: `read_number`, `digitrec read`, `/api/read`."""

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitrec import load_model
from digitrec.core.errors import DigitrecError
from digitrec.data import synthetic
from digitrec.reading.score import edit_distance, score_numbers


def number_picture(text: str, seed: int = 0, gap: float = 0.5, height: int = 120) -> Image.Image:
    """Pen-drawn digits side by side, dark on white, with a little drift in size and baseline."""
    rng = np.random.default_rng(seed)
    glyphs = []
    for ch in text:
        image = synthetic.render_strokes(*synthetic.digit_strokes(int(ch), rng, 200), 200)
        ink = 255 - np.asarray(image)
        ys, xs = np.nonzero(ink > 40)
        glyph = Image.fromarray(ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
        h = int(height * rng.uniform(0.75, 0.9))
        glyphs.append(glyph.resize((max(4, round(glyph.width * h / glyph.height)), h)))
    width = sum(g.width for g in glyphs) + int(gap * height * 0.6) * (len(glyphs) + 1)
    canvas = Image.new("L", (width, int(height * 1.4)), 0)
    x = int(gap * height * 0.6)
    for g in glyphs:
        canvas.paste(g, (x, int((canvas.height - g.height) / 2 + rng.uniform(-0.05, 0.05) * height)))
        x += g.width + int(gap * height * 0.6)
    return Image.fromarray(255 - np.asarray(canvas))


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_reads_a_spaced_number_left_to_right_with_boxes(model):
    picture = number_picture("2026", seed=1)
    reading = model.read(picture)
    assert reading.text == "2026" and 0 < reading.confidence <= 1
    boxes = [d.box for d in reading.digits]
    assert all(0 <= x0 < x1 <= picture.width and 0 <= y0 < y1 <= picture.height for x0, y0, x1, y1 in boxes)
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)  # left to right, not overlapping much
    assert all(a[2] <= b[0] + 5 for a, b in zip(boxes, boxes[1:], strict=False))
    assert reading.crops.shape == (4, 28, 28)


def test_leading_zeros_polarity_and_marks_that_are_not_digits(model):
    picture = number_picture("0427", seed=2)
    assert model.read(picture).text == "0427"
    assert model.read(Image.fromarray(255 - np.asarray(picture))).text == "0427"  # light ink on dark
    dash = picture.copy()
    draw = ImageDraw.Draw(dash)
    h = dash.height
    mid = [d.box for d in model.read(picture).digits]
    x = (mid[1][2] + mid[2][0]) // 2
    draw.line([(x - 15, h // 2), (x + 15, h // 2)], fill=0, width=6)  # a dash between 4 and 2
    reading = model.read(dash, digits_only=True)
    assert reading.text == "0427" and reading.rejected == 1
    signs = model.line_model.probabilities(np.zeros((32, 64), np.uint8)).shape[1] > 11
    reading = model.read(dash)  # a line model with signs reads the dash as a minus, where it is
    assert (reading.text, reading.rejected) == (("04-27", 0) if signs else ("0427", 1))
    if signs:
        assert mid[1][2] <= reading.digits[2].box[0] and reading.digits[2].box[2] <= mid[2][0]


def test_a_picture_without_digits_is_refused(model):
    with pytest.raises(DigitrecError, match="no digits found|blank"):
        model.read(Image.new("L", (300, 100), 255))


def test_single_digit_pictures_read_as_predict_does(model):
    images, labels = synthetic.drawn_digits(30, seed=9)
    assert [model.read(im).text for im in images] == [str(int(d)) for d in model.predict(images)]


def test_edit_distance_and_scores():
    assert edit_distance("2026", "2026") == 0 and edit_distance("2026", "206") == 1
    assert edit_distance("123", "1243") == 1 and edit_distance("", "12") == 2
    report = score_numbers([("12", "12", "a"), ("345", "35", "a"), ("6", None, "b")])
    assert report["all"]["string_accuracy"] == pytest.approx(1 / 3)
    assert report["groups"]["a"]["digit_accuracy"] == pytest.approx((1 + 2 / 3) / 2)
    assert report["lengths"][1]["digit_accuracy"] == 0.0


def test_cli_reads_a_folder_and_scores_against_numbers_csv(tmp_path_factory, capsys):
    from test_cli import run_main

    tmp_path = tmp_path_factory.mktemp("numbers")
    out = tmp_path_factory.mktemp("outputs") / "out.csv"  # never inside the folder it reads
    (tmp_path / "spaced").mkdir()
    texts = ["31", "4159", "26535"]
    for i, text in enumerate(texts):
        number_picture(text, seed=20 + i).save(tmp_path / "spaced" / f"{i}.png")
    (tmp_path / "numbers.csv").write_text("file,text,group\n" + "".join(
        f"spaced/{i}.png,{t},spaced\n" for i, t in enumerate(texts)))
    Image.new("L", (200, 80), 255).save(tmp_path / "spaced" / "blank.png")
    code, listing, _ = run_main(capsys, "read", str(tmp_path), "--json", "--out", str(out))
    rows = {r["file"]: r for r in json.loads(listing)}
    assert code == 2  # one picture had no digits; the others were still read
    assert rows[f"{tmp_path.name}/spaced/1.png"]["text"] == "4159"
    assert "no digits" in rows[f"{tmp_path.name}/spaced/blank.png"]["error"]
    assert out.read_text().splitlines()[0] == "file,text,confidence"
    _, score, _ = run_main(capsys, "read", str(tmp_path), "--score", "--json")
    assert json.loads(score)["groups"]["spaced"]["string_accuracy"] == 1.0
    code, _, err = run_main(capsys, "read", str(tmp_path / "spaced" / "blank.png"))
    assert code == 2 and err.count("\n") == 1 and "blank.png" in err
    assert "Traceback" not in err


def test_api_reads_uploads_and_base64_json():
    from fastapi.testclient import TestClient

    from digitrec.inference.engine import Predictor
    from digitrec.serving.app import create_app

    client = TestClient(create_app(Predictor.load()))
    png = synthetic.png_bytes(number_picture("907", seed=5))
    answer = client.post("/api/read", files={"file": ("n.png", png, "image/png")}).json()
    assert answer["text"] == "907" and len(answer["digits"]) == 3 and len(answer["digits"][0]["box"]) == 4
    encoded = client.post("/api/read", json={"image": base64.b64encode(png).decode()}).json()
    assert encoded == answer
    blank = client.post("/api/read", files={"file": ("b.png", synthetic.png_bytes(Image.new("L", (90, 40), 255)),
                                                     "image/png")})
    assert blank.status_code == 422 and "error" in blank.json()
    assert client.post("/api/read", json={"image": "***"}).status_code == 422
    assert client.post("/api/read", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    assert "/api/read" in client.get("/openapi.json").json()["paths"]


def test_the_readme_example_reads_2026(model):
    from pathlib import Path

    assert model.read(Path(__file__).parent.parent / "docs" / "number-2026.jpg").text == "2026"


def test_a_large_jpeg_is_decoded_reduced_and_boxed_in_its_own_pixels():
    import io

    from PIL import Image

    from digitrec.imaging.decode import open_image
    from digitrec.inference.engine import load_predictor

    photo = Image.open(Path(__file__).parent.parent / "docs" / "number-2026.jpg")
    big = io.BytesIO()
    photo.resize((photo.width * 4, photo.height * 4)).save(big, format="JPEG", quality=92)
    decoded = open_image(big.getvalue())
    assert decoded.size[0] < photo.width * 4  # the decoder drafted it smaller
    predictor = load_predictor()
    small, large = predictor.read(photo), predictor.read(big.getvalue())
    assert small.text == large.text == "2026"
    for a, b in zip(small.digits, large.digits, strict=True):
        assert all(abs(4 * u - v) <= 24 for u, v in zip(a.box, b.box, strict=True)), (a.box, b.box)


def test_where_both_readers_find_as_many_digits_each_digit_goes_to_the_surer_one():
    from digitrec.reading.line import LineDigit
    from digitrec.reading.numbers import DigitReading, Reading, _digit_by_digit

    crops = np.zeros((3, 28, 28), np.uint8)
    segmented = Reading("171", 0.5, [DigitReading(1, 0.99, [0, 0, 5, 9]), DigitReading(7, 0.55, [6, 0, 11, 9]),
                                     DigitReading(1, 0.97, [12, 0, 17, 9])], rejected=1, crops=crops)
    line = [LineDigit(1, 0.99, 0, 1), LineDigit(1, 0.95, 2, 3), LineDigit(7, 0.80, 4, 5)]
    merged = _digit_by_digit(segmented, line)
    # Second digit: the line model is surer (0.95 vs 0.55); third: segmentation is (0.97 vs 0.80).
    assert merged.text == "111" and merged.rejected == 1 and merged.crops is crops
    assert [d.box for d in merged.digits] == [d.box for d in segmented.digits]  # segmentation's exact boxes
    assert merged.confidence == pytest.approx(0.99 * 0.95 * 0.97, abs=1e-5)


def test_a_run_of_atoms_with_paper_between_them_or_over_two_heights_wide_is_no_likely_digit():
    from digitrec.reading.numbers import _Atom, _may_be_one_digit

    def atom(x0, x1):  # a piece of ink 20 px high; a run's atoms come left to right by their middles
        return _Atom(0, x0, x1, 0, 20, np.ones((20, x1 - x0), bool))

    assert _may_be_one_digit([atom(0, 10), atom(8, 16)], 20.0)  # a 5's detached top over its body
    assert _may_be_one_digit([atom(0, 10), atom(10, 16)], 20.0)  # touching at a column: no paper between
    assert not _may_be_one_digit([atom(0, 10), atom(11, 16)], 20.0)  # a column of paper between them
    assert _may_be_one_digit([atom(0, 12), atom(11, 16), atom(15, 40)], 20.0)  # 40 px: two heights exactly
    assert not _may_be_one_digit([atom(0, 12), atom(11, 16), atom(15, 41)], 20.0)  # over two heights wide


def test_where_no_likely_candidate_splits_a_line_every_run_is_read(model):
    """Two blots, each refused alone as no digit: only the run of both, with paper between them, reads. It is no
    likely candidate (`_may_be_one_digit`), so segmentation reads it once the likely ones make no split, as it read
    every run before: the line is read, not refused."""
    from digitrec.reading.numbers import read_number

    picture = Image.new("L", (200, 120), 255)
    draw = ImageDraw.Draw(picture)
    draw.rectangle([20, 20, 70, 100], fill=0)
    draw.rectangle([110, 20, 160, 100], fill=0)
    reading = read_number(picture, model, None)  # segmentation alone
    assert len(reading.digits) == 1 and reading.digits[0].box == [20, 20, 161, 101]


def test_where_likely_candidates_split_a_line_the_others_are_not_read(model, monkeypatch):
    """A spaced 4-digit number: its digits are atoms with paper between them, so only single atoms and runs
    without a gap are read, in one batch, and the runs across two digits never reach the network."""
    from digitrec.reading import numbers

    pictures, _ = synthetic.drawn_digits(4, seed=5, size=112)
    ink = synthetic.number_ink([255 - np.asarray(p) for p in pictures], (0.3, 0.5), np.random.default_rng(2))
    batches = []
    logits = model.logits
    monkeypatch.setattr(model, "logits", lambda images: batches.append(len(images)) or logits(images))
    reading = numbers.read_number(Image.fromarray(255 - ink), model, None)
    atoms, height = numbers._atoms(numbers.ink_map(Image.fromarray(255 - ink), numbers.WORK_HEIGHT)[0])
    every_run = sum(min(len(atoms), i + numbers.MAX_ATOMS) - i for i in range(len(atoms)))
    assert len(reading.digits) == 4 and len(batches) == 1 and batches[0] < every_run

def _in_shadow(picture: Image.Image, angle: float, offset: float, dark: float) -> Image.Image:
    """The picture as photographed with a shadow's straight edge across it: the far side `dark` darker."""
    page = np.asarray(picture, np.float32) * 0.85 + 20
    h, w = page.shape
    ys, xs = np.mgrid[0:h, 0:w]
    across = np.cos(angle) * (xs - w / 2) + np.sin(angle) * (ys - h / 2) - offset * w
    return Image.fromarray(np.clip(page * np.where(across > 0, 1 - dark, 1), 0, 255).astype(np.uint8))


def test_a_shadows_edge_across_a_line_of_digits_is_not_read_as_ink(model):
    # Lines under 129 px tall: the edge was read as strokes (2026 as 20216, 8097 as 80818211).
    for seed, text in enumerate(["2026", "8097", "1789"]):
        picture = number_picture(text, seed=10 + seed, height=70)
        for angle, offset in ((0.3, 0.0), (1.2, 0.05), (2.0, -0.1), (np.pi / 2, 0.0)):
            assert model.read(_in_shadow(picture, angle, offset, 0.35)).text == text, (text, angle)


def _value_with_dot(text: str = "15", seed: int = 3) -> tuple[Image.Image, int]:
    """A drawn number with a dot on the baseline between its first two digits -> (picture, the dot's x)."""
    picture = number_picture(text, seed=seed, gap=0.6)
    ink = np.asarray(picture) < 128
    columns = np.flatnonzero(ink.any(axis=0))
    gaps = np.flatnonzero(np.diff(columns) > 20)
    x = int((columns[gaps[0]] + columns[gaps[0] + 1]) // 2)
    bottom = int(np.flatnonzero(ink[:, columns[0] : columns[gaps[0]] + 1].any(axis=1))[-1])
    draw = ImageDraw.Draw(picture)
    draw.ellipse((x - 7, bottom - 13, x + 7, bottom + 1), fill=0)
    return picture, x


class _SignReader:
    """A line model made to read a '.' (at `sure`) in the paper between the first two digits it reads (its own
    signs taken for paper): what a line model with signs answers, to check that `read` puts the sign where it
    was read, whatever the bundled line models read. It has no sign reader beside it."""

    signs = None

    def __init__(self, line_model, sure: float = 0.93):
        self.inner, self.sure = line_model, sure

    def probabilities(self, strip: np.ndarray) -> np.ndarray:
        from digitrec.reading.line import CHARS, LINE_CLASSES, decode, digits_only

        p = digits_only(self.inner.probabilities(strip))
        wide = np.zeros((len(p), LINE_CLASSES), np.float32)
        wide[:, :10], wide[:, -1] = p[:, :10], p[:, 10]
        first, second = decode(p)[:2]
        frame = (first.last_frame + second.first_frame) // 2
        wide[frame] = 0.0
        wide[frame, CHARS.index(".")] = self.sure
        wide[frame, -1] = 1 - self.sure
        return wide


@pytest.fixture
def sign_reader(monkeypatch):
    """Every predictor's line model reads a dot between its first two digits (`_SignReader`)."""
    from digitrec.inference.engine import Engine
    from digitrec.reading.line import LineModel

    monkeypatch.setattr(Engine, "line_model", property(lambda self: _SignReader(LineModel.of_run(self.path))))


def test_a_sign_the_line_model_reads_is_put_between_the_digits_with_its_box(sign_reader):
    from digitrec.inference.engine import load_predictor

    predictor = load_predictor()
    picture, x = _value_with_dot("15")
    reading = predictor.read(picture)
    assert reading.text == "1.5" and [d.digit for d in reading.digits] == [1, ".", 5]
    dot = reading.digits[1]
    assert dot.confidence == pytest.approx(0.93, abs=1e-5)
    assert dot.box[0] <= x <= dot.box[2] and dot.box[2] - dot.box[0] < 40  # the dot's own ink
    assert reading.digits[0].box[2] <= dot.box[0] and dot.box[2] <= reading.digits[2].box[0]
    assert reading.rejected == 0 and len(reading.crops) == 3
    assert reading.confidence == pytest.approx(np.prod([d.confidence for d in reading.digits]), abs=1e-5)
    only = predictor.read(picture, digits_only=True)
    assert only.text == "15" and len(only.digits) == 2 and only.rejected == 1


def test_digits_only_on_the_cli_and_the_api(sign_reader, tmp_path, capsys):
    from fastapi.testclient import TestClient
    from test_cli import run_main

    from digitrec.inference.engine import Predictor
    from digitrec.serving.app import create_app

    picture, _ = _value_with_dot("15")
    picture.save(tmp_path / "value.png")
    code, out, _ = run_main(capsys, "read", str(tmp_path / "value.png"), "--json")
    assert code == 0 and json.loads(out)[0]["text"] == "1.5" and json.loads(out)[0]["digits"][1]["digit"] == "."
    code, out, _ = run_main(capsys, "read", str(tmp_path / "value.png"), "--json", "--digits-only")
    assert code == 0 and json.loads(out)[0]["text"] == "15"
    client = TestClient(create_app(Predictor.load()))
    png = synthetic.png_bytes(picture)
    assert client.post("/api/read", files={"file": ("v.png", png, "image/png")}).json()["text"] == "1.5"
    assert client.post("/api/read?digits_only=1", files={"file": ("v.png", png, "image/png")}).json()["text"] == "15"


def test_the_sign_reader_stands_only_where_it_reads_a_sign_surely():
    """Beside the digits' line model, a sign reader's reading stands where it reads a sign at SIGN_SURE or more;
    a sign read less surely leaves the line to the digits' line model (a plain number reads as without it)."""
    from digitrec.inference.engine import load_predictor
    from digitrec.reading.line import LineModel
    from digitrec.reading.numbers import SIGN_SURE, read_number

    predictor = load_predictor()
    picture, _ = _value_with_dot("15")
    digits = LineModel.of_run(predictor.path)
    digits.signs = None
    alone = read_number(picture, predictor, digits)
    for sure, want in ((SIGN_SURE + 0.03, "1.5"), (SIGN_SURE - 0.2, alone.text)):
        pair = LineModel.of_run(predictor.path)
        pair.signs = _SignReader(digits, sure)
        assert read_number(picture, predictor, pair).text == want
        assert read_number(picture, predictor, pair, digits_only=True).confidence == alone.confidence
    # The doubt stays: a reading without the sign is as sure as the sign reader is that there is none.
    assert read_number(picture, predictor, pair).confidence == pytest.approx(
        alone.confidence * (1 - (SIGN_SURE - 0.2)), abs=1e-5)


def test_signs_that_make_no_value_leave_the_line_to_the_digits():
    """A sign read surely stands only where it makes a value: a point before three digits is an amount
    (`1.234`), before four it is no value people write (`1.2345`: a flagged 1 or a speck read as a sign), and
    the digits' line model reads the line."""
    from digitrec.inference.engine import load_predictor
    from digitrec.reading.line import LineModel
    from digitrec.reading.numbers import read_number

    predictor = load_predictor()
    digits = LineModel.of_run(predictor.path)
    digits.signs = None
    for text, want in (("1234", "1.234"), ("12345", None)):
        picture, _ = _value_with_dot(text)
        alone = read_number(picture, predictor, digits).text
        pair = LineModel.of_run(predictor.path)
        pair.signs = _SignReader(digits, 0.99)
        assert read_number(picture, predictor, pair).text == (want or alone)
        assert "." not in alone


def test_a_run_has_a_sign_reader_only_with_lines_signs(tmp_path):
    """No lines/signs/: no sign reader. One that reads no signs (11 classes), or one without the line model it
    sits beside: one clear error naming it, not a run that reads every line twice or ignores it."""
    import shutil

    from digitrec.inference.runs import BUNDLED_DIR
    from digitrec.reading.line import LineModel

    digits_model = BUNDLED_DIR / "lines" / "line.onnx"
    (tmp_path / "lines" / "signs").mkdir(parents=True)
    shutil.copyfile(digits_model, tmp_path / "lines" / "line.onnx")
    assert LineModel.of_run(tmp_path).signs is None
    shutil.copyfile(digits_model, tmp_path / "lines" / "signs" / "line.onnx")
    with pytest.raises(DigitrecError, match="reads no signs") as refused:
        LineModel.of_run(tmp_path)
    assert refused.value.where.endswith("signs/line.onnx")
    (tmp_path / "lines" / "line.onnx").unlink()
    with pytest.raises(DigitrecError, match="without the line model"):
        LineModel.of_run(tmp_path)


class _NoDigitsReader:
    signs = None

    def probabilities(self, strip: np.ndarray) -> np.ndarray:
        from digitrec.core.errors import NoDigitError

        raise NoDigitError("no digits found")


def test_a_sign_reader_that_finds_nothing_leaves_the_line_to_the_digits():
    from digitrec.inference.engine import load_predictor
    from digitrec.reading.line import LineModel
    from digitrec.reading.numbers import read_number

    predictor = load_predictor()
    picture, _ = _value_with_dot("15")
    pair = LineModel.of_run(predictor.path)
    pair.signs = None
    want = read_number(picture, predictor, pair).text
    pair.signs = _NoDigitsReader()
    assert read_number(picture, predictor, pair).text == want


class _BrokenReader:
    signs = None
    path = "RUN/lines/signs/line.onnx"

    def probabilities(self, strip: np.ndarray) -> np.ndarray:
        raise DigitrecError("the line model cannot read a strip 96 pixels wide", where=self.path)


def test_a_sign_reader_that_cannot_read_says_so():
    """A sign reader that fails on every line (a model made for other strips) is no reason to read digits
    alone without a word: the read fails in one line naming it."""
    from digitrec.inference.engine import load_predictor
    from digitrec.reading.line import LineModel
    from digitrec.reading.numbers import read_number

    predictor = load_predictor()
    picture, _ = _value_with_dot("15")
    pair = LineModel.of_run(predictor.path)
    pair.signs = _BrokenReader()
    with pytest.raises(DigitrecError, match="cannot read a strip") as failed:
        read_number(picture, predictor, pair)
    assert failed.value.where.endswith("signs/line.onnx")
    assert read_number(picture, predictor, pair, digits_only=True).text == "15"  # digits alone: no sign reader


def test_two_signs_read_side_by_side_are_one_the_surest():
    from digitrec.reading.numbers import DigitReading, _one_sign_between_digits

    crop = np.zeros((28, 28), np.uint8)
    chars = [(0, DigitReading(2, 0.99, [0, 0, 5, 9]), crop), (1, DigitReading("-", 0.4, [6, 3, 9, 5]), crop),
             (2, DigitReading("/", 0.9, [6, 0, 10, 10]), crop), (3, DigitReading(0, 0.98, [11, 0, 16, 9]), crop),
             (4, DigitReading(".", 0.8, [17, 8, 18, 9]), crop), (5, DigitReading(5, 0.97, [19, 0, 24, 9]), crop)]
    assert [c[1].digit for c in _one_sign_between_digits(chars)] == [2, "/", 0, ".", 5]


def _drawn_value(text: str, seed: int) -> bytes:
    """A value written with pen-drawn digits (not MNIST's) and the project's signs, on white paper (PNG)."""
    from digitrec.data.signs import value_ink
    from digitrec.imaging.fit import to_mnist

    rng = np.random.default_rng(seed)
    items = [c if not c.isdigit() else to_mnist(synthetic.render_strokes(*synthetic.digit_strokes(int(c), rng, 200),
                                                                         200)) for c in text]
    payload, _ = synthetic.number_on_paper(value_ink(items, (0.3, 0.6), rng, size=(40, 60), slant=0.1), rng,
                                           photographed=False)
    return payload


@pytest.mark.slow
def test_the_bundled_model_reads_signs_in_drawn_values(model):
    assert model.line_model.signs is not None, "the bundle lost its sign reader (bundled/lines/signs/)"
    texts = ["12.50", "-3", "24/12", "14:05", "1,250", "2026-12-05", "05.12.26", "-12.6"]
    readings = [model.read(_drawn_value(text, seed)) for seed, text in enumerate(texts)]
    right = [r.text == t for r, t in zip(readings, texts, strict=True)]
    assert sum(right) >= 6, [r.text for r in readings]
    for reading, ok in zip(readings, right, strict=True):
        if not ok:
            continue
        for n, d in enumerate(reading.digits):
            assert len(d.box) == 4 and 0 < d.confidence <= 1
            if isinstance(d.digit, str) and 0 < n < len(reading.digits) - 1:  # a sign between its neighbours
                assert reading.digits[n - 1].box[0] < d.box[0] + 2 and d.box[2] < reading.digits[n + 1].box[2] + 2
    assert model.read(_drawn_value("12.50", 0), digits_only=True).text == "1250"
