"""`digitrec read`: whole numbers, one line of handwritten digits per picture, each digit with its box."""

from __future__ import annotations

from pathlib import Path

from digitrec.cli.common import (
    CLUSTER_HELP,
    OVERWRITE_HELP,
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


def cmd_read(args) -> int:
    from digitrec.inference.batch import read_files
    from digitrec.inference.engine import load_predictor

    if args.cluster is not None:
        return _read_on_cluster(args, "read")
    target = Path(args.input)
    if args.out:
        check_output(args.out, args.overwrite, _protected(args.out, args.model), inputs=(target,))
    if args.score:
        from digitrec.reading.score import load_numbers

        load_numbers(target)  # a bad numbers.csv is refused before any picture is read
    predictor = load_predictor(args.model, args.engine)
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
        from digitrec.core.csvout import csv_text  # quoted, and no file name read as a spreadsheet formula

        rows = [(r.file, r.reading.text, r.reading.confidence) if r.reading else (r.file, None, None) for r in results]
        atomic_write_text(Path(args.out), csv_text(["file", "text", "confidence"], rows))
    _errors_to_stderr(target, results)
    return 0 if all(r.error is None for r in results) else 2


def _score_readings(target: Path, results, as_json: bool) -> int:
    """Compare readings with the folder's numbers.csv (file,text,group): scripts/make_numbers.py's bench."""
    from digitrec.reading.score import score_folder

    # Files are named from the folder's parent; numbers.csv names them from the folder.
    report = score_folder(target, {r.file.split("/", 1)[-1]: r.reading.text if r.reading else None for r in results})
    if as_json:
        _print_json(report)
        return 0
    table = [[name, s["n"], f"{s['string_accuracy']:.2%}", f"{s['digit_accuracy']:.2%}"]
             for name, s in [("all", report["all"]), *report["groups"].items(),
                             *((f"{n} digits", s) for n, s in report["lengths"].items())]]
    print(_table(table, ["", "pictures", "strings right", "digits right"]))
    return 0
