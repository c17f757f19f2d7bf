"""One lent GPU call: a teacher ensemble of `vgg` networks, then students of the bundled size class
distilled from it, all inside a fixed wall-clock budget. Written down before the call (session 16).

    PYTHONPATH=src python3 scripts/gpu_round.py --data .gpu/mnist --budget 560 --out $OUT

The rendered views are drawn beforehand on any machine (`digitrec train ... --set rendered=0.4 --set
render_kinds=... --set steps=1` fills $DIGITREC_CACHE) and carried compressed; unpack them into
$DIGITREC_CACHE in the same device call that trains, since a later call may find the unpacked copy gone
(session 16 lost its second call so: the student drew the views again and ran out of time).

Phase 1: five `vgg` teachers (seeds 0-4), recipe B + rendered views (boxed digits among them, so that the
teachers learn stretched 1s), batch 512, all at once on the one GPU. Phase 2: their ensemble, calibrated
on the 3,000 validation digits. Phase 3: the student candidates below, at once, for as many epochs (at most
90) as the time left allows at the pace phase 1 measured, checked again after their first epoch. Every run
folder then goes into two archives, teachers and the rest (weights, config, metrics, figures; no
checkpoints). Which student (if any) replaces the bundled model is chosen afterwards on validation digits
only, by a rule written before they are read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from digitrec import runs

RECIPE_B = ["--recipe", "best", "--set", "tta_shift_px=0", "--set", "val_fraction=0.05", "--set", "thickness=0.3",
            "--set", "blocky=0.1", "--set", "ink_levels=0.3", "--set", "broken=0.15", "--set", "rendered=0.4"]
WITH_BOXED = "photos,scans,marker,ballpoint,pencil,ruled,boxed"
TEACHER = ["--set", "arch=vgg", "--set", f"render_kinds={WITH_BOXED}", "--set", "batch_size=512", "--set", "lr=0.012"]
TEACHER_EPOCHS = 20
TEACHER_SEEDS = range(5)
STUDENT = ["--set", "hollow=0.1", "--set", "batch_size=256", "--set", "lr=0.0085", "--teacher", "runs/vgg-ens"]
STUDENTS = {  # name: what differs; when time is short, the first ones train
    "vs-wide-boxed": ["--set", "arch=cnn-wide", "--set", f"render_kinds={WITH_BOXED}"],
    "vs-wide": ["--set", "arch=cnn-wide"],
    "vs-wider-boxed": ["--set", "arch=cnn-wider", "--set", f"render_kinds={WITH_BOXED}"],
}
MAX_STUDENT_EPOCHS = 90
TRAIN_DIGITS = 57_000


SMOKE: list[str] = []  # --smoke: two optimizer steps a run, to try the whole round on a CPU


def launch(name: str, args: list[str], data: str, logs: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "digitrec", "train", *args, *SMOKE, "--data", data, "--out", f"runs/{name}",
               "--quiet"]
    print(f"[{time.strftime('%H:%M:%S')}] start {name}: {' '.join(command[3:])}", flush=True)
    return subprocess.Popen(command, stdout=open(logs / f"{name}.log", "w"), stderr=subprocess.STDOUT)


def wait_all(jobs: dict[str, subprocess.Popen], deadline: float) -> None:
    while any(job.poll() is None for job in jobs.values()):
        if time.monotonic() > deadline:
            for name, job in jobs.items():
                if job.poll() is None:
                    print(f"deadline: stopping {name}", flush=True)
                    job.terminate()
            time.sleep(5)
            break
        time.sleep(2)
    for name, job in jobs.items():
        print(f"[{time.strftime('%H:%M:%S')}] {name}: exit {job.poll()}", flush=True)


def last_epoch(name: str) -> str:
    history = runs.read_metrics(Path("runs") / name)
    if not history:
        return "no finished epoch"
    last = history[-1]
    return f"epoch {last.epoch}, val {last.val_accuracy}, {last.seconds:.1f} s/epoch"


def archive(out: Path, logs: Path) -> None:
    """Two archives under 16 MB each (what a device call may return): the teachers, and everything else."""
    teachers = out / "teachers.tar.gz"
    rest = out / "runs.tar.gz"
    with tarfile.open(teachers, "w:gz") as first, tarfile.open(rest, "w:gz") as second:
        for run in sorted(Path("runs").iterdir()):
            tar = first if run.name.startswith("vgg-t") else second
            for f in run.iterdir() if run != logs else []:
                if f.name != runs.CHECKPOINT:
                    tar.add(f)
        second.add(logs)
    print(f"archived runs/ into {teachers} ({teachers.stat().st_size / 1e6:.1f} MB) and {rest} "
          f"({rest.stat().st_size / 1e6:.1f} MB)", flush=True)


def epoch_seconds(name: str) -> float | None:
    history = runs.read_metrics(Path("runs") / name)
    return history[0].seconds if history else None


def train_students(names: list[str], epochs: int, data: str, logs: Path, end: float) -> None:
    """The students at once. Their pace is checked once each has finished an epoch: if they would not end
    in time, they start again with as many epochs as the measured pace allows (once)."""
    def start(epochs: int) -> dict[str, subprocess.Popen]:
        return {name: launch(name, [*RECIPE_B, *STUDENT, *STUDENTS[name], "--set", f"epochs={epochs}", "--seed", "0"],
                             data, logs) for name in names}

    jobs = start(epochs)
    while time.monotonic() < end and any(job.poll() is None for job in jobs.values()):
        paces = [epoch_seconds(name) for name in names]
        if all(pace is not None for pace in paces):
            if time.monotonic() + (epochs - 1) * max(paces) > end - 10:
                for job in jobs.values():
                    job.kill()
                    job.wait()
                for name in names:
                    shutil.rmtree(Path("runs") / name)
                epochs = int((end - time.monotonic() - 25) / max(paces))
                print(f"students at {max(paces):.1f} s an epoch would not end in time: again with {epochs} epochs",
                      flush=True)
                if epochs < 10:
                    return
                jobs = start(epochs)
            break
        time.sleep(2)
    wait_all(jobs, end)
    for name in names:
        print(f"  {name}: {last_epoch(name)}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--budget", type=float, default=560, help="seconds for everything, archive included")
    parser.add_argument("--out", type=Path, required=True, help="folder for the two archives")
    parser.add_argument("--smoke", action="store_true", help="two steps a run: checks the round, trains nothing")
    args = parser.parse_args()
    if args.smoke:
        SMOKE.extend(["--set", "steps=2"])
    start = time.monotonic()
    end = start + args.budget - 25  # room to archive
    logs = Path("runs/logs")
    logs.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DIGITREC_THREADS", "3")

    teachers = {f"vgg-t{seed}": launch(f"vgg-t{seed}", [*RECIPE_B, *TEACHER, "--set", f"epochs={TEACHER_EPOCHS}",
                                                        "--seed", str(seed)], args.data, logs)
                for seed in TEACHER_SEEDS}
    wait_all(teachers, end - 120)
    phase1 = time.monotonic() - start
    for name in teachers:
        print(f"  {name}: {last_epoch(name)}", flush=True)
    archive(args.out, logs)  # the teachers come back even if what follows runs out of time
    if any(job.returncode != 0 for job in teachers.values()):
        print("a teacher failed: no ensemble, no students", flush=True)
        return 1
    members = [f"runs/{name}" for name in teachers]
    subprocess.run([sys.executable, "-m", "digitrec", "ensemble", *members, "--data", args.data,
                    "--out", "runs/vgg-ens"], check=True)

    # Phase 1 ran 5 x TEACHER_EPOCHS epochs of 512-digit steps; a student step (256 digits, five teachers
    # read too) is taken to cost at most 1.4 times a teacher's. As many students as can have 45 epochs or more.
    steps_done = len(teachers) * TEACHER_EPOCHS * (TRAIN_DIGITS // 512)
    seconds_per_step = phase1 / steps_done
    left = end - time.monotonic() - 20
    names = list(STUDENTS)
    for count in range(len(names), 0, -1):
        epochs = min(MAX_STUDENT_EPOCHS, int(left / (seconds_per_step * count * (TRAIN_DIGITS // 256) * 1.4)))
        if epochs >= 45:
            break
    print(f"phase 1: {phase1:.0f} s, {seconds_per_step * 1000:.1f} ms a step; {left:.0f} s left: "
          f"{count} students get {epochs} epochs", flush=True)
    if epochs >= 15:
        train_students(names[:count], epochs, args.data, logs, end)
    archive(args.out, logs)
    print(f"total {time.monotonic() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
