import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from digitrec.inference.engine import Predictor
from digitrec.inference.export import export_onnx
from digitrec.inference.runs import ENSEMBLE, RunConfig
from digitrec.models import architectures


def _runtime(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_bundled_model_in_onnxruntime_matches_pytorch(tmp_path, mnist):
    predictor = Predictor.load()
    path = export_onnx(predictor, tmp_path / "model.onnx")
    test = mnist["test"]
    x = test.x.reshape(-1, 1, 28, 28).astype(np.float32) / 255
    onnx_logits = np.concatenate([_runtime(path).run(None, {"image": x[i : i + 2500]})[0]
                                  for i in range(0, len(x), 2500)])
    torch_probs = predictor.probabilities(test.x)
    # The exported graph gives logits; the run's fitted temperature turns them into its probabilities.
    onnx_probs = torch.softmax(torch.from_numpy(onnx_logits) / predictor.config.temperature, 1).numpy()
    assert (onnx_probs.argmax(1) == torch_probs.argmax(1)).all()
    assert np.abs(onnx_probs - torch_probs).max() < 1e-4
    assert (onnx_probs.argmax(1) == test.y).mean() >= 0.995

    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert json.loads(meta["test_accuracy"]) >= 0.995
    assert float(meta["temperature"]) == predictor.config.temperature
    assert "28" in meta["preprocessing"] and meta["digitrec_version"]
    inputs = _runtime(path).get_inputs()[0]
    assert inputs.name == "image" and inputs.shape[1:] == [1, 28, 28] and isinstance(inputs.shape[0], str)


@pytest.mark.parametrize("arch", architectures.list_models())
def test_every_architecture_exports(tmp_path, arch):
    torch.manual_seed(0)
    model = architectures.create_model(arch).eval()
    predictor = Predictor(model, RunConfig(name=arch, arch=arch), tmp_path / arch)
    path = export_onnx(predictor, tmp_path / f"{arch}.onnx")
    x = np.random.default_rng(0).random((7, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = _runtime(path).run(None, {"image": x})[0]
    assert got.shape == (7, 10)
    assert np.allclose(got, expected, atol=1e-4)


def test_ensemble_exports(tmp_path):
    members = [architectures.create_model("mlp").eval() for _ in range(2)]
    model = architectures.Ensemble(members).eval()
    path = export_onnx(Predictor(model, RunConfig(name="ens", arch=ENSEMBLE), tmp_path), tmp_path / "ens.onnx")
    x = np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        assert np.allclose(_runtime(path).run(None, {"image": x})[0], model(torch.from_numpy(x)).numpy(), atol=1e-4)


def test_an_onnx_file_whose_input_was_renamed_is_one_clear_error(tmp_path, capsys):
    import shutil

    import onnx

    from digitrec.cli import main
    from digitrec.inference.runs import BUNDLED_DIR

    run = tmp_path / "run"
    shutil.copytree(BUNDLED_DIR, run, ignore=shutil.ignore_patterns("lines"))
    model = onnx.load(run / "model.onnx")
    old = model.graph.input[0].name
    for node in model.graph.node:
        node.input[:] = ["renamed" if i == old else i for i in node.input]
    model.graph.input[0].name = "renamed"
    onnx.save(model, run / "model.onnx")
    assert main(["predict", "examples", "--model", str(run)]) == 2
    err = capsys.readouterr().err
    assert "model.onnx takes ['renamed']" in err and "Traceback" not in err
