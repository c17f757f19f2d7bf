"""Reading digit data from files: MNIST's IDX (raw or gzipped), Kaggle CSV, npz, pictures and folders.

Every reader hands back `Digits`: uint8 images [N, 28, 28], light ink on black as in MNIST, and int64
labels [N] when the source has them. The kind of a file is detected from its content (magic numbers,
header line), not only from its name. Every problem is a `DigitrecError` naming the file and the line.
"""

from __future__ import annotations

import errno
import gzip
import math
import os
import re
import stat
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec.core.constants import IMAGE_SIZE, NUM_PIXELS
from digitrec.core.errors import BlankImageError, DigitrecError, NoDigitError, TooLargeError
from digitrec.imaging.decode import open_image
from digitrec.imaging.fit import to_mnist

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
# Bytes all the arrays an .npz's digits are read from may declare together: MNIST stored as float64 (a common
# export) is 440 MB. A few MB of zeros can declare gigabytes: each header is checked before its data is unpacked.
MAX_NPZ_BYTES = 512 << 20
# A picture file from disk is read whole into memory: past this it is refused unread. The server takes uploads
# of 10 MiB (serve.MAX_UPLOAD_BYTES); files on disk get more room (scans, camera photos of 20-40 MB), while a
# 1.5 GB file named .png no longer costs 1.5 GB of memory.
MAX_PICTURE_FILE_BYTES = 64 << 20


@dataclass
class Digits:
    """Images [N, 28, 28] uint8 (light ink on black), labels [N] int64 or None, and where they came from."""

    x: np.ndarray
    y: np.ndarray | None
    source: str
    files: list[str] | None = field(default=None, repr=False)
    # Pictures that hold no digit (blank, a blot): a blank image in x, and why here. Only an evaluation
    # asks for them (`keep_refused`): it counts them as errors instead of stopping at the first.
    refused: dict[int, str] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: np.ndarray) -> Digits:
        where = {int(old): new for new, old in enumerate(index)} if self.refused else {}
        return Digits(
            self.x[index],
            None if self.y is None else self.y[index],
            self.source,
            None if self.files is None else [self.files[i] for i in index],
            {where[i]: why for i, why in self.refused.items() if i in where},
        )

# ---------------------------------------------------------------- kinds


def _read_head(path: Path, n: int = 64) -> bytes:
    try:
        with open(path, "rb") as f:
            head = f.read(n)
    except OSError as e:  # permission denied, an I/O error
        raise DigitrecError(f"cannot be read ({e.strerror or e.__class__.__name__})", where=str(path)) from None
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as f:
                return f.read(n)
        except (OSError, EOFError, zlib.error) as e:
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
    if path.exists() and not path.is_dir() and not path.is_file():  # a FIFO or a device: reading would block
        raise DigitrecError("not a regular file", where=str(path), expected="a file or a folder")
    if path.is_dir():
        named = sorted(p for p in path.iterdir() if p.is_file() and "ubyte" in p.name.lower())
        for p in named:  # a file named like MNIST's that is not IDX is named in the error, not skipped
            head = _read_head(p)
            if not head:
                raise DigitrecError("file is empty", where=str(p), expected="an MNIST IDX file")
            if not _is_idx(head):
                raise DigitrecError(f"not an IDX file (magic {head[:4].hex()})", where=str(p),
                                    expected="magic 00000801 (labels) or 00000803 (images)")
        if named or any(_is_idx(_read_head(p)) for p in path.iterdir() if p.is_file() and "idx" in p.name):
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


# Bytes an IDX file's data may hold, unpacked or not: EMNIST's digits, the largest digit set published as IDX,
# are 188 MB (MNIST's training images 47 MB). A gzip bomb of a few hundred KB unpacks to gigabytes: its header's
# shape is checked against this before anything is unpacked, and the stream is never unpacked further than
# the header's size and this budget.
MAX_INFLATED = 256 << 20
CHUNK = 1 << 20  # a stream is unpacked, and its budget checked, this many bytes at a time


def inflate_chunks(payload: bytes, where: str, limit: int | None = None) -> Iterator[bytes]:
    """A gzip stream unpacked CHUNK bytes at a time, refused when corrupt or once it has unpacked to more than
    `limit` bytes (default MAX_INFLATED): memory holds one chunk, never the whole."""
    limit = MAX_INFLATED if limit is None else limit
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    total, rest = 0, payload
    try:
        while not inflater.eof:
            chunk = inflater.decompress(rest, CHUNK)
            rest = inflater.unconsumed_tail
            total += len(chunk)
            if total > limit:
                raise DigitrecError(f"gzip stream unpacks to over {limit:,} bytes", where=where,
                                    expected="an MNIST-sized file")
            if not chunk and not rest:
                break
            yield chunk
    except zlib.error as e:
        raise DigitrecError(f"truncated or corrupt gzip stream ({e})", where=where) from None
    if not inflater.eof:
        raise DigitrecError("truncated or corrupt gzip stream (it ends before its end marker)", where=where)


def inflate(payload: bytes, where: str, limit: int | None = None) -> bytes:
    """A gzip stream unpacked whole, within `limit` bytes (see `inflate_chunks`)."""
    return b"".join(inflate_chunks(payload, where, limit))


def _read_fully(stream, buffer: memoryview) -> int:
    """Fills `buffer` from `stream` CHUNK bytes at a time; returns how many bytes it got before the stream ended."""
    got = 0
    while got < len(buffer):
        n = stream.readinto(buffer[got : got + CHUNK])
        if not n:
            break
        got += n
    return got


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (raw or gzipped), checking its header against its length. The header's shape is checked
    against MAX_INFLATED before any data is read; then exactly that many bytes are read, and what follows them is
    counted, not kept: memory holds the array once, whatever the file declares or unpacks to."""
    with open(path, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            f.seek(0)
            return _idx_array(f, path, os.fstat(f.fileno()).st_size)
    try:
        with gzip.open(path, "rb") as f:
            return _idx_array(f, path, None)
    except (OSError, EOFError, zlib.error) as e:  # gzip's BadGzipFile is an OSError
        raise DigitrecError(f"truncated or corrupt gzip stream ({e})", where=str(path)) from None


def _idx_array(stream, path: Path, size: int | None) -> np.ndarray:
    """The array of an IDX stream; `size` is the file's length when it is not gzipped (None when it is)."""
    head = stream.read(4)
    if not _is_idx(head):
        raise DigitrecError(f"not an IDX file (magic {head.hex() or 'empty'})", where=str(path),
                            expected="magic 00000801 (labels) or 00000803 (images)")
    ndim = head[3]
    header = 4 + 4 * ndim
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DigitrecError(f"truncated header: {4 + len(raw_dims)} bytes", where=str(path), expected=f"{header} bytes")
    dims = tuple(int.from_bytes(raw_dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    expected = math.prod(dims)  # Python's integers: numpy's product of 2**31 x 2**31 x 2**31 wraps to 0
    if size is not None and size - header != expected:
        _wrong_length(path, dims, size - header)
    if expected > MAX_INFLATED:
        raise DigitrecError(f"header declares shape {dims}: {expected:,} bytes of data", where=str(path),
                            expected=f"at most {MAX_INFLATED:,} bytes")
    array = np.empty(expected, np.uint8)
    have = _read_fully(stream, memoryview(array))
    if have == expected:  # what follows is counted a chunk at a time, up to the budget
        while have <= MAX_INFLATED and (n := len(stream.read(CHUNK))):
            have += n
        if header + have > MAX_INFLATED:
            raise DigitrecError(f"gzip stream unpacks to over {MAX_INFLATED:,} bytes", where=str(path),
                                expected="an MNIST-sized file")
    if have != expected:
        _wrong_length(path, dims, have)
    return array.reshape(dims)


def _wrong_length(path: Path, dims: tuple[int, ...], have: int) -> None:
    expected = math.prod(dims)
    state = "truncated" if have < expected else "has trailing bytes"
    raise DigitrecError(f"{state}: {have} bytes of data for shape {dims}", where=str(path),
                        expected=f"{expected} bytes")


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


def load_mnist_dir(folder: Path) -> dict[str, Digits]:
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

def _csv_layout(path: Path) -> tuple[bool, bool]:
    """(has a header line, has a label column), from the first line."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:  # -sig: a byte-order mark is no column name
        first = f.readline().strip()
    if not first:
        raise DigitrecError("file is empty", where=str(path), expected="a header line label,pixel0..pixel783")
    names = [c.strip() for c in first.split(",")]
    if all(_is_number(c) for c in names):
        if len(names) not in (NUM_PIXELS, NUM_PIXELS + 1):
            raise DigitrecError(
                f"{len(names)} values", where=f"{path}, line 1", expected="785 (label + 784 pixels) or 784"
            )
        return False, len(names) == NUM_PIXELS + 1
    pixel_names = [f"pixel{i}" for i in range(NUM_PIXELS)]
    if names in (["label", *pixel_names], pixel_names):
        return True, names[0] == "label"
    raise DigitrecError(
        f"header has {len(names)} columns starting {','.join(names[:3])}", where=f"{path}, line 1",
        expected="label,pixel0..pixel783 (train) or pixel0..pixel783 (test)",
    )


def read_csv(path: Path) -> Digits:
    has_header, labelled = _csv_layout(path)
    ncols = NUM_PIXELS + labelled
    first_line = 2 if has_header else 1
    # Excel's byte-order mark and old Mac line endings (CR alone) read like any other file.
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines = raw.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    for number, line in enumerate(lines[first_line - 1 :], start=first_line):
        count = line.count(b",") + 1
        if count != ncols:
            raise DigitrecError(f"{count} values", where=f"{path}, line {number}", expected=f"{ncols}")
    values = _plain_integers(lines[first_line - 1 :], ncols)
    if values is None:  # some cell is not a plain integer: read cell by cell, and the error names the odd one
        names = [c.decode("utf-8", errors="replace") for c in lines[0].split(b",")] if has_header else None
        values = _numeric_values(_cell_values(lines[first_line - 1 :], path, first_line, ncols, names), path,
                                 first_line, ncols, names)
    if len(values) == 0:
        raise DigitrecError("no data rows", where=str(path), expected="at least one row")
    y = None
    if labelled:
        y = values[:, 0]
        bad = np.flatnonzero((y < 0) | (y > 9))
        if len(bad):
            cell = _cell(lines, bad[0] + first_line, 0)
            raise DigitrecError(
                f"label {cell}", where=f"{path}, line {bad[0] + first_line}, column 'label'",
                expected="a digit 0-9",
            )
        y = y.astype(np.int64)
        values = values[:, 1:]
    bad_rows, bad_cols = np.nonzero((values < 0) | (values > 255))
    if len(bad_rows):
        r, c = bad_rows[0], bad_cols[0]
        raise DigitrecError(
            f"pixel value {_cell(lines, r + first_line, c + labelled)}",
            where=f"{path}, line {r + first_line}, column 'pixel{c}'",
            expected="0-255",
        )
    x = values.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    return Digits(x, y, str(path))


def _cell(lines: list[bytes], line: int, column: int) -> str:
    """A cell as the file writes it (a 20-digit number stays 20 digits, not a rounded float)."""
    text = lines[line - 1].split(b",")[column].strip().decode("utf-8", errors="replace")
    return text if len(text) <= 40 else text[:40] + "..."


_BLANK_CELL = re.compile(rb",[ \t\v\f]*,")


def _plain_integers(rows: list[bytes], ncols: int) -> np.ndarray | None:
    """Rows of comma-separated integers as int64 [rows, ncols], or None if any cell is something else.

    numpy's C text parser reads a Kaggle test.csv in a third of pandas' time."""
    joined = b",".join(rows)
    # numpy reads a cell of spaces as 0: it is not a number (looked for only where a space is, as in few files)
    if any(space in joined for space in (b" ", b"\t", b"\v", b"\f")) and _BLANK_CELL.search(b"," + joined + b","):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # numpy's signal for a cell it could not read
        try:
            flat = np.fromstring(joined, dtype=np.int64, sep=",")
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


# A cell that is exactly one of these is missing, not "not a number": the words pandas' read_csv takes for a
# missing value, so a file reads as it did when pandas read it.
_MISSING = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                           "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
# A number: decimal, maybe a fraction or an exponent, spaces around it allowed; or an infinity with nothing around.
_NUMBER = re.compile(r"[ \t\n\v\f\r]*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[ \t\n\v\f\r]*|[+-]?inf(?:inity)?",
                     re.ASCII | re.IGNORECASE)
_PLAIN = rb" *[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)? *"
_PLAIN_LINE = re.compile(_PLAIN + rb"(?:," + _PLAIN + rb")*", re.ASCII)  # numbers only: numpy reads the line whole
_TRUTHS = {"true": 1.0, "false": 0.0}  # a column of these (and missing cells) alone reads as 1 and 0
_QUOTE, _COMMA, _NEWLINE = ord('"'), ord(","), ord("\n")


def _column(names: list[str] | None, c: int) -> str:
    return names[c] if names else f"#{c + 1}"


def _cell_values(lines: list[bytes], path: Path, first_line: int, ncols: int, names: list[str] | None) -> np.ndarray:
    """The data lines as float64 [rows, ncols], NaN where a cell is missing; an error names the first cell that is
    not a number, column by column (a cell that is not UTF-8 before any), as pandas' read_csv named it."""
    records = _records(lines, path, first_line, ncols)
    values = np.full((len(records), ncols), np.nan)
    odd, truths, undecodable = [], [], []
    for r, cells in _odd_records(records, values, ncols):
        if isinstance(cells, bytes):
            row = _plain_floats(cells) if _PLAIN_LINE.fullmatch(cells) else None
            if row is not None and row.size == ncols:
                values[r] = row
                continue
            cells = cells.split(b",")
        for c, cell in enumerate(cells):
            try:
                text = cell.decode("utf-8")
            except UnicodeDecodeError as e:
                undecodable.append((c, r, e))
                continue
            if _NUMBER.fullmatch(text):
                values[r, c] = float(text)
            elif text.lower() in _TRUTHS:
                truths.append((c, r, text))
            elif text not in _MISSING:
                odd.append((c, r, text))
    if undecodable:
        raise DigitrecError(f"malformed CSV: {min(undecodable, key=lambda u: u[:2])[2]}", where=str(path))
    odd_columns = {c for c, _, _ in odd}
    for c, r, text in truths:
        if c in odd_columns or not np.isnan(values[:, c]).all():
            odd.append((c, r, text))  # among numbers or words: not a number
        else:
            values[r, c] = _TRUTHS[text.lower()]
    if odd:
        c, r, text = min(odd)
        raise DigitrecError(f"{text!r} is not a number", where=f"{path}, line {r + first_line}, column "
                            f"'{_column(names, c)}'", expected="an integer 0-255")
    return values


def _plain_floats(line: bytes) -> np.ndarray | None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # numpy's signal for a cell it could not read
        try:
            return np.fromstring(line, dtype=np.float64, sep=",")
        except (DeprecationWarning, ValueError):
            return None


def _odd_records(records: list[bytes | list[bytes]], values: np.ndarray,
                 ncols: int) -> Iterator[tuple[int, bytes | list[bytes]]]:
    """Fills `values` with the lines of plain integers, 256 at a time through numpy's parser, and yields the other
    records with their index: 20,000 Kaggle rows with one odd cell read in 1.9 s (pandas took 2.7 s)."""
    for start in range(0, len(records), 256):
        chunk = records[start : start + 256]
        ints = _plain_integers(chunk, ncols) if all(isinstance(c, bytes) for c in chunk) else None
        if ints is not None:
            values[start : start + len(chunk)] = ints
            continue
        for r, cells in enumerate(chunk, start):
            ints = _plain_integers([cells], ncols) if isinstance(cells, bytes) else None
            if ints is None:
                yield r, cells
            else:
                values[r] = ints[0]


def _records(lines: list[bytes], path: Path, first_line: int, ncols: int) -> list[bytes | list[bytes]]:
    """Each data line as it is, or its cells where it has a quote: a quoted cell keeps its commas and line breaks
    ("" inside it is a quote), as pandas' reader did."""
    records, i = [], 0
    while i < len(lines):
        if _QUOTE not in lines[i]:
            records.append(lines[i])
            i += 1
            continue
        start = i
        cells, i = _quoted_record(lines, i)
        if cells is None:
            raise DigitrecError("malformed CSV: a quoted cell is never closed",
                                where=f"{path}, line {start + first_line}", expected='a closing "')
        if len(cells) > ncols:
            raise DigitrecError(f"{len(cells)} values", where=f"{path}, line {len(records) + first_line}",
                                expected=f"{ncols}")
        records.append(cells)
    return records


def _quoted_record(lines: list[bytes], i: int) -> tuple[list[bytes] | None, int]:
    """The cells of the record starting at line i, and the line after it; None when a quote is never closed."""
    cells, cell, quoted, closed, start = [], bytearray(), False, False, True
    while i < len(lines):
        for b in lines[i]:
            if quoted:
                if b == _QUOTE:
                    quoted, closed = False, True
                else:
                    cell.append(b)
            elif b == _COMMA:
                cells.append(bytes(cell))
                cell, closed, start = bytearray(), False, True
            elif b == _QUOTE and (start or closed):  # opens a cell, or "" inside a quoted one
                if closed:
                    cell.append(b)
                quoted, closed, start = True, False, False
            else:
                cell.append(b)
                closed, start = False, False
        i += 1
        if not quoted:
            cells.append(bytes(cell))
            return cells, i
        cell.append(_NEWLINE)
    return None, i


def _numeric_values(values: np.ndarray, path: Path, first_line: int, ncols: int, names: list[str] | None) -> np.ndarray:
    """The cells, or an error naming the first missing one (line by line), then the first fraction."""
    missing_rows, missing_cols = np.nonzero(np.isnan(values))
    if len(missing_rows):
        r, c = missing_rows[0], missing_cols[0]
        line = r + first_line
        present = int((~np.isnan(values[r])).sum())
        if present == 0:
            raise DigitrecError("empty line", where=f"{path}, line {line}", expected=f"{ncols} values")
        if np.isnan(values[r, c:]).all():
            raise DigitrecError(f"{present} values", where=f"{path}, line {line}", expected=f"{ncols}")
        raise DigitrecError("missing value", where=f"{path}, line {line}, column '{_column(names, c)}'",
                            expected="0-255")
    if values.size and not np.array_equal(values, np.round(values)):
        r, c = np.argwhere(values != np.round(values))[0]
        raise DigitrecError(
            f"{values[r, c]:g} is not an integer", where=f"{path}, line {r + first_line}", expected="0-255"
        )
    return values

# ---------------------------------------------------------------- npz


def load_npz(path: Path) -> dict[str, Digits]:
    """The splits of an .npz (x_train, y_train, x_test, y_test), read member by member from the zip archive:
    never through `np.load` (no pickles), each array's header checked before its data is unpacked, and all
    the arrays together within MAX_NPZ_BYTES."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise DigitrecError(f"not a readable .npz archive ({e})", where=str(path)) from None
    splits = {}
    budget = [MAX_NPZ_BYTES]
    with archive:
        names = set(archive.namelist())
        for split in ("train", "test"):
            if f"x_{split}.npy" not in names:
                continue
            x = _npz_member(archive, f"x_{split}", path, budget)
            if x.ndim == 2 and x.shape[1] == NUM_PIXELS:
                x = x.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
            if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
                raise DigitrecError(f"x_{split} has shape {x.shape}", where=str(path), expected="(N, 28, 28)")
            x = _pixel_values(x, f"x_{split}", path)
            y = _npz_member(archive, f"y_{split}", path, budget) if f"y_{split}.npy" in names else None
            if y is not None:
                if y.shape != (len(x),):
                    raise DigitrecError(
                        f"y_{split} has shape {y.shape}", where=str(path), expected=f"({len(x)},)"
                    )
                if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.isfinite(y).all()
                                                     and np.array_equal(y, np.round(y))):
                    raise DigitrecError(f"y_{split} holds {y.dtype} values", where=str(path),
                                        expected="integer labels 0-9")
                _check_labels(y, f"{path} y_{split}")
                y = y.astype(np.int64)
            splits[split] = Digits(x, y, f"{path} ({split})")
    if not splits:
        raise DigitrecError("no x_train or x_test array", where=str(path), expected="x_train, y_train, x_test, y_test")
    return splits


def _npz_member(archive: zipfile.ZipFile, name: str, path: Path, budget: list[int]) -> np.ndarray:
    """One array of an .npz, refused with a clear line when it is damaged or not numeric, or when its header
    declares more bytes than are left of the budget (`budget[0]`, spent here): then nothing of it is unpacked,
    and otherwise no more than it declares."""
    try:
        with archive.open(f"{name}.npy") as member:
            version = np.lib.format.read_magic(member)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = read_header(member)
            if dtype.hasobject or dtype.kind not in "biuf":
                raise DigitrecError(f"{name} holds {dtype} values", where=str(path), expected="numbers")
            size = math.prod(shape) * dtype.itemsize
            if size > budget[0]:
                raise DigitrecError(f"{name} declares shape {shape}, too large", where=str(path),
                                    expected=f"at most {MAX_NPZ_BYTES:,} bytes of arrays in all")
            budget[0] -= size
            array = np.empty(math.prod(shape), dtype)
            got = _read_fully(member, memoryview(array.view(np.uint8)))
            if got < size:
                raise DigitrecError(f"{name} is damaged (truncated: {got:,} of {size:,} bytes)", where=str(path))
        return array.reshape(shape, order="F" if fortran_order else "C")
    except DigitrecError:
        raise
    except (OSError, ValueError, EOFError, KeyError, RuntimeError, NotImplementedError, zipfile.BadZipFile,
            zlib.error) as e:  # RuntimeError: an encrypted member; NotImplementedError: an unknown compression
        raise DigitrecError(f"{name} is damaged ({e.__class__.__name__})", where=str(path)) from None


def _pixel_values(x: np.ndarray, name: str, path: Path) -> np.ndarray:
    """Pixels as uint8: integers 0-255 as they are; floats only when they are whole numbers 0-255.
    Floats in 0-1 (a common export) are refused rather than silently read as black."""
    if x.dtype.kind == "b":
        raise DigitrecError(f"{name} holds booleans", where=str(path), expected="pixel values 0-255")
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise DigitrecError(f"{name} holds NaN or infinite values", where=str(path), expected="pixel values 0-255")
        if x.size and x.max() <= 1.0 and x.min() >= 0 and not np.array_equal(x, np.round(x)):
            raise DigitrecError(f"{name} holds floats in 0-1", where=str(path),
                                expected="pixel values 0-255 (multiply by 255 and round)")
        if not np.array_equal(x, np.round(x)):
            raise DigitrecError(f"{name} holds fractional values", where=str(path), expected="whole numbers 0-255")
    if x.size and (x.min() < 0 or x.max() > 255):
        raise DigitrecError(f"{name} has values outside 0-255", where=str(path))
    return x.astype(np.uint8)


# ---------------------------------------------------------------- images


class Unreadable(type(Path())):
    """An entry of a folder that is listed but is not read: a broken or looping symbolic link, one that leads out
    of the folder, a folder already read under another name, a FIFO or device named like a picture, a folder
    that cannot be listed. `read_picture_file` raises `why` for it, so every reader of a folder makes it an
    error row of its own, and reads the rest."""

    why: str = ""


def _unreadable(path: str, why: str) -> Unreadable:
    entry = Unreadable(path)
    entry.why = why
    return entry


def iter_image_files(folder: Path) -> Iterator[Path]:
    """Image files under `folder`, recursively, in a stable order (each folder's names sorted), one folder's
    listing in memory at a time: an archive of millions is streamed, not listed whole. Hidden files and
    folders (a name starting with '.': `serve --collect`'s .inputs/, a .git/) are not the data.

    The one walk of a folder of pictures (predict, read, read --cluster, tune, training and evaluation data):
    a symbolic link to a picture is followed only when the picture lies inside `folder`; a link to a folder
    never is: a link back to one above it (`ln -s .. sub/loop`) is a loop, one out of `folder` is not read,
    and one to a folder inside it is that folder again, read under its own name. A folder reached twice
    otherwise (a bind mount) is read once. Each entry not read, and each subfolder that cannot be listed, is
    yielded as an `Unreadable` with its reason: its own error row, never a traceback."""
    folder = Path(folder)
    try:
        root = os.path.realpath(folder, strict=True)
        entries = _listing(folder)
    except OSError as e:
        raise DigitrecError(f"cannot list the folder ({e.strerror or e.__class__.__name__})", where=str(folder),
                            expected="a folder this user may read") from None
    top = os.stat(root)
    yield from _walk(folder, entries, root, [(top.st_dev, top.st_ino)], {(top.st_dev, top.st_ino): str(folder)})


def _listing(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as listing:
        return sorted((e for e in listing if not e.name.startswith(".")), key=lambda e: e.name)


def _walk(folder: Path, entries: list[os.DirEntry], root: str, above: list[tuple[int, int]],
          seen: dict[tuple[int, int], str]) -> Iterator[Path]:
    for entry in entries:
        picture = os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
        try:
            info, linked = _target(entry, root)
        except _Fault as fault:
            if picture or fault.always:
                yield _unreadable(entry.path, str(fault))
            continue
        if stat.S_ISDIR(info.st_mode):
            key = (info.st_dev, info.st_ino)
            if key in above:
                yield _unreadable(entry.path, f"a loop (back to {seen[key]}): not followed")
            elif linked:
                continue  # a folder inside this one: its pictures are read under their own names
            elif key in seen:
                yield _unreadable(entry.path, f"the same folder as {seen[key]}: read once, there")
            else:
                seen[key] = entry.path
                try:
                    listing = _listing(Path(entry.path))
                except OSError as e:
                    yield _unreadable(entry.path, f"cannot list the folder ({e.strerror or e.__class__.__name__})")
                    continue
                yield from _walk(Path(entry.path), listing, root, [*above, key], seen)
        elif picture and stat.S_ISREG(info.st_mode):
            yield Path(entry.path)
        elif picture:
            yield _unreadable(entry.path, "not a regular file (a FIFO, socket or device): not read")


class _Fault(Exception):
    def __init__(self, why: str, always: bool = False):
        super().__init__(why)
        self.always = always  # said whatever the name: a link that would have been a folder, or a loop


def _target(entry: os.DirEntry, root: str) -> tuple[os.stat_result, bool]:
    """What `entry` is and whether it is a symbolic link, followed only inside `root`; a `_Fault` for anything
    not to follow."""
    try:
        if not entry.is_symlink():
            return entry.stat(follow_symlinks=False), False
        try:
            target = os.path.realpath(entry.path, strict=True)
        except FileNotFoundError:
            raise _Fault(f"a broken symbolic link (to {os.readlink(entry.path)})") from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _Fault("a symbolic link loop", always=True) from None
            raise
        info = os.stat(target)
    except OSError as e:
        raise _Fault(f"cannot be read ({e.strerror or e.__class__.__name__})") from None
    if os.path.commonpath([root, target]) != root:
        raise _Fault(f"a symbolic link out of the folder (to {target}): not followed",
                     always=stat.S_ISDIR(info.st_mode))
    return info, True


def read_picture_file(path: Path) -> bytes:
    """A picture file's bytes; what cannot be read (permission denied, an I/O error, an `Unreadable` entry of
    a folder, a FIFO or device, which is opened without waiting and not read) is a DigitrecError naming the
    file, so one bad file is one error row."""
    if isinstance(path, Unreadable) and path.why:  # a path made from one (its parent, a child) has no why
        raise DigitrecError(path.why, where=str(path))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO's open would wait for a writer
        with open(fd, "rb") as f:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise DigitrecError("not a regular file (a FIFO, socket or device): not read", where=str(path))
            if info.st_size > MAX_PICTURE_FILE_BYTES:
                raise TooLargeError(f"file is {info.st_size:,} bytes, over the limit for a picture",
                                    where=str(path), expected=f"at most {MAX_PICTURE_FILE_BYTES:,} bytes")
            payload = f.read(MAX_PICTURE_FILE_BYTES + 1)  # a file grown since fstat is still read no further
            if len(payload) > MAX_PICTURE_FILE_BYTES:
                raise TooLargeError("file grew over the limit for a picture while read", where=str(path),
                                    expected=f"at most {MAX_PICTURE_FILE_BYTES:,} bytes")
            return payload
    except OSError as e:
        raise DigitrecError(f"cannot be read ({e.strerror or e.__class__.__name__})", where=str(path)) from None


def read_image(path: Path) -> np.ndarray:
    """One picture file, brought to MNIST style by `imaging.fit.to_mnist`."""
    payload = read_picture_file(path)
    try:
        return to_mnist(open_image(payload))
    except DigitrecError as e:
        raise e.located(str(path)) from None


def _label_from_dir(folder: Path, file: Path) -> int | None:
    parts = file.relative_to(folder).parts
    if len(parts) >= 2 and parts[0] in {str(d) for d in range(10)}:
        return int(parts[0])
    return None


def load_image_dir(folder: Path, keep_refused: bool = False) -> Digits:
    """Every picture under `folder`, labelled by a 0-9 folder above it. A picture that holds no digit stops
    the load with its name, unless `keep_refused`: then it is kept as a blank image, listed in `refused`."""
    files = list(iter_image_files(folder))
    if not files:
        raise DigitrecError("no image files found", where=str(folder), expected=", ".join(sorted(IMAGE_SUFFIXES)))
    images, refused = [], {}
    for i, path in enumerate(files):
        try:
            images.append(read_image(path))
        except (BlankImageError, NoDigitError) as e:
            if not keep_refused:
                raise
            images.append(np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8))
            refused[i] = e.what
    labels = [_label_from_dir(folder, p) for p in files]
    y = None if any(v is None for v in labels) else np.array(labels, dtype=np.int64)
    return Digits(np.stack(images), y, str(folder), files=[str(p) for p in files], refused=refused)
