"""Shared fixtures, and the tiers of the suite (markers registered in pyproject.toml):

- `slow`: a test over about 5 s on 2 cores (training on MNIST, fault injection, tuning, a Ray cluster);
- `browser`: drives Chromium through Playwright (skipped when Chromium is missing);
- `cluster`: needs Ray (skipped when the `cluster` extra is not installed).

The quick loop leaves all three out: `pytest -n 2 -m "not slow and not browser and not cluster"`; property tests run
a twentieth of their cases there (FUZZ_SCALE). The `cluster` tests run in a pass of their own, in one process
(`pytest -m cluster`): a local Ray started while another worker's test cluster runs joins that one and fails.
With `-n 2` each worker builds the fixtures below once for itself.
Tests of accuracy and of MNIST itself read the real MNIST (`mnist_dir`: $DIGITREC_DATA, or the folder
`digitrec data download` fills); without it they skip. Logic tests use the synthetic `digits` / `digits_dir`.
"""

import gzip
import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from digitrec import data
from digitrec.data import synthetic
from digitrec.imaging.fit import to_mnist

# Built once for the whole test run (once a worker, with `pytest -n`) and shared by every test that asks for it.
once_per_run = pytest.fixture(scope="session")

# Torch and onnxruntime run one thread in the tests, and in the commands they start, unless DIGITREC_THREADS
# says otherwise: the suite's networks and batches are small, and a second intra-op thread cost more than it gave.
# On 2 cores shared with other work, test_train's nine training tests took 17 s of CPU (103 s) on one thread and
# 83 s (279 s) on two; an epoch of the mlp recipe on MNIST, 2.9 s of CPU against 52 s.
os.environ.setdefault("DIGITREC_THREADS", "1")

# Property tests run this share of their full case counts (tests/test_fuzz.py) unless FUZZ_SCALE says otherwise:
# a twentieth in a run that leaves the slow tier out (the quick loop), all of them in the full suite.
QUICK_FUZZ_SCALE = 0.05


def pytest_configure(config):
    if "FUZZ_SCALE" not in os.environ:
        quick = "not slow" in " ".join((config.getoption("markexpr") or "").split())
        os.environ["FUZZ_SCALE"] = str(QUICK_FUZZ_SCALE if quick else 1)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules (made unimportable)
        return False


def pytest_collection_modifyitems(config, items):
    """Without the `cluster` extra (Ray, pyarrow) the tests marked `cluster` skip, saying how to install it."""
    missing = [name for name in ("ray", "pyarrow") if not _importable(name)]
    if missing:
        skip = pytest.mark.skip(reason=f"needs {' and '.join(missing)}: pip install \"digitrec[cluster]\"")
        for item in items:
            if item.get_closest_marker("cluster"):
                item.add_marker(skip)


def find_mnist() -> tuple[Path | None, str]:
    """The real MNIST: $DIGITREC_DATA when set, else the folder `digitrec data download` fills. (folder, why not)"""
    path = os.environ.get(data.DATA_ENV)
    if path:
        if Path(path).is_dir():
            return Path(path), ""
        return None, f"{data.DATA_ENV}={path} is not a folder"
    cache = data.default_cache_dir()
    if all((cache / f"{name}.gz").is_file() for name in data.MNIST_FILES):
        return cache, ""
    return None, (f"no MNIST: set {data.DATA_ENV} to an MNIST folder, or run `digitrec data download` "
                  f"(fills {cache})")


@once_per_run
def mnist_dir() -> Path:
    """The real MNIST, never a hard-coded path: only for tests of accuracy and of MNIST itself; logic tests
    use `digits` / `digits_dir`."""
    path, why = find_mnist()
    if path is None:
        pytest.skip(why)
    return path


@once_per_run
def mnist(mnist_dir) -> dict[str, data.Digits]:
    return data.load_splits(mnist_dir)


def synthetic_digits(count: int, seed: int) -> data.Digits:
    """Pen-drawn digits (digitrec.data.synthetic) brought to MNIST style by the one preprocessing path: labelled,
    balanced, seeded, and made in about a millisecond each, so that logic tests need no download."""
    pictures, labels = synthetic.drawn_digits(count, seed=seed, size=112)
    return data.Digits(np.stack([to_mnist(p) for p in pictures]), labels.astype(np.int64), f"synthetic (seed {seed})")


@once_per_run
def digits() -> dict[str, data.Digits]:
    """A small MNIST stand-in: 'train' (2,000) and 'test' (500) from different seeds."""
    return {"train": synthetic_digits(2000, 0), "test": synthetic_digits(500, 1)}


@once_per_run
def digits_dir(digits, tmp_path_factory) -> Path:
    """`digits` as an MNIST IDX folder, for everything that takes --data."""
    folder = tmp_path_factory.mktemp("synthetic-mnist")
    for split, prefix in (("train", "train"), ("test", "t10k")):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", digits[split].x, compress=True)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", digits[split].y, compress=True)
    return folder


@once_per_run
def small_train(digits) -> data.Digits:
    return digits["train"]


@once_per_run
def trained_run(digits_dir, tmp_path_factory) -> Path:
    """One finished run, shared by the whole test run: the `mlp` recipe for 3 epochs on `digits_dir` (split_seed 0,
    1,800 training and 200 validation digits), figures drawn. Read it only; `copy_run` for a run to change."""
    from digitrec.models.recipes import get_recipe
    from digitrec.training.loop import train_run

    run_dir = tmp_path_factory.mktemp("runs") / "mlp3"
    train_run(get_recipe(arch="mlp").update(epochs=3), digits_dir, run_dir)
    return run_dir


def copy_run(run_dir: Path, to: Path) -> Path:
    """A copy of a run folder for a test that edits it."""
    shutil.copytree(run_dir, to)
    return to


@once_per_run
def tiny_line_model(digits, tmp_path_factory) -> tuple[Path, Path]:
    """A line model trained for one epoch on 100 lines of the synthetic stand-in (and 100 validation lines): it
    runs, nothing more. -> (the MNIST-style folder it learnt from, the line model's folder)."""
    from digitrec.cli import main

    folder = tmp_path_factory.mktemp("line-mnist")
    write_idx(folder / "train-images-idx3-ubyte", digits["train"].x)
    write_idx(folder / "train-labels-idx1-ubyte", digits["train"].y)
    out = tmp_path_factory.mktemp("line-run") / "lines"
    assert main(["train-lines", "--data", str(folder), "--out", str(out), "--lines", "100", "--epochs", "1"]) == 0
    return folder, out


@pytest.fixture
def no_figures(monkeypatch):
    """Runs trained in this test draw no figures: their five matplotlib figures take most of a small run's
    time. For tests that never look at a run's figures."""
    from digitrec.inference import plots

    monkeypatch.setattr(plots, "run_figures", lambda *args, **kwargs: [])


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def write_kaggle_csv(path: Path, images: np.ndarray, labels: np.ndarray | None) -> Path:
    header = ([] if labels is None else ["label"]) + [f"pixel{i}" for i in range(784)]
    lines = [",".join(header)]
    for i, image in enumerate(images.reshape(len(images), -1)):
        values = ([] if labels is None else [str(labels[i])]) + [str(v) for v in image]
        lines.append(",".join(values))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def tiny_digits(digits) -> data.Digits:
    return digits["test"].subset(np.arange(50))


@once_per_run
def replay_dir(digits, tmp_path_factory) -> Path:
    """Replay digits for tuning without the real MNIST: the synthetic stand-in as an IDX folder (train only)."""
    folder = tmp_path_factory.mktemp("replay")
    write_idx(folder / "train-images-idx3-ubyte", digits["train"].x)
    write_idx(folder / "train-labels-idx1-ubyte", digits["train"].y)
    return folder
