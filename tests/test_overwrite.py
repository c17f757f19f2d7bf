"""--overwrite replaces only what digitrec wrote, every check comes before anything is removed, and an --out is
refused at the start when it is not a regular file, an input, inside a folder input, or a file of a run.

Nothing here aims at the machine's devices: FIFOs, sockets and device nodes are made in temporary folders. The
verbs that need Ray are tested through the functions that prepare their folder, and in-process up to the refusal,
which comes before Ray starts."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from digitrec.cli import main
from digitrec.cluster import batch as cluster_batch
from digitrec.cluster import connect, sweeps
from digitrec.core import files
from digitrec.core.errors import DigitrecError
from digitrec.inference import batch
from digitrec.inference.runs import BUNDLED_DIR
from digitrec.models.recipes import get_recipe

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """The command in this process: its exit code, stdout and stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def refused(result: tuple[int, str, str], *fragments: str) -> str:
    code, _, err = result
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("digitrec: error:"), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def state(*roots: Path) -> dict[str, tuple]:
    """Every entry under `roots` (symlinks not followed): its kind and, for a file, its SHA-256."""
    seen = {}
    for root in roots:
        if not os.path.lexists(root):
            continue
        for relative, mode in files._tree(root.parent, root.name):
            path = root.parent / relative
            if stat.S_ISREG(mode):
                seen[str(path)] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            elif stat.S_ISLNK(mode):
                seen[str(path)] = ("link", os.readlink(path))
            else:
                seen[str(path)] = (stat.S_IFMT(mode),)
    return seen


@pytest.fixture
def no_work(monkeypatch):
    """Reading any picture, or starting Ray, fails the test: a refusal must come before the work."""

    def fail(*args, **kwargs):
        raise AssertionError("the work started before --out was checked")

    for name in ("predict_files", "read_files", "write_submission"):
        monkeypatch.setattr(batch, name, fail)
    monkeypatch.setattr(connect, "connected", fail)


def _someone_elses_home(folder: Path) -> None:
    for relative, text in ((".bashrc", "alias ll='ls -l'"), (".ssh/id_rsa", "KEY"), (".config/app/settings", "x=1"),
                           (".local/share/important.db", "db"), ("_archive/2019.tar", "tar")):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)


def _made_by_digitrec(folder: Path, written: dict[str, str], writes: tuple[str, ...] = ("*",)) -> None:
    """`folder` as a digitrec command leaves it: `written` (relative path: text) and its manifest."""
    with files.recording(folder, writes):
        for relative, text in written.items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_text(text)


# ---------------------------------------------------------------- a user's files deleted or overwritten


def test_cluster_overwrite_never_empties_a_folder_of_hidden_and_underscore_files(tmp_path, capsys, no_work):
    pytest.importorskip("ray")
    home = tmp_path / "home"
    _someone_elses_home(home)
    before = state(home)
    line = refused(cli(capsys, "predict", str(EXAMPLES), "--cluster", "--out", str(home), "--overwrite"),
                   str(home), "digitrec did not write")
    assert files.MANIFEST in line
    with pytest.raises(DigitrecError, match="digitrec did not write"):
        cluster_batch.check_out_folder(home, None, overwrite=True)
    assert state(home) == before


def test_a_dataset_folder_digitrec_made_loses_only_its_own_parts(tmp_path):
    out = tmp_path / "answers"
    staging = tmp_path / ".answers.partial"
    staging.mkdir()
    (staging / "part-00000.parquet").write_bytes(b"first answers")
    cluster_batch.check_out_folder(out, None, overwrite=False)
    cluster_batch._put_in_place(staging, out, None, overwrite=False)
    assert json.loads((out / files.MANIFEST).read_text())["files"] == ["part-00000.parquet"]
    _someone_elses_home(out)  # added later by someone: never digitrec's
    (out / "README").write_text("what these answers are")
    theirs = state(*(p for p in out.iterdir() if p.name not in ("part-00000.parquet", files.MANIFEST)))
    with pytest.raises(DigitrecError, match="already exists"):
        cluster_batch.check_out_folder(out, None, overwrite=False)
    staging.mkdir()
    (staging / "part-00000.parquet").write_bytes(b"new answers")
    cluster_batch.check_out_folder(out, None, overwrite=True)
    cluster_batch._put_in_place(staging, out, None, overwrite=True)
    assert (out / "part-00000.parquet").read_bytes() == b"new answers" and not staging.exists()
    assert state(*(p for p in out.iterdir() if p.name not in ("part-00000.parquet", files.MANIFEST))) == theirs
    (out / "theirs.parquet").write_bytes(b"would be read as answers")
    with pytest.raises(DigitrecError, match="theirs.parquet: digitrec did not write this"):
        cluster_batch.check_out_folder(out, None, overwrite=True)


def test_a_killed_jobs_staging_folder_is_removed_only_when_it_holds_only_its_files(tmp_path):
    staging = tmp_path / ".answers.partial"
    (staging / cluster_batch.MANIFEST).mkdir(parents=True)
    (staging / "part-00000.parquet").write_bytes(b"half")
    cluster_batch.check_out_folder(tmp_path / "answers", None, overwrite=False)
    (staging / "thesis.tex").write_text("years of work")
    with pytest.raises(DigitrecError, match="did not write"):
        cluster_batch.check_out_folder(tmp_path / "answers", None, overwrite=False)


def _project(folder: Path, ours: dict[str, str], theirs: dict[str, str]) -> dict:
    _made_by_digitrec(folder, ours)
    for relative, text in theirs.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return state(folder)


def test_sweep_checks_the_data_before_removing_anything(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    proj = tmp_path / "proj"
    before = _project(proj, {"trials/trial-000/config.json": "{}", "trials.csv": "trial\n"},
                      {"notes.txt": "mine", "data/labels.csv": "1,2"})
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not an npz at all")
    with pytest.raises(DigitrecError):
        sweeps.sweep(get_recipe("fast", None), str(garbage), {"lr": [0.01, 0.02]}, 2, proj, overwrite=True)
    assert state(proj) == before
    monkeypatch.setattr(connect, "connected", lambda *a, **k: pytest.fail("Ray started before the data was checked"))
    refused(cli(capsys, "sweep", "--recipe", "fast", "--space", "lr=0.01,0.02", "--trials", "2", "--data",
                str(garbage), "--out", str(proj), "--overwrite"), str(garbage))
    assert state(proj) == before


def test_ensemble_train_checks_the_data_before_removing_anything(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    proj = tmp_path / "proj2"
    before = _project(proj, {"members/seed-0/config.json": "{}", "config.json": "{}"}, {"thesis.tex": "years"})
    with pytest.raises(DigitrecError, match="no such file"):
        sweeps.train_members(get_recipe("fast", None), str(tmp_path / "nonexistent"), proj, 2, overwrite=True)
    assert state(proj) == before
    monkeypatch.setattr(connect, "connected", lambda *a, **k: pytest.fail("Ray started before the data was checked"))
    refused(cli(capsys, "ensemble", "--train", "2", "--recipe", "fast", "--data", str(tmp_path / "nonexistent"),
                "--out", str(proj), "--overwrite"), "nonexistent")
    assert state(proj) == before


def test_trials_replace_only_what_digitrec_wrote(tmp_path, digits_dir):
    """The folder preparation of sweep and ensemble --train (what runs before Ray does): with the data checked,
    --overwrite removes the listed files and the folders they emptied, nothing else."""
    proj = tmp_path / "proj"
    _project(proj, {"trials/trial-000/config.json": "{}", "trials.csv": "t\n", ".tune/sweep/state": "s"},
             {"notes.txt": "mine", "_archive/x": "old", ".hidden": "h"})
    plan = sweeps.plan_sweep(get_recipe("fast", None), str(digits_dir), {"lr": [0.01]}, 1, proj, overwrite=True)
    sweeps._make_room(plan, sweeps.SWEEP_WRITES)
    assert sorted(p.name for p in proj.iterdir()) == sorted([files.MANIFEST, "notes.txt", "_archive", ".hidden"])
    (proj / "trials").mkdir()  # a folder of the user's own under a name the sweep writes
    with pytest.raises(DigitrecError, match="trials: digitrec did not write this"):
        sweeps.plan_sweep(get_recipe("fast", None), str(digits_dir), {"lr": [0.01]}, 1, proj, overwrite=True)
    again = tmp_path / "again"
    _project(again, {"trials/trial-000/config.json": "{}"}, {})
    (again / "trials" / "mine.txt").write_text("put among the trials")
    with pytest.raises(DigitrecError, match="mine.txt: digitrec did not write this"):
        sweeps.plan_sweep(get_recipe("fast", None), str(digits_dir), {"lr": [0.01]}, 1, again, overwrite=True)
    with pytest.raises(DigitrecError, match="already exists"):
        sweeps.plan_members(get_recipe("fast", None), str(digits_dir), tmp_path / "proj", 2)


def test_recording_lists_the_files_and_folders_a_block_made(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "members").mkdir()
    (out / "members" / "theirs.txt").write_text("before the block")
    with pytest.raises(RuntimeError), files.recording(out, ("members", ".tune", "config.json"),
                                                      claim=("config.json", "model.safetensors")):
        (out / "config.json").write_text("{}")
        (out / "members" / "seed-0").mkdir()
        (out / "members" / "seed-0" / "model.safetensors").write_bytes(b"w")
        (out / ".tune").mkdir()
        raise RuntimeError("killed half-way")
    manifest = json.loads((out / files.MANIFEST).read_text())
    assert manifest["files"] == ["config.json", "members/seed-0/model.safetensors"]
    assert manifest["folders"] == [".tune", "members/seed-0"]


# ---------------------------------------------------------------- ensemble --out and its members


@pytest.fixture
def two_runs(tmp_path) -> tuple[Path, Path]:
    r7, r8 = tmp_path / "r7", tmp_path / "r8"
    for run in (r7, r8):
        shutil.copytree(BUNDLED_DIR, run)
    return r7, r8


@pytest.mark.parametrize("runs, out", [(("r7", "r8"), "r8"), (("r7", "r7"), "r7"), (("r7", "r8"), "r8/sub"),
                                       (("r7", "r8"), ".")])
def test_ensemble_out_is_never_one_of_its_members(tmp_path, capsys, two_runs, runs, out):
    before = state(*two_runs)
    line = refused(cli(capsys, "ensemble", *(str(tmp_path / r) for r in runs), "--out", str(tmp_path / out),
                       "--overwrite"), "one of its members")
    assert "RecursionError" not in line
    assert state(*two_runs) == before


def test_ensemble_out_replaces_only_an_ensemble_digitrec_wrote(tmp_path, capsys, two_runs):
    r7, r8 = two_runs
    out = tmp_path / "ens"
    assert cli(capsys, "ensemble", str(r7), str(r8), "--out", str(out))[0] == 0
    listed = json.loads((out / files.MANIFEST).read_text())["files"]
    assert {"model.safetensors", "config.json"} <= set(listed)
    (out / "notes.md").write_text("why I averaged these")
    refused(cli(capsys, "ensemble", str(r7), str(r8), "--out", str(out)), "already exists", "--overwrite")
    assert cli(capsys, "ensemble", str(r7), str(r8), "--out", str(out), "--overwrite")[0] == 0
    assert (out / "notes.md").read_text() == "why I averaged these"
    refused(cli(capsys, "ensemble", str(r7), str(r8), "--out", str(r8.parent / "r7" / "lines"), "--overwrite"),
            "one of its members")
    other = tmp_path / "other"
    shutil.copytree(BUNDLED_DIR, other)
    before = state(other)
    refused(cli(capsys, "ensemble", str(r7), str(r8), "--out", str(other), "--overwrite"), "digitrec did not write")
    assert state(other) == before


# ---------------------------------------------------------------- what an --out file may be


def _specials(folder: Path) -> dict[str, Path]:
    """A FIFO, a Unix socket and (where allowed) a character device node, all made in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {"FIFO": folder / "fifo"}
    os.mkfifo(made["FIFO"])
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock"))
    sock.close()
    made["socket"] = folder / "sock"
    with contextlib.suppress(PermissionError, OSError):
        os.mknod(folder / "node", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        made["device"] = folder / "node"
    return made


def test_an_out_that_is_not_a_regular_file_is_refused_even_with_overwrite(tmp_path, capsys, no_work):
    specials = _specials(tmp_path / "special")
    link = tmp_path / "link-to-fifo"
    link.symlink_to(specials["FIFO"])
    before = state(tmp_path / "special", link)
    for kind, path in [*specials.items(), ("FIFO", link)]:
        for verb in (["predict", str(EXAMPLES)], ["read", str(EXAMPLES)], ["export"]):
            refused(cli(capsys, *verb, "--out", str(path), "--overwrite"), str(path), f"is a {kind}")
    assert state(tmp_path / "special", link) == before


def test_an_out_inside_a_folder_input_is_refused(tmp_path, capsys, no_work):
    pics = tmp_path / "pics"
    shutil.copytree(EXAMPLES, pics)
    before = state(pics)
    for verb in ("predict", "read"):
        for out in (pics / "drawn-3.png", pics / "new.json", pics, pics / "sub" / "x.csv"):
            refused(cli(capsys, verb, str(pics) + "/", "--out", str(out), "--overwrite"), str(out))
    assert state(pics) == before


def test_an_out_that_is_a_file_of_a_run_is_refused(tmp_path, capsys, no_work):
    run1, other = tmp_path / "run1", tmp_path / "other"
    for run in (run1, other):
        shutil.copytree(BUNDLED_DIR, run)
        shutil.copytree(run / "lines", run / "signs-reader")
        shutil.move(run / "signs-reader", run / "lines" / "signs")  # a sign reader beside the line model
    before = state(run1, other)
    for target in (run1 / "lines" / "line.onnx", run1 / "lines" / "config.json", run1 / "model.onnx",
                   run1 / "lines" / "signs" / "line.onnx", other / "lines" / "signs" / "config.json",
                   other / "lines" / "signs" / "line-checkpoint.pt",
                   other / "lines" / "line.onnx", other / "metrics.csv", other / "model.onnx"):
        for verb in ("predict", "read"):
            refused(cli(capsys, verb, str(EXAMPLES), "--model", str(run1), "--out", str(target), "--overwrite"),
                    "a run's own file")
        if target != run1 / "model.onnx":  # re-exporting a run's own model.onnx is allowed
            refused(cli(capsys, "export", "--model", str(run1), "--out", str(target), "--overwrite"), str(target))
    refused(cli(capsys, "predict", str(EXAMPLES), "--out", str(tmp_path / files.MANIFEST)), files.MANIFEST)
    assert state(run1, other) == before


def test_a_cluster_dataset_never_goes_into_a_run_or_line_models_folder(tmp_path):
    """A Parquet dataset's --out that is a run's folder, its lines/ or lines/signs/ is refused even with
    --overwrite: their files (written by digitrec, listed in their manifest) are a model, not answers."""
    from digitrec.cluster.batch import check_out_folder

    run = tmp_path / "run"
    shutil.copytree(BUNDLED_DIR, run)
    shutil.copytree(run / "lines", tmp_path / "signs")
    shutil.move(tmp_path / "signs", run / "lines" / "signs")
    before = state(run)
    for out in (run, run / "lines", run / "lines" / "signs"):
        with pytest.raises(DigitrecError, match="run's folder"):
            check_out_folder(out, None, True)
    assert state(run) == before


def test_train_lines_never_writes_into_a_run_folder_itself(tmp_path, capsys):
    run1 = tmp_path / "run1"
    shutil.copytree(BUNDLED_DIR, run1)
    before = state(run1)
    refused(cli(capsys, "train-lines", "--out", str(run1), "--overwrite"), "is a run folder", "run1/lines")
    refused(cli(capsys, "train-lines", "--out", str(run1 / "lines"), "--overwrite"), "digitrec did not write")
    assert state(run1) == before


def test_out_is_checked_before_any_work(tmp_path, capsys, no_work):
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    for verb in ("predict", "read"):
        refused(cli(capsys, verb, str(EXAMPLES), "--out", str(tmp_path / "dangling" / "x.json")), "not a folder")
    if importlib.util.find_spec("ray") is not None:  # without the cluster extra, --cluster says how to install it
        refused(cli(capsys, "predict", str(EXAMPLES), "--cluster", "--out", str(tmp_path / "dangling" / "o")),
                "not a folder")


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc (read, never written)")
def test_out_in_proc_is_refused_before_any_work(capsys, no_work):
    """/proc takes no new files: the check tries (a folder made and removed at once), where permissions, for
    root, say yes; the work is never started."""
    refused(cli(capsys, "predict", str(EXAMPLES), "--out", "/proc/x.json"), "/proc/x.json", "cannot write there")
    refused(cli(capsys, "predict", str(EXAMPLES), "--out", "/proc/version", "--overwrite"), "/proc/version",
            "cannot write there")


# ---------------------------------------------------------------- the property: nothing of anyone else's changes

NAMES = [".bashrc", ".ssh", "_archive", "notes.txt", "members", "trials", ".tune", "seed-0", "config.json",
         "model.safetensors", "trials.csv", "part-00001.parquet", "line.onnx", "metrics.csv", "data"]
KINDS = ["file", "dir", "symlink", "fifo", "dirlink"]


def _op_dataset(out: Path, overwrite: bool) -> None:
    staging = out.parent / f".{out.name}.partial"
    cluster_batch.check_out_folder(out, None, overwrite)
    staging.mkdir()
    for i in range(2):
        (staging / f"part-{i:05d}.parquet").write_bytes(os.urandom(8))
    try:
        cluster_batch._put_in_place(staging, out, None, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _trial_op(writes: tuple[str, ...], written: tuple[str, ...]):
    def op(out: Path, overwrite: bool) -> None:
        plan = sweeps.TrialPlan(out, [], overwrite)
        sweeps.check_out(out, overwrite, writes)
        sweeps._make_room(plan, writes)
        with files.recording(out, writes):
            for relative in written:
                (out / relative).parent.mkdir(parents=True, exist_ok=True)
                files.atomic_write_bytes(out / relative, os.urandom(8))
    return op


def _op_lines(out: Path, overwrite: bool) -> None:
    from digitrec.cli.common import LINE_FILES

    files.check_output_folder(out, overwrite, LINE_FILES, whole=False)
    with files.recording(out, LINE_FILES):
        for name in ("line.onnx", "config.json", "metrics.csv"):
            files.atomic_write_bytes(out / name, os.urandom(8))


OPS = {
    "dataset": _op_dataset,
    "sweep": _trial_op(sweeps.SWEEP_WRITES, ("trials/trial-000/config.json", "trials/trial-000/model.safetensors",
                                             ".tune/sweep/state.json", "trials.csv", "trials.png")),
    "ensemble": _trial_op(sweeps.ENSEMBLE_WRITES, ("members/seed-0/config.json", "members/seed-1/config.json",
                                                   ".tune/ensemble/state.json", "model.safetensors", "config.json")),
    "lines": _op_lines,
}

entries = st.lists(st.tuples(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3), st.sampled_from(KINDS),
                             st.binary(max_size=16)), max_size=10)


def _copy_keeping_fifos(source: str, target: str) -> None:
    """copytree's copy of one entry, a FIFO made anew (shutil refuses to copy a named pipe)."""
    if stat.S_ISFIFO(os.lstat(source).st_mode):
        os.mkfifo(target)
    else:
        shutil.copy2(source, target, follow_symlinks=False)


def _add_theirs(out: Path, outside: Path, wanted, ours: set[str]) -> list[Path]:
    """Someone else's entries added to `out` (never over an existing one, except that a file or folder digitrec
    wrote may be swapped for a symlink, a FIFO or a folder): the paths that are theirs now."""
    theirs = []
    for i, (parts, kind, payload) in enumerate(wanted):
        path = out.joinpath(*parts)
        relative = "/".join(parts)
        if not path.parent.is_dir() or path.parent.is_symlink() or files.MANIFEST in parts:
            continue
        if os.path.lexists(path):
            if relative not in ours or kind == "file" or path.is_symlink():
                continue
            if path.is_dir():  # a folder of digitrec's swapped for a link to a copy of it outside
                mirror = outside / f"mirror-{i}"
                shutil.copytree(path, mirror, symlinks=True, copy_function=_copy_keeping_fifos)
                shutil.rmtree(path)
                path.symlink_to(mirror)
                theirs.append(path)
                continue
            path.unlink()
        target = outside / f"target-{i}"
        target.write_bytes(payload)
        if kind == "file":
            path.write_bytes(payload)
        elif kind == "dir":
            path.mkdir()
        elif kind == "symlink":
            path.symlink_to(target)
        elif kind == "dirlink":
            path.symlink_to(outside, target_is_directory=True)
        else:
            os.mkfifo(path)
        theirs.append(path)
    return theirs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.sampled_from([None, *OPS]), second=st.sampled_from(list(OPS)), overwrite=st.booleans(),
       wanted=entries)
# a FIFO of theirs inside a folder of digitrec's that is then swapped for a link to a copy of it
@example(first="sweep", second="dataset", overwrite=False,
         wanted=[([".bashrc"], "file", b""), (["trials", ".bashrc"], "fifo", b""), (["trials"], "dir", b"")])
def test_overwrite_changes_nothing_digitrec_did_not_write(first, second, overwrite, wanted):
    """Random folders of other people's files (hidden names, `_` names, names digitrec uses, symlinks out of
    the folder, FIFOs), made by digitrec or not: after any command, refused or done, every entry that is not
    digitrec's is as it was, and so is everything outside; a refused command changed nothing at all."""
    with tempfile.TemporaryDirectory() as tmp:
        out, outside = Path(tmp) / "out", Path(tmp) / "outside"
        out.mkdir()
        outside.mkdir()
        (outside / "secret").write_text("never touched")
        if first is not None:
            OPS[first](out, False)
        listed = files.read_manifest(out)
        ours = (listed[0] | listed[1]) if listed else set()
        theirs = _add_theirs(out, outside, wanted, ours)
        kept = state(*theirs, outside)
        before = state(out)
        try:
            OPS[second](out, overwrite)
        except DigitrecError:
            assert state(out) == before
        after = state(*theirs, outside)
        assert {p: after.get(p) for p in kept} == kept


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["FIFO", "socket", "folder", "input", "in input", "link to input", "run file"]),
       overwrite=st.booleans(), verb=st.sampled_from(["predict", "read"]))
def test_an_out_file_never_replaces_what_is_not_its_own(capsys, kind, overwrite, verb):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pics = tmp / "pics"
        shutil.copytree(EXAMPLES, pics)
        specials = _specials(tmp / "special")
        run = tmp / "run"
        shutil.copytree(BUNDLED_DIR / "lines", run / "lines")
        (tmp / "link").symlink_to(pics / "drawn-1.png")
        out = {"FIFO": specials["FIFO"], "socket": specials["socket"], "folder": tmp / "special", "input": pics,
               "in input": pics / "drawn-2.png", "link to input": tmp / "link",
               "run file": run / "lines" / "line.onnx"}[kind]
        before = state(pics, tmp / "special", run, tmp / "link")
        code, _, err = cli(capsys, verb, str(pics), "--out", str(out), *(["--overwrite"] if overwrite else []))
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert state(pics, tmp / "special", run, tmp / "link") == before


# ---------------------------------------------------------------- folders a verb writes into without --overwrite


def test_train_never_writes_over_a_users_file_in_an_existing_folder(tmp_path, capsys):
    out = tmp_path / "project"
    out.mkdir()
    (out / "metrics.csv").write_text("week,sales\n1,20\n")
    (out / "notes.md").write_text("my notes")
    before = state(out)
    # refused on the folder, before the data is even looked for
    refused(cli(capsys, "train", "--arch", "mlp", "--data", str(tmp_path / "missing"), "--out", str(out)),
            "metrics.csv", "digitrec did not write")
    assert state(out) == before


@pytest.mark.slow  # draws three figures twice: 6-8 s
def test_data_check_plots_replace_only_their_own_figures(tmp_path, capsys, digits_dir):
    figures = tmp_path / "figs"
    assert cli(capsys, "data", "check", str(digits_dir), "--plots", str(figures))[0] in (0, 2)
    made = {p.name for p in figures.iterdir()}
    assert {"samples.png", "pixels.png", files.MANIFEST} <= made
    assert cli(capsys, "data", "check", str(digits_dir), "--plots", str(figures))[0] in (0, 2)  # again: replaced
    theirs = tmp_path / "holiday"
    theirs.mkdir()
    (theirs / "samples.png").write_bytes(b"\x89PNG a photo of the beach")
    before = state(theirs)
    refused(cli(capsys, "data", "check", str(digits_dir), "--plots", str(theirs)), "samples.png")
    assert state(theirs) == before


def test_an_ensemble_that_lists_itself_is_one_line_not_a_recursion(tmp_path, capsys, two_runs):
    r7, r8 = two_runs
    ens = tmp_path / "ens"
    assert cli(capsys, "ensemble", str(r7), str(r8), "--out", str(ens))[0] == 0
    config = json.loads((ens / "config.json").read_text())
    config["members"][0]["path"] = str(ens)  # as the old bug left it: the ensemble among its own members
    (ens / "config.json").write_text(json.dumps(config))
    from digitrec.inference import runs

    with pytest.raises(DigitrecError, match="lists itself"):
        runs.read_config(ens).splits()


def test_resume_finishes_only_a_folder_digitrec_made(tmp_path):
    theirs = tmp_path / "uf"
    theirs.mkdir()
    (theirs / "config.json").write_text('{"mine": true}')
    (theirs / "model.safetensors").write_bytes(b"my weights")
    before = state(theirs)
    with pytest.raises(DigitrecError, match="did not write"):
        sweeps.check_out(theirs, False, sweeps.ENSEMBLE_WRITES, resume=True)
    assert state(theirs) == before
    ours = tmp_path / "ours"
    (ours / "members" / "seed-0").mkdir(parents=True)
    files.write_manifest(ours, set(), {"members"})
    (ours / "config.json").write_text("{}")  # not listed: someone else's
    with pytest.raises(DigitrecError, match="did not write"):
        sweeps.check_out(ours, False, sweeps.ENSEMBLE_WRITES, resume=True)
    files.add_written(ours, {"config.json"})
    assert sweeps.check_out(ours, False, sweeps.ENSEMBLE_WRITES, resume=True) == ours
    assert sweeps.check_out(tmp_path / "new", False, sweeps.ENSEMBLE_WRITES, resume=True) == tmp_path / "new"


def _tune_inputs(tmp_path, digits) -> tuple[Path, Path]:
    import numpy as np

    from digitrec.data import synthetic
    from tests.conftest import write_idx

    hand, replay = tmp_path / "hand", tmp_path / "replay"
    rng = np.random.default_rng(0)
    for d in range(10):
        (hand / str(d)).mkdir(parents=True)
        synthetic.hand_digit("backhand", d, rng, size=112).save(hand / str(d) / "0.png")
    replay.mkdir()
    write_idx(replay / "train-images-idx3-ubyte", digits["train"].x)
    write_idx(replay / "train-labels-idx1-ubyte", digits["train"].y)
    return hand, replay


def test_tune_removes_only_its_own_staging_folder_and_refuses_a_symlinked_out(tmp_path, capsys, digits):
    hand, replay = _tune_inputs(tmp_path, digits)
    proj = tmp_path / "proj"
    theirs = proj / ".X.tuning"
    theirs.mkdir(parents=True)
    (theirs / "notes.txt").write_text("mine")
    before = state(proj)
    tune = ("tune", "--data", str(hand), "--replay", str(replay), "--steps", "1", "--quiet", "--out")
    refused(cli(capsys, *tune, str(proj / "X")), ".X.tuning", "did not make")
    assert state(proj) == before
    (tmp_path / "folder").mkdir()
    (proj / "L").symlink_to(tmp_path / "folder")
    refused(cli(capsys, *tune, str(proj / "L")), "symlink")
    assert (proj / "L").is_symlink() and not os.path.lexists(proj / ".L.tuning")


def test_train_drops_only_its_own_stale_temporaries(tmp_path):
    from digitrec.inference import runs

    run = tmp_path / "T1"
    run.mkdir()
    (run / ".config.json.ab_3x9z0.tmp").write_text("half")  # a killed atomic write of the run's own
    (run / ".notes.tmp").write_text("mine")
    (run / ".config.json.mine.tmp").write_text("mine too")  # not mkstemp's eight characters
    (run / ".cache.tmp").mkdir()
    (run / ".model.onnx.abcdefgh.tmp").symlink_to(tmp_path / "elsewhere")
    runs.remove_stale_temporaries(run)
    assert sorted(p.name for p in run.iterdir()) == [".cache.tmp", ".config.json.mine.tmp",
                                                      ".model.onnx.abcdefgh.tmp", ".notes.tmp"]


def _pics(folder: Path) -> Path:
    import numpy as np

    from digitrec.data import synthetic

    folder.mkdir()
    synthetic.hand_digit("backhand", 3, np.random.default_rng(0), size=112).save(folder / "3.png")
    return folder


def test_predict_out_refuses_a_run_s_own_names_not_yet_written(tmp_path, capsys):
    pics = _pics(tmp_path / "pics")
    run = tmp_path / "T1b"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "T1d").mkdir()
    (tmp_path / "T1d" / "config.json").write_text("{}")
    before = state(run, tmp_path / "T1d")
    for out in (run / "model.onnx", run / "metrics-first-run.csv", tmp_path / "T1d" / "lines" / "line.onnx"):
        refused(cli(capsys, "predict", str(pics), "--out", str(out)), "run's own file")
    assert state(run, tmp_path / "T1d") == before


def test_export_into_a_symlinked_own_onnx_leaves_the_user_s_file(tmp_path, capsys):
    run = shutil.copytree(BUNDLED_DIR, tmp_path / "run")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.onnx").write_text("my notes")
    (run / "model.onnx").unlink()
    (run / "model.onnx").symlink_to(outside / "notes.onnx")
    before = state(outside)
    refused(cli(capsys, "export", "--model", str(run), "--out", str(outside / "notes.onnx")))
    assert state(outside) == before
    (run / "model.onnx").unlink()  # a regular run's own ONNX is still re-exported in place
    assert cli(capsys, "export", "--model", str(run), "--out", str(run / "model.onnx"))[0] == 0


def test_plots_and_cluster_out_inside_the_input_are_refused(tmp_path, capsys, digits_dir):
    lab = _pics(tmp_path / "lab")
    before = state(lab)
    for plots in (lab, lab / "figs"):
        refused(cli(capsys, "data", "check", str(lab), "--plots", str(plots)), "inside the data")
    assert state(lab) == before
    with pytest.raises(DigitrecError, match="pictures being read"):
        cluster_batch.check_out_folder(lab / "answers", lab, False)
    assert cluster_batch.check_out_folder(tmp_path / "answers", lab, False) == tmp_path / "answers"


def test_an_out_name_too_long_for_its_temporary_is_refused_before_the_work(tmp_path, capsys):
    pics = _pics(tmp_path / "pics")
    for length in (245, 254):
        out = tmp_path / ("a" * (length - 5) + ".json")
        refused(cli(capsys, "predict", str(pics), "--out", str(out)), "too long to write safely")
        assert not out.exists()
    assert cli(capsys, "predict", str(pics), "--out", str(tmp_path / ("b" * 236 + ".json")))[0] == 0


def test_a_users_folder_where_digitrec_writes_a_file_is_refused_not_replaced(tmp_path, capsys, two_runs):
    out = tmp_path / "answers"
    _made_by_digitrec(out, {"part-00000.parquet": "p"})
    (out / "config.json").mkdir()  # the user's (empty) folder, under a name the ensemble writes as a file
    before = state(out)
    refused(cli(capsys, "ensemble", *map(str, two_runs), "--out", str(out), "--overwrite"),
            "config.json", "digitrec did not write this")
    assert state(out) == before


def test_no_out_replaces_a_file_of_the_bundled_models():
    """The page reader's classifier and the line model's first-run metrics are the bundled models' too."""
    from digitrec.cli.common import _protected

    protected = set(_protected("fields.csv", None))
    for path in (BUNDLED_DIR / "printed.npz", BUNDLED_DIR / "lines" / "metrics-first-run.csv",
                 BUNDLED_DIR / "lines" / "line.onnx", BUNDLED_DIR / "model.onnx"):
        assert path in protected, path
