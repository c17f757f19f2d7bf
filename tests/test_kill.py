"""Fault injection: `train` killed (os._exit, as by kill -9) at every file write of a run, while the file
is half written and just after it is in place; every folder left behind must be resumable or plainly
restartable, and no finished epoch may be lost.

Each kill happens in a child process whose `os.replace` (the last step of every atomic write in
digitrec.files) is wrapped: at the N-th call it cuts the temporary file in half and dies ("during"), or
lets the rename happen and dies ("after"). The parent then looks at the folder and carries the run on.
"""

import json
import subprocess
import sys
import textwrap

import pytest

from digitrec import runs
from digitrec.errors import DigitrecError
from digitrec.recipes import get_recipe
from digitrec.train import train_run

pytestmark = pytest.mark.slow

EPOCHS = 3
CHILD = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    kill_at, when, data_dir, out, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4]), sys.argv[5]
    real_replace, count = os.replace, 0

    def replace(src, dst):
        global count
        count += 1
        if count == kill_at and when == "during":
            size = os.path.getsize(src)
            with open(src, "r+b") as f:
                f.truncate(size // 2)
            os._exit(137)
        real_replace(src, dst)
        with open(log, "a") as f:
            f.write(json.dumps(os.path.basename(dst)) + "\\n")
        if count == kill_at and when == "after":
            os._exit(137)

    os.replace = replace
    from digitrec.recipes import get_recipe
    from digitrec.train import train_run
    train_run(get_recipe(arch="mlp").update(epochs=EPOCHS, batch_size=64), data_dir, out)
""").replace("EPOCHS", str(EPOCHS))


def _run_child(tmp_path, digits_dir, kill_at: int, when: str):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out, log = tmp_path / f"run-{kill_at}-{when}", tmp_path / f"log-{kill_at}-{when}"
    log.write_text("")
    done = subprocess.run([sys.executable, str(script), str(kill_at), when, str(digits_dir), str(out), str(log)],
                          capture_output=True, text=True, timeout=300, env={"DIGITREC_THREADS": "1",
                                                                            **_environment()})
    written = [json.loads(line) for line in log.read_text().splitlines()]
    if done.returncode not in (0, 137):
        raise AssertionError(done.stderr[-3000:])
    return out, done.returncode, written


def _environment():
    import os

    return {k: v for k, v in os.environ.items() if k != "DIGITREC_DATA"}


def test_a_run_killed_at_any_write_is_resumed_or_restarted_and_keeps_its_epochs(tmp_path, digits_dir):
    # The whole run once, counting its writes: every one of them is a kill point, twice over.
    _, code, writes = _run_child(tmp_path, digits_dir, 10**9, "never")
    assert code == 0, f"the run must finish when nothing kills it: {code}"
    points = [(n, when) for n in range(1, len(writes) + 1) for when in ("during", "after")]
    assert len(points) >= 20
    recipe = get_recipe(arch="mlp").update(epochs=EPOCHS, batch_size=64)
    outcomes = {}
    for n, when in points:
        out, code, written = _run_child(tmp_path, digits_dir, n, when)
        assert code == 137, (n, when)
        checkpointed = written.count(runs.CHECKPOINT)  # epochs whose checkpoint was in place before the kill
        try:
            config = runs.read_config(out)
        except DigitrecError:
            config = None  # killed before the first config was in place
        kept = max(config.epochs_done if config else 0,
                   runs.load_checkpoint(out)["epoch"] if (out / runs.CHECKPOINT).exists() else 0)
        assert kept >= checkpointed, f"kill at write {n} ({when}): an epoch was lost"
        if config and config.epochs_done >= 1:
            runs.load_run(out)  # the last finished epoch's weights load (their SHA-256 checked)
        if config and config.finished_ok:  # killed while drawing the figures: the run itself is complete
            finished, outcomes[(n, when)] = config, "finished"
        else:
            try:
                _, finished = train_run(recipe, digits_dir, out, resume=True)
                outcomes[(n, when)] = "resumed"
            except DigitrecError:
                _, finished = train_run(recipe, digits_dir, out)  # nothing to resume: a new run there is allowed
                outcomes[(n, when)] = "restarted"
        assert finished.status == "finished" and finished.epochs_done == EPOCHS, (n, when)
        assert [m.epoch for m in runs.read_metrics(out)] == list(range(1, EPOCHS + 1)), (n, when)
        assert not list(out.glob(".*.tmp")), (n, when)
        runs.load_run(out)
    assert {"resumed", "restarted"} <= set(outcomes.values()), outcomes
