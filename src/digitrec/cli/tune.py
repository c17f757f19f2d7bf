"""`digitrec tune`: teach a run a user's handwriting from a few labelled pictures."""

from __future__ import annotations

import sys

from digitrec.core.errors import DigitrecError
from digitrec.core.files import check_output_folder


def add_parser(verbs) -> None:
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


def cmd_tune(args) -> int:
    from tqdm import tqdm

    from digitrec.training.hand import FEW, TuneSettings, tune_run

    settings = TuneSettings(**{k: v for k, v in {"steps": args.steps, "seed": args.seed}.items() if v is not None})
    if settings.steps < 1:
        raise DigitrecError(f"--steps {settings.steps}", expected="at least 1")

    check_output_folder(args.out)
    bar = tqdm(total=settings.steps, unit="step", file=sys.stderr, disable=True if args.quiet else None)
    try:
        result = tune_run(args.data, args.out, args.model, args.replay, settings, lambda step, total: bar.update(1))
    finally:
        bar.close()
    counts = " ".join(f"{d}:{c}" for d, c in enumerate(result.counts))
    print(f"tuned on {sum(result.counts)} examples ({counts}) in {result.seconds:.1f} s; run saved to {args.out}")
    for name, why in result.skipped:
        print(f"warning: skipped {name}: {why}", file=sys.stderr)
    if result.too_few:
        print(f"warning: fewer than {FEW} examples of {', '.join(map(str, result.too_few))}: "
              "those digits may still be misread; add more and tune again", file=sys.stderr)
    return 0
