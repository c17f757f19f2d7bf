"""Finding, loading, checking and splitting digit data: the entry points over `formats`' readers.

Every loader hands back `Digits` (uint8 [N, 28, 28], light ink on black; int64 labels or None).
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec.core import settings
from digitrec.core.constants import NUM_CLASSES
from digitrec.core.errors import DigitrecError
from digitrec.core.files import atomic_write_bytes
from digitrec.data.formats import (
    Digits,
    detect_kind,
    inflate_chunks,
    iter_image_files,
    load_image_dir,
    load_mnist_dir,
    load_npz,
    read_csv,
    read_idx,
    read_image,
    read_picture_file,
)

# What callers need of the formats too, so that `digitrec.data` is the one door to data.
__all__ = ["DATA_ENV", "Digits", "check", "detect_kind", "download_mnist", "fingerprint", "iter_image_files", "load",
           "load_for_training", "load_splits", "read_idx", "read_image", "read_picture_file", "resolve_data_path",
           "stratified_split", "summarize"]

DATA_ENV = settings.DATA

MNIST_FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)



def resolve_data_path(path: str | os.PathLike | None) -> Path:
    """The `--data` argument, or `$DIGITREC_DATA` when it is left out."""
    if path is None:
        path = settings.data_path()
        if not path:
            raise DigitrecError(f"no data given: pass --data PATH or set {DATA_ENV}")
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise DigitrecError("no such file or folder", where=str(resolved))
    return resolved

# ---------------------------------------------------------------- entry points


def load_splits(path: str | os.PathLike | None, keep_refused: bool = False) -> dict[str, Digits]:
    """All splits a source holds: 'train' and/or 'test' ('train' alone for a CSV or an image folder).
    `keep_refused`: an image folder's pictures with no digit are kept, listed, not an error (evaluation)."""
    path = resolve_data_path(path)
    kind = detect_kind(path)
    if kind == "mnist-dir":
        return load_mnist_dir(path)
    if kind == "npz":
        return load_npz(path)
    if kind == "idx":
        x = read_idx(path)
        if x.ndim != 3:
            raise DigitrecError("IDX file holds labels, not images", where=str(path), expected="an images file")
        return {"train": Digits(x, None, str(path))}
    if kind == "csv":
        digits = read_csv(path)
        return {"train" if digits.y is not None else "test": digits}
    if kind == "image":
        return {"test": Digits(read_image(path)[None], None, str(path), files=[str(path)])}
    return {"train": load_image_dir(path, keep_refused)}


def load(path: str | os.PathLike | None, split: str | None = None) -> Digits:
    """One split of a source; by default the test split where there is one, else the only one."""
    splits = load_splits(path)
    if split is None:
        split = "test" if "test" in splits else next(iter(splits))
    if split not in splits:
        raise DigitrecError(f"no '{split}' split", where=str(resolve_data_path(path)), expected=", ".join(splits))
    return splits[split]


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val), the same for the same labels and seed; each class split in proportion."""
    if not 0 <= val_fraction < 1:
        raise DigitrecError(f"--val-fraction {val_fraction}", expected="a fraction in [0, 1)")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for digit in range(NUM_CLASSES):
        members = np.flatnonzero(labels == digit)
        members = members[rng.permutation(len(members))]
        n_val = int(round(len(members) * val_fraction))
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def load_for_training(path, val_fraction: float = 0.1, seed: int = 0) -> tuple[Digits, Digits | None]:
    """The labelled training split, less a stratified validation part; the test split is never touched."""
    splits = load_splits(path)
    if "train" not in splits or splits["train"].y is None:
        raise DigitrecError("no labelled training data", where=str(resolve_data_path(path)),
                            expected="labels (a 'label' column, label IDX files or DIR/<digit>/ folders)")
    data = splits["train"]
    train_idx, val_idx = stratified_split(data.y, val_fraction, seed)
    return data.subset(train_idx), (data.subset(val_idx) if len(val_idx) else None)


def fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 over a file, or over a folder's files (names and contents), for the run's config. Of an MNIST
    folder only its IDX files count: a README or checksum list beside them is not data, and the same digits
    in two folders are the same data (a teacher and its student, a resumed run)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if path.is_dir() and detect_kind(path) == "mnist-dir":
        files = [p for p in files if "ubyte" in p.name.lower()]
    for p in files:
        if path.is_dir():
            digest.update(str(p.relative_to(path)).encode())
        try:
            with open(p, "rb") as f:
                for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as e:  # permission denied, an I/O error: named, not a traceback
            raise DigitrecError(f"cannot be read ({e.strerror or e.__class__.__name__})", where=str(p)) from None
    return digest.hexdigest()

# ---------------------------------------------------------------- checks


@dataclass
class CheckReport:
    source: str
    kind: str
    splits: dict[str, dict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    digits: dict[str, Digits] = field(default_factory=dict, repr=False)  # what was loaded, for figures

    @property
    def clean(self) -> bool:
        return not self.problems


def summarize(digits: Digits) -> dict:
    """Rows, shape, pixel range, duplicates and label counts of one split."""
    flat = digits.x.reshape(len(digits), -1)
    unique = len({row.tobytes() for row in flat})
    summary = {
        "rows": len(digits),
        "shape": list(digits.x.shape[1:]),
        "pixel_min": int(flat.min()) if len(flat) else None,
        "pixel_max": int(flat.max()) if len(flat) else None,
        "pixel_mean": round(float(flat.mean()), 3) if len(flat) else None,
        "duplicates": len(digits) - unique,
        "label_counts": None if digits.y is None else np.bincount(digits.y, minlength=NUM_CLASSES).tolist(),
    }
    return summary


def check(path: str | os.PathLike | None) -> CheckReport:
    """Load a source and list what is wrong with it; loading errors become problems, not exceptions."""
    resolved = resolve_data_path(path)
    report = CheckReport(str(resolved), "unknown")
    try:
        report.kind = detect_kind(resolved)
        splits = load_splits(resolved)
    except DigitrecError as e:
        report.problems.append(str(e))
        return report
    report.digits = splits
    for name, digits in splits.items():
        s = summarize(digits)
        report.splits[name] = s
        if s["duplicates"]:
            report.problems.append(f"{name}: {s['duplicates']} duplicate images")
        if s["pixel_max"] is not None and s["pixel_max"] < 128:
            report.problems.append(f"{name}: brightest pixel is {s['pixel_max']}, expected ink near 255")
        counts = s["label_counts"]
        if counts:
            missing = [d for d, c in enumerate(counts) if c == 0]
            if missing:
                report.problems.append(f"{name}: no examples of digit(s) {missing}")
            elif max(counts) > 3 * min(counts):
                report.problems.append(
                    f"{name}: labels unbalanced: digit {int(np.argmax(counts))} has {max(counts)}, "
                    f"digit {int(np.argmin(counts))} has {min(counts)} (ratio over 3)"
                )
    return report

# ---------------------------------------------------------------- download


def default_cache_dir() -> Path:
    return settings.user_cache() / "mnist"


MAX_DOWNLOAD = 32 << 20  # MNIST's largest file is 9.9 MB gzipped
MAX_MNIST_INFLATED = 64 << 20  # ... and 47 MB unpacked


def _sha256_of_gzip(payload: bytes, where: str) -> str:
    """SHA-256 of what a gzip stream unpacks to, inflating no more than MNIST's size (a "gzip bomb" of a
    few hundred KB is refused, not unpacked to gigabytes, and memory holds one chunk of it at a time); a corrupt
    stream is a DigitrecError."""
    digest = hashlib.sha256()
    for chunk in inflate_chunks(payload, where, MAX_MNIST_INFLATED):
        digest.update(chunk)
    return digest.hexdigest()


def _cached(target: Path, sha: str) -> bool:
    try:
        return target.exists() and _sha256_of_gzip(target.read_bytes(), str(target)) == sha
    except DigitrecError:
        return False  # a damaged copy is downloaded again


def download_mnist(dest: Path | None = None, mirrors: tuple[str, ...] = MNIST_MIRRORS, timeout: float = 60) -> Path:
    """Fetch the four MNIST files into `dest` (verified by SHA-256), skipping those already there."""
    dest = Path(dest) if dest else default_cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    for name, sha in MNIST_FILES.items():
        target = dest / f"{name}.gz"
        if _cached(target, sha):
            continue
        errors = []
        for mirror in mirrors:
            try:
                with urllib.request.urlopen(mirror + name + ".gz", timeout=timeout) as response:
                    payload = response.read(MAX_DOWNLOAD + 1)
                if len(payload) > MAX_DOWNLOAD:
                    raise DigitrecError(f"over {MAX_DOWNLOAD:,} bytes", expected="MNIST's 10 MB")
                digest = _sha256_of_gzip(payload, mirror + name + ".gz")
            except (OSError, EOFError, ValueError, DigitrecError) as e:  # the next mirror may serve it right
                errors.append(f"{mirror}: {e}")
                continue
            if digest != sha:
                errors.append(f"{mirror}: checksum {digest[:12]}… does not match {sha[:12]}…")
                continue
            atomic_write_bytes(target, payload)
            break
        else:
            raise DigitrecError(f"could not download {name}: " + "; ".join(errors))
    return dest
