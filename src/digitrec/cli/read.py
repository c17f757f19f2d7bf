"""`digitrec read`: whole numbers, one line of handwritten digits per picture, each digit with its box."""

from __future__ import annotations

import sys
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
                    "The signs written inside numbers (. , - / :, as in 12.50, -3, 24/12/2026, 14:05) are read "
                    "where written by the sign reader beside the line model (the bundled one, or a run's "
                    "lines/signs/), each with its confidence and box like a digit (--digits-only: digits alone); "
                    "other marks are left out and counted as 'rejected'.")
    read.add_argument("input", help="image or folder of images (recursive)")
    read.add_argument("--model", help="run folder (default: the bundled model)")
    read.add_argument("--json", action="store_true", help="a list of {file, text, confidence, digits, rejected}")
    read.add_argument("--out", help="write file,text,confidence to this CSV")
    read.add_argument("--score", action="store_true",
                      help="compare with INPUT/numbers.csv (scripts/make_numbers.py): strings and digits right")
    read.add_argument("--digits-only", action="store_true",
                      help="digits alone: the signs written inside numbers (. , - / :) left out")
    read.add_argument("--page", action="store_true",
                      help="a page of fields (a form, a table, rows of digit boxes): every handwritten field read, "
                           "in reading order; --json gives {file, width, height, fields}, --out one CSV row a field "
                           "(file, field, text, confidence, x0, y0, x1, y1); with --cluster, a Parquet dataset "
                           "of one row a page (file, fields as JSON, count)")
    read.add_argument("--engine", choices=ENGINES, default="auto")
    read.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    read.add_argument("--cluster", nargs="?", const="", metavar="ADDRESS", help=CLUSTER_HELP)
    read.add_argument("--quiet", action="store_true", help="no progress bar (--cluster)")
    read.set_defaults(func=cmd_read)


def cmd_read(args) -> int:
    from digitrec.inference.batch import read_files
    from digitrec.inference.engine import load_predictor

    if args.cluster is not None:
        if args.digits_only:
            raise DigitrecError("--digits-only reads on this machine", where="--cluster",
                                expected="--digits-only without --cluster")
        return _read_on_cluster(args, "page" if args.page else "read")
    target = Path(args.input)
    if args.page and args.score:
        raise DigitrecError("--score compares numbers, one a picture", where="--page",
                            expected="no --score with --page")
    if args.out:
        check_output(args.out, args.overwrite, _protected(args.out, args.model), inputs=(target,))
    if args.page:
        return _read_pages(args, target)
    if args.score:
        from digitrec.reading.score import load_numbers

        load_numbers(target)  # a bad numbers.csv is refused before any picture is read
    predictor = load_predictor(args.model, args.engine)
    results = read_files(predictor, target, args.digits_only)
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


def _read_pages(args, target: Path) -> int:
    """`read --page`: each picture a page of fields (`digitrec.reading.page`)."""
    from digitrec.inference.batch import image_files
    from digitrec.inference.engine import load_predictor

    files, base = image_files(target)
    predictor = load_predictor(args.model, args.engine)
    results = []  # (file, page or None, error or None)
    for path in files:
        try:
            results.append((str(path.relative_to(base)), predictor.read_page(path, args.digits_only), None))
        except DigitrecError as e:
            results.append((str(path.relative_to(base)), None, e.what))
    if len(results) == 1 and results[0][2] and not target.is_dir():
        raise DigitrecError(results[0][2], where=str(target))
    rows = [(file, n, f.text, round(f.confidence, 6), *f.box) for file, page, _ in results if page
            for n, f in enumerate(page.fields, start=1)]
    if args.json:
        _print_json([{"file": file, **page.as_dict()} if page else {"file": file, "fields": [], "error": error}
                     for file, page, error in results])
    else:
        table = [[file, n, text, f"{confidence:.3f}", f"{x0},{y0},{x1},{y1}", ""]
                 for file, n, text, confidence, x0, y0, x1, y1 in rows]
        table += [[file, "-", "-", "-", "-", error] for file, _, error in results if error]
        print(_table(table, ["file", "field", "text", "confidence", "box", "error"]))
    if args.out:
        from digitrec.core.csvout import csv_text  # quoted, and no file name read as a spreadsheet formula

        rows += [(file, None, None, None, None, None, None, None) for file, _, error in results if error]
        atomic_write_text(Path(args.out), csv_text(["file", "field", "text", "confidence", "x0", "y0", "x1", "y1"],
                                                   rows))
    for file, _, error in results:
        if error:
            print(f"digitrec: error: {base / file}: {error}", file=sys.stderr)
    return 0 if all(error is None for _, _, error in results) else 2


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
