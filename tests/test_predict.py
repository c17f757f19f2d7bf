import numpy as np
import pytest
from PIL import Image

from digitrec import DigitrecError, load_model
from digitrec.data import synthetic


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_python_api_takes_arrays_pil_images_and_paths(model, digits, tmp_path):
    x, y = digits["test"].x[:200], digits["test"].y[:200]
    assert (model.predict(x) == y).mean() >= 0.99
    assert model.predict(x[0]).tolist() == [y[0]]
    probabilities = model.predict_proba(x[:5])
    assert probabilities.shape == (5, 10) and np.allclose(probabilities.sum(1), 1, atol=1e-5)

    images, labels = synthetic.drawn_digits(10, seed=3)
    assert model.predict(images).tolist() == labels.tolist()
    path = tmp_path / "four.png"
    images[4].save(path)
    assert model.predict(path).tolist() == [4]
    assert model.predict(str(path)).tolist() == [4]
    big = np.asarray(images[7])  # a 280x280 picture array goes through preprocessing too
    assert model.predict(big).tolist() == [7]


def test_arrays_in_any_range_are_read_as_the_same_digits(model, digits):
    # Libraries hand digits over as 0-1 floats, -1..1, 0-16 counts or booleans: an array carries no scale of
    # its own, so it is read on its own range, not taken for a blank page (every one of these was "blank").
    x, y = digits["test"].x[:40], digits["test"].y[:40]
    as_uint8 = model.predict(x)
    assert (as_uint8 == y).mean() >= 0.95
    assert model.predict(x / 255.0).tolist() == as_uint8.tolist()  # 28x28 MNIST floats: taken as they are
    big = np.stack([np.asarray(Image.fromarray(a).resize((56, 56), Image.Resampling.BILINEAR)) for a in x])
    as_picture = model.predict(big)
    assert (as_picture == y).mean() >= 0.95
    for levels in (big / 255.0, big / 127.5 - 1, big.astype(np.uint16) * 257, np.round(big / 16).astype(int)):
        assert (model.predict(levels) == as_picture).mean() >= 0.95
    assert (model.predict(big > 127) == y).mean() >= 0.9
    with pytest.raises(DigitrecError, match="blank"):
        model.predict(np.full((56, 56), 0.5))
    with pytest.raises(DigitrecError, match="finite"):
        model.predict(np.full((56, 56), np.nan))
    with pytest.raises(DigitrecError, match="complex"):
        model.predict(np.zeros((56, 56), complex))


def test_blank_picture_is_refused(model):
    with pytest.raises(DigitrecError, match="blank"):
        model.predict(Image.new("L", (64, 64), 255))


def test_missing_run_folder(tmp_path):
    with pytest.raises(DigitrecError, match="no such run folder"):
        load_model(tmp_path / "nothing")


def test_onnx_engine_agrees_with_pytorch(digits):
    from digitrec.inference.engine import OnnxPredictor, Predictor, load_predictor

    onnx_engine = load_predictor()  # the bundled run ships a model.onnx
    assert isinstance(onnx_engine, OnnxPredictor)
    torch_engine = load_predictor(engine="torch")
    assert isinstance(torch_engine, Predictor)
    x = digits["test"].x
    onnx_probs, torch_probs = onnx_engine.probabilities(x), torch_engine.probabilities(x)
    assert (onnx_probs.argmax(1) == torch_probs.argmax(1)).all()
    assert np.abs(onnx_probs - torch_probs).max() < 1e-4
    assert np.allclose(onnx_probs.sum(1), 1, atol=1e-5)


def test_both_engines_give_the_same_answers_on_arrays_paths_bytes_and_folders(digits, tmp_path):
    from digitrec.inference.engine import OnnxPredictor, Predictor

    onnx_engine, torch_engine = load_model(engine="onnx"), load_model(engine="torch")
    assert isinstance(onnx_engine, OnnxPredictor) and isinstance(torch_engine, Predictor)
    images, labels = synthetic.drawn_digits(6, seed=5)
    for i, image in enumerate(images):
        image.save(tmp_path / f"{i}.png")
    x = digits["test"].x[:100]
    inputs = {"array": x, "one 28x28 array": x[0], "path": tmp_path / "2.png", "str path": str(tmp_path / "3.png"),
              "bytes": (tmp_path / "4.png").read_bytes(), "PIL image": images[5], "folder": tmp_path,
              "a list of them": [tmp_path / "0.png", images[1], (tmp_path / "2.png").read_bytes()]}
    for name, pictures in inputs.items():
        onnx_digits, torch_digits = onnx_engine.predict(pictures), torch_engine.predict(pictures)
        assert onnx_digits.tolist() == torch_digits.tolist(), name
        assert np.abs(onnx_engine.predict_proba(pictures) - torch_engine.predict_proba(pictures)).max() < 1e-4, name
    assert onnx_engine.predict(tmp_path).tolist() == labels.tolist()  # a folder: its pictures in listing order
    assert onnx_engine.predict(inputs["bytes"]).tolist() == [4]
    assert [r.text for r in onnx_engine.read(tmp_path)] == [r.text for r in torch_engine.read(tmp_path)]
    assert onnx_engine.read(inputs["bytes"]).text == torch_engine.read(tmp_path / "4.png").text == "4"


def test_an_engine_gives_only_logits_and_gets_the_whole_api(tmp_path):
    from digitrec.inference import runs
    from digitrec.inference.engine import Engine

    class Fixed(Engine):  # answers 7 for every picture, twice as sure at temperature 0.5
        def __init__(self):
            self.path, self.config = runs.BUNDLED_DIR, runs.RunConfig(name="fixed", arch="x", temperature=0.5)

        def logits(self, images):
            return np.tile(np.eye(10, dtype=np.float32)[7], (len(images), 1))

    images, _ = synthetic.drawn_digits(3, seed=2)
    for i, image in enumerate(images):
        image.save(tmp_path / f"{i}.png")
    engine = Fixed()
    assert engine.predict(tmp_path).tolist() == [7, 7, 7]
    p = engine.predict_proba(np.zeros((2, 28, 28), np.uint8))
    assert np.allclose(p[:, 7], np.exp(2) / (np.exp(2) + 9)) and np.allclose(p.sum(1), 1)
    assert engine.probabilities(np.zeros((0, 28, 28), np.uint8)).shape == (0, 10)


def _copy_bundled(tmp_path):
    import shutil

    from digitrec.inference import runs

    run = tmp_path / "run"
    shutil.copytree(runs.BUNDLED_DIR, run)
    return run


def test_stale_onnx_file_is_refused(tmp_path):
    from digitrec.inference.engine import load_predictor

    run = _copy_bundled(tmp_path)
    weights = run / "model.safetensors"
    payload = bytearray(weights.read_bytes())
    payload[-1] ^= 1  # other weights (one bit of the last float)
    weights.write_bytes(bytes(payload))
    with pytest.raises(DigitrecError, match="exported from other weights"):
        load_predictor(run)


def test_onnx_engine_needs_an_onnx_file(tmp_path):
    from digitrec.inference.engine import Predictor, load_predictor

    run = _copy_bundled(tmp_path)
    (run / "model.onnx").unlink()
    assert isinstance(load_predictor(run), Predictor)  # auto falls back to PyTorch
    with pytest.raises(DigitrecError, match="no model.onnx"):
        load_predictor(run, engine="onnx")
    (run / "model.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(DigitrecError, match="unreadable ONNX model"):
        load_predictor(run, engine="onnx")


def test_predicting_pictures_and_csv_never_imports_torch(tmp_path, digits):
    import subprocess
    import sys

    from conftest import write_kaggle_csv

    csv = write_kaggle_csv(tmp_path / "test.csv", digits["test"].x[:50], None)
    images, _ = synthetic.drawn_digits(3, seed=1)
    for i, image in enumerate(images):
        image.save(tmp_path / f"{i}.png")
    script = (
        "import sys; from digitrec.cli import main\n"
        f"assert main(['predict', {str(csv)!r}, '--out', {str(tmp_path / 'sub.csv')!r}]) == 0\n"
        f"assert main(['predict', {str(tmp_path / '0.png')!r}]) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "sub.csv").read_text().splitlines()) == 51
