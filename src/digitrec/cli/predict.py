"""`digitrec predict`: a digit for each picture or folder of pictures, or a Kaggle submission for a test.csv."""

from __future__ import annotations

import json
from pathlib import Path

from digitrec.cli.common import (
    CLUSTER_HELP,
    OVERWRITE_HELP,
    UNSURE_HELP,
    _errors_to_stderr,
    _print_json,
    _protected,
    _read_on_cluster,
    _table,
)
from digitrec.core.errors import DigitrecError
from digitrec.core.files import atomic_write_text, check_output


def add_parser(verbs) -> None:
    from digitrec.inference.engine import ENGINES

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


def cmd_predict(args) -> int:
    from digitrec import data
    from digitrec.inference.batch import predict_files, write_submission
    from digitrec.inference.engine import load_predictor

    if args.cluster is not None:
        return _read_on_cluster(args, "predict")
    target = Path(args.input)
    if not target.exists():
        raise DigitrecError("no such file or folder", where=str(target))
    if args.out:
        check_output(args.out, args.overwrite, _protected(args.out, args.model), inputs=(target,))
    predictor = load_predictor(args.model, args.engine)
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
        _errors_to_stderr(target, results)
        return 0 if all(r.error is None for r in results) else 2
    digits = data.load(target)
    if not args.out:
        raise DigitrecError("predicting a data file writes a submission", expected="--out submission.csv")
    labels = write_submission(predictor, digits, Path(args.out))
    print(f"{len(labels)} predictions written to {args.out}")
    return 0
