"""Does reading each digit several times, shifted, help? Asked of validation splits only.

For each run trained with a validation split, rebuild that split from the run's seed and compare its
accuracy and loss read once and read with test-time shifts (digitrec.models.ShiftAverage), plus two other
view sets that were considered: small rotations and scalings. The MNIST test set is never read.

    digitrec train --recipe best --val-fraction 0.1 --seed 0 --out runs/best-cnn   # and so on
    DIGITREC_DATA=../shared/data/mnist python scripts/validate_tta.py runs/best-cnn runs/best-s1 ...
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F

from digitrec import data
from digitrec.inference import runs
from digitrec.models.architectures import ShiftAverage
from digitrec.models.tensors import predict_logits


class AffineAverage(torch.nn.Module):
    """Averages probabilities over the digit and copies rotated by ±deg or scaled by 1 ± scale."""

    def __init__(self, model: torch.nn.Module, deg: float = 0.0, scale: float = 0.0):
        super().__init__()
        self.model = model
        self.transforms = [(0.0, 1.0)] + ([(deg, 1.0), (-deg, 1.0)] if deg else [(0.0, 1 - scale), (0.0, 1 + scale)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = []
        for deg, s in self.transforms:
            a = math.radians(deg)
            theta = torch.tensor([[math.cos(a) / s, -math.sin(a) / s, 0.0], [math.sin(a) / s, math.cos(a) / s, 0.0]])
            grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
            views.append(self.model(F.grid_sample(x, grid, align_corners=False)).softmax(1))
        return torch.stack(views).mean(0).log()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders trained with a validation split")
    parser.add_argument("--data", help="the data the runs were trained on (default $DIGITREC_DATA)")
    args = parser.parse_args()
    readers = {
        "once": lambda m: m,
        "shifts ±1 px (5 views)": lambda m: ShiftAverage(m, 1),
        "rotations ±6° (3 views)": lambda m: AffineAverage(m, deg=6),
        "scales ±10 % (3 views)": lambda m: AffineAverage(m, scale=0.1),
        "shifts 3×3 (9 views)": lambda m: ShiftAverage(m, offsets=[(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]),
    }
    print("| run | " + " | ".join(readers) + " |")
    print("| --- |" + " --- |" * len(readers))
    gains = []
    for run in args.runs:
        model, config = runs.load_run(run)
        if isinstance(model, ShiftAverage):  # a run of today's `best` already reads five times: start from one
            model = model.model
        recipe = config.recipe
        if not recipe.val_fraction:
            parser.error(f"{run} held nothing out")
        _, val = data.load_for_training(data.resolve_data_path(args.data), recipe.val_fraction, recipe.split_seed)
        y = torch.as_tensor(val.y)
        cells, accuracy = [], {}
        for name, reader in readers.items():
            log_p = predict_logits(reader(model), val.x).log_softmax(1)
            accuracy[name] = (log_p.argmax(1) == y).float().mean().item()
            cells.append(f"{accuracy[name]:.2%} ({F.nll_loss(log_p, y).item():.4f})")
        gains.append(accuracy["shifts ±1 px (5 views)"] - accuracy["once"])
        print(f"| {run} | " + " | ".join(cells) + " |")
    print(f"\nshifts vs once: mean gain {sum(gains) / len(gains):+.3%} over {len(gains)} validation splits; "
          f"better or equal on {sum(g >= 0 for g in gains)}")


if __name__ == "__main__":
    main()
