"""Corrections from the page, kept as a labelled folder (`digitrec serve --collect DIR`), and re-tuning
in the background (`--tune-every N`).

    DIR/<digit>/<when>-<random>.png          the picture as the user drew or sent it (re-encoded as PNG)
    DIR/.inputs/<digit>/<when>-<random>.png  the 28x28 the model saw
    DIR/.examples.csv                        one line per example: file, digit, kind, what it was read as
    DIR/.tuned/                              runs tuned on the folder; `current` names the one in service

No name from the client reaches the disk. The folder is one that every verb reads (`--data DIR`):
hidden entries are skipped. Tuning runs `digitrec tune` as a child process (torch stays out of the
server), one at a time across the server's workers (a lock the kernel holds for the tuning's worker and
lets go of when that process ends, however it ends); each worker swaps the new run in on
its next request, after loading it, so no request is dropped.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

import numpy as np
from PIL import Image

from digitrec.core.errors import DigitrecError
from digitrec.core.files import atomic_write_bytes, atomic_write_text
from digitrec.imaging.decode import png_bytes

INPUTS, TUNED, LOG = ".inputs", ".tuned", ".examples.csv"
CURRENT, LOCK, COUNT, TUNE_LOG = "current", "lock", "count", "tune.log"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # a log that is a link is not opened (ELOOP): never append outside


class Collector:
    def __init__(self, folder: str | os.PathLike, tune_every: int = 0, base_model: str | None = None,
                 tune_steps: int | None = None):
        self.folder = Path(folder)
        self.tune_every = tune_every
        self.base_model = base_model
        self.tune_steps = tune_steps  # None: `digitrec tune`'s default
        self._refuse_links()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / f".probe-{uuid.uuid4().hex[:8]}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise DigitrecError(f"cannot write examples here ({e.strerror})", where=str(self.folder),
                                expected="a folder this user may write to") from None
        self._current_stamp: int | None = None
        self._current: Path | None = None

    def _refuse_links(self) -> None:
        """The folder and every path it writes must be no symbolic link: through one, corrections would be
        written or appended to a file outside the folder, which digitrec never changes."""
        digits = [str(d) for d in range(10)]
        names = ["", LOG, INPUTS, TUNED, *digits, *(f"{INPUTS}/{d}" for d in digits),
                 *(f"{TUNED}/{n}" for n in (TUNE_LOG, CURRENT, LOCK, COUNT))]
        for name in names:
            path = self.folder / name if name else self.folder
            if path.is_symlink():
                raise DigitrecError("is a symbolic link: not followed", where=str(path),
                                    expected="a folder for examples with no links in it")

    def save(self, picture: Image.Image, seen: np.ndarray, digit: int, kind: str, read_as: str) -> dict:
        """Keep one example whole or not at all: OSError (a full disk, a folder made read-only) is the
        caller's to report, and whatever this call had written of the example is removed first."""
        name = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:10]}.png"
        written = []
        try:
            for path, image in ((self.folder / str(digit) / name, picture),
                                (self.folder / INPUTS / str(digit) / name, Image.fromarray(seen))):
                atomic_write_bytes(path, _png(image))  # a failed write leaves no file behind
                written.append(path)
            _append_line(self.folder / LOG, f"{digit}/{name},{digit},{kind},{read_as}\n")
        except OSError:
            for path in written:  # names this call made up: no one else's file
                path.unlink(missing_ok=True)
            raise
        count = self.count()
        tuning = self._maybe_tune(count)
        return {"saved": f"{digit}/{name}", "digit": digit, "kind": kind, "examples": count, "tuning": tuning}

    def count(self) -> int:
        return sum(1 for d in range(10) if (self.folder / str(d)).is_dir()
                   for f in (self.folder / str(d)).iterdir() if f.suffix == ".png")

    # ------------------------------------------------------------ tuning in the background

    def current_model(self) -> Path | None:
        """The tuned run in service, if any: a stat per call, the file read only when it changed."""
        pointer = self.folder / TUNED / CURRENT
        try:
            stamp = pointer.stat().st_mtime_ns
        except OSError:
            return None
        if stamp != self._current_stamp:
            self._current_stamp = stamp
            self._current = Path(pointer.read_text(encoding="utf-8").strip())
        return self._current

    def _maybe_tune(self, count: int) -> bool:
        if not self.tune_every:
            return False
        tuned = self.folder / TUNED
        tuned.mkdir(exist_ok=True)
        if count - _tuned_count(tuned) < self.tune_every:
            return False
        lock = _try_lock(tuned / LOCK)
        if lock is None:
            return False
        if count - _tuned_count(tuned) < self.tune_every:  # a tuning that ended while we waited took these
            os.close(lock)
            return False
        out = tuned / f"run-{count:06d}-{uuid.uuid4().hex[:6]}"
        command = [sys.executable, "-m", "digitrec", "tune", "--data", str(self.folder), "--out", str(out), "--quiet"]
        if self.base_model:
            command += ["--model", self.base_model]
        if self.tune_steps:
            command += ["--steps", str(self.tune_steps)]
        threading.Thread(target=self._tune, args=(command, out, count, lock), daemon=True).start()
        return True

    def _tune(self, command: list[str], out: Path, count: int, lock: int) -> None:
        """Run `digitrec tune`; its output goes to .tuned/tune.log, and its warnings (an example it skipped)
        and its error, if it fails, also to the server's own stderr: a tune that fails is never silent."""
        tuned = self.folder / TUNED
        try:
            fd = os.open(tuned / TUNE_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
            with open(fd, "ab") as log:
                done = subprocess.run(command, stdout=log, stderr=subprocess.PIPE)
                log.write(done.stderr)
            for line in done.stderr.decode("utf-8", "replace").splitlines():
                if line.startswith(("warning:", "digitrec: ")):
                    print(f"digitrec serve: tuning on {self.folder}: {line}", file=sys.stderr, flush=True)
            if done.returncode == 0:
                atomic_write_text(tuned / COUNT, str(count))
                atomic_write_text(tuned / CURRENT, str(out.resolve()))
            else:
                print(f"digitrec serve: tuning on {self.folder} failed (exit {done.returncode}); the model in "
                      f"service is kept; see {tuned / TUNE_LOG}", file=sys.stderr, flush=True)
        finally:
            os.close(lock)  # lets go of the lock; the file stays (removing it would let two tunings lock two files)


def _tuned_count(tuned: Path) -> int:
    """How many examples the last finished tuning saw (0 before the first)."""
    try:
        return int((tuned / COUNT).read_text())
    except (OSError, ValueError):
        return 0


def _try_lock(path: Path) -> int | None:
    """An exclusive lock on `path`, as an open descriptor to close when done, or None while another holds it.

    The kernel holds the lock for the open file and drops it when the holder closes it or ends, killed too: no
    process id is kept in the file, so a holder that died (its id since reused, or from another container
    sharing the folder) never blocks the next tuning, and no two processes take over a stale lock at once."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | _NOFOLLOW, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # Windows: a lock on the file's first byte, dropped as well when its process ends
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:  # BlockingIOError (EWOULDBLOCK) with flock, PermissionError (EACCES) with msvcrt
        os.close(fd)
        return None
    return fd


def _append_line(path: Path, line: str) -> None:
    """Append one short line in one write (workers append to the same log), or nothing: a write cut short
    by a full disk is cut back off, unless another process has appended since."""
    data = line.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
    try:
        before = os.fstat(fd).st_size
        try:
            done = os.write(fd, data)
        except OSError:
            done = os.fstat(fd).st_size - before
            if 0 < done < len(data):
                os.ftruncate(fd, before)
            raise
        if done < len(data):
            if os.fstat(fd).st_size == before + done:
                os.ftruncate(fd, before)
            raise OSError(errno.ENOSPC, "the examples' log could not be written whole")
    finally:
        os.close(fd)


def _png(picture: Image.Image) -> bytes:
    """Gray from a bilevel, gray or palette picture (alpha dropped), else RGB."""
    return png_bytes(picture.convert("L" if picture.mode in ("1", "L", "P", "LA") else "RGB"))
