import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from digitrec import data, synthetic
from digitrec.preprocess import to_mnist


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST, found through DIGITREC_DATA (set by .ci/run), never a hard-coded path: only for tests
    of accuracy and of MNIST itself; logic tests use `digits` / `digits_dir`."""
    path = os.environ.get(data.DATA_ENV)
    if not path or not Path(path).is_dir():
        pytest.skip(f"set {data.DATA_ENV} to the MNIST folder (../shared/data/mnist) to run this test")
    return Path(path)


@pytest.fixture(scope="session")
def mnist(mnist_dir) -> dict[str, data.Digits]:
    return data.load_splits(mnist_dir)


def synthetic_digits(count: int, seed: int) -> data.Digits:
    """Pen-drawn digits (digitrec.synthetic) brought to MNIST style by the one preprocessing path: labelled,
    balanced, seeded, and made in about a millisecond each, so that logic tests need no download."""
    pictures, labels = synthetic.drawn_digits(count, seed=seed, size=112)
    return data.Digits(np.stack([to_mnist(p) for p in pictures]), labels.astype(np.int64), f"synthetic (seed {seed})")


@pytest.fixture(scope="session")
def digits() -> dict[str, data.Digits]:
    """A small MNIST stand-in: 'train' (2,000) and 'test' (500) from different seeds."""
    return {"train": synthetic_digits(2000, 0), "test": synthetic_digits(500, 1)}


@pytest.fixture(scope="session")
def digits_dir(digits, tmp_path_factory) -> Path:
    """`digits` as an MNIST IDX folder, for everything that takes --data."""
    folder = tmp_path_factory.mktemp("synthetic-mnist")
    for split, prefix in (("train", "train"), ("test", "t10k")):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", digits[split].x, compress=True)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", digits[split].y, compress=True)
    return folder


@pytest.fixture(scope="session")
def small_train(digits) -> data.Digits:
    return digits["train"]


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
