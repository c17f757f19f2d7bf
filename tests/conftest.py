import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from digitrec import data


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST, found through DIGITREC_DATA (set by .ci/run), never a hard-coded path."""
    path = os.environ.get(data.DATA_ENV)
    if not path or not Path(path).is_dir():
        pytest.skip(f"set {data.DATA_ENV} to the MNIST folder (../shared/data/mnist) to run this test")
    return Path(path)


@pytest.fixture(scope="session")
def mnist(mnist_dir) -> dict[str, data.Digits]:
    return data.load_splits(mnist_dir)


@pytest.fixture(scope="session")
def small_train(mnist) -> data.Digits:
    """3,000 real training digits, balanced by construction of MNIST's order."""
    return mnist["train"].subset(np.arange(3000))


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
def tiny_digits(mnist) -> data.Digits:
    return mnist["test"].subset(np.arange(50))
