"""Writing files atomically: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


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


def atomic_write_bytes(target: str | os.PathLike, payload: bytes) -> None:
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def check_output(target: str | os.PathLike, overwrite: bool = False, protected: tuple = ()) -> Path:
    """The output path, refused (one clear error) when writing it would lose something: an existing file
    without `overwrite`, and never one of `protected` (the input, a run's own files), not even with it."""
    from digitrec.errors import DigitrecError  # errors sits beside files at the bottom: no cycle

    target = Path(target)
    resolved = target.resolve()
    for path in protected:
        if path is not None and Path(path).exists() and Path(path).resolve() == resolved:
            raise DigitrecError("refusing to overwrite an input or a run's own file", where=str(target),
                                expected="another --out path")
    if target.is_dir():
        raise DigitrecError("is a folder", where=str(target), expected="a file path for --out")
    if target.exists() and not overwrite:
        raise DigitrecError("already exists", where=str(target), expected="another --out path, or --overwrite")
    _check_writable_place(target.parent, target)
    return target


def check_output_folder(target: str | os.PathLike) -> Path:
    """A folder that can be made (or is there) and written in: refused in one clear error when it is a file,
    when a part of its path is a file, or when it cannot be written."""
    from digitrec.errors import DigitrecError

    target = Path(target)
    if target.exists() and not target.is_dir():
        raise DigitrecError("is a file", where=str(target), expected="a folder")
    _check_writable_place(target, target)
    return target


def _check_writable_place(folder: Path, target: Path) -> None:
    """`folder`'s nearest existing ancestor (or itself) is a folder this process may write in."""
    from digitrec.errors import DigitrecError

    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise DigitrecError(f"{folder} is not a folder", where=str(target), expected="a path in a folder")
    if not os.access(folder, os.W_OK):
        raise DigitrecError("cannot write there (no permission)", where=str(target))
