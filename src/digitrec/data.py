"""Loading, checking and splitting digit data.

Every loader hands back `Digits`: uint8 images [N, 28, 28], light ink on black as in MNIST,
and int64 labels [N] when the source has them. The kind of a file is detected from its
content (magic numbers, header line), not only from its name.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec.errors import DigitrecError

IMAGE_SIZE = 28
NUM_CLASSES = 10
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
DATA_ENV = "DIGITREC_DATA"

# SHA-256 of the decompressed IDX files: mirrors recompress the gzip files, the contents are canonical.
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


@dataclass
class Digits:
    """Images [N, 28, 28] uint8 (light ink on black), labels [N] int64 or None, and where they came from."""

    x: np.ndarray
    y: np.ndarray | None
    source: str
    files: list[str] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: np.ndarray) -> Digits:
        return Digits(
            self.x[index],
            None if self.y is None else self.y[index],
            self.source,
            None if self.files is None else [self.files[i] for i in index],
        )


# ---------------------------------------------------------------- locating data


def resolve_data_path(path: str | os.PathLike | None) -> Path:
    """The `--data` argument, or `$DIGITREC_DATA` when it is left out."""
    if path is None:
        path = os.environ.get(DATA_ENV)
        if not path:
            raise DigitrecError(f"no data given: pass --data PATH or set {DATA_ENV}")
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise DigitrecError("no such file or folder", where=str(resolved))
    return resolved


def _read_head(path: Path, n: int = 64) -> bytes:
    with open(path, "rb") as f:
        head = f.read(n)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as f:
                return f.read(n)
        except (OSError, EOFError) as e:
            raise DigitrecError(f"corrupt gzip file: {e}", where=str(path)) from None
    return head


def _is_idx(head: bytes) -> bool:
    return len(head) >= 4 and head[0] == 0 and head[1] == 0 and head[2] == 0x08 and head[3] in (1, 3)


def _is_image(head: bytes) -> bool:
    return (
        head.startswith(b"\x89PNG")
        or head.startswith(b"\xff\xd8\xff")
        or head[:6] in (b"GIF87a", b"GIF89a")
        or head.startswith(b"BM")
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or head[:4] in (b"II*\x00", b"MM\x00*")
    )


def detect_kind(path: Path) -> str:
    """One of 'mnist-dir', 'idx', 'csv', 'npz', 'image', 'image-dir'."""
    if path.is_dir():
        if any(_is_idx(_read_head(p)) for p in path.iterdir() if p.is_file() and "idx" in p.name):
            return "mnist-dir"
        return "image-dir"
    head = _read_head(path)
    if not head:
        raise DigitrecError("file is empty", where=str(path))
    if _is_idx(head):
        return "idx"
    if head.startswith(b"PK"):
        return "npz"
    if _is_image(head):
        return "image"
    first_line = head.split(b"\n", 1)[0]
    if b"," in first_line or path.suffix.lower() == ".csv":
        return "csv"
    raise DigitrecError(
        "unrecognised data format", where=str(path),
        expected="an MNIST IDX folder or file, a Kaggle CSV, an .npz, an image or a folder of images",
    )


# ---------------------------------------------------------------- IDX


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (raw or gzipped), checking its header against its length."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DigitrecError(f"truncated or corrupt gzip stream ({e})", where=str(path)) from None
    if not _is_idx(raw[:4]):
        raise DigitrecError(
            f"not an IDX file (magic {raw[:4].hex() or 'empty'})", where=str(path),
            expected="magic 00000801 (labels) or 00000803 (images)",
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DigitrecError(f"truncated header: {len(raw)} bytes", where=str(path), expected=f"{header} bytes")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims))
    have = len(raw) - header
    if have != expected:
        state = "truncated" if have < expected else "has trailing bytes"
        raise DigitrecError(
            f"{state}: {have} bytes of data for shape {dims}", where=str(path), expected=f"{expected} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _mnist_files(folder: Path) -> dict[tuple[str, str], Path]:
    """Map (split, 'images'|'labels') to the IDX file holding it, telling them apart by content and name."""
    found: dict[tuple[str, str], Path] = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file() or "idx" not in p.name:
            continue
        head = _read_head(p)
        if not _is_idx(head):
            continue
        what = "images" if head[3] == 3 else "labels"
        name = p.name.lower()
        split = "test" if ("t10k" in name or "test" in name) else "train" if "train" in name else None
        if split:
            found.setdefault((split, what), p)
    return found


def _load_mnist_dir(folder: Path) -> dict[str, Digits]:
    files = _mnist_files(folder)
    splits = {}
    for split in ("train", "test"):
        if (split, "images") not in files:
            continue
        img_path = files[(split, "images")]
        x = read_idx(img_path)
        if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DigitrecError(f"images have shape {x.shape[1:]}", where=str(img_path), expected="28x28")
        y = None
        if (split, "labels") in files:
            lbl_path = files[(split, "labels")]
            y = read_idx(lbl_path)
            if y.ndim != 1 or len(y) != len(x):
                raise DigitrecError(
                    f"{len(y)} labels for {len(x)} images in {img_path.name}", where=str(lbl_path),
                    expected="one label per image",
                )
            _check_labels(y, str(lbl_path))
            y = y.astype(np.int64)
        splits[split] = Digits(x, y, f"{folder} ({split})")
    if not splits:
        raise DigitrecError(
            "no IDX image files found", where=str(folder),
            expected="train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-…",
        )
    return splits


def _check_labels(y: np.ndarray, where: str) -> None:
    bad = np.flatnonzero((y < 0) | (y > 9))
    if len(bad):
        raise DigitrecError(f"label {y[bad[0]]} at index {bad[0]}", where=where, expected="labels 0-9")


# ---------------------------------------------------------------- CSV

def _read_csv(path: Path) -> Digits:
    import pandas as pd

    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().strip()
    if not first:
        raise DigitrecError("file is empty", where=str(path), expected="a header line label,pixel0..pixel783")
    names = [c.strip() for c in first.split(",")]
    has_header = not all(_is_number(c) for c in names)
    if has_header:
        pixel_names = [f"pixel{i}" for i in range(NUM_PIXELS)]
        if names == ["label", *pixel_names]:
            labelled = True
        elif names == pixel_names:
            labelled = False
        else:
            raise DigitrecError(
                f"header has {len(names)} columns starting {','.join(names[:3])}", where=f"{path}, line 1",
                expected="label,pixel0..pixel783 (train) or pixel0..pixel783 (test)",
            )
    else:
        if len(names) not in (NUM_PIXELS, NUM_PIXELS + 1):
            raise DigitrecError(
                f"{len(names)} values", where=f"{path}, line 1", expected="785 (label + 784 pixels) or 784"
            )
        labelled = len(names) == NUM_PIXELS + 1
    ncols = NUM_PIXELS + labelled
    first_line = 2 if has_header else 1
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    for number, line in enumerate(lines[first_line - 1 :], start=first_line):
        count = line.count(b",") + 1
        if count != ncols:
            raise DigitrecError(f"{count} values", where=f"{path}, line {number}", expected=f"{ncols}")
    values = _plain_integers(lines[first_line - 1 :], ncols)
    if values is None:  # some cell is not a plain integer: pandas finds which, and the error names it
        try:
            frame = pd.read_csv(io.BytesIO(raw), header=0 if has_header else None, low_memory=False)
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise DigitrecError(f"malformed CSV: {e}", where=str(path)) from None
        values = _numeric_values(frame, path, first_line, ncols)
    if len(values) == 0:
        raise DigitrecError("no data rows", where=str(path), expected="at least one row")
    y = None
    if labelled:
        y = values[:, 0]
        bad = np.flatnonzero((y < 0) | (y > 9))
        if len(bad):
            raise DigitrecError(
                f"label {y[bad[0]]:g}", where=f"{path}, line {bad[0] + first_line}, column 'label'",
                expected="a digit 0-9",
            )
        y = y.astype(np.int64)
        values = values[:, 1:]
    bad_rows, bad_cols = np.nonzero((values < 0) | (values > 255))
    if len(bad_rows):
        r, c = bad_rows[0], bad_cols[0]
        raise DigitrecError(
            f"pixel value {values[r, c]:g}", where=f"{path}, line {r + first_line}, column 'pixel{c}'",
            expected="0-255",
        )
    x = values.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    return Digits(x, y, str(path))


def _plain_integers(rows: list[bytes], ncols: int) -> np.ndarray | None:
    """Rows of comma-separated integers as int64 [rows, ncols], or None if any cell is something else.

    numpy's C text parser reads a Kaggle test.csv in a third of pandas' time."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # numpy's signal for a cell it could not read
        try:
            flat = np.fromstring(b",".join(rows), dtype=np.int64, sep=",")
        except (DeprecationWarning, ValueError):
            return None
    if flat.size != len(rows) * ncols:
        return None
    return flat.reshape(len(rows), ncols)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numeric_values(frame, path: Path, first_line: int, ncols: int) -> np.ndarray:
    """The frame as float64, or an error naming the first missing or non-numeric cell."""
    import pandas as pd

    for col_index, col in enumerate(frame.columns):
        series = frame[col]
        if not pd.api.types.is_numeric_dtype(series):
            numeric = pd.to_numeric(series, errors="coerce")
            bad = np.flatnonzero(numeric.isna().to_numpy() & series.notna().to_numpy())
            if len(bad):
                name = col if isinstance(col, str) else f"#{col_index + 1}"
                raise DigitrecError(
                    f"{series.iloc[bad[0]]!r} is not a number",
                    where=f"{path}, line {bad[0] + first_line}, column '{name}'", expected="an integer 0-255",
                )
            frame[col] = numeric
    values = frame.to_numpy(dtype=np.float64)
    missing_rows, missing_cols = np.nonzero(np.isnan(values))
    if len(missing_rows):
        r, c = missing_rows[0], missing_cols[0]
        line = r + first_line
        present = int((~np.isnan(values[r])).sum())
        if present == 0:
            raise DigitrecError("empty line", where=f"{path}, line {line}", expected=f"{ncols} values")
        if np.isnan(values[r, c:]).all():
            raise DigitrecError(f"{present} values", where=f"{path}, line {line}", expected=f"{ncols}")
        name = frame.columns[c] if isinstance(frame.columns[c], str) else f"#{c + 1}"
        raise DigitrecError("missing value", where=f"{path}, line {line}, column '{name}'", expected="0-255")
    if values.size and not np.array_equal(values, np.round(values)):
        r, c = np.argwhere(values != np.round(values))[0]
        raise DigitrecError(
            f"{values[r, c]:g} is not an integer", where=f"{path}, line {r + first_line}", expected="0-255"
        )
    return values


# ---------------------------------------------------------------- npz


def _load_npz(path: Path) -> dict[str, Digits]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise DigitrecError(f"not a readable .npz archive ({e})", where=str(path)) from None
    splits = {}
    with archive:
        for split in ("train", "test"):
            if f"x_{split}" not in archive:
                continue
            x = archive[f"x_{split}"]
            if x.ndim == 2 and x.shape[1] == NUM_PIXELS:
                x = x.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
            if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
                raise DigitrecError(f"x_{split} has shape {x.shape}", where=str(path), expected="(N, 28, 28)")
            if x.min(initial=0) < 0 or x.max(initial=0) > 255:
                raise DigitrecError(f"x_{split} has values outside 0-255", where=str(path))
            y = archive.get(f"y_{split}")
            if y is not None:
                if y.shape != (len(x),):
                    raise DigitrecError(
                        f"y_{split} has shape {y.shape}", where=str(path), expected=f"({len(x)},)"
                    )
                _check_labels(y, f"{path} y_{split}")
                y = y.astype(np.int64)
            splits[split] = Digits(x.astype(np.uint8), y, f"{path} ({split})")
    if not splits:
        raise DigitrecError("no x_train or x_test array", where=str(path), expected="x_train, y_train, x_test, y_test")
    return splits


# ---------------------------------------------------------------- images


def iter_image_files(folder: Path) -> Iterator[Path]:
    """Image files under `folder`, recursively, in a stable order."""
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            yield p


def read_image(path: Path) -> np.ndarray:
    """One picture file, brought to MNIST style by `preprocess.to_mnist`."""
    from digitrec.preprocess import open_image, to_mnist

    try:
        return to_mnist(open_image(path.read_bytes()))
    except DigitrecError as e:
        raise DigitrecError(e.what, where=str(path), expected=e.expected) from None


def _label_from_dir(folder: Path, file: Path) -> int | None:
    parts = file.relative_to(folder).parts
    if len(parts) >= 2 and parts[0] in {str(d) for d in range(10)}:
        return int(parts[0])
    return None


def _load_image_dir(folder: Path) -> Digits:
    files = list(iter_image_files(folder))
    if not files:
        raise DigitrecError("no image files found", where=str(folder), expected=", ".join(sorted(IMAGE_SUFFIXES)))
    x = np.stack([read_image(p) for p in files])
    labels = [_label_from_dir(folder, p) for p in files]
    y = None if any(v is None for v in labels) else np.array(labels, dtype=np.int64)
    return Digits(x, y, str(folder), files=[str(p) for p in files])


# ---------------------------------------------------------------- entry points


def load_splits(path: str | os.PathLike | None) -> dict[str, Digits]:
    """All splits a source holds: 'train' and/or 'test' ('train' alone for a CSV or an image folder)."""
    path = resolve_data_path(path)
    kind = detect_kind(path)
    if kind == "mnist-dir":
        return _load_mnist_dir(path)
    if kind == "npz":
        return _load_npz(path)
    if kind == "idx":
        x = read_idx(path)
        if x.ndim != 3:
            raise DigitrecError("IDX file holds labels, not images", where=str(path), expected="an images file")
        return {"train": Digits(x, None, str(path))}
    if kind == "csv":
        digits = _read_csv(path)
        return {"train" if digits.y is not None else "test": digits}
    if kind == "image":
        return {"test": Digits(read_image(path)[None], None, str(path), files=[str(path)])}
    return {"train": _load_image_dir(path)}


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
    """SHA-256 over a file, or over a folder's files (names and contents), for the run's config."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        if path.is_dir():
            digest.update(str(p.relative_to(path)).encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(chunk)
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
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "digitrec" / "mnist"


def download_mnist(dest: Path | None = None, mirrors: tuple[str, ...] = MNIST_MIRRORS, timeout: float = 60) -> Path:
    """Fetch the four MNIST files into `dest` (verified by SHA-256), skipping those already there."""
    dest = Path(dest) if dest else default_cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    for name, sha in MNIST_FILES.items():
        target = dest / f"{name}.gz"
        if target.exists() and hashlib.sha256(gzip.decompress(target.read_bytes())).hexdigest() == sha:
            continue
        errors = []
        for mirror in mirrors:
            try:
                with urllib.request.urlopen(mirror + name + ".gz", timeout=timeout) as response:
                    payload = response.read()
                digest = hashlib.sha256(gzip.decompress(payload)).hexdigest()
            except (OSError, EOFError) as e:
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


def atomic_write_bytes(target: Path, payload: bytes) -> None:
    """Write to a temporary file beside `target`, then rename: readers see the old file or the new one."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make shared outputs unreadable to others
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(target: Path, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))

