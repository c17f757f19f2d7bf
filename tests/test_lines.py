"""The line model's strip, CTC decoding, its training verb and how `read` uses it."""

import json

import numpy as np
import pytest
from PIL import Image

from digitrec.cli import main
from digitrec.data import synthetic
from digitrec.imaging.ink import ink_map
from digitrec.imaging.stroke import stroke_width
from digitrec.reading.line import (
    BLANK,
    CHARS,
    DIGIT_HEIGHT,
    LINE_CLASSES,
    LINE_HEIGHT,
    STRIDE,
    LineModel,
    decode,
    digit_height,
    line_split,
    to_line,
)


def _probs(classes: list[int]) -> np.ndarray:
    p = np.full((len(classes), 11), 0.01, np.float32)
    for t, c in enumerate(classes):
        p[t, c] = 0.9
    return p


def test_ctc_decoding_merges_repeats_and_splits_on_blanks():
    b = BLANK
    digits = decode(_probs([b, 3, 3, b, 3, 1, 1, b, b, 7]))
    assert [d.digit for d in digits] == [3, 3, 1, 7]
    assert [(d.first_frame, d.last_frame) for d in digits] == [(1, 2), (4, 4), (5, 6), (9, 9)]
    assert decode(_probs([b, b, b])) == []
    assert all(abs(d.confidence - 0.9) < 1e-6 for d in digits)


def test_the_split_of_training_digits_is_fixed_and_disjoint():
    train, val = line_split(60_000)
    assert len(val) == 3000 and len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 60_000
    assert np.array_equal(val, line_split(60_000)[1])


def test_a_strip_has_mnist_proportions_whatever_the_pen(digits):
    rng = np.random.default_rng(0)
    for size in ((30, 40), (60, 90)):
        ink = synthetic.number_ink(list(digits["test"].x[:4]), (0.3, 0.5), rng, size=size)
        ink = np.pad(ink, 10)
        line = to_line(ink, digit_height(ink))
        assert line.pixels.shape[0] == LINE_HEIGHT and line.pixels.dtype == np.uint8
        rows = np.flatnonzero((line.pixels > 60).any(axis=1))
        assert DIGIT_HEIGHT - 4 <= rows[-1] - rows[0] + 1 <= LINE_HEIGHT
        assert 1.5 <= stroke_width(line.pixels / 255.0) <= 4.0
        # Column mapping: the strip's first inked column maps back near the ink map's first inked column.
        first_strip = np.flatnonzero((line.pixels > 60).any(axis=0))[0]
        first_ink = np.flatnonzero((ink > 0.3).any(axis=0))[0]
        frame = first_strip // STRIDE
        x0, x1 = line.ink_columns(frame, frame)
        assert x0 - 2 <= first_ink <= x1 + 2


def test_train_lines_writes_a_line_model_folder(tiny_line_model, capsys):
    folder, out = tiny_line_model
    assert {p.name for p in out.iterdir()} >= {"line.onnx", "line.safetensors", "config.json", "metrics.csv"}
    model = LineModel(out / "line.onnx")
    strip = np.zeros((LINE_HEIGHT, 96), np.uint8)
    probabilities = model.probabilities(strip)
    assert probabilities.shape == (96 // STRIDE, BLANK + 1) and np.allclose(probabilities.sum(1), 1, atol=1e-4)
    assert not (out / "line-checkpoint.pt").exists()  # a finished run keeps no checkpoint
    # A toy run of 100 lines is checked on 100 validation lines (the fewest), not the full run's 2,000.
    assert json.loads((out / "config.json").read_text())["settings"]["val_lines"] == 100
    # A finished folder is not trained over unasked.
    assert main(["train-lines", "--data", str(folder), "--out", str(out), "--lines", "100", "--epochs", "1"]) == 2
    assert "already holds a finished line model" in capsys.readouterr().err


@pytest.mark.slow
def test_train_lines_with_signs_reads_sixteen_classes_and_validates_on_values(tiny_line_model, tmp_path, capsys):
    folder, digits_only = tiny_line_model
    out = tmp_path / "signs"
    assert main(["train-lines", "--data", str(folder), "--out", str(out), "--lines", "100", "--epochs", "1",
                 "--signs", "--init", str(digits_only)]) == 0
    assert LineModel(out / "line.onnx").probabilities(np.zeros((LINE_HEIGHT, 96), np.uint8)).shape[1] == LINE_CLASSES
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["signs"] and {"val_plain_accuracy", "val_value_accuracy"} <= set(config)
    # A model that reads signs is not trained on as a digits-only one.
    assert main(["train-lines", "--data", str(folder), "--out", str(tmp_path / "back"), "--lines", "100",
                 "--epochs", "1", "--init", str(out)]) == 2
    assert "this line model reads signs" in capsys.readouterr().err


@pytest.mark.slow
def test_train_lines_starts_from_the_bundled_line_model(tmp_path, digits_dir):
    """The shipped line model has no safetensors, only its line.onnx: fine-tuning starts from that."""
    from digitrec.inference.runs import BUNDLED_DIR

    out = tmp_path / "tuned"
    assert main(["train-lines", "--data", str(digits_dir), "--out", str(out), "--lines", "100", "--epochs", "1",
                 "--init", str(BUNDLED_DIR / "lines")]) == 0
    assert LineModel(out / "line.onnx").classes() == BLANK + 1


@pytest.mark.parametrize("args, message", [
    (["--lines", "5"], "at least 100 lines"),
    (["--epochs", "0"], "at least 100 lines, 1 epoch"),
    (["--lr", "nan"], "a learning rate over 0"),
    (["--init", "/nonexistent"], "no line model here"),
    (["--one-pen", "1.5"], "a share of the lines, 0 to 1"),
    (["--one-pen", "nan"], "a share of the lines, 0 to 1"),
])
def test_train_lines_refuses_bad_settings(tmp_path, digits_dir, capsys, args, message):
    assert main(["train-lines", "--data", str(digits_dir), "--out", str(tmp_path / "l"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_read_uses_a_run_folders_line_model(tiny_line_model, tmp_path):
    """A run folder with lines/ is read with both readers; without, with segmentation alone."""
    import shutil

    from digitrec.inference.engine import load_predictor
    from digitrec.inference.runs import BUNDLED_DIR

    _, lines = tiny_line_model
    run = tmp_path / "run"
    shutil.copytree(BUNDLED_DIR, run, ignore=shutil.ignore_patterns("lines"))
    assert load_predictor(run).line_model is None
    shutil.copytree(lines, run / "lines")
    predictor = load_predictor(run)
    assert predictor.line_model is not None
    rng = np.random.default_rng(1)
    ink = synthetic.number_ink([synthetic_mnist(d, rng) for d in (4, 2)], (0.4, 0.6), rng)
    payload, _ = synthetic.number_on_paper(ink, rng, photographed=False)
    reading = predictor.read(payload)
    assert set(reading.text) <= set(CHARS) and len(reading.digits) == len(reading.text)  # a toy model's guess
    assert predictor.read(payload, digits_only=True).text.isdigit()


def synthetic_mnist(digit: int, rng) -> np.ndarray:
    from digitrec.imaging.fit import to_mnist

    return to_mnist(synthetic.hand_digit("quick", digit, rng, size=112))


def test_the_bundled_reader_reads_touching_and_overlapping_digits(digits):
    """The point of the line model: digits that touch or overlap, which segmentation cuts badly."""
    from digitrec.inference.engine import load_predictor

    predictor = load_predictor()
    rng = np.random.default_rng(11)
    right = 0
    for n in range(20):
        picks = rng.choice(len(digits["test"]), 4, replace=False)
        ink = synthetic.number_ink([digits["test"].x[i] for i in picks], (-0.15, 0.0), rng)
        payload, _ = synthetic.number_on_paper(ink, rng, photographed=n % 2 == 1)
        right += predictor.read(payload).text == "".join(str(digits["test"].y[i]) for i in picks)
    assert right >= 16, f"{right}/20"


def test_digit_height_ignores_marks():
    ink = np.zeros((100, 300), np.float32)
    ink[20:80, 10:20] = 1  # a digit-like bar 60 high
    ink[20:80, 60:70] = 1
    ink[70:76, 120:126] = 1  # a dot
    assert digit_height(ink) == 60
    picture = Image.fromarray((255 - ink * 255).astype(np.uint8))
    assert ink_map(picture, 96)[0].shape[0] == 100


def test_a_digits_only_line_model_still_loads_and_reads_digits(tmp_path):
    """A line model of eleven classes (ten digits and the blank, before signs) reads digits, never a sign."""
    import shutil

    import torch

    from digitrec.inference.engine import load_predictor
    from digitrec.inference.runs import BUNDLED_DIR
    from digitrec.models.architectures import LineReader
    from digitrec.training.lines import export_line_onnx

    run = tmp_path / "run"
    shutil.copytree(BUNDLED_DIR, run, ignore=shutil.ignore_patterns("lines"))
    torch.manual_seed(0)
    old = LineReader(classes=11)
    with torch.no_grad():
        old.classes.bias[:] = torch.tensor([0.0] * 10 + [-5.0])  # reads a digit in every column
    export_line_onnx(old, run / "lines")
    predictor = load_predictor(run)
    assert predictor.line_model.probabilities(np.zeros((LINE_HEIGHT, 64), np.uint8)).shape[1] == 11
    rng = np.random.default_rng(2)
    ink = synthetic.number_ink([synthetic_mnist(d, rng) for d in (4, 2, 7)], (0.4, 0.6), rng)
    payload, _ = synthetic.number_on_paper(ink, rng, photographed=False)
    reading = predictor.read(payload)
    assert reading.text.isdigit() and all(isinstance(d.digit, int) for d in reading.digits)


def test_training_starts_from_a_digits_only_model_widened_and_from_an_exported_one(tmp_path):
    """A digits-only model's digit and blank rows are kept (the blank moves last), its sign rows start
    near silent; and a bundled model, shipped as ONNX only, comes back as the same network in torch."""
    import torch

    from digitrec.models.architectures import LineReader
    from digitrec.reading.line import CHARS
    from digitrec.training.lines import export_line_onnx, line_reader_for, state_from_onnx, widened

    torch.manual_seed(1)
    old = LineReader(classes=11).eval()
    for module in old.modules():  # batch norms as training leaves them, not the identity they start as
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.bias.data.uniform_(-0.2, 0.2)
    rng = np.random.default_rng(3)
    strips = [to_line(np.pad(synthetic.number_ink([synthetic_mnist(int(d), rng) for d in rng.integers(0, 10, 3)],
                                                   (0.2, 0.4), rng), 8), 20.0).pixels for _ in range(6)]
    export_line_onnx(old, tmp_path)
    back = line_reader_for(state_from_onnx(tmp_path / "line.onnx", strips)).eval()
    x = torch.from_numpy(np.stack([strips[0]])[:, None].astype(np.float32) / 255)
    with torch.no_grad():
        assert torch.allclose(old(x).softmax(-1), back(x).softmax(-1), atol=1e-3)
    state = widened(old.state_dict())
    assert state["classes.weight"].shape[0] == len(CHARS) + 1 == LINE_CLASSES
    assert torch.equal(state["classes.weight"][:10], old.classes.weight[:10])
    assert torch.equal(state["classes.weight"][-1], old.classes.weight[BLANK])
    assert (state["classes.bias"][10:-1] < old.classes.bias[BLANK] - 3).all()
    new = line_reader_for(state).eval()
    with torch.no_grad():
        p_old, p_new = old(x).softmax(-1), new(x).softmax(-1)
    assert (p_old.argmax(-1) == torch.where(p_new.argmax(-1) == LINE_CLASSES - 1, BLANK, p_new.argmax(-1))).all()


def test_one_pen_redraws_a_value_with_one_stroke_width_and_keeps_its_text(digits):
    """With one pen, digits and signs are drawn alike (a slash cannot be told from a 1 by its pen): the same
    value, its strokes redrawn along their centre lines at one width; without, the line as composed."""
    from scipy import ndimage

    from digitrec.training.lines import value_line

    digits = digits["train"]
    by_label = [np.flatnonzero(digits.y == d) for d in range(10)]
    widths = {}
    for share in (0.0, 1.0):
        line = value_line(digits, by_label, np.random.default_rng(11), one_pen=share)
        assert line is not None
        strip, text = line
        widths[share] = ndimage.distance_transform_edt(strip > 100)[strip > 100]
        texts = widths.setdefault("text", text)
        assert text == texts
    assert np.std(widths[1.0]) < np.std(widths[0.0])  # one pen: strokes of one width
