"""`digitrec report`: report.html in a run folder."""

from __future__ import annotations

from pathlib import Path

from digitrec.cli.common import DATA_HELP
from digitrec.core.errors import DigitrecError


def add_parser(verbs) -> None:
    report = verbs.add_parser("report", help="write report.html into a run folder")
    report.add_argument("--model", help="run folder")
    report.add_argument("--data", help=DATA_HELP + " (default: the run's own held-out data)")
    report.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from digitrec.inference.engine import scoring_predictor
    from digitrec.inference.metrics import evaluate, held_out
    from digitrec.inference.report import write_report

    if not args.model:
        raise DigitrecError("say which run", expected="--model RUN_DIR")
    predictor = scoring_predictor(args.model)
    digits, split = held_out(args.data, predictor.config)
    result = evaluate(predictor.probabilities(digits.x), digits)
    print(f"report written to {write_report(Path(args.model), result, digits, split)}")
    return 0
