"""Every file of a folder is its own result: a picture that cannot be read (permission denied, an I/O error), a
symbolic link loop, a link out of the folder, a broken link or a FIFO named like a picture is an error row of
its own in every verb that reads a folder, and the other pictures are read. Never a traceback, never a hang.

Run as root, `chmod 000` denies nothing and no file in a temporary folder gives EIO, so those two come from
`os.open` and `os.scandir` made to fail for named files in this process (the walk and the reader use them);
`/proc/self/mem`, which does answer EIO, is reached through a link the walk must not follow."""

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from test_cli import check_refusal, run_main

from digitrec import data
from digitrec.core.errors import DigitrecError
from digitrec.data import formats

EXAMPLES = Path(__file__).parent.parent / "examples"
GOOD = {"a.png": 3, "sub/b.png": 7, "7/c.png": 7, "linked-inside.png": 3}  # file: the digit it shows


def _faulty_folder(root: Path, denied: bool = True) -> Path:
    """pics/ with readable pictures (GOOD) among every kind of entry that is not one."""
    pics = root / "pics"
    (pics / "sub").mkdir(parents=True)
    (pics / "7").mkdir()
    (root / "outside").mkdir()
    shutil.copy(EXAMPLES / "drawn-3.png", pics / "a.png")
    shutil.copy(EXAMPLES / "drawn-7.png", pics / "sub" / "b.png")
    shutil.copy(EXAMPLES / "drawn-7.png", pics / "7" / "c.png")
    shutil.copy(EXAMPLES / "drawn-1.png", root / "outside" / "secret.png")
    (pics / "linked-inside.png").symlink_to("a.png")  # inside the folder: followed
    (pics / "sub" / "loop").symlink_to("..")  # back to the folder itself
    (pics / "mem.png").symlink_to("/proc/self/mem")  # EIO if read; out of the folder
    (pics / "secret.png").symlink_to(root / "outside" / "secret.png")
    (pics / "outside-folder").symlink_to(root / "outside")
    (pics / "dangling.png").symlink_to("nowhere.png")
    (pics / "x1.png").symlink_to("x2.png")
    (pics / "x2.png").symlink_to("x1.png")
    os.mkfifo(pics / "fifo.png")  # reading it would wait for a writer forever
    (pics / "folder.png").mkdir()  # a folder named like a picture is a folder
    shutil.copy(EXAMPLES / "drawn-3.png", pics / "folder.png" / "d.png")
    if denied:
        shutil.copy(EXAMPLES / "drawn-3.png", pics / "locked.png")
        shutil.copy(EXAMPLES / "drawn-3.png", pics / "eio.png")
        (pics / "closed").mkdir()
        shutil.copy(EXAMPLES / "drawn-3.png", pics / "closed" / "e.png")
    return pics


FAULTS = {  # file: what its error says
    "sub/loop": "loop", "mem.png": "out of the folder", "secret.png": "out of the folder",
    "outside-folder": "out of the folder", "dangling.png": "broken symbolic link", "x1.png": "loop",
    "x2.png": "loop", "fifo.png": "not a regular file",
}
DENIED = {"locked.png": "Permission denied", "eio.png": "Input/output error", "closed": "cannot list the folder"}


@pytest.fixture
def denials(monkeypatch):
    """os.open refuses locked.png (EACCES) and eio.png (EIO); os.scandir refuses the folder `closed`."""
    real_open, real_scandir = os.open, os.scandir

    def fake_open(path, flags, *args, **kwargs):
        name = os.fspath(path)
        if isinstance(name, str) and name.endswith(("locked.png", "eio.png")):
            code = errno.EACCES if name.endswith("locked.png") else errno.EIO
            raise OSError(code, os.strerror(code), name)
        return real_open(path, flags, *args, **kwargs)

    def fake_scandir(path="."):
        if os.fspath(path).endswith("closed"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "scandir", fake_scandir)


def _check_rows(rows: list[dict], faults: dict[str, str], answer: str) -> None:
    by_file = {row["file"].removeprefix("pics/"): row for row in rows}
    assert len(by_file) == len(rows), "a file listed twice"
    for name, digit in {**GOOD, "folder.png/d.png": 3}.items():
        assert by_file[name].get("error") is None and str(by_file[name][answer]) == str(digit), by_file[name]
    for name, fragment in faults.items():
        assert by_file[name][answer] is None and fragment in by_file[name]["error"], by_file[name]
    assert set(by_file) == {*GOOD, "folder.png/d.png", *faults}  # outside/, the loop's insides: never read


def test_the_walk_names_every_entry_it_does_not_read(tmp_path, denials):
    pics = _faulty_folder(tmp_path)
    entries = list(formats.iter_image_files(pics))
    faults = {str(p.relative_to(pics)): p.why for p in entries if isinstance(p, formats.Unreadable)}
    assert set(faults) == set(FAULTS) | {"closed"}
    assert "back to" in faults["sub/loop"] and "cannot list the folder" in faults["closed"]
    readable = sorted(str(p.relative_to(pics)) for p in entries if not isinstance(p, formats.Unreadable))
    assert readable == sorted([*GOOD, "eio.png", "folder.png/d.png", "locked.png"])


@pytest.mark.parametrize("verb", ["predict", "read"])
def test_each_unreadable_file_is_its_own_row(verb, tmp_path, capsys, denials):
    pics = _faulty_folder(tmp_path)
    code, out, err = run_main(capsys, verb, str(pics), "--json")
    assert code == 2 and "Traceback" not in err
    _check_rows(json.loads(out), {**FAULTS, **DENIED}, "digit" if verb == "predict" else "text")
    assert len(err.strip().splitlines()) == len(FAULTS) + len(DENIED)  # one line each on stderr too


def test_a_picture_given_itself_that_answers_eio_is_one_line(tmp_path, capsys):
    (tmp_path / "mem.png").symlink_to("/proc/self/mem")
    for verb in ("predict", "read"):
        check_refusal(*run_main(capsys, verb, str(tmp_path / "mem.png")), "Input/output error")


def test_a_folder_that_cannot_be_listed_is_one_line(tmp_path, capsys, denials):
    (tmp_path / "closed").mkdir()
    check_refusal(*run_main(capsys, "predict", str(tmp_path / "closed")), "cannot list the folder")


def test_tune_skips_the_examples_it_cannot_read(tmp_path, denials):
    from digitrec.training.hand import load_examples

    pics = _faulty_folder(tmp_path)
    examples = load_examples(pics)
    kept = sorted(str(Path(f).relative_to(pics)) for f in examples.files)
    assert kept == ["7/c.png"]  # the one picture in a digit's folder; every fault skipped, not a traceback


def test_data_from_a_folder_with_a_loop_is_one_error_naming_it(tmp_path):
    pics = tmp_path / "pics"
    (pics / "3").mkdir(parents=True)
    shutil.copy(EXAMPLES / "drawn-3.png", pics / "3" / "a.png")
    (pics / "3" / "loop").symlink_to("..")
    with pytest.raises(DigitrecError, match="loop") as caught:
        data.load(pics)
    assert caught.value.where.endswith("loop")
    (pics / "3" / "loop").unlink()
    (pics / "3" / "mem.png").symlink_to("/proc/self/mem")
    with pytest.raises(DigitrecError, match="out of the folder"):
        data.load(pics)
    with pytest.raises(DigitrecError, match="Input/output error"):
        data.fingerprint(pics)
    assert len(data.load(pics.parent / "pics" / "3" / "a.png")) == 1


@pytest.mark.cluster
def test_read_on_ray_answers_each_fault_in_its_row(tmp_path):
    pytest.importorskip("ray")
    pq = pytest.importorskip("pyarrow.parquet")
    from digitrec.cluster import batch, connect

    pics = _faulty_folder(tmp_path, denied=False)
    with connect.connected(None):
        result = batch.read_archive(str(pics), tmp_path / "out", mode="read")
    rows = pq.read_table(tmp_path / "out").to_pylist()
    assert result.pictures == len(rows) and result.errors == len(FAULTS)
    _check_rows(rows, FAULTS, "text")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to become nobody")
def test_real_permission_denied_as_another_user(tmp_path):
    """The same rows when the kernel itself refuses: the command run as `nobody`, a file and a folder closed."""
    import subprocess
    import sys
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="digitrec-denied-"))  # tmp_path's parents are closed to other users
    try:
        pics = top / "pics"
        (pics / "closed").mkdir(parents=True)
        for name in ("a.png", "locked.png", "closed/b.png"):
            shutil.copy(EXAMPLES / "drawn-3.png", pics / name)
        (pics / "locked.png").chmod(0)
        (pics / "closed").chmod(0)
        for folder in (top, pics):
            folder.chmod(0o755)
        for verb in ("predict", "read"):
            result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                                     "-m", "digitrec", verb, str(pics), "--json"], capture_output=True, text=True,
                                    timeout=300, cwd=top, env={**os.environ, "HOME": str(top)})
            assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
            rows = {row["file"]: row for row in json.loads(result.stdout)}
            assert set(rows) == {"pics/a.png", "pics/locked.png", "pics/closed"}
            assert rows["pics/a.png"].get("error") is None
            assert "Permission denied" in rows["pics/locked.png"]["error"]
            assert "cannot list the folder (Permission denied)" in rows["pics/closed"]["error"]
    finally:
        (top / "pics" / "closed").chmod(0o755)
        shutil.rmtree(top)
