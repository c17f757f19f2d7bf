"""Full training runs on the real data to a target accuracy (a minute or two each): marked slow, run by CI.

Both flows start together, each a chain of commands in a child process of its own on one thread
(DIGITREC_THREADS, conftest.py): on 2 cores they overlap instead of queueing, and each test waits for its own."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

# Runs each command in turn and stops at the first that fails -> JSON, one {command, code, stdout, stderr} each.
CHAIN = """
import json, subprocess, sys
done = []
for command in json.loads(sys.argv[1]):
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    done.append({"command": command, "code": result.returncode, "stdout": result.stdout,
                 "stderr": result.stderr[-2000:]})
    if result.returncode:
        break
print(json.dumps(done))
"""


def digitrec(*args: str) -> list[str]:
    return [sys.executable, "-m", "digitrec", *args]


def kaggle_script(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / "make_kaggle.py"), *args]


@pytest.fixture(scope="module")
def flows(mnist_dir, tmp_path_factory, request) -> dict:
    """The chains of the tests selected, started at once -> {name: (folder, the child running its commands)}."""
    root = tmp_path_factory.mktemp("end-to-end")
    mlp, kaggle = root / "mlp", root / "kaggle"
    chains = {
        "mlp": (mlp, [digitrec("train", "--arch", "mlp", "--epochs", "10", "--data", str(mnist_dir), "--out",
                               str(mlp), "--quiet"),
                      digitrec("evaluate", "--model", str(mlp), "--data", str(mnist_dir), "--json")]),
        "kaggle": (kaggle, [kaggle_script("--data", str(mnist_dir), "--out", str(kaggle)),
                            digitrec("train", "--arch", "cnn", "--data", str(kaggle / "train.csv"), "--out",
                                     str(kaggle / "run"), "--quiet"),
                            digitrec("predict", str(kaggle / "test.csv"), "--model", str(kaggle / "run"), "--out",
                                     str(kaggle / "submission.csv")),
                            kaggle_script("--score", str(kaggle / "submission.csv"), "--answers",
                                          str(kaggle / "test_answers.csv"))]),
    }
    selected = " ".join(item.name for item in request.session.items)
    started = {name: (folder, subprocess.Popen([sys.executable, "-c", CHAIN, json.dumps(commands)],
                                               stdout=subprocess.PIPE, text=True))
               for name, (folder, commands) in chains.items() if f"test_{name}_" in selected}
    yield started
    for _, child in started.values():
        if child.poll() is None:
            child.kill()
            child.wait()


def _finished(flows: dict, name: str) -> tuple[Path, list[str]]:
    """Waits for the chain -> (its folder, each command's stdout), every command having succeeded."""
    folder, child = flows[name]
    done = json.loads(child.communicate(timeout=3600)[0])
    for step in done:
        assert step["code"] == 0, f"{' '.join(step['command'])}\n{step['stderr']}"
    return folder, [step["stdout"] for step in done]


def test_mlp_baseline_reaches_975_on_mnist_test(flows):
    run, (_, evaluated) = _finished(flows, "mlp")
    report = json.loads(evaluated)
    assert report["split"] == "test" and report["n"] == 10000
    assert report["accuracy"] >= 0.975, report["accuracy"]
    assert len((run / "metrics.csv").read_text().splitlines()) == 11


def test_kaggle_flow_scores_993(flows):
    kaggle, (_, _, _, score) = _finished(flows, "kaggle")
    assert len((kaggle / "train.csv").read_text().splitlines()) == 42_001
    accuracy = float(score.split()[-1])
    assert accuracy >= 0.993, score
