"""The `digitrec` command: argument parsing and printing only, each verb a few lines over the library.

Each verb imports the library modules it needs inside its function: `digitrec predict` must start
without importing torch (2.5 s), which the training and export modules load."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from digitrec.errors import DigitrecError
from digitrec.inputs import UNSURE_BELOW

DATA_HELP = "data: MNIST IDX folder, Kaggle CSV, .npz, image or image folder (default: $DIGITREC_DATA)"
UNSURE_HELP = (f"A reading whose calibrated confidence is under {UNSURE_BELOW} is marked 'unsure'; a picture with no "
               "digit-like ink (blank, a blot or smudge, a scribble) is answered 'no digit' instead of a digit.")


def _table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    def align(cell: str, width: int) -> str:
        numeric = cell.replace(",", "").replace(".", "").replace("-", "").isdigit()
        return cell.rjust(width) if numeric else cell.ljust(width)

    lines = ["  ".join(align(c, w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2))


# ---------------------------------------------------------------- data


def cmd_data_check(args) -> int:
    from digitrec import data

    report = data.check(args.path)
    if args.plots and report.splits:
        from digitrec import plots

        written = plots.data_figures(report.digits, Path(args.plots))
        print(f"figures: {', '.join(str(p) for p in written)}", file=sys.stderr)
    if args.json:
        _print_json({"source": report.source, "kind": report.kind, "splits": report.splits,
                     "problems": report.problems, "clean": report.clean})
    else:
        print(f"{report.source} ({report.kind})")
        rows = [[name, s["rows"], "x".join(map(str, s["shape"])), f"{s['pixel_min']}-{s['pixel_max']}",
                 s["pixel_mean"], s["duplicates"], " ".join(map(str, s["label_counts"] or ["-"]))]
                for name, s in report.splits.items()]
        if rows:
            print(_table(rows, ["split", "rows", "shape", "pixels", "mean", "duplicates", "labels 0-9"]))
        for problem in report.problems:
            print(f"problem: {problem}")
        print("clean" if report.clean else f"{len(report.problems)} problem(s)")
    return 0 if report.clean else 2


def cmd_data_download(args) -> int:
    from digitrec import data

    folder = data.download_mnist(Path(args.dest) if args.dest else None)
    print(f"MNIST verified in {folder}")
    print(f"use it with: export {data.DATA_ENV}={folder}")
    return 0


# ---------------------------------------------------------------- models, train


def cmd_models(args) -> int:
    from digitrec import models
    from digitrec.recipes import RECIPES

    rows = [[name, f"{models.count_parameters(models.create_model(name)):,}", models.describe(name)]
            for name in models.list_models()]
    print(_table(rows, ["name", "parameters", "description"]))
    recipes = [[name, r.arch, f"{r.steps} steps" if r.steps else r.epochs, r.batch_size, r.lr,
                r.views] for name, r in RECIPES.items()]
    print()
    print(_table(recipes, ["recipe", "arch", "epochs", "batch", "lr", "views"]))
    print("(a budget in steps becomes whole epochs: 3000 steps are 7 epochs of MNIST at batch 128;")
    print(" views: how many times the saved model reads each digit; 5: as given and shifted a pixel each way;")
    print(" any recipe field can be changed with `digitrec train --set key=value`)")
    return 0


def cmd_train(args) -> int:
    from tqdm import tqdm

    from digitrec.recipes import get_recipe, parse_overrides
    from digitrec.train import train_run

    if not args.out and not args.resume:
        raise DigitrecError("say where the run goes", expected="--out RUN_DIR (or --resume RUN_DIR)")
    recipe = get_recipe(args.recipe, args.arch).update(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, val_fraction=args.val_fraction,
        teacher=args.teacher, tta_shift_px=args.tta_shift_px,
    ).update(**parse_overrides(args.set or []))
    run_dir = Path(args.resume or args.out)
    bar = None

    def on_batch(step: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            # disable=None: a bar on a terminal, nothing in a log file (the epoch line below stays)
            bar = tqdm(total=total, unit="batch", leave=True, file=sys.stderr, disable=True if args.quiet else None)
        bar.update(1)

    def on_epoch(m) -> None:
        nonlocal bar
        val = f" val_loss {m.val_loss:.4f} val_acc {m.val_accuracy:.4f}" if m.val_accuracy is not None else ""
        line = f"epoch {m.epoch}: loss {m.train_loss:.4f} acc {m.train_accuracy:.4f}{val}"
        line += f" {m.seconds:.1f}s"
        if bar is not None:
            bar.close()
            bar = None
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    _, config = train_run(recipe, args.data, run_dir, resume=bool(args.resume), on_batch=on_batch, on_epoch=on_epoch)
    if config.val_accuracy is not None:
        print(f"validation accuracy {config.val_accuracy:.4f}, {config.train_seconds:.1f} s training")
    else:
        print(f"trained on all {config.data.train:,} digits (nothing held out), "
              f"{config.train_seconds:.1f} s training; judge it with `digitrec evaluate --model {run_dir}`")
    print(f"run saved to {run_dir}")
    return 0


# ---------------------------------------------------------------- evaluate, predict


def cmd_evaluate(args) -> int:
    from digitrec.evaluate import evaluate, held_out
    from digitrec.predict import Predictor

    predictor = Predictor.load(args.model)
    digits, split = held_out(args.data, predictor.config)
    result = evaluate(predictor.probabilities(digits.x), digits)
    if args.json:
        _print_json({"model": predictor.name, "data": digits.source, "split": split, **result.as_dict()})
        return 0
    low, high = result.interval95
    print(f"model {predictor.name} on {digits.source}" + ("" if split in digits.source else f" ({split})"))
    print(f"accuracy {result.accuracy:.4f} (95% interval {low:.4f}-{high:.4f})  loss {result.loss:.4f}  "
          f"n {result.n}  errors {result.n - int(round(result.accuracy * result.n))}")
    unsure = result.unsure()
    sure_accuracy = "-" if unsure["accuracy_when_sure"] is None else f"{unsure['accuracy_when_sure']:.4f}"
    print(f"calibration error (ECE) {result.ece:.4f}  unsure (confidence < {unsure['threshold']}) "
          f"{unsure['share_unsure']:.2%}, accuracy of the rest {sure_accuracy}")
    rows = [[r["digit"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"]]
            for r in result.per_class()]
    print(_table(rows, ["digit", "precision", "recall", "f1", "support"]))
    print("confusion (rows: true digit, columns: predicted)")
    print(_table([[d, *row] for d, row in enumerate(result.confusion.tolist())], ["", *map(str, range(10))]))
    return 0


def cmd_predict(args) -> int:
    from digitrec import data
    from digitrec.files import atomic_write_text, check_output
    from digitrec.predict import load_predictor, predict_files, write_submission

    predictor = load_predictor(args.model, args.engine)
    target = Path(args.input)
    if not target.exists():
        raise DigitrecError("no such file or folder", where=str(target))
    if args.out:
        check_output(args.out, args.overwrite, (target, *_run_files(predictor.path)))
    kind = data.detect_kind(target)
    if kind in ("image", "image-dir"):
        results = predict_files(predictor, target)
        if args.json:
            _print_json([r.as_dict() for r in results])
        else:
            rows = [[r.file, "-" if r.digit is None else r.digit,
                     "-" if r.confidence is None else f"{r.confidence:.3f}", "unsure" if r.unsure else "",
                     r.error or ""] for r in results]
            print(_table(rows, ["file", "digit", "confidence", "note", "error"]))
        if args.out:
            atomic_write_text(Path(args.out), json.dumps([r.as_dict() for r in results], indent=2) + "\n")
        return 0 if all(r.error is None for r in results) else 2
    digits = data.load(target)
    if not args.out:
        raise DigitrecError("predicting a data file writes a submission", expected="--out submission.csv")
    labels = write_submission(predictor, digits, Path(args.out))
    print(f"{len(labels)} predictions written to {args.out}")
    return 0


def cmd_read(args) -> int:
    from digitrec.files import check_output
    from digitrec.predict import load_predictor, read_files

    predictor = load_predictor(args.model, args.engine)
    target = Path(args.input)
    if args.out:
        check_output(args.out, args.overwrite, (target, target / "numbers.csv", *_run_files(predictor.path)))
    results = read_files(predictor, target)
    if len(results) == 1 and results[0].error and not target.is_dir():
        raise DigitrecError(results[0].error, where=str(target))
    if args.score:
        return _score_readings(target, results, args.json)
    if args.json:
        _print_json([r.as_dict() for r in results])
    else:
        rows = [[r.file, r.reading.text if r.reading else "-", f"{r.reading.confidence:.3f}" if r.reading else "-",
                 r.error or ""] for r in results]
        print(_table(rows, ["file", "text", "confidence", "error"]))
    if args.out:
        from digitrec.files import atomic_write_text

        lines = ["file,text,confidence"] + [f"{r.file},{r.reading.text},{r.reading.confidence}" if r.reading
                                            else f"{r.file},," for r in results]
        atomic_write_text(Path(args.out), "\n".join(lines) + "\n")
    return 0 if all(r.error is None for r in results) else 2


def _score_readings(target: Path, results, as_json: bool) -> int:
    """Compare readings with the folder's numbers.csv (file,text,group): scripts/make_numbers.py's bench."""
    import csv

    from digitrec.evaluate import score_numbers

    answers_file = target / "numbers.csv"
    if not answers_file.is_file():
        raise DigitrecError("no numbers.csv to score against", where=str(target), expected="file,text,group rows")
    read = {r.file.split("/", 1)[1] if "/" in r.file else r.file: r for r in results}
    with open(answers_file, newline="") as f:
        rows = list(csv.DictReader(f))
    scored = [(row["text"], read[row["file"]].reading.text if row["file"] in read and read[row["file"]].reading
               else None, row.get("group", "all")) for row in rows]
    report = score_numbers(scored)
    if as_json:
        _print_json(report)
        return 0
    table = [[name, s["n"], f"{s['string_accuracy']:.2%}", f"{s['digit_accuracy']:.2%}"]
             for name, s in [("all", report["all"]), *report["groups"].items(),
                             *((f"{n} digits", s) for n, s in report["lengths"].items())]]
    print(_table(table, ["", "pictures", "strings right", "digits right"]))
    return 0


def _run_files(run_dir: Path) -> list[Path]:
    """A run folder's own files, which no --out may replace."""
    return [Path(run_dir) / name for name in ("model.safetensors", "config.json", "metrics.csv", "checkpoint.pt",
                                              "model.onnx")]


def cmd_ensemble(args) -> int:
    from digitrec.runs import make_ensemble

    config = make_ensemble([Path(r) for r in args.runs], Path(args.out))
    print(f"ensemble of {len(config.members or [])} models saved to {args.out}")
    return 0


def cmd_export(args) -> int:
    from digitrec.export import export_onnx
    from digitrec.files import check_output
    from digitrec.predict import Predictor

    if args.format != "onnx":
        raise DigitrecError(f"unknown export format '{args.format}'", expected="onnx")
    predictor = Predictor.load(args.model)
    # The run's own model.onnx is made from its weights: re-exporting into it (--out RUN/model.onnx) is allowed.
    own_onnx = (predictor.path / "model.onnx").resolve()
    protected = [p for p in _run_files(predictor.path) if p.name != "model.onnx"]
    check_output(args.out, args.overwrite or Path(args.out).resolve() == own_onnx, tuple(protected))
    out = export_onnx(predictor, Path(args.out))
    print(f"ONNX model written to {out} (input 'image' float32 [N,1,28,28] in [0,1], output 'logits' [N,10])")
    return 0


def cmd_serve(args) -> int:
    from digitrec.serve import serve

    serve(args.model, args.host, args.port)
    return 0


def cmd_report(args) -> int:
    from digitrec.evaluate import evaluate, held_out
    from digitrec.predict import Predictor
    from digitrec.report import write_report

    if not args.model:
        raise DigitrecError("say which run", expected="--model RUN_DIR")
    predictor = Predictor.load(args.model)
    digits, split = held_out(args.data, predictor.config)
    result = evaluate(predictor.probabilities(digits.x), digits)
    print(f"report written to {write_report(Path(args.model), result, digits, split)}")
    return 0


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
    from digitrec.recipes import Recipe, list_recipes

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
    train.add_argument("--data", help=DATA_HELP)
    train.add_argument("--out", help="run folder to create")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its last finished epoch")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)


def _add_model_verbs(verbs) -> None:
    """evaluate, predict, ensemble, export, serve, report: the verbs that use a trained run."""
    from digitrec.predict import ENGINES

    evaluate = verbs.add_parser(
        "evaluate", aliases=["val"], help="accuracy, loss, calibration, per-class scores, confusion",
        description="Accuracy with its 95% interval, loss, expected calibration error (ECE), the share of unsure "
                    "readings and the accuracy of the rest, per-class scores and the confusion matrix. "
                    + UNSURE_HELP)
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
                         help="replace an existing --out file (never the input or the run's own files)")
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
    read.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    read.set_defaults(func=cmd_read)

    ensemble = verbs.add_parser("ensemble", help="average several runs into one model folder")
    ensemble.add_argument("runs", nargs="+", metavar="RUN_DIR")
    ensemble.add_argument("--out", required=True, help="run folder to create")
    ensemble.set_defaults(func=cmd_ensemble)

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
    serve.set_defaults(func=cmd_serve)

    report = verbs.add_parser("report", help="write report.html into a run folder")
    report.add_argument("--model", help="run folder")
    report.add_argument("--data", help=DATA_HELP + " (default: the run's own held-out data)")
    report.set_defaults(func=cmd_report)


def build_parser() -> argparse.ArgumentParser:
    from digitrec.version import __version__

    parser = argparse.ArgumentParser(prog="digitrec", description="Handwritten digit recognition.")
    parser.add_argument("--version", action="version", version=f"digitrec {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    _add_data_verbs(verbs)
    verbs.add_parser("models", help="list architectures and recipes").set_defaults(func=cmd_models)
    _add_train_verb(verbs)
    _add_model_verbs(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DigitrecError as e:
        print(f"digitrec: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        sys.stderr.close()  # output piped into `head`: nothing more to say
        return 0
    except KeyboardInterrupt:
        print("digitrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
