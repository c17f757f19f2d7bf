"""The `digitrec` command line: one module a verb (or a small group of verbs) holds its parser and its handler;
this one assembles the parser and is the one place errors become exit codes.

A new verb is one new module with `add_parser(verbs)` and its `cmd_*` handler, listed in VERBS. Each handler
imports the library modules it needs inside itself: `digitrec predict` must start without importing torch
(2.5 s), which the training and export modules load."""

from __future__ import annotations

import argparse
import sys

from digitrec.cli import (
    cluster_verbs,
    data,
    evaluate,
    export,
    models,
    predict,
    read,
    report,
    serve,
    train,
    tune,
)
from digitrec.core.errors import DigitrecError
from digitrec.core.hardware import TRAIN_EXTRA, require_matplotlib, require_torch

# In the order `digitrec --help` lists them.
VERBS = (data, models, train, tune, evaluate, predict, read, cluster_verbs, export, serve, report)

# Verbs that train, tune, export or build models: PyTorch (the train extra), checked before they touch anything.
NEEDS_TORCH = ("train", "train-lines", "tune", "export", "ensemble", "sweep", "models")


def build_parser() -> argparse.ArgumentParser:
    from digitrec.core.version import __version__

    parser = argparse.ArgumentParser(prog="digitrec", description="Handwritten digit recognition.")
    parser.add_argument("--version", action="version", version=f"digitrec {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb in VERBS:
        verb.add_parser(verbs)
    return parser


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
