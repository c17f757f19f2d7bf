"""`digitrec data check` and `digitrec data download`: their parser and what they do and print."""

from __future__ import annotations

import sys
from pathlib import Path

from digitrec.cli.common import DATA_HELP, _print_json, _table
from digitrec.core.errors import DigitrecError
from digitrec.core.files import check_output_folder

DATA_FIGURES = ("balance.png", "samples.png", "pixels.png")  # what `data check --plots DIR` writes in DIR


def add_parser(verbs) -> None:
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


def cmd_data_check(args) -> int:
    from digitrec import data

    if args.plots and args.path and Path(args.path).is_dir():  # the figures would join the pictures checked
        data_dir, plots_dir = Path(args.path).resolve(), Path(args.plots).resolve()
        if plots_dir == data_dir or data_dir in plots_dir.parents:
            raise DigitrecError("refusing to write figures inside the data being checked", where=args.plots,
                                expected="a --plots folder outside the data")
    if args.plots:  # its own figures from an earlier check are replaced; a file of the user's under their names is not
        check_output_folder(args.plots, True, DATA_FIGURES, whole=False)
    report = data.check(args.path)
    if args.plots and report.splits:
        from digitrec.core.files import recording
        from digitrec.inference import plots

        with recording(Path(args.plots), DATA_FIGURES):
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
