"""The `digitrec` command line: the parser of every verb and the one place errors become exit codes.

What each verb does and prints is in `commands`; choices and help lists come from the registries."""

from __future__ import annotations

import argparse
import sys

from digitrec.cli.commands import (
    cmd_data_check,
    cmd_data_download,
    cmd_ensemble,
    cmd_evaluate,
    cmd_export,
    cmd_models,
    cmd_predict,
    cmd_read,
    cmd_report,
    cmd_serve,
    cmd_sweep,
    cmd_train,
    cmd_train_lines,
    cmd_tune,
)
from digitrec.core.constants import UNSURE_BELOW
from digitrec.core.errors import DigitrecError
from digitrec.core.hardware import TRAIN_EXTRA, available_cores, require_matplotlib, require_torch

DATA_HELP = "data: MNIST IDX folder, Kaggle CSV, .npz, image or image folder (default: $DIGITREC_DATA)"
CLUSTER_HELP = ("read on Ray: local Ray in this process without ADDRESS (or $RAY_ADDRESS), else the cluster at "
                "ADDRESS; --out is then a folder for a Parquet dataset (pip install \"digitrec[cluster]\")")
UNSURE_HELP = (f"A reading whose calibrated confidence is under {UNSURE_BELOW} is marked 'unsure'; a picture with no "
               "digit-like ink (blank, a blot or smudge, a scribble) is answered 'no digit' instead of a digit.")


# ---------------------------------------------------------------- parser


def _add_data_verbs(verbs) -> None:
    data_p = verbs.add_parser("data", help="check or download data")
    data_verbs = data_p.add_subparsers(dest="data_verb", required=True, metavar="ACTION")
    check = data_verbs.add_parser("check", help="check a data source; exit 2 when something is wrong")
    check.add_argument("path", nargs="?", default=None, help=DATA_HELP)
    check.add_argument("--plots", metavar="DIR", help="also write balance.png, samples.png, pixels.png to DIR")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_data_check)
    download = data_verbs.add_parser("download", help="download MNIST into a cache, verifying SHA-256")
    download.add_argument("--dest", help="folder (default ~/.cache/digitrec/mnist)")
    download.set_defaults(func=cmd_data_download)


def _add_train_verb(verbs) -> None:
    from digitrec.models.recipes import Recipe, list_recipes

    train = verbs.add_parser("train", help="train a model into a run folder")
    train.add_argument("--recipe", choices=list_recipes(), help="a named recipe (see `digitrec models`)")
    train.add_argument("--arch", help="architecture name (see `digitrec models`); default cnn")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="change any recipe field, typed (repeatable): " + ", ".join(Recipe.field_types()))
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--val-fraction", type=float,
                       help="held out for validation, stratified (default 0.1; 0 in --recipe best: all the data)")
    train.add_argument("--tta-shift-px", type=int, metavar="PX",
                       help="the saved model also reads each digit shifted PX pixels each way (5 views; "
                            "--recipe best: 1); 0 reads once")
    train.add_argument("--teacher", metavar="RUN_DIR",
                       help="distil: also learn from this run's probabilities (e.g. an ensemble)")
    train.add_argument("--init", metavar="RUN_DIR",
                       help="start from this run's weights instead of random ones (same --arch, same held-out "
                            "digits)")
    train.add_argument("--data", help=DATA_HELP)
    train.add_argument("--out", help="run folder to create")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its last finished epoch")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    lines = verbs.add_parser(
        "train-lines", help="train the line model that `read` uses for touching and overlapping digits",
        description="Train a line model (CNN + bidirectional GRU, CTC) on whole numbers composed from MNIST "
                    "training digits: spaced, touching, overlapping, with marks between digits, on white or "
                    "photographed paper. Validation lines come from training digits set aside; the test split is "
                    "never read. Give --out RUN_DIR/lines to have `digitrec read --model RUN_DIR` use it.")
    lines.add_argument("--data", help="MNIST folder, .npz or labelled data (its training split)")
    lines.add_argument("--out", required=True, help="folder for the line model, e.g. runs/cnn/lines")
    lines.add_argument("--lines", type=int, help="training lines to compose (default 100,000)")
    lines.add_argument("--epochs", type=int, help="default 8")
    lines.add_argument("--lr", type=float, help="default 0.002")
    lines.add_argument("--seed", type=int,
                       help="which training lines are composed (default 0); the validation digits and lines "
                            "never change, so runs compare")
    lines.add_argument("--init", metavar="DIR", help="start from this line model (more epochs, e.g. on new lines)")
    lines.add_argument("--overwrite", action="store_true", help="train again into a folder with a finished model")
    lines.set_defaults(func=cmd_train_lines)

    tune = verbs.add_parser(
        "tune", help="teach a model your handwriting from a few labelled pictures",
        description="Fine-tune a run (the bundled model by default) on your own digits, DIR/<digit>/*.png (what "
                    "`serve --collect DIR` saves), mixed with replayed MNIST training digits so that it does not "
                    "forget them. Writes a new run folder; use it with --model. Runs with any number of examples "
                    "and says which digits have fewer than 3.")
    tune.add_argument("--data", required=True, metavar="DIR", help="labelled pictures: DIR/0/ ... DIR/9/")
    tune.add_argument("--model", help="run folder to start from (default: the bundled model)")
    tune.add_argument("--out", required=True, help="run folder to create")
    tune.add_argument("--replay", help="MNIST folder whose training digits are replayed (default: $DIGITREC_DATA)")
    tune.add_argument("--steps", type=int, help="optimizer steps (default 240)")
    tune.add_argument("--seed", type=int)
    tune.add_argument("--quiet", action="store_true", help="no progress bar")
    tune.set_defaults(func=cmd_tune)


def _add_model_verbs(verbs) -> None:
    """evaluate, predict, read: the verbs that read pictures with a trained run."""
    from digitrec.inference.engine import ENGINES

    evaluate = verbs.add_parser(
        "evaluate", aliases=["val"], help="accuracy, loss, calibration, per-class scores, confusion",
        description="Accuracy with its 95% interval, loss, expected calibration error (ECE), the share of unsure "
                    "readings and the accuracy of the rest, per-class scores and the confusion matrix. "
                    + UNSURE_HELP + " In a labelled folder of pictures, one with no digit counts as an error and "
                    "is named.")
    evaluate.add_argument("--model", help="run folder (default: the bundled model)")
    evaluate.add_argument("--data", help=DATA_HELP + "; MNIST: its test split")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(func=cmd_evaluate)

    predict = verbs.add_parser(
        "predict", help="digits for images, folders or a Kaggle test.csv",
        description="Digits for pictures, folders of pictures (recursive) or a Kaggle test.csv. " + UNSURE_HELP)
    predict.add_argument("input", help="image, folder of images (recursive) or Kaggle test.csv")
    predict.add_argument("--model", help="run folder (default: the bundled model)")
    predict.add_argument("--out", help="submission CSV (for test.csv) or JSON file (for images)")
    predict.add_argument("--json", action="store_true")
    predict.add_argument("--engine", choices=ENGINES, default="auto",
                         help="auto: onnxruntime when the run folder has a model.onnx (the bundled model does), "
                              "else PyTorch")
    predict.add_argument("--overwrite", action="store_true",
                         help=OVERWRITE_HELP)
    predict.add_argument("--cluster", nargs="?", const="", metavar="ADDRESS", help=CLUSTER_HELP + "; INPUT may also be "
                         "a glob or a .txt/.csv list of paths")
    predict.add_argument("--quiet", action="store_true", help="no progress bar (--cluster)")
    predict.set_defaults(func=cmd_predict)

    read = verbs.add_parser(
        "read", help="whole numbers: the digits of a line of writing, each with its box",
        description="Read one line of handwritten digits per picture (a meter, a date, a form field): the text, "
                    "its confidence, and per digit its confidence and box [x0, y0, x1, y1] in the picture's pixels. "
                    "Marks that are not digits (a comma, a dash, a dot) are left out and counted as 'rejected'.")
    read.add_argument("input", help="image or folder of images (recursive)")
    read.add_argument("--model", help="run folder (default: the bundled model)")
    read.add_argument("--json", action="store_true", help="a list of {file, text, confidence, digits, rejected}")
    read.add_argument("--out", help="write file,text,confidence to this CSV")
    read.add_argument("--score", action="store_true",
                      help="compare with INPUT/numbers.csv (scripts/make_numbers.py): strings and digits right")
    read.add_argument("--engine", choices=ENGINES, default="auto")
    read.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    read.add_argument("--cluster", nargs="?", const="", metavar="ADDRESS", help=CLUSTER_HELP)
    read.add_argument("--quiet", action="store_true", help="no progress bar (--cluster)")
    read.set_defaults(func=cmd_read)



def _add_run_verbs(verbs) -> None:
    """ensemble, export, serve, report: the verbs that make or show runs."""
    from digitrec.models.recipes import list_recipes

    ensemble = verbs.add_parser(
        "ensemble", help="average several runs into one model folder, or train K seeds on Ray and average them",
        description="Average the probabilities of several runs (RUN_DIR ...), or with --train K train K seeds of "
                    "a recipe as parallel Ray Tune trials (local Ray, or --cluster ADDRESS) into OUT/members/ and "
                    "average those. The seeds hold out the same validation digits; the test split is never read.")
    ensemble.add_argument("runs", nargs="*", metavar="RUN_DIR")
    ensemble.add_argument("--out", required=True, help="run folder to create")
    ensemble.add_argument("--train", type=int, metavar="K", help="train K seeds first (Ray Tune)")
    ensemble.add_argument("--recipe", choices=list_recipes(), help="with --train: the recipe (default: default)")
    ensemble.add_argument("--set", action="append", metavar="KEY=VALUE", help="with --train: change a recipe field")
    ensemble.add_argument("--data", help=DATA_HELP)
    ensemble.add_argument("--cluster", nargs="?", const="", metavar="ADDRESS",
                          help="with --train: the Ray cluster (default: local Ray, or $RAY_ADDRESS)")
    ensemble.add_argument("--resume", action="store_true", help="with --train: finish the members OUT holds")
    ensemble.add_argument("--overwrite", action="store_true",
                          help="replace what digitrec wrote in an existing OUT (one it made: never anything else)")
    ensemble.set_defaults(func=cmd_ensemble)

    sweep = verbs.add_parser(
        "sweep", help="search recipe settings on validation accuracy (Ray Tune, ASHA)",
        description="Train trials of a recipe with settings from --space, as Ray Tune trials (local Ray, or "
                    "--cluster ADDRESS), stopping weak ones early (ASHA) on validation accuracy; writes "
                    "OUT/trials.csv, OUT/trials.png and every trial's run folder, and prints the best settings "
                    "as a `digitrec train` command. The test split is never read.")
    sweep.add_argument("--recipe", choices=list_recipes(), help="the recipe to start from (default: default)")
    sweep.add_argument("--space", action="append", required=True, metavar="KEY=V1,V2,...",
                       help="values to try for a recipe field (repeatable: the grid of all of them)")
    sweep.add_argument("--trials", type=int, required=True, metavar="N",
                       help="trials to run: points of the grid in a seeded order, each once before any repeats")
    sweep.add_argument("--set", action="append", metavar="KEY=VALUE", help="change a recipe field in every trial")
    sweep.add_argument("--data", help=DATA_HELP)
    sweep.add_argument("--cluster", nargs="?", const="", metavar="ADDRESS",
                       help="the Ray cluster (default: local Ray, or $RAY_ADDRESS)")
    sweep.add_argument("--out", required=True, help="folder for the table, the figure and the trials")
    sweep.add_argument("--overwrite", action="store_true",
                       help="replace what digitrec wrote in an existing --out folder (one it made: never "
                            "anything else)")
    sweep.set_defaults(func=cmd_sweep)

    export = verbs.add_parser("export", help="export a model (ONNX)")
    export.add_argument("--model", help="run folder (default: the bundled model)")
    export.add_argument("--format", default="onnx", help="onnx")
    export.add_argument("--out", required=True, help="file to write, e.g. model.onnx")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    export.set_defaults(func=cmd_export)

    serve = verbs.add_parser("serve", help="the drawing page and the JSON API (FastAPI under uvicorn)")
    serve.add_argument("--model", help="run folder (default: the bundled model)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=available_cores(),
                       help="server processes, each reading one picture at a time (default: one per core)")
    serve.add_argument("--allowed-host", action="append", metavar="NAME",
                       help="also answer requests for this Host name (repeatable); by default only localhost, "
                            "127.0.0.1, [::1] and --host, so no web page elsewhere reaches the server")
    serve.add_argument("--allow-origin", action="append", metavar="ORIGIN",
                       help="also let pages of this origin (http(s)://HOST[:PORT]) post to the API and read its "
                            "answers (repeatable); by default a browser's request from any page but the server's "
                            "own is refused (403), so no other site can store examples or use the server")
    serve.add_argument("--collect", metavar="DIR",
                       help="show 'Wrong? It was: 0-9' under every reading and keep each correction (and, when the "
                            "user ticks it, each confirmed answer) in DIR/<digit>/, a folder `digitrec tune` reads")
    serve.add_argument("--tune-every", type=int, default=0, metavar="N",
                       help="with --collect: re-tune in the background after every N new examples and serve the "
                            "tuned model once it is ready")
    serve.set_defaults(func=cmd_serve)

    report = verbs.add_parser("report", help="write report.html into a run folder")
    report.add_argument("--model", help="run folder")
    report.add_argument("--data", help=DATA_HELP + " (default: the run's own held-out data)")
    report.set_defaults(func=cmd_report)


OVERWRITE_HELP = ("replace an existing --out file (never an input or a run's own files); with --cluster, what "
                  "digitrec wrote in an --out folder it made")


def build_parser() -> argparse.ArgumentParser:
    from digitrec.core.version import __version__

    parser = argparse.ArgumentParser(prog="digitrec", description="Handwritten digit recognition.")
    parser.add_argument("--version", action="version", version=f"digitrec {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    _add_data_verbs(verbs)
    verbs.add_parser("models", help="list architectures and recipes").set_defaults(func=cmd_models)
    _add_train_verb(verbs)
    _add_model_verbs(verbs)
    _add_run_verbs(verbs)
    return parser


# Verbs that train, tune, export or build models: PyTorch (the train extra), checked before they touch anything.
NEEDS_TORCH = ("train", "train-lines", "tune", "export", "ensemble", "sweep", "models")


def _require_extras(args) -> None:
    if args.verb in NEEDS_TORCH:
        require_torch(args.verb)
    elif args.verb == "serve" and args.tune_every:
        require_torch("serve --tune-every")
    elif args.verb == "data" and args.data_verb == "check" and args.plots:
        require_matplotlib("data check --plots")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _require_extras(args)
        return args.func(args)
    except DigitrecError as e:
        print(f"digitrec: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # any other path that reaches for torch in the core install: one line too
        if (e.name or "").partition(".")[0] != "torch":
            raise
        print(f"digitrec: error: {args.verb}: needs PyTorch (expected {TRAIN_EXTRA})", file=sys.stderr)
        return 2
    except BrokenPipeError:
        sys.stderr.close()  # output piped into `head`: nothing more to say
        return 0
    except KeyboardInterrupt:
        print("digitrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
