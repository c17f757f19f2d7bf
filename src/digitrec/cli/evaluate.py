"""`digitrec evaluate` (alias `val`): accuracy, loss, calibration, per-class scores and confusion of a run."""

from __future__ import annotations

from digitrec.cli.common import DATA_HELP, UNSURE_HELP, _print_json, _table


def add_parser(verbs) -> None:
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


def cmd_evaluate(args) -> int:
    from digitrec.inference.engine import scoring_predictor
    from digitrec.inference.metrics import evaluate, held_out

    predictor = scoring_predictor(args.model)
    digits, split = held_out(args.data, predictor.config)
    result = evaluate(predictor.probabilities(digits.x), digits)
    if args.json:
        _print_json({"model": predictor.name, "data": digits.source, "split": split, **result.as_dict()})
        return 0
    low, high = result.interval95
    print(f"model {predictor.name} on {digits.source}" + ("" if split in digits.source else f" ({split})"))
    print(f"accuracy {result.accuracy:.4f} (95% interval {low:.4f}-{high:.4f})  loss {result.loss:.4f}  "
          f"n {result.n}  errors {result.n - int(round(result.accuracy * result.n))}")
    if result.refused:
        first, why = next(iter(result.refused.items()))
        print(f"no digit read in {len(result.refused)} pictures, each counted as an error (first: {first}: {why})")
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
