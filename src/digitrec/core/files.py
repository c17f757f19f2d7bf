"""Writing files: atomically (a reader sees the old file or the new one, never half of either), and only where
nothing that digitrec did not write is lost (outputs checked before any work, folders replaced by manifest)."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from digitrec.core.errors import DigitrecError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `target` to write to; renamed onto `target` when the block ends without
    an error, removed when it raises. For writers that want a path (safetensors, torch.onnx)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make shared outputs unreadable to others
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


_TEMP_RANDOM = re.compile(r"[a-z0-9_]{8}")  # tempfile.mkstemp's random part, between atomic_path's affixes


def is_temporary_of(name: str, targets: tuple[str, ...]) -> bool:
    """`name` is what atomic_path names its temporary for one of `targets`: `.TARGET.XXXXXXXX.tmp`."""
    return any(name.startswith(f".{t}.") and name.endswith(".tmp") and
               _TEMP_RANDOM.fullmatch(name[len(t) + 2:-4]) is not None for t in targets)


def atomic_write_bytes(target: str | os.PathLike, payload: bytes) -> None:
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


# ---------------------------------------------------------------- outputs: checked first, replaced only where ours

# Every output folder digitrec makes holds this file: the files (and folders) digitrec wrote there, as paths relative
# to the folder. `--overwrite` removes those and nothing else: a folder without it is never emptied, a name it does
# not list is never removed or written over, whatever the name begins with, and no symlink inside is followed.
MANIFEST = ".digitrec-manifest.json"
_NOT_OURS = "another --out folder, or move them away yourself"


def check_output(target: str | os.PathLike, overwrite: bool = False, protected: tuple = (),
                 inputs: tuple = ()) -> Path:
    """The output file, refused in one clear error before any work when writing it would lose something: an
    existing file without `overwrite`; never, not even with it, one of `protected` (a run's own files), an input
    or a file inside an input folder (`inputs`), something that is not a regular file (a device, a FIFO, a
    socket), an output folder's manifest, or a place this process cannot write in."""
    target = Path(target)
    resolved = target.resolve()
    for path in protected:
        if path is not None and Path(path).resolve() == resolved:  # there yet or not: the name is the run's
            raise DigitrecError("refusing to overwrite an input or a run's own file", where=str(target),
                                expected="another --out path")
    for path in inputs:
        if path is not None and Path(path).exists() and _inside(resolved, Path(path)):
            raise DigitrecError("refusing to overwrite an input or write inside an input folder", where=str(target),
                                expected="an --out path outside the input")
    if target.name == MANIFEST:
        raise DigitrecError("refusing to write over digitrec's record of an output folder", where=str(target),
                            expected="another --out path")
    kind = _kind(target)
    if kind == "folder":
        raise DigitrecError("is a folder", where=str(target), expected="a file path for --out")
    if kind not in (None, "file"):
        raise DigitrecError(f"is a {kind}, not a regular file: never replaced, not even with --overwrite",
                            where=str(target), expected="a path to a regular file, or a new one")
    if kind == "file" and not overwrite:
        raise DigitrecError("already exists", where=str(target), expected="another --out path, or --overwrite")
    _check_name_length(target)
    _check_writable_place(target.parent, target)
    return target


_TEMP_AFFIXES = len(".") + len(".XXXXXXXX.tmp")  # what atomic_path's temporary adds around the name


def _check_name_length(target: Path) -> None:
    """The name and its temporary (`.NAME.XXXXXXXX.tmp`) fit the file system's longest name (255 bytes on most)."""
    place = target.parent.absolute()
    while not place.exists() and place != place.parent:
        place = place.parent
    try:
        longest = os.pathconf(place, "PC_NAME_MAX")
    except (OSError, ValueError):
        longest = 255
    if len(os.fsencode(target.name)) + _TEMP_AFFIXES > longest:
        raise DigitrecError(f"the name is too long to write safely ({len(os.fsencode(target.name))} bytes)",
                            where=str(target), expected=f"a file name of at most {longest - _TEMP_AFFIXES} bytes")


def _inside(resolved: Path, source: Path) -> bool:
    """`resolved` is `source`, or lies in it when `source` is a folder."""
    src = source.resolve()
    return resolved == src or (src.is_dir() and src in resolved.parents)


def _kind(path: Path) -> str | None:
    """What is at `path` (a symlink is judged by what it points to; a dangling one is nothing): None, "file",
    "folder", or the name of a special file."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # a part of the path that is a file: said by the caller
        return None
    except OSError as e:  # a loop of symlinks, no permission
        raise DigitrecError(f"cannot be inspected ({e.strerror})", where=str(path)) from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    return {stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket", stat.S_IFCHR: "device",
            stat.S_IFBLK: "device"}.get(stat.S_IFMT(mode), "special file")


def check_output_folder(target: str | os.PathLike, overwrite: bool | None = None, writes: tuple[str, ...] = (),
                        whole: bool = True) -> Path:
    """A folder that can be made (or is there) and written in: refused in one clear error, before anything is
    removed, when it is a file, when a part of its path is a file, or when it cannot be written.

    With `overwrite` given (True or False) the folder is an output of its own that `clear_written` may empty:
    `writes` are the names (glob patterns) digitrec writes at its top level. A `whole` output (a dataset, a
    sweep, an ensemble) in a non-empty folder needs `overwrite` and a manifest; one that adds files to a folder
    (a line model) needs `overwrite` only when one of its names is there. Either way every file already under
    one of those names, and every name the manifest lists, must be a regular file digitrec wrote, reached
    through real folders: nothing else is ever replaced."""
    target = Path(target)
    kind = _kind(target)
    if kind not in (None, "folder"):
        raise DigitrecError(f"is a {kind}", where=str(target), expected="a folder")
    _check_writable_place(target, target)
    if overwrite is None or kind is None:
        return target
    taken = [entry.name for entry in os.scandir(target) if entry.name != MANIFEST and
             (whole or _matches(entry.name, writes))]
    if not taken:
        return target
    if not overwrite:
        raise DigitrecError("already exists" if whole else f"already holds {taken[0]}", where=str(target),
                            expected="another --out folder, or --overwrite")
    if not whole and read_manifest(target) is None:
        raise DigitrecError(f"digitrec did not write this (there is no {MANIFEST} beside it), so it will not be "
                            "replaced", where=str(target / taken[0]), expected=_NOT_OURS)
    _require_ours(target, writes, "--overwrite will not replace them")
    return target


def check_resumable(target: str | os.PathLike, replaces: tuple[str, ...]) -> Path:
    """A folder that --resume may finish: new or empty, or digitrec's (it has a manifest) with every file under
    `replaces` (the names the finished work writes over) one the manifest lists; refused otherwise."""
    target = check_output_folder(target)
    if _kind(target) is None or not any(e.name != MANIFEST for e in os.scandir(target)):
        return target
    _require_ours(target, replaces, "--resume will not finish or replace them")
    return target


def _require_ours(target: Path, writes: tuple[str, ...], refusal: str) -> None:
    """`target` has a manifest, every name it lists is still digitrec's, and so is everything under `writes`."""
    listed = read_manifest(target)
    if listed is None:
        raise DigitrecError(f"holds files digitrec did not write (it has no {MANIFEST}), so {refusal}",
                            where=str(target), expected=_NOT_OURS)
    _check_listed(target, listed)
    _check_writes(target, listed, writes)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def read_manifest(folder: Path) -> tuple[set[str], set[str]] | None:
    """The files and folders digitrec wrote in `folder`, from its manifest; None without one (or with one that is
    not a regular file, or not a list of plain relative paths: then nothing there is taken for digitrec's)."""
    try:
        fd = os.open(Path(folder) / MANIFEST, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or os.fstat(fd).st_size > 64 * 2**20:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            raw = json.loads(f.read())
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if not isinstance(raw, dict):
        return None
    files, folders = raw.get("files"), raw.get("folders", [])
    if not isinstance(files, list) or not isinstance(folders, list) or \
            not all(isinstance(p, str) and _plain_relative(p) for p in files + folders):
        return None
    return set(files), set(folders)


def _plain_relative(path: str) -> bool:
    """A path inside the folder, written as digitrec writes it: `a/b/c`, no `..`, `.`, empty part or NUL."""
    parts = path.split("/")
    return bool(path) and "\0" not in path and all(p not in ("", ".", "..") for p in parts) and \
        (len(parts) > 1 or parts[0] != MANIFEST)


def _lstat_inside(folder: Path, relative: str) -> os.stat_result | None:
    """lstat of `folder/relative`, None when it is not there; refused when the way to it passes a symlink or
    something that is not a folder (digitrec wrote it through real folders)."""
    path = folder
    for part in relative.split("/")[:-1]:
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return None
        if not stat.S_ISDIR(mode):
            raise DigitrecError("digitrec wrote into a folder here; it is now a symlink or a file, so --overwrite "
                                "will not touch what is under it", where=str(path), expected=_NOT_OURS)
    try:
        return os.lstat(folder / relative)
    except FileNotFoundError:
        return None


def _check_listed(folder: Path, listed: tuple[set[str], set[str]]) -> None:
    files, folders = listed
    for relative in sorted(files):
        st = _lstat_inside(folder, relative)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise DigitrecError("digitrec wrote a file here; it is now something else (a symlink, a folder, a FIFO), "
                                "so --overwrite will not touch it", where=str(folder / relative), expected=_NOT_OURS)
    for relative in sorted(folders):
        st = _lstat_inside(folder, relative)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise DigitrecError("digitrec made a folder here; it is now something else, so --overwrite will not touch "
                                "it", where=str(folder / relative), expected=_NOT_OURS)


def _check_writes(folder: Path, listed: tuple[set[str], set[str]], writes: tuple[str, ...]) -> None:
    """Every file and folder under a name digitrec is about to write is one it wrote (the manifest lists it):
    nothing of anyone else's, not even an empty folder where a file will go, is written over or mixed into
    digitrec's output."""
    files, folders = listed
    for entry in os.scandir(folder):
        if entry.name != MANIFEST and _matches(entry.name, writes):
            for relative, mode in _tree(folder, entry.name):
                ours = relative in (folders if stat.S_ISDIR(mode) else files if stat.S_ISREG(mode) else ())
                if not ours:
                    raise DigitrecError("digitrec did not write this (its output folder's manifest does not list "
                                        "it), so --overwrite will not replace it", where=str(folder / relative),
                                        expected=_NOT_OURS)


def _tree(folder: Path, name: str) -> Iterator[tuple[str, int]]:
    """(relative path, lstat mode) of `folder/name` and, when it is a real folder, of everything under it; symlinks
    are listed, never followed."""
    stack = [name]
    while stack:
        relative = stack.pop()
        try:
            mode = os.lstat(folder / relative).st_mode
            inside = [entry.name for entry in os.scandir(folder / relative)] if stat.S_ISDIR(mode) else []
        except FileNotFoundError:  # gone while listed (a temporary file renamed into place)
            continue
        yield relative, mode
        stack.extend(f"{relative}/{name}" for name in inside)


def clear_written(folder: str | os.PathLike) -> None:
    """Removes what the manifest of `folder` lists, and nothing else: its files (only regular files, reached
    without following a symlink) and then the folders it made once they are empty. Call `check_output_folder`
    first: it refuses, before anything is removed, a folder whose listed names are no longer digitrec's."""
    folder = Path(folder)
    listed = read_manifest(folder)
    if listed is None:
        return
    files, folders = listed
    root = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for relative in sorted(files):
            _unlink_inside(root, relative)
        kept = {f for f in sorted(folders, key=lambda f: -f.count("/")) if not _rmdir_inside(root, f)}
    finally:
        os.close(root)
    write_manifest(folder, set(), kept)


def _open_parent(root: int, relative: str) -> tuple[int, str]:
    """A descriptor of the folder holding `relative` (opened one part at a time, no symlink followed), and the
    last part's name."""
    parts = relative.split("/")
    fd = os.dup(root)
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
    except OSError:
        os.close(fd)
        raise
    return fd, parts[-1]


def _unlink_inside(root: int, relative: str) -> None:
    try:
        fd, name = _open_parent(root, relative)
    except OSError:  # gone, or no longer a real folder: nothing of ours to remove there
        return
    try:
        if stat.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
            os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


def _rmdir_inside(root: int, relative: str) -> bool:
    """Removes the folder when it is empty; whether it is gone."""
    try:
        fd, name = _open_parent(root, relative)
    except OSError:
        return True
    try:
        if not stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
            return True
        os.rmdir(name, dir_fd=fd)
        return True
    except FileNotFoundError:
        return True
    except OSError:  # holds something: not only ours
        return False
    finally:
        os.close(fd)


def write_manifest(folder: str | os.PathLike, files: set[str], folders: set[str] = frozenset()) -> None:
    """`folder`'s manifest, written atomically: these files and folders are digitrec's."""
    payload = {"written_by": "digitrec", "files": sorted(files), "folders": sorted(folders)}
    atomic_write_text(Path(folder) / MANIFEST, json.dumps(payload, indent=1) + "\n")


def add_written(folder: str | os.PathLike, files: set[str] = frozenset(), folders: set[str] = frozenset()) -> None:
    """Adds to `folder`'s manifest (made when there is none); the names it listed before that are gone are dropped."""
    folder = Path(folder)
    old_files, old_folders = read_manifest(folder) or (set(), set())
    write_manifest(folder, {f for f in old_files if os.path.lexists(folder / f)} | set(files),
                   {f for f in old_folders if os.path.lexists(folder / f)} | set(folders))


@contextlib.contextmanager
def recording(folder: str | os.PathLike, writes: tuple[str, ...], claim: tuple[str, ...] = ()) -> Iterator[Path]:
    """A block that writes under `writes` (top-level names or glob patterns) in `folder`: once it ends, however it
    ends, every regular file and folder under those names that it made or changed joins the manifest. `claim`:
    files it is about to write, listed before it starts, so that a command killed half-way leaves them listed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if claim:
        add_written(folder, set(claim))
    before = _snapshot(folder, writes)
    try:
        yield folder
    finally:
        if folder.is_dir():
            after = _snapshot(folder, writes)
            add_written(folder, {f for f, sig in after[0].items() if before[0].get(f) != sig},
                        after[1] - before[1])  # and a claimed file never written is dropped


def _snapshot(folder: Path, writes: tuple[str, ...]) -> tuple[dict[str, tuple], set[str]]:
    """Every regular file (its identity, size and time) and folder under `writes` in `folder`."""
    files, folders = {}, set()
    for entry in os.scandir(folder):
        if entry.name == MANIFEST or not _matches(entry.name, writes):
            continue
        for relative, _ in _tree(folder, entry.name):
            try:
                st = os.lstat(folder / relative)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                files[relative] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            elif stat.S_ISDIR(st.st_mode):
                folders.add(relative)
    return files, folders


def _check_writable_place(folder: Path, target: Path) -> None:
    """`folder`'s nearest existing ancestor (or itself) is a folder this process can make files in: tried with a
    folder made and removed at once, as permissions alone do not tell (root, read-only or virtual file systems)."""
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise DigitrecError(f"{folder} is not a folder", where=str(target), expected="a path in a folder")
    if not os.access(folder, os.W_OK):
        raise DigitrecError("cannot write there (no permission)", where=str(target))
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder, prefix=".digitrec-probe-"))
    except OSError as e:
        raise DigitrecError(f"cannot write there ({e.strerror})", where=str(target),
                            expected="a path in a folder this user can write in") from None
