"""Full training runs on the real data to a target accuracy (minutes each): marked slow, run by CI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def digitrec(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "digitrec", *args], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_mlp_baseline_reaches_975_on_mnist_test(tmp_path, mnist_dir):
    run = tmp_path / "mlp"
    digitrec("train", "--arch", "mlp", "--epochs", "10", "--data", str(mnist_dir), "--out", str(run), "--quiet")
    report = json.loads(digitrec("evaluate", "--model", str(run), "--data", str(mnist_dir), "--json"))
    assert report["split"] == "test" and report["n"] == 10000
    assert report["accuracy"] >= 0.975, report["accuracy"]
    assert len((run / "metrics.csv").read_text().splitlines()) == 11


def test_kaggle_flow_scores_993(tmp_path, mnist_dir):
    kaggle = tmp_path / "kaggle"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_kaggle.py"), "--data", str(mnist_dir),
                    "--out", str(kaggle)], check=True, capture_output=True)
    assert len((kaggle / "train.csv").read_text().splitlines()) == 42_001
    run = tmp_path / "k"
    digitrec("train", "--arch", "cnn", "--data", str(kaggle / "train.csv"), "--out", str(run), "--quiet")
    digitrec("predict", str(kaggle / "test.csv"), "--model", str(run), "--out", str(kaggle / "submission.csv"))
    score = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_kaggle.py"), "--score",
                            str(kaggle / "submission.csv"), "--answers", str(kaggle / "test_answers.csv")],
                           check=True, capture_output=True, text=True).stdout
    accuracy = float(score.split()[-1])
    assert accuracy >= 0.993, score
