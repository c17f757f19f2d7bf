"""Rebuild the bundled models from MNIST, teachers included, as a list of stages: each one `digitrec`
command (or `scripts/bundle_model.py`) whose run folder lies under --out, named after the stage.

    python scripts/rebuild_bundled.py --out runs/rebuild --dry-run          # the plan, nothing run
    python scripts/rebuild_bundled.py --data MNIST --out runs/rebuild       # every stage not yet finished
    python scripts/rebuild_bundled.py --data MNIST --out runs/rebuild --stage render-t0

Resumable: a finished stage is skipped; a stopped training run goes on from its last finished epoch
(`digitrec train --resume`); a stopped ensemble or line model starts again (`--overwrite`, which replaces
only what digitrec wrote). The last stages write OUT/bundled, a run folder shaped like the package's
(`digitrec predict --model OUT/bundled`, `digitrec read --model OUT/bundled`); compare it with the shipped
one, then copy it over src/digitrec/bundled to ship it. `--jobs N` runs up to N stages whose inputs are
ready at once (the five teachers and the vgg teacher on a GPU).

The rebuilt networks need not be bit-identical to the shipped ones: the rendered views are drawn by
today's preprocessing, and a GPU trains the teachers in another order of floating-point sums.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "scripts" / "bundle_model.py"

# Recipe B: `best` read once, 5 % of the training digits held out for every choice, other pens, scanners and
# ink (validation chose these fractions over stronger and weaker ones), and 40 % of each batch swapped for a
# rendered view of the digit.
RECIPE_B = ("--recipe", "best", "--set", "tta_shift_px=0", "--set", "val_fraction=0.05", "--set", "thickness=0.3",
            "--set", "blocky=0.1", "--set", "ink_levels=0.3", "--set", "broken=0.15", "--set", "rendered=0.4")
WITH_BOXED = ("--set", "render_kinds=photos,scans,marker,ballpoint,pencil,ruled,boxed")
# 114,000 rendered views, drawn once per set of kinds and cached: 11.2 ms of CPU a view (measured), on 2 cores.
VIEWS_SECONDS = 640


@dataclass(frozen=True)
class Stage:
    name: str
    kind: str  # train, ensemble, lines, bundle-digits, bundle-lines, bundle-signs
    args: tuple[str, ...]  # run folders as "@name" (that stage's folder under --out)
    seconds: int  # expected on 2 cores
    basis: str  # where `seconds` comes from
    after: tuple[str, ...] = ()  # stages it waits for besides the run folders it names

    @property
    def needs(self) -> list[str]:
        return [a[1:] for a in self.args if a.startswith("@")] + list(self.after)


STAGES = [
    # render-t0 draws the rendered views (11 min on 2 cores) into the cache (DIGITREC_CACHE) that the other
    # seeds read; vgg-t0 draws those with boxed digits among them for itself and ftbox30.
    *(Stage(f"render-t{seed}", "train", (*RECIPE_B, "--seed", str(seed)), 300 + (0 if seed else VIEWS_SECONDS),
            "recorded estimate: about 5 min once the views are drawn"
            + ("" if seed else "; draws them first (measured: 11 min)"),
            after=() if seed == 0 else ("render-t0",))
      for seed in range(5)),
    Stage("render-ens", "ensemble", tuple(f"@render-t{seed}" for seed in range(5)), 30,
          "derived: reads the 3,000 validation digits five times to calibrate"),
    Stage("hollow-e90", "train", (*RECIPE_B, "--set", "hollow=0.1", "--set", "epochs=90", "--teacher", "@render-ens",
                                  "--seed", "0"), 1053, "recorded train time (1,053 s)"),
    Stage("vgg-t0", "train", (*RECIPE_B, "--set", "arch=vgg", *WITH_BOXED, "--set", "batch_size=512", "--set",
                              "lr=0.012", "--set", "epochs=20", "--seed", "0"), 500 + VIEWS_SECONDS,
          "derived: an epoch costs 2.5 times a render-t epoch (measured side by side), 20 epochs; "
          "draws the boxed views first; on an H100 five such runs took 106 s at once"),
    Stage("ftbox30", "train", (*RECIPE_B, "--set", "hollow=0.1", "--set", "epochs=30", "--lr", "0.002",
                               "--init", "@hollow-e90", "--teacher", "@vgg-t0", *WITH_BOXED, "--seed", "0"),
          758, "recorded train_seconds (758 s)"),
    Stage("bundle", "bundle-digits", ("@ftbox30",), 30, "derived: reads MNIST test once, exports ONNX"),
    Stage("lines-a", "lines", ("--lines", "100000", "--seed", "0", "--epochs", "8", "--lr", "0.002"), 3038,
          "recorded seconds (3,038 s)"),
    Stage("lines", "lines", ("--init", "@lines-a", "--seed", "1", "--epochs", "3", "--lr", "0.0005"), 636,
          "recorded seconds (636 s)"),
    Stage("bundle-lines", "bundle-lines", ("@lines", "--first", "@lines-a"), 1, "copies three files"),
    # The sign reader beside the line model (signs . , - / : as well as digits), from the line model by five
    # runs, each from the one before on newly composed lines at a lower learning rate; the last is bundled
    # (decisions/0014: its best epoch, the first, reads validation digit lines at 96.05 %).
    Stage("lines-signs", "lines", ("--signs", "--init", "@lines", "--seed", "2", "--lines", "40000", "--epochs", "3",
                                   "--lr", "0.001"), 4066, "recorded seconds (4,066 s, 2 cores shared)"),
    *(Stage(f"lines-signs-{n}", "lines", ("--signs", "--init", f"@{before}", "--seed", seed, "--lines", lines,
                                          "--epochs", epochs, "--lr", lr), seconds, f"recorded seconds ({seconds:,} s)")
      for n, before, seed, lines, epochs, lr, seconds in [
          (2, "lines-signs", "4", "20000", "1", "0.0003", 403),
          (3, "lines-signs-2", "4", "60000", "2", "0.0003", 1764),
          (4, "lines-signs-3", "5", "80000", "2", "0.0002", 817),
          (5, "lines-signs-4", "6", "100000", "3", "0.0001", 1169)]),
    Stage("bundle-signs", "bundle-signs", ("@lines-signs-5", "--signs"), 1, "copies three files",
          after=("bundle-lines",)),
    # The line model then learns lines written with one pen (decisions/0019): three runs from it, each on new
    # lines, a smaller share redrawn and a lower learning rate; the last replaces it in OUT/bundled/lines (the
    # sign reader beside it stays). The shipped runs started from its bundled line.onnx, the same network with
    # its batch norm folded in; here from its weights.
    *(Stage(f"lines-pen{suffix}", "lines", ("--init", f"@{before}", "--one-pen", share, "--seed", seed, "--epochs", "2",
                                            "--lr", lr), seconds, f"recorded seconds ({seconds:,} s, 2 cores shared)")
      for suffix, before, share, seed, lr, seconds in [
          ("", "lines", "0.5", "7", "0.0003", 939),
          ("-2", "lines-pen", "0.3", "8", "0.0001", 1528),
          ("-3", "lines-pen-2", "0.2", "9", "0.00005", 747)]),
    Stage("bundle-pen", "bundle-lines", ("@lines-pen-3",), 1, "copies three files", after=("bundle-signs",)),
]
BY_NAME = {stage.name: stage for stage in STAGES}


def folder(out: Path, stage: Stage) -> Path:
    return out / ("bundled" if stage.kind.startswith("bundle") else stage.name)


def expand(args: tuple[str, ...], out: Path) -> list[str]:
    return [str(out / a[1:]) if a.startswith("@") else a for a in args]


# --smoke: every stage trains as little as it can (one epoch, 100 lines), to try the chain on any data.
SMOKE = {"train": ["--set", "steps=1"], "lines": ["--lines", "100", "--epochs", "1"]}
OPTIONS = {"smoke": False}


def command(stage: Stage, out: Path, data: str) -> list[str]:
    """The stage's command, run folders under `out` (as given: relative stays relative)."""
    args = expand(stage.args, out) + (SMOKE.get(stage.kind, []) if OPTIONS["smoke"] else [])
    digitrec = [sys.executable, "-m", "digitrec"]
    if stage.kind == "train":
        return [*digitrec, "train", *args, "--data", data, "--out", str(out / stage.name), "--quiet"]
    if stage.kind == "ensemble":
        return [*digitrec, "ensemble", *args, "--data", data, "--out", str(out / stage.name)]
    if stage.kind == "lines":
        return [*digitrec, "train-lines", *args, "--data", data, "--out", str(out / stage.name)]
    made_by = described(BY_NAME[stage.needs[0]], out)
    if stage.kind == "bundle-digits":
        return [sys.executable, str(BUNDLE), "digits", *args, "--data", data, "--into", str(folder(out, stage)),
                "--command", made_by]
    return [sys.executable, str(BUNDLE), "lines", *args, "--into", str(folder(out, stage)), "--command", made_by]


def shown(words: list[str]) -> str:
    """A command as a person types it: `digitrec ...`, `python scripts/bundle_model.py ...`."""
    if words[1:3] == ["-m", "digitrec"]:
        words = ["digitrec", *words[3:]]
    elif words[1:2] == [str(BUNDLE)]:
        words = ["python", "scripts/bundle_model.py", *words[2:]]
    return shlex.join(w for w in words if w != "--quiet")


def described(stage: Stage, out: Path) -> str:
    """What a bundled config records as `trained_by`: the rebuild command and the stage's own command, with
    no machine's path (OUT relative to the repository, else as OUT; MNIST as MNIST: the config holds its SHA-256)."""
    try:
        out = out.resolve().relative_to(ROOT) if out.is_absolute() else out
    except ValueError:
        out = Path("OUT")
    then = next((s.name for s in STAGES if s.kind.startswith("bundle") and stage.name in s.needs), "bundle")
    return (f"python scripts/rebuild_bundled.py --out {out}, stage {stage.name}: "
            f"{shown(command(stage, out, 'MNIST'))}; then stage {then}")


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def state(stage: Stage, out: Path) -> str:
    """'done', 'partial' (a folder from a stopped run) or 'new'."""
    where = folder(out, stage)
    config = _json(where / "config.json")
    if stage.kind == "train":  # a run folder with a config goes on with --resume
        return {"finished": "done", None: "new"}.get(config.get("status"), "partial")
    if stage.kind == "ensemble":
        if config.get("status") == "finished":
            return "done"
    elif stage.kind == "lines":
        if config.get("kind") == "line-reader":
            return "done"
    elif stage.kind == "bundle-digits":
        made = _json(out / stage.needs[0] / "config.json").get("weights_sha256")
        return "done" if made and config.get("weights_sha256") == made else "new"
    else:
        lines = _json(where / "lines" / ("signs" if stage.kind == "bundle-signs" else "") / "config.json").get(
            "line_onnx_sha256")
        # a bundled line model is done once it, or a line model bundled over it later (bundle-pen), is there;
        # no stage reads OUT/bundled/lines, so nothing starts from the one bundled over it
        later = STAGES[STAGES.index(stage):] if stage.kind == "bundle-lines" else [stage]
        made = {_sha256(out / s.needs[0] / "line.onnx") for s in later if s.kind == stage.kind}
        return "done" if lines and lines in made else "new"
    return "partial" if where.exists() else "new"


def resume_command(stage: Stage, out: Path, data: str) -> list[str]:
    """How a stopped stage goes on: a training run from its last finished epoch, anything else again."""
    if stage.kind == "train":
        return [sys.executable, "-m", "digitrec", "train", "--resume", str(out / stage.name), "--quiet"]
    return [*command(stage, out, data), "--overwrite"]


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def show_plan(stages: list[Stage], out: Path, data: str) -> None:
    total = 0
    for stage in stages:
        now = state(stage, out)
        total += 0 if now == "done" else stage.seconds
        run = command(stage, out, data) if now != "partial" else resume_command(stage, out, data)
        if "--command" in run:  # the trained_by text: long, and said by the stage it names
            run[run.index("--command") + 1] = "..."
        print(f"{stage.name:<14} {now:<7} ~{minutes(stage.seconds):>6} on 2 cores: {stage.basis}")
        print(f"    {shown(run)}")
    print(f"to run: about {total / 3600:.1f} h on 2 cores")


def run_stages(stages: list[Stage], out: Path, data: str, jobs: int) -> int:
    """Run each stage not done once the stages it needs are done, up to `jobs` at once; logs in OUT/logs."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    launched: set[str] = set()
    while True:
        # looked at again each round: a stage can stop being done when another runs (a line model bundled
        # again over bundle-pen's makes bundle-pen new); none runs twice in one call
        waiting = [s for s in stages if s.name not in launched and state(s, out) != "done"]
        if not waiting and not running:
            break
        for name, (job, started) in list(running.items()):
            if job.poll() is not None:
                del running[name]
                took = time.monotonic() - started
                print(f"[{time.strftime('%H:%M:%S')}] {name}: exit {job.returncode} after {minutes(took)}", flush=True)
                if job.returncode != 0:
                    print(f"stage {name} failed (log: {logs / name}.log); the same command resumes it", flush=True)
                    for other, _ in running.values():
                        other.wait()
                    return 1
        for stage in list(waiting):
            if len(running) >= jobs:
                break
            missing = [n for n in stage.needs if n in BY_NAME and state(BY_NAME[n], out) != "done"]
            if any(n not in {s.name for s in waiting} and n not in running for n in missing):
                print(f"stage {stage.name} needs {', '.join(missing)}: run it first", flush=True)
                return 2
            if missing:
                continue
            now = state(stage, out)
            run = resume_command(stage, out, data) if now == "partial" else command(stage, out, data)
            print(f"[{time.strftime('%H:%M:%S')}] {stage.name} ({'resumes' if now == 'partial' else 'starts'}, "
                  f"~{minutes(stage.seconds)} on 2 cores): {shown(run)}", flush=True)
            with open(logs / f"{stage.name}.log", "a") as log:
                running[stage.name] = (subprocess.Popen(run, stdout=log, stderr=subprocess.STDOUT), time.monotonic())
            launched.add(stage.name)
        time.sleep(1)
    print(f"all {len(stages)} stages done; the bundled models are in {out / 'bundled'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("DIGITREC_DATA"),
                        help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--out", type=Path, default=Path("runs/rebuild"), help="where the stages' folders go")
    parser.add_argument("--stage", action="append", choices=list(BY_NAME), help="run only this stage (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="stages at once (default 1)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    parser.add_argument("--smoke", action="store_true",
                        help="one epoch a network, 100 lines a line model: tries the chain, trains nothing to ship")
    args = parser.parse_args()
    OPTIONS["smoke"] = args.smoke
    stages = [BY_NAME[name] for name in args.stage] if args.stage else STAGES
    if args.dry_run:
        show_plan(stages, args.out, args.data or "$DIGITREC_DATA")
        return 0
    if not args.data:
        parser.error("no MNIST: pass --data PATH or set DIGITREC_DATA")
    if args.jobs < 1:
        parser.error("--jobs must be 1 or more")
    return run_stages(stages, args.out, args.data, args.jobs)


if __name__ == "__main__":
    sys.exit(main())
