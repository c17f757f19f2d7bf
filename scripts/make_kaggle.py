"""Write Kaggle "Digit Recognizer" files from MNIST: train.csv (42,000 labelled), test.csv (28,000, no label)
and test_answers.csv (ImageId,Label, kept aside to score a submission).

    python scripts/make_kaggle.py --data ../shared/data/mnist --out kaggle/
    python scripts/make_kaggle.py --score kaggle/submission.csv --answers kaggle/test_answers.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from digitrec import data
from digitrec.core.files import atomic_write_text


def write_csv(path: Path, images: np.ndarray, labels: np.ndarray | None) -> None:
    frame = pd.DataFrame(images.reshape(len(images), -1), columns=[f"pixel{i}" for i in range(784)])
    if labels is not None:
        frame.insert(0, "label", labels)
    atomic_write_text(path, frame.to_csv(index=False))


def make(data_path: str | None, out: Path, seed: int, n_train: int = 42_000, n_test: int = 28_000) -> None:
    splits = data.load_splits(data_path)
    x = np.concatenate([splits["train"].x, splits["test"].x])
    y = np.concatenate([splits["train"].y, splits["test"].y])
    order = np.random.default_rng(seed).permutation(len(x))
    train, test = order[:n_train], order[n_train : n_train + n_test]
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "train.csv", x[train], y[train])
    write_csv(out / "test.csv", x[test], None)
    answers = pd.DataFrame({"ImageId": np.arange(1, len(test) + 1), "Label": y[test]})
    atomic_write_text(out / "test_answers.csv", answers.to_csv(index=False))
    print(f"wrote {out}/train.csv ({len(train)}), test.csv ({len(test)}), test_answers.csv")


def score(submission: Path, answers: Path) -> float:
    sub, ans = pd.read_csv(submission), pd.read_csv(answers)
    if list(sub.columns) != ["ImageId", "Label"] or len(sub) != len(ans):
        sys.exit(f"{submission}: expected columns ImageId,Label and {len(ans)} rows")
    merged = ans.merge(sub, on="ImageId", suffixes=("_true", "_pred"))
    return float((merged["Label_true"] == merged["Label_pred"]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--out", type=Path, default=Path("kaggle"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--score", type=Path, help="a submission.csv to score")
    parser.add_argument("--answers", type=Path, default=Path("kaggle/test_answers.csv"))
    args = parser.parse_args()
    if args.score:
        print(f"accuracy {score(args.score, args.answers):.4f}")
    else:
        make(args.data, args.out, args.seed)


if __name__ == "__main__":
    main()
