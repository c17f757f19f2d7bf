"""Fault injection: `train` killed (os._exit, as by kill -9) at every file write of a run, while the file
is half written and just after it is in place; every folder left behind must be resumable or plainly
restartable, and no finished epoch may be lost.

Each kill happens in a process of its own whose `os.replace` (the last step of every atomic write in
digitrec.core.files) is wrapped: at the N-th call it cuts the temporary file in half and dies ("during"), or
lets the rename happen and dies ("after"). The parent then looks at the folder and carries the run on.

The killed processes are forked from one child that imported digitrec and torch once (on one thread, so
forking it is safe): a kill point costs its training, not a Python start. Two epochs are enough to pass
every kind of write: the first epoch's (no checkpoint yet), a later epoch's (replacing one) and the
finish's (metrics, weights, the five figures, the final config).
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import write_idx

from digitrec.core.errors import DigitrecError
from digitrec.inference import runs
from digitrec.models.recipes import get_recipe
from digitrec.training.loop import train_run

pytestmark = pytest.mark.slow

EPOCHS = 2
# The driver: reads (kill_at, when) pairs on stdin, forks one training run for each, answers its exit code.
DRIVER = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from digitrec.inference import plots  # noqa: F401  (matplotlib imported once, before the forks)
    from digitrec.models.recipes import get_recipe
    from digitrec.training.loop import train_run

    data_dir, root = sys.argv[1], Path(sys.argv[2])
    real_replace = os.replace

    def run(kill_at, when, out, log):
        count = 0

        def replace(src, dst):
            nonlocal count
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
        train_run(get_recipe(arch="mlp").update(epochs=EPOCHS, batch_size=64), data_dir, out)

    for line in sys.stdin:
        kill_at, when = json.loads(line)
        out, log = root / f"run-{kill_at}-{when}", root / f"log-{kill_at}-{when}"
        log.write_text("")
        pid = os.fork()
        if pid == 0:
            try:
                run(kill_at, when, out, log)
                code = 0
            except BaseException:
                import traceback
                traceback.print_exc()
                code = 1
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
""").replace("EPOCHS", str(EPOCHS))


@pytest.fixture
def small_dir(digits, tmp_path):
    """300 training digits (270 learnt, 30 held out) and 50 test digits: each kill point trains quickly."""
    folder = tmp_path / "data"
    folder.mkdir()
    for split, prefix, count in (("train", "train", 300), ("test", "t10k", 50)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", digits[split].x[:count])
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", digits[split].y[:count])
    return folder


def _kill_runs(tmp_path, data_dir, points: list[tuple[int, str]]) -> dict:
    """Each (kill_at, when) run in a process forked by one driver -> {point: (folder, exit code, files written)}."""
    tmp_path.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**{k: v for k, v in os.environ.items() if k != "DIGITREC_DATA"}, "DIGITREC_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), str(data_dir), str(tmp_path)], capture_output=True, text=True,
                          input="".join(json.dumps(p) + "\n" for p in points), timeout=600, env=env)
    codes = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0 and len(codes) == len(points), done.stderr[-3000:]
    found = {}
    for (kill_at, when), code in zip(points, codes, strict=True):
        if code not in (0, 137):
            raise AssertionError(f"kill at {kill_at} ({when}): exit {code}\n{done.stderr[-3000:]}")
        log = tmp_path / f"log-{kill_at}-{when}"
        found[(kill_at, when)] = (tmp_path / f"run-{kill_at}-{when}", code,
                                  [json.loads(line) for line in log.read_text().splitlines()])
    return found


def test_a_run_killed_at_any_write_is_resumed_or_restarted_and_keeps_its_epochs(tmp_path, small_dir, no_figures):
    # The whole run once, counting its writes: each is a kill point, twice over, but for the figures between the
    # first and the last (another PNG of the same finishing run, each killed run redrawing the ones before it).
    ((_, code, writes),) = _kill_runs(tmp_path / "count", small_dir, [(10**9, "never")]).values()
    assert code == 0, f"the run must finish when nothing kills it: {code}"
    assert {"config.json", runs.CHECKPOINT, runs.WEIGHTS, "metrics.csv", "curves.png", "samples.png"} <= set(writes)
    figures = [n for n, name in enumerate(writes, 1) if name.endswith(".png")]
    points = [(n, when) for n in range(1, len(writes) + 1) for when in ("during", "after")
              if not figures[0] < n < figures[-1]]
    assert len(points) >= 20 and points[-1] == (len(writes), "after")
    recipe = get_recipe(arch="mlp").update(epochs=EPOCHS, batch_size=64)
    outcomes = {}
    # The parent carries each run on without drawing its figures (no_figures): the kills above drew them.
    for (n, when), (out, code, written) in _kill_runs(tmp_path / "kills", small_dir, points).items():
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
                _, finished = train_run(recipe, small_dir, out, resume=True)
                outcomes[(n, when)] = "resumed"
            except DigitrecError:
                _, finished = train_run(recipe, small_dir, out)  # nothing to resume: a new run there is allowed
                outcomes[(n, when)] = "restarted"
        assert finished.status == "finished" and finished.epochs_done == EPOCHS, (n, when)
        assert [m.epoch for m in runs.read_metrics(out)] == list(range(1, EPOCHS + 1)), (n, when)
        assert not list(out.glob(".*.tmp")), (n, when)
        runs.load_run(out)
    assert {"resumed", "restarted"} <= set(outcomes.values()), outcomes
