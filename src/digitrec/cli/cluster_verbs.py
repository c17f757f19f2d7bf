"""`digitrec ensemble` (average runs, or train K seeds on Ray and average them) and `digitrec sweep` (Ray Tune)."""

from __future__ import annotations

import sys
from pathlib import Path

from digitrec.cli.common import DATA_HELP, _at_most, _table
from digitrec.core.errors import DigitrecError
from digitrec.core.files import check_output_folder
from digitrec.inference.runs import CONFIG, ONNX, WEIGHTS

ENSEMBLE_WRITES = (WEIGHTS, CONFIG, ONNX)  # what `ensemble RUN_DIR ...` writes in --out (ONNX: a stale export)

# Upper bounds of the counts given on the command line: past them a typo (a few zeros too many) would grow
# memory for minutes with no output (a sweep plans every trial first). Each is far above any real use.
MAX_TRIALS = 10_000
MAX_ENSEMBLE_TRAIN = 100


def add_parser(verbs) -> None:
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


def cmd_ensemble(args) -> int:
    from digitrec.core.files import clear_written, recording
    from digitrec.inference.runs import load_run, make_ensemble

    _at_most(args.train, "--train", MAX_ENSEMBLE_TRAIN)
    out = Path(args.out)
    if args.train is None:
        if not args.runs:
            raise DigitrecError("nothing to average", expected="RUN_DIR RUN_DIR ..., or --train K --recipe NAME")
        _check_not_a_member(out, [Path(r) for r in args.runs])
        check_output_folder(out, args.overwrite, ENSEMBLE_WRITES)
        for run in args.runs:  # every member loads before anything of --out is removed
            load_run(run)
        clear_written(out)
        with recording(out, ENSEMBLE_WRITES, claim=(WEIGHTS, CONFIG)):
            config = make_ensemble([Path(r) for r in args.runs], out)
            calibrated = _calibrated(args, config)
        print(f"ensemble of {len(config.members or [])} models saved to {args.out}{calibrated}")
        return 0
    from digitrec.cluster import connect, sweeps

    if args.runs:
        raise DigitrecError("give run folders or --train K, not both", expected="one of them")
    connect.require_ray()
    recipe = _recipe_from(args)
    plan = sweeps.plan_members(recipe, args.data, out, args.train, args.resume, args.overwrite)
    with connect.connected(args.cluster or None, say=lambda where: print(where, file=sys.stderr)):
        members = sweeps.run_members(plan, say=lambda line: print(line, file=sys.stderr))
    with recording(out, sweeps.ENSEMBLE_WRITES, claim=(WEIGHTS, CONFIG)):
        accuracy = sweeps.build_ensemble(members, out, recipe, args.data)
    held_out = "" if accuracy is None else f", validation accuracy {accuracy:.4f} (calibrated on it)"
    print(f"ensemble of {len(members)} models saved to {args.out}{held_out}")
    return 0


def _check_not_a_member(out: Path, members: list[Path]) -> None:
    """An ensemble's --out is none of the runs it averages (nor a run they were averaged from), and neither lies in
    the other: writing it would replace a member, and a run listing itself as a member has no end."""
    from digitrec.inference.runs import read_config

    resolved = out.resolve()
    paths = [m.resolve() for m in members]
    for member in members:
        config = read_config(member)
        paths += [Path(m.path).resolve() for m in config.members or []] if config.is_ensemble else []
    for path in paths:
        if resolved == path or path in resolved.parents or resolved in path.parents:
            raise DigitrecError(f"refusing to write the ensemble over one of its members ({path})", where=str(out),
                                expected="an --out folder apart from every member run")


def _calibrated(args, config) -> str:
    """Calibrates an ensemble of existing runs on the validation digits they all held out, when they hold
    out the same ones and the data is at hand; says what was done."""
    from digitrec.cluster import sweeps

    splits = {(fraction, seed) for _, fraction, seed in config.splits()}  # every member's, nested ones too
    if len(splits) > 1 or not config.recipe.val_fraction:
        why = "the runs do not hold out the same validation digits" if len(splits) > 1 else "no digits held out"
        print(f"digitrec: not calibrated (temperature 1): {why}", file=sys.stderr)
        return ""
    try:
        accuracy = sweeps.calibrate_ensemble(Path(args.out), config.recipe, args.data)
    except DigitrecError as e:
        print(f"digitrec: not calibrated (temperature 1): {e.what}", file=sys.stderr)
        return ""
    return "" if accuracy is None else f", validation accuracy {accuracy:.4f} (calibrated on it)"


def _recipe_from(args):
    from digitrec.models.recipes import get_recipe, parse_overrides

    # Checked whole here, before Ray starts: a bad setting is one line, not a trial retried and failing.
    return get_recipe(args.recipe, None).update(**parse_overrides(args.set or [])).check()


def cmd_sweep(args) -> int:
    from digitrec.cluster import connect, sweeps

    _at_most(args.trials, "--trials", MAX_TRIALS)
    connect.require_ray()

    recipe = _recipe_from(args)
    space = sweeps.parse_space(args.space)
    # Every check (the folder, the data, each setting) before Ray starts and before anything is removed.
    plan = sweeps.plan_sweep(recipe, args.data, space, args.trials, Path(args.out), args.overwrite)
    with connect.connected(args.cluster or None, say=lambda where: print(where, file=sys.stderr)):
        result = sweeps.run_sweep(plan, say=lambda line: print(line, file=sys.stderr))
    keys = list(space)
    rows = [[row["trial"], *(row[k] for k in keys), row["epochs"],
             "-" if row["val_accuracy"] is None else f"{row['val_accuracy']:.4f}", row["status"]]
            for row in result.table]
    print(_table(rows, ["trial", *keys, "epochs", "val_accuracy", "status"]))
    print(f"table: {result.csv}; figure: {result.figure}")
    best = result.best
    sets = " ".join(f"--set {k}={best[k]}" for k in keys)
    extra = " ".join(f"--set {s}" for s in args.set or [])
    print(f"best: {best['trial']} (validation accuracy {best['val_accuracy']:.4f}); train it with:")
    print(f"  digitrec train --recipe {args.recipe or 'default'} {extra + ' ' if extra else ''}{sets} "
          f"--out runs/{best['trial']}" + (f" --data {args.data}" if args.data else ""))
    return 0
