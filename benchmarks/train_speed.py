"""Training speed: the Keras "Simple MNIST convnet" recipe written plainly in PyTorch (fp32, standard
DataLoader) against digitrec's recipes, in one run on one machine. Prints a table and checks the targets.

    DIGITREC_DATA=../shared/data/mnist python benchmarks/train_speed.py [--only keras,default,fast]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import data_path, machine_line, print_table
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from digitrec import data
from digitrec.core import hardware
from digitrec.inference.engine import Predictor
from digitrec.inference.metrics import evaluate
from digitrec.inference.runs import RunConfig
from digitrec.models.recipes import get_recipe
from digitrec.training.loop import train

TARGETS = {"default": (0.995, 0.25, None), "fast": (0.990, None, 10.0)}  # accuracy, time ratio, seconds


def keras_baseline(train_set: data.Digits, epochs: int = 15) -> tuple[nn.Module, float]:
    """keras.io/examples/vision/mnist_convnet: Conv32 3x3, pool, Conv64 3x3, pool, dropout 0.5, Dense 10;
    batch 128, Adam, 15 epochs; inputs scaled to [0, 1]. Plain PyTorch: float tensors and a DataLoader."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10),
    )
    x = torch.tensor(train_set.x, dtype=torch.float32).unsqueeze(1) / 255
    loader = DataLoader(TensorDataset(x, torch.tensor(train_set.y)), batch_size=128, shuffle=True)
    opt = torch.optim.Adam(model.parameters())
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), time.perf_counter() - start


@torch.no_grad()
def accuracy(model: nn.Module, test: data.Digits) -> float:
    x = torch.tensor(test.x, dtype=torch.float32).unsqueeze(1) / 255
    return (model(x).argmax(1).numpy() == test.y).mean()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="keras,default,fast", help="comma-separated: keras, and recipe names")
    args = parser.parse_args()
    hardware.configure_threads()
    # The first optimizer in a process imports torch._dynamo (about 2 s here): a one-time library cost,
    # paid now so that no row of the table carries it.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    path = data_path()
    test = data.load(path, "test")
    rows, seconds = [], {}
    for name in args.only.split(","):
        if name == "keras":
            train_set, _ = data.load_for_training(path, 0.1, 0)
            model, elapsed = keras_baseline(train_set)
            acc, epochs, n_train = accuracy(model, test), 15, len(train_set)
        else:
            recipe = get_recipe(name)
            train_set, val_set = data.load_for_training(path, recipe.val_fraction, recipe.seed)
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                result = train(recipe, train_set, val_set, Path(tmp))
                elapsed = time.perf_counter() - start
            predictor = Predictor(result.model, RunConfig(name=name, arch=recipe.arch), Path(name))
            acc = evaluate(predictor.probabilities(test.x), test).accuracy
            epochs, n_train = len(result.history), len(train_set)
        seconds[name] = elapsed
        base = seconds.get("keras")
        rows.append({
            "recipe": "keras baseline" if name == "keras" else name,
            "epochs": epochs,
            "seconds": f"{elapsed:.1f}",
            "images/s": f"{epochs * n_train / elapsed:,.0f}",
            "test accuracy": f"{acc:.4f}",
            "time ratio": f"{elapsed / base:.3f}" if base else "-",
        })
        status = []
        if name in TARGETS:
            min_acc, max_ratio, max_seconds = TARGETS[name]
            status.append(f"accuracy {'ok' if acc >= min_acc else 'MISSED'} (>= {min_acc})")
            if max_ratio and base:
                status.append(f"ratio {'ok' if elapsed / base <= max_ratio else 'MISSED'} (<= {max_ratio})")
            if max_seconds:
                status.append(f"time {'ok' if elapsed <= max_seconds else 'MISSED'} (<= {max_seconds} s)")
        rows[-1]["targets"] = ", ".join(status) or "-"
        print(f"done: {rows[-1]}", file=sys.stderr, flush=True)
    print(machine_line())
    print_table(rows)
    return 0 if all("MISSED" not in r["targets"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
