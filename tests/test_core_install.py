"""The core install (`pip install digitrec`, no PyTorch): predict, read, the page's API, data checks, evaluate and
report run on onnxruntime; every verb that needs PyTorch refuses in one line naming the train extra, exit 2.

Each check runs in a fresh interpreter where `import torch` fails as it does when torch is not installed (a
meta-path finder refuses it), so nothing this test process imported stands in for it. `.ci/core-install` checks
the same verbs in a real venv without torch."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_kaggle_csv

ROOT = Path(__file__).parent.parent
REFUSAL = 'needs PyTorch (expected pip install "digitrec[train]")'

# Refuses the top-level packages named in $NOT_INSTALLED (default torch) as if they were not installed.
NO_TORCH = """
import importlib.abc, os, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in os.environ.get("NOT_INSTALLED", "torch").split(","):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NotInstalled())
"""

# Runs each argv through digitrec's main() and prints {rc, out, err} per call as JSON, then whether torch (or
# pandas or matplotlib, which left the core too) was imported after all.
DRIVER = NO_TORCH + """
import contextlib, io, json, traceback
from digitrec.cli import main

results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
        except BaseException:
            rc = "traceback"
            traceback.print_exc(file=err)
    results.append({"rc": rc, "out": out.getvalue(), "err": err.getvalue()})
print(json.dumps({"results": results, **{name: name in sys.modules for name in ("torch", "pandas", "matplotlib")}}))
"""


def _run(script: str, *args: str, missing: str = "torch") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "NOT_INSTALLED": missing})


def _cli(calls: list[list[str]], missing: str = "torch") -> dict:
    result = _run(DRIVER, json.dumps(calls), missing=missing)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_torch_is_really_blocked():
    result = _run(NO_TORCH + "import torch")
    assert result.returncode != 0 and "No module named 'torch'" in result.stderr


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every verb that needs PyTorch, run where it is missing; the folders they name must stay unmade."""
    tmp = tmp_path_factory.mktemp("refusals")
    run_without_onnx = tmp / "run"
    shutil.copytree(ROOT / "src" / "digitrec" / "bundled", run_without_onnx)
    (run_without_onnx / "model.onnx").unlink()
    (tmp / "examples").mkdir()
    calls = {
        "train": ["train", "--out", str(tmp / "new-run")],
        "train-lines": ["train-lines", "--out", str(tmp / "lines")],
        "tune": ["tune", "--data", str(tmp / "examples"), "--out", str(tmp / "tuned")],
        "export": ["export", "--out", str(tmp / "model.onnx")],
        "ensemble": ["ensemble", str(run_without_onnx), str(run_without_onnx), "--out", str(tmp / "ensemble")],
        "sweep": ["sweep", "--space", "lr=0.1,0.2", "--trials", "2", "--out", str(tmp / "sweep")],
        "models": ["models"],
        "serve --tune-every": ["serve", "--collect", str(tmp / "collected"), "--tune-every", "5"],
        "engine": ["predict", str(ROOT / "examples"), "--engine", "torch"],
        "no-onnx": ["read", str(ROOT / "examples"), "--model", str(run_without_onnx)],
    }
    found = _cli(list(calls.values()))
    return tmp, run_without_onnx, dict(zip(calls, found["results"], strict=True)), found


@pytest.mark.parametrize("verb", ["train", "train-lines", "tune", "export", "ensemble", "sweep", "models",
                                  "serve --tune-every"])
def test_a_verb_that_needs_torch_refuses_in_one_line(refusals, verb):
    tmp, _, results, _ = refusals
    result = results[verb]
    assert result["rc"] == 2 and result["out"] == ""
    assert result["err"] == f"digitrec: error: {verb}: {REFUSAL}\n"
    assert sorted(p.name for p in tmp.iterdir()) == ["examples", "run"]  # nothing made before the refusal


def test_the_torch_engine_and_a_run_without_onnx_say_what_is_missing(refusals):
    _, run, results, found = refusals
    assert results["engine"]["rc"] == 2 and results["no-onnx"]["rc"] == 2
    bundled = ROOT / "src" / "digitrec" / "bundled"
    assert results["engine"]["err"] == (f"digitrec: error: {bundled}: the torch engine needs PyTorch "
                                        '(expected pip install "digitrec[train]")\n')
    assert results["no-onnx"]["err"] == (f"digitrec: error: {run}: has no model.onnx: reading it needs PyTorch "
                                         '(expected pip install "digitrec[train]")\n')
    assert not found["torch"]


def test_predict_read_and_data_check_run_without_torch_or_pandas(tmp_path, tiny_digits):
    clean = write_kaggle_csv(tmp_path / "train.csv", tiny_digits.x[:20], tiny_digits.y[:20])  # every digit twice
    lines = clean.read_text().splitlines()
    lines[3] = lines[3].replace(",0,", ",abc,", 1)
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    found = _cli([["predict", "examples"], ["read", "docs/number-2026.jpg"], ["data", "check", str(clean)],
                  ["data", "check", str(tmp_path / "bad.csv")]])
    predict, read, check, bad = found["results"]
    assert predict["rc"] == 0 and predict["err"] == ""
    rows = [line.split() for line in predict["out"].splitlines()[2:]]
    assert len(rows) == 20 and all(row[1] == row[0].split("-")[1][0] for row in rows)  # drawn-7.png: 7
    assert read["rc"] == 0 and "number-2026.jpg  2026" in read["out"]
    assert check["rc"] == 0 and check["out"].splitlines()[-1] == "clean"
    assert bad["rc"] == 2 and (f"problem: {tmp_path / 'bad.csv'}, line 4, column 'pixel0': 'abc' is not a number "
                               "(expected an integer 0-255)") in bad["out"].splitlines()
    assert not found["torch"] and not found["pandas"]


@pytest.mark.slow
def test_evaluate_and_report_score_on_onnxruntime_without_torch(tmp_path, tiny_digits):
    csv = write_kaggle_csv(tmp_path / "train.csv", tiny_digits.x, tiny_digits.y)
    run = tmp_path / "run"
    shutil.copytree(ROOT / "src" / "digitrec" / "bundled", run)
    found = _cli([["evaluate", "--data", str(csv), "--json"], ["report", "--model", str(run), "--data", str(csv)]])
    evaluate, report = found["results"]
    assert evaluate["rc"] == 0, evaluate["err"]
    assert json.loads(evaluate["out"])["n"] == 50 and json.loads(evaluate["out"])["accuracy"] >= 0.9
    assert report["rc"] == 0, report["err"]
    assert (run / "report.html").stat().st_size > 10_000 and (run / "confusion_test.png").exists()
    assert not found["torch"]


PYTHON_API = NO_TORCH + """
import numpy as np
from PIL import Image
import digitrec
from digitrec.data import synthetic
from fastapi.testclient import TestClient
from digitrec.serving.app import app_from_environment

model = digitrec.load_model()
images, labels = synthetic.drawn_digits(10, seed=3)
assert model.predict(images).tolist() == labels.tolist()
assert model.predict(np.asarray(images[4])).tolist() == [4]
assert model.predict("examples/drawn-7.png").tolist() == [7]
assert model.predict("examples").tolist() == [int(n) for n in "01234567890123456789"]
probabilities = model.predict_proba(["examples/photo-3.jpg", "examples/drawn-0.png"])
assert probabilities.shape == (2, 10) and probabilities.argmax(1).tolist() == [3, 0]
assert model.read("docs/number-2026.jpg").text == "2026"
assert [r.text for r in model.read("examples")] == list("01234567890123456789")

client = TestClient(app_from_environment(), base_url="http://localhost")
digit = client.post("/api/predict", content=synthetic.png_bytes(images[0]), headers={"content-type": "image/png"})
assert digit.status_code == 200 and digit.json()["digit"] == labels[0], digit.text
with open("docs/number-2026.jpg", "rb") as f:
    number = client.post("/api/read", content=f.read(), headers={"content-type": "image/jpeg"})
assert number.status_code == 200 and number.json()["text"] == "2026", number.text
try:
    digitrec.tune("examples", "tuned")
    raise AssertionError("tune ran without torch")
except digitrec.DigitrecError as e:
    assert str(e) == 'digitrec.tune: needs PyTorch (expected pip install "digitrec[train]")', str(e)
assert "torch" not in sys.modules and "pandas" not in sys.modules
print("ok")
"""


def test_the_python_api_and_the_server_run_without_torch():
    result = _run(PYTHON_API)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


@pytest.mark.slow
def test_without_matplotlib_report_draws_no_figure_and_data_plots_name_the_extra(tmp_path, tiny_digits):
    csv = write_kaggle_csv(tmp_path / "train.csv", tiny_digits.x[:20], tiny_digits.y[:20])
    run = tmp_path / "run"
    shutil.copytree(ROOT / "src" / "digitrec" / "bundled", run)
    found = _cli([["report", "--model", str(run), "--data", str(csv)],
                  ["data", "check", str(csv), "--plots", str(tmp_path / "figures")]], missing="torch,matplotlib")
    report, plots = found["results"]
    assert report["rc"] == 0, report["err"]
    page = (run / "report.html").read_text()
    assert "No figures of this evaluation: drawing them needs matplotlib (<code>pip install &quot;digitrec[plots]" \
        in page
    assert not (run / "confusion_test.png").exists()
    assert plots["rc"] == 2 and plots["out"] == ""
    assert plots["err"] == ('digitrec: error: data check --plots: needs matplotlib to draw figures '
                            '(expected pip install "digitrec[plots]")\n')
    assert not (tmp_path / "figures").exists()
    assert not found["torch"] and not found["matplotlib"]
