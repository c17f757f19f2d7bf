"""Make finished runs the bundled models: the digit network (`digits`: read MNIST test once, record the
figure, copy weights, config and metrics, export ONNX) and the line model (`lines`: copy its ONNX file,
config and metrics; with `--signs` a sign reader, into lines/signs/). `scripts/rebuild_bundled.py` runs
them as its last stages.

    python scripts/bundle_model.py digits runs/rebuild/ftbox30 --data MNIST --command "..." [--into DIR]
    python scripts/bundle_model.py lines runs/rebuild/lines --first runs/rebuild/lines-a --command "..."
    python scripts/bundle_model.py lines runs/rebuild/lines-signs-5 --signs --command "..."

The configs written record other runs (teacher, starting weights) by their path relative to the repository
(or their folder's name when outside it) and their weights' SHA-256, and the data by its SHA-256 alone: a
machine's absolute paths never reach the package. `--into` (default: the package's bundled folder) writes
elsewhere, to compare a rebuilt model before it replaces the shipped one.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

from digitrec.core.files import atomic_write_text
from digitrec.inference import runs

ROOT = Path(__file__).resolve().parents[1]
LINE_FILES = ("line.onnx", "metrics.csv")


def reference(path: str | None) -> str | None:
    """A run folder as any clone can name it: relative to the repository root when inside it, else the
    folder's name (the rebuild stage that makes it). Empty stays empty."""
    if not path:
        return path
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(ROOT).as_posix()
    except ValueError:
        return resolved.name


def portable(config: runs.RunConfig) -> runs.RunConfig:
    """The config with no absolute path: teacher and init by reference (their SHA-256 kept), the data by
    its fingerprint alone."""
    recipe = config.recipe.update(teacher=reference(config.recipe.teacher), init=reference(config.recipe.init))
    teacher = config.teacher and dataclasses.replace(config.teacher, path=reference(config.teacher.path))
    init = config.init and dataclasses.replace(config.init, path=reference(config.init.path))
    return dataclasses.replace(config, recipe=recipe, teacher=teacher, init=init,
                               data=dataclasses.replace(config.data, path=None))


def bundle_digits(run: Path, data: str | None, command: str, into: Path) -> None:
    from digitrec.data import load
    from digitrec.inference.engine import ONNX_FILE, Predictor
    from digitrec.inference.export import export_onnx
    from digitrec.inference.metrics import evaluate

    predictor = Predictor.load(run)
    test = load(data, "test")
    result = evaluate(predictor.probabilities(test.x), test)
    config = dataclasses.replace(
        portable(predictor.config), name="digitrec-default", trained_by=command,
        test_accuracy=round(result.accuracy, 6), test_accuracy_ci95=[round(v, 6) for v in result.interval95],
        test_loss=round(result.loss, 6),
    )
    into.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / runs.WEIGHTS, into / runs.WEIGHTS)
    if (run / runs.METRICS).exists():
        shutil.copyfile(run / runs.METRICS, into / runs.METRICS)
    else:  # an ensemble has no epochs of its own (its members' are in their run folders)
        (into / runs.METRICS).unlink(missing_ok=True)
    config.weights_sha256 = runs.weights_sha256(into)  # checked on every load
    runs.write_config(into, config)
    # The ONNX copy lets `digitrec predict` skip importing torch (see digitrec.inference.engine).
    export_onnx(Predictor.load(into), into / ONNX_FILE)
    print(f"bundled {run} into {into}: test accuracy {result.accuracy:.4f}")


def bundle_lines(run: Path, first: Path | None, command: str, into: Path, signs: bool = False) -> None:
    """The line model into INTO/lines, or with `signs` the sign reader beside it into INTO/lines/signs."""
    config = json.loads((run / "config.json").read_text())
    config["settings"]["init"] = reference(config["settings"].get("init"))
    config["trained_by"] = command
    config["line_onnx_sha256"] = hashlib.sha256((run / "line.onnx").read_bytes()).hexdigest()
    into = into / "lines" / "signs" if signs else into / "lines"
    into.mkdir(parents=True, exist_ok=True)
    for name in LINE_FILES:
        shutil.copyfile(run / name, into / name)
    if first is not None:  # the history of the run it went on from
        shutil.copyfile(first / "metrics.csv", into / "metrics-first-run.csv")
    atomic_write_text(into / "config.json", json.dumps(config, indent=2) + "\n")
    print(f"bundled {run} into {into}: validation lines {config['val_string_accuracy']:.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = parser.add_subparsers(dest="kind", required=True)
    digits = kinds.add_parser("digits", help="the digit network (reads MNIST test once)")
    digits.add_argument("run", type=Path)
    digits.add_argument("--data", help="MNIST folder (default $DIGITREC_DATA)")
    lines = kinds.add_parser("lines", help="the line model")
    lines.add_argument("run", type=Path)
    lines.add_argument("--first", type=Path, help="the line model it went on from (its metrics are kept too)")
    lines.add_argument("--signs", action="store_true", help="a sign reader: into lines/signs, beside the line model")
    for sub in (digits, lines):
        sub.add_argument("--command", required=True, help="how the run was made (recorded as trained_by)")
        sub.add_argument("--into", type=Path, default=runs.BUNDLED_DIR, help="default: the package's bundled folder")
    args = parser.parse_args()
    if args.kind == "digits":
        bundle_digits(args.run, args.data, args.command, args.into)
    else:
        bundle_lines(args.run, args.first, args.command, args.into, args.signs)


if __name__ == "__main__":
    main()
