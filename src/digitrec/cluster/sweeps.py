"""Many training runs as Ray Tune trials: the seeds of an ensemble (`ensemble --train K`) and sweeps over recipe
settings (`sweep`, ASHA on validation accuracy). Connecting to Ray is `cluster.connect`'s; each trial is a
`digitrec train` run folder, so a trial retried after its node died resumes from its last finished epoch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from digitrec.core import settings as environment
from digitrec.core.errors import DigitrecError


def _train_trial(settings: dict) -> None:
    """One Tune trial: a `digitrec train` run into `settings["run_dir"]`, each epoch reported to Tune.

    A trial retried after its node died finds its folder and resumes it from the last finished epoch (or
    restarts it, when it died before the first); a folder already finished is only reported."""
    import ray
    from ray import tune

    from digitrec.inference import runs
    from digitrec.models.recipes import Recipe
    from digitrec.training.loop import train_run

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    os.environ[environment.THREADS] = str(max(1, int(cpus)))  # torch's threads: what Tune gave this trial
    recipe = Recipe.from_dict(settings["recipe"])
    run_dir = Path(settings["run_dir"])
    last = settings["epochs"]

    def report(m) -> None:
        # The last epoch is reported once the run is finished (calibrated, figures drawn): a scheduler that
        # stops a trial at its last epoch must not stop it half-way through finishing.
        if m.epoch < last:
            tune.report(_epoch_report(m))

    resume = (run_dir / runs.CONFIG).exists()
    if not (resume and runs.read_config(run_dir).finished_ok):
        train_run(recipe, None if resume else settings["data"], run_dir, resume=resume, on_epoch=report)
    history = runs.read_metrics(run_dir)
    for m in history[:-1] if resume else []:  # a retried trial tells Tune what its first try had done
        tune.report(_epoch_report(m))
    tune.report(_epoch_report(history[-1]))


def _epoch_report(m) -> dict:
    return {"epoch": m.epoch, "val_accuracy": m.val_accuracy if m.val_accuracy is not None else float("nan"),
            "val_loss": m.val_loss if m.val_loss is not None else float("nan"), "train_loss": m.train_loss}


def _run_trials(points: list[dict], folder: Path, name: str, cpus_per_trial: int, scheduler=None,
                say: Callable[[str], None] | None = None):
    """Every point (recipe, run_dir, data) as a Tune trial; `max_failures` retries per trial (a lost node)."""
    from ray import tune

    global _say
    _say = say

    def trainable(config: dict) -> None:
        _train_trial(config["point"])

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": cpus_per_trial}),
        param_space={"point": tune.grid_search(points)},
        tune_config=tune.TuneConfig(scheduler=scheduler, reuse_actors=False),
        run_config=tune.RunConfig(
            name=name, storage_path=str(folder.resolve() / ".tune"), verbose=0, callbacks=[_Progress()],
            failure_config=tune.FailureConfig(max_failures=3),
        ),
    )
    try:
        return tuner.fit()
    finally:
        _say = None


_say: Callable[[str], None] | None = None  # where trial progress goes; a global, as Tune pickles its callbacks


try:
    from ray.tune import Callback as _TuneCallback
except ImportError:  # Ray not installed: nothing here runs without it (require_ray says so first)
    _TuneCallback = object


class _Progress(_TuneCallback):
    """Says each trial's epochs and failures through `_say` (module level: Tune pickles its callbacks by
    reference then, never the closure a caller passed in)."""

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if _say:
            _say(f"{Path(trial.config['point']['run_dir']).name}: epoch {result['epoch']} "
                 f"val_accuracy {result['val_accuracy']:.4f}")

    def on_trial_recover(self, iteration, trials, trial, **info):
        if _say:
            _say(f"{Path(trial.config['point']['run_dir']).name}: failed (its node lost?); retried, resuming its "
                 "run folder")

    def on_trial_error(self, iteration, trials, trial, **info):
        if _say:
            _say(f"{Path(trial.config['point']['run_dir']).name}: failed, no tries left")


def _trial_errors(results) -> list[str]:
    return [f"{Path(r.config['point']['run_dir']).name}: {str(r.error).strip().splitlines()[-1][:300]}"
            for r in results if r.error is not None]


def cpus_per_trial() -> int:
    """DIGITREC_THREADS when set (each trial's torch threads and the CPUs Tune reserves for it), else 1:
    on small models, one trial per core trains more models an hour than one trial on every core."""
    return environment.threads() or 1


# What `ensemble --train` and `sweep` write at the top of their --out folder: what --overwrite may replace there.
ENSEMBLE_WRITES = ("members", ".tune", "model.safetensors", "config.json", "model.onnx")
SWEEP_WRITES = ("trials", ".tune", "trials.csv", "trials.png")


@dataclass
class TrialPlan:
    """Trials checked and laid out, nothing written yet: the data loads, the settings are valid and `out` may
    take them (see `check_out`). `run_members` and `run_sweep` run them."""

    out: Path
    points: list[dict]
    overwrite: bool
    resume: bool = False
    keys: list[str] | None = None  # a sweep's searched fields


def check_out(out: Path, overwrite: bool, writes: tuple[str, ...], resume: bool = False) -> Path:
    """`out` may take the trials: see files.check_output_folder (an existing folder only with --overwrite and
    only when digitrec made it; --resume finishes what it holds)."""
    from digitrec.core.files import check_output_folder, check_resumable

    if resume:  # only a folder digitrec made is finished, and only files it wrote are replaced
        return check_resumable(out, tuple(w for w in writes if w not in ("members", ".tune")))
    return check_output_folder(out, overwrite, writes)


def _make_room(plan: TrialPlan, writes: tuple[str, ...]) -> None:
    """What digitrec wrote in `plan.out` before, removed (checked again first); nothing when resuming."""
    from digitrec.core.files import clear_written

    check_out(plan.out, plan.overwrite, writes, plan.resume)
    if not plan.resume:
        clear_written(plan.out)


def plan_members(recipe, data_path, out: Path, count: int, resume: bool = False,
                 overwrite: bool = False) -> TrialPlan:
    """`count` seeds of `recipe` into `out/members/seed-<seed>`, everything checked (the data loaded) and
    nothing written: a refusal leaves `out` as it was. The seeds share the recipe's `split_seed`, so every
    member holds out the same validation digits."""
    from digitrec import data
    from digitrec.models.recipes import check_member_seeds

    out = Path(out)
    if count < 2:
        raise DigitrecError(f"--train {count}", expected="at least 2 seeds for an ensemble")
    recipe.check()
    check_member_seeds(recipe, count)
    check_out(out, overwrite, ENSEMBLE_WRITES, resume)
    data_path = str(data.resolve_data_path(data_path).resolve())
    epochs = recipe.epochs_for(runs_train_size(data_path, recipe))
    points = [{"recipe": recipe.update(seed=recipe.seed + i).as_dict(), "epochs": epochs,
               "run_dir": str((out / "members" / f"seed-{recipe.seed + i}").resolve()), "data": data_path}
              for i in range(count)]
    return TrialPlan(out, points, overwrite, resume)


def run_members(plan: TrialPlan, say: Callable[[str], None] | None = None) -> list[Path]:
    """The members of `plan_members` trained as parallel Tune trials (Ray connected); the runs."""
    from digitrec.core.files import recording

    _make_room(plan, ENSEMBLE_WRITES)
    with recording(plan.out, ENSEMBLE_WRITES):
        (plan.out / "members").mkdir(parents=True, exist_ok=True)
        results = _run_trials(plan.points, plan.out, "ensemble", cpus_per_trial(), say=say)
    failed = _trial_errors(results)
    if failed:
        raise DigitrecError(f"{len(failed)} of {len(plan.points)} members failed: {failed[0]}", where=str(plan.out),
                            expected="fix the cause and run again with --resume to finish them")
    return [Path(p["run_dir"]) for p in plan.points]


def train_members(recipe, data_path, out: Path, count: int, resume: bool = False, overwrite: bool = False,
                  say: Callable[[str], None] | None = None) -> list[Path]:
    """`count` seeds of `recipe` trained as parallel Tune trials into `out/members/seed-<seed>`; the runs."""
    return run_members(plan_members(recipe, data_path, out, count, resume, overwrite), say)


@dataclass
class SweepResult:
    table: list[dict]
    best: dict
    csv: Path
    figure: Path


def parse_space(pairs: list[str]) -> dict[str, list]:
    """`["lr=0.001,0.003", "batch_size=64,128"]` -> values typed by the recipe's fields."""
    from digitrec.models.recipes import parse_overrides

    space: dict[str, list] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        if not sep:
            raise DigitrecError(f"--space {pair!r}", expected="--space key=v1,v2,... with a recipe field as key")
        # Every value typed and range-checked before Ray starts, an empty one too ("lr=,": not a number;
        # "teacher=,RUN": without and with a teacher); a teacher or init run must be there.
        typed = [parse_overrides([f"{key}={v}"], "--space") for v in values.split(",")]
        field = next(iter(typed[0]))
        if field in space:
            raise DigitrecError(f"--space {pair!r}: {field} is given twice", expected="each field in one --space")
        space[field] = list(dict.fromkeys(t[field] for t in typed))
    if not space:
        raise DigitrecError("nothing to search", expected="at least one --space key=v1,v2,...")
    return space


def sweep_points(space: dict[str, list], trials: int, seed: int = 0) -> list[dict]:
    """`trials` settings from the grid of `space`: every point once in a shuffled (seeded) order before any
    repeats, so 6 trials over 6 values try each value once."""
    import itertools
    import random

    grid = [dict(zip(space, values, strict=True)) for values in itertools.product(*space.values())]
    random.Random(seed).shuffle(grid)
    return [grid[i % len(grid)] for i in range(trials)]


def plan_sweep(recipe, data_path, space: dict[str, list], trials: int, out: Path,
               overwrite: bool = False) -> TrialPlan:
    """`trials` points of `space` as run folders in `out/trials/`, everything checked (the data loaded, every
    setting) and nothing written: a refusal leaves `out` as it was."""
    from digitrec import data

    out = Path(out)
    if trials < 1:
        raise DigitrecError(f"--trials {trials}", expected="at least 1")
    if not recipe.val_fraction:
        raise DigitrecError("a sweep chooses on validation accuracy, and this recipe holds nothing out",
                            expected="--set val_fraction=0.1")
    recipe.check()
    chosen = sweep_points(space, trials, recipe.seed)
    for settings in chosen:
        recipe.update(**settings).check()  # a bad value is refused before anything trains
    check_out(out, overwrite, SWEEP_WRITES)
    data_path = str(data.resolve_data_path(data_path).resolve())
    n_train = runs_train_size(data_path, recipe)
    points = [{"recipe": recipe.update(**settings).as_dict(), "settings": settings, "data": data_path,
               "epochs": recipe.update(**settings).epochs_for(n_train),
               "run_dir": str((out / "trials" / f"trial-{i:03d}").resolve())} for i, settings in enumerate(chosen)]
    return TrialPlan(out, points, overwrite, keys=list(space))


def sweep(recipe, data_path, space: dict[str, list], trials: int, out: Path,
          overwrite: bool = False, say: Callable[[str], None] | None = None) -> SweepResult:
    """Recipe settings searched on validation accuracy: Tune trials with ASHA stopping the weak ones early;
    a table (CSV) and a figure of every trial in `out`, each trial's run folder in `out/trials/`."""
    return run_sweep(plan_sweep(recipe, data_path, space, trials, out, overwrite), say)


def run_sweep(plan: TrialPlan, say: Callable[[str], None] | None = None) -> SweepResult:
    """The trials of `plan_sweep` run (Ray connected); the table, the figure and the best."""
    from digitrec.core.files import recording

    _make_room(plan, SWEEP_WRITES)
    with recording(plan.out, SWEEP_WRITES):
        (plan.out / "trials").mkdir(parents=True, exist_ok=True)
        return _sweep_trials(plan, say)


def _sweep_trials(plan: TrialPlan, say: Callable[[str], None] | None) -> SweepResult:
    from ray.tune.schedulers import ASHAScheduler

    from digitrec.inference import runs

    out, points = plan.out, plan.points
    epochs = max(p["epochs"] for p in points)
    scheduler = ASHAScheduler(metric="val_accuracy", mode="max", time_attr="epoch", max_t=max(1, epochs),
                              grace_period=1, reduction_factor=2)
    results = _run_trials(points, out, "sweep", cpus_per_trial(), scheduler, say)
    failed = _trial_errors(results)
    table = []
    for r in results:
        point = r.config["point"]
        history = runs.read_metrics(Path(point["run_dir"])) if (Path(point["run_dir"]) / runs.METRICS).exists() \
            else []
        finished = (Path(point["run_dir"]) / runs.CONFIG).exists() and \
            runs.read_config(Path(point["run_dir"])).finished_ok
        status = "failed" if r.error is not None else "finished" if finished else "stopped early"
        if status == "stopped early":
            _mark_stopped(Path(point["run_dir"]))
        table.append({"trial": Path(point["run_dir"]).name, **point["settings"], "epochs": len(history),
                      "val_accuracy": history[-1].val_accuracy if history else None,
                      "val_loss": history[-1].val_loss if history else None, "status": status,
                      "run_dir": point["run_dir"], "curve": [m.val_accuracy for m in history]})
    table.sort(key=lambda row: row["trial"])
    scored = [row for row in table if row["val_accuracy"] is not None and row["status"] != "failed"]
    if not scored:
        raise DigitrecError(f"every trial failed: {failed[0] if failed else 'no epoch finished'}", where=str(out))
    best = max(scored, key=lambda row: (row["epochs"], row["val_accuracy"]))
    csv_path, figure = _write_sweep_table(out, table, plan.keys), _sweep_figure(out, table, plan.keys)
    return SweepResult(table, best, csv_path, figure)


def runs_train_size(data_path: str, recipe) -> int:
    """How many digits a run of `recipe` trains on (for the epochs a step budget becomes)."""
    from digitrec import data

    train_set, _ = data.load_for_training(data_path, recipe.val_fraction, recipe.split_seed)
    return len(train_set)


def _mark_stopped(run_dir: Path) -> None:
    """A trial ASHA stopped: its folder holds the model of its last epoch; its config says why it ended."""
    from digitrec.inference import runs

    if (run_dir / runs.CONFIG).exists():
        config = runs.read_config(run_dir)
        config.status = "stopped early by the sweep (ASHA)"
        runs.write_config(run_dir, config)


def _write_sweep_table(out: Path, table: list[dict], keys: list[str]) -> Path:
    from digitrec.core.csvout import csv_text  # quoted; a path or setting never read as a spreadsheet formula
    from digitrec.core.files import atomic_write_text

    columns = ["trial", *keys, "epochs", "val_accuracy", "val_loss", "status", "run_dir"]
    atomic_write_text(out / "trials.csv", csv_text(columns, ([row.get(c) for c in columns] for row in table)))
    return out / "trials.csv"


def _sweep_figure(out: Path, table: list[dict], keys: list[str]) -> Path:
    from digitrec.inference import plots

    curves = {f"{row['trial']} " + " ".join(f"{k}={row[k]}" for k in keys) + f" ({row['status']})": row["curve"]
              for row in table}
    return plots.sweep_curves(curves, out / "trials.png")


def build_ensemble(members: list[Path], out: Path, recipe, data_path) -> float | None:
    """The members averaged into the run folder `out` and calibrated as every trained run is (see
    `calibrate_ensemble`). Returns the ensemble's validation accuracy."""
    from digitrec.inference import runs

    runs.make_ensemble(members, out)
    return calibrate_ensemble(out, recipe, data_path)


def calibrate_ensemble(out: Path, recipe, data_path) -> float | None:
    """A temperature for the ensemble in `out`, fitted on the validation digits its members all held out
    (`recipe`'s split of the data): averaged label-smoothed members are under-confident. Returns the
    validation accuracy, or None when the recipe holds nothing out."""
    from digitrec import data
    from digitrec.inference import runs
    from digitrec.inference.calibration import fit_temperature
    from digitrec.inference.engine import Predictor

    train_set, val_set = data.load_for_training(data.resolve_data_path(data_path), recipe.val_fraction,
                                                recipe.split_seed)
    if val_set is None:
        return None
    config = runs.read_config(out)
    trained_on = config.data.train + config.data.val
    if len(train_set) + len(val_set) != trained_on:  # another data set: its "validation" digits mean nothing here
        raise DigitrecError(f"the data holds {len(train_set) + len(val_set):,} training digits; the runs were "
                            f"trained on {trained_on:,}", where=str(data_path or "DIGITREC_DATA"),
                            expected="the data the runs were trained on")
    logits = Predictor.load(out).logits(val_set.x)
    config.temperature = fit_temperature(logits, val_set.y)
    config.val_accuracy = float((logits.argmax(1) == val_set.y).mean())
    runs.write_config(out, config)
    return config.val_accuracy
