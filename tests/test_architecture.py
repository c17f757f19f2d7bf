"""The layers of pyproject.toml's import-linter contracts: data flows one way, and a cycle fails the suite."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(package_parent: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, env=env, cwd=package_parent, timeout=120)


def test_imports_follow_the_layers():
    result = _lint(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_a_lower_room_importing_a_higher_one_breaks_the_contract(tmp_path):
    # Run folders (inference) importing the training loop would make a cycle: the contract must catch it.
    copy = tmp_path / "digitrec"
    shutil.copytree(ROOT / "src" / "digitrec", copy, ignore=shutil.ignore_patterns("bundled", "__pycache__"))
    runs = copy / "inference" / "runs.py"
    cycle = "\n\ndef _cycle():\n    from digitrec.training.loop import TrainResult  # noqa\n"
    runs.write_text(runs.read_text() + cycle)
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "digitrec.inference.runs -> digitrec.training.loop" in result.stdout


def test_predict_through_onnx_never_imports_torch_or_the_loop():
    script = ("import sys; from digitrec.inference.engine import load_predictor; import numpy as np; import digitrec\n"
              "p = load_predictor(); p.probabilities(np.zeros((2, 28, 28), np.uint8))\n"
              "m = digitrec.load_model(); m.predict('examples'); m.predict_proba('examples/drawn-7.png')\n"
              "assert m.read('docs/number-2026.jpg').text == '2026'\n"
              "assert 'torch' not in sys.modules and 'digitrec.training.loop' not in sys.modules, sorted(sys.modules)\n"
              "assert 'pandas' not in sys.modules and 'matplotlib' not in sys.modules, sorted(sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_the_server_reads_pictures_without_torch():
    script = ("import sys; from digitrec.serving.app import app_from_environment\n"
              "from fastapi.testclient import TestClient; from digitrec.data import synthetic\n"
              "images, _ = synthetic.drawn_digits(1, seed=1)\n"
              "client = TestClient(app_from_environment(), base_url='http://localhost')\n"
              "r = client.post('/api/predict', content=synthetic.png_bytes(images[0]),"
              " headers={'content-type': 'image/png'})\n"
              "assert r.status_code == 200 and r.json()['digit'] == 0, r.text\n"
              "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
