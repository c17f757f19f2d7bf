"""Make a finished run the bundled default model: evaluate it once on the MNIST test set, record
the figure and the command that trained it, and copy weights, config and metrics into the package.

    python scripts/bundle_model.py runs/best \
        --command "digitrec train --recipe best --data ../shared/data/mnist --out runs/best"
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

from digitrec import runs
from digitrec.data import load
from digitrec.evaluate import evaluate
from digitrec.export import export_onnx
from digitrec.predict import ONNX_FILE, Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--data", help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--command", required=True, help="the command that trained the run")
    args = parser.parse_args()

    predictor = Predictor.load(args.run)
    test = load(args.data, "test")
    result = evaluate(predictor.probabilities(test.x), test)
    config = dataclasses.replace(
        predictor.config, name="digitrec-default", trained_by=args.command, test_accuracy=round(result.accuracy, 6),
        test_accuracy_ci95=[round(v, 6) for v in result.interval95], test_loss=round(result.loss, 6),
    )
    target = runs.BUNDLED_DIR
    target.mkdir(exist_ok=True)
    shutil.copyfile(args.run / runs.WEIGHTS, target / runs.WEIGHTS)
    if (args.run / runs.METRICS).exists():
        shutil.copyfile(args.run / runs.METRICS, target / runs.METRICS)
    else:  # an ensemble has no epochs of its own (its members' are in their run folders)
        (target / runs.METRICS).unlink(missing_ok=True)
    # The weights' SHA-256, checked on every load (a run made before digitrec recorded it has none).
    config.weights_sha256 = runs.weights_sha256(target)
    runs.write_config(target, config)
    # The ONNX copy lets `digitrec predict` skip importing torch (see digitrec.predict).
    export_onnx(Predictor.load(target), target / ONNX_FILE)
    print(f"bundled {args.run} as {target}: test accuracy {result.accuracy:.4f}")


if __name__ == "__main__":
    main()
