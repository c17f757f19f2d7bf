"""Batch jobs on Ray Data: every picture of an archive (folder, glob, list, Kaggle CSV) read into a Parquet dataset.

The driver lists the source into a manifest (Parquet parts of `PART_ROWS` rows in the output's staging folder, so
memory stays bounded however many pictures there are), Ray Data streams it through a pool of `PictureReader`
actors (each loads the ONNX model once and preprocesses its own batch), and the driver writes the answers as they
come into Parquet parts, keeping each manifest index once: a batch retried after a node died is never written
twice, and a picture missing at the end is an error, not a silent gap. Ray is connected first (`cluster.connect`).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitrec.core.constants import IMAGE_FORMATS_TEXT
from digitrec.core.errors import DigitrecError

PART_ROWS = 256  # pictures per manifest part: the unit of work an actor takes (and a retry repeats)
OUT_PART_ROWS = 200_000  # answers per output Parquet file
MANIFEST = "_manifest"  # Parquet readers skip names starting with "_" or "."
MODES = ("predict", "read", "page")


# ---------------------------------------------------------------- sources and the manifest


@dataclass
class Source:
    """What to read: `kind` is folder, glob, manifest or data (a Kaggle CSV, an npz: pixel rows)."""

    kind: str
    where: str


def plan_source(source: str) -> Source:
    path = Path(source)
    if not path.exists():
        if glob.has_magic(source):
            return Source("glob", source)
        raise DigitrecError("no such file or folder", where=source,
                            expected="a folder of pictures, a glob ('scans/**/*.png'), a list of paths or a Kaggle CSV")
    if path.is_dir():
        return Source("folder", source)
    if not path.is_file():
        raise DigitrecError("not a regular file", where=source, expected="a file or a folder")
    if path.suffix.lower() == ".txt":
        return Source("manifest", source)
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            header = [c.strip().lower() for c in f.readline().split(",")]
        return Source("manifest" if {"path", "file"} & set(header) else "data", source)
    from digitrec.data import detect_kind

    kind = detect_kind(path)
    if kind == "image":
        return Source("glob", source)  # one picture: a glob that matches itself
    return Source("data", source)


def _manifest_rows(source: Source) -> Iterator[tuple[str, str, str | None]]:
    """(file as the answer names it, path to open, why it is not opened or None) for every picture of a folder,
    glob or list of paths. A folder's entries that are not read (a link out of it, a loop) are rows too."""
    if source.kind == "folder":
        from digitrec.data.formats import Unreadable, iter_image_files

        base = Path(source.where).parent
        for path in iter_image_files(Path(source.where)):
            if isinstance(path, Unreadable):
                yield str(path.relative_to(base)), str(path), path.why
            else:
                yield str(path.relative_to(base)), str(path.resolve()), None
    elif source.kind == "glob":
        for match in sorted(glob.iglob(source.where, recursive=True)) if "**" not in source.where \
                else glob.iglob(source.where, recursive=True):
            if os.path.isfile(match):
                yield match, str(Path(match).resolve()), None
    else:
        for file, path in _listed_paths(Path(source.where)):
            yield file, path, None


def _listed_paths(manifest: Path) -> Iterator[tuple[str, str]]:
    """A .txt of one path per line, or a CSV with a `path` (or `file`) column; relative to the list's folder."""
    import csv

    base = manifest.resolve().parent
    with open(manifest, encoding="utf-8-sig", newline="") as f:
        if manifest.suffix.lower() == ".csv":
            rows = csv.DictReader(f)
            column = next(c for c in ("path", "file") if c in [h.strip().lower() for h in rows.fieldnames or []])
            names = (row[next(h for h in row if h.strip().lower() == column)] for row in rows)
        else:
            names = (line.rstrip("\r\n") for line in f)
        for name in names:
            name = (name or "").strip()
            if name and not name.startswith("#"):
                yield name, str(base / name)


def write_manifest(source: Source, folder: Path) -> int:
    """The pictures to read as Parquet parts in `folder`; returns how many. Memory: one part at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    if source.kind == "data":
        return _write_pixel_manifest(Path(source.where), folder)
    count, parts, files, paths, whys = 0, 0, [], [], []

    def flush() -> None:
        nonlocal files, paths, whys, parts
        table = pa.table({"index": pa.array(range(count - len(files), count), pa.int64()),
                          "file": pa.array(files, pa.string()), "path": pa.array(paths, pa.string()),
                          "error": pa.array(whys, pa.string())})
        pq.write_table(table, folder / f"part-{parts:06d}.parquet")
        files, paths, whys, parts = [], [], [], parts + 1

    for file, path, why in _manifest_rows(source):
        files.append(file)
        paths.append(path)
        whys.append(why)
        count += 1
        if len(files) == PART_ROWS:
            flush()
    if files:
        flush()
    if count == 0:
        raise DigitrecError("no pictures found", where=source.where, expected=f"{IMAGE_FORMATS_TEXT} files")
    return count


def _write_pixel_manifest(path: Path, folder: Path) -> int:
    """A Kaggle CSV or npz: checked and loaded as `digitrec predict` does, each row's 28x28 pixels a manifest row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from digitrec import data

    digits = data.load(path)
    for start in range(0, len(digits), PART_ROWS):
        chunk = digits.x[start : start + PART_ROWS]
        table = pa.table({
            "index": pa.array(range(start, start + len(chunk)), pa.int64()),
            "file": pa.array([f"{path.name}:{i}" for i in range(start + 1, start + len(chunk) + 1)], pa.string()),
            "pixels": pa.array([row.tobytes() for row in chunk], pa.binary()),
        })
        pq.write_table(table, folder / f"part-{start // PART_ROWS:06d}.parquet")
    return len(digits)


# ---------------------------------------------------------------- the batch function


def answer_schema(mode: str):
    import pyarrow as pa

    common = [("index", pa.int64()), ("file", pa.string())]
    if mode == "read":
        return pa.schema([*common, ("text", pa.string()), ("confidence", pa.float32()), ("digits", pa.string()),
                          ("rejected", pa.int32()), ("error", pa.string())])
    if mode == "page":  # `read --page`: a page's fields, as `read --page --json` gives them
        return pa.schema([*common, ("fields", pa.string()), ("count", pa.int32()), ("error", pa.string())])
    return pa.schema([*common, ("digit", pa.int8()), ("confidence", pa.float32()), ("unsure", pa.bool_()),
                      ("probabilities", pa.list_(pa.float32())), ("error", pa.string())])


def _opened(open_one) -> tuple[object | None, str | None]:
    """`open_one()`'s picture and no error, or None and why it cannot be opened, in one line."""
    try:
        return open_one(), None
    except DigitrecError as e:
        return None, e.what
    except OSError as e:
        return None, f"cannot read the file ({e.strerror or e.__class__.__name__})"
    except Exception as e:  # a picture that breaks a decoder must not stop a million others
        return None, f"unreadable picture ({e.__class__.__name__})"


def _one_at_a_time(pictures: list, errors: list, read, columns, names: tuple[str, ...]) -> dict:
    """Each picture read on its own (`read`, then `columns` of its answer); one that cannot be read gets its error
    and empty columns, the rest are read."""
    out = {name: [None] * len(pictures) for name in names}
    for i, picture in enumerate(pictures):
        if picture is None:
            continue
        try:
            row = columns(read(picture))
        except DigitrecError as e:
            errors[i] = e.what
            continue
        for name in names:
            out[name][i] = row[name]
    return out


class PictureReader:
    """One Ray actor's model (loaded once) and what it does to a batch of manifest rows: open, preprocess,
    read. A picture that cannot be read is a row with an `error`, never a failed batch."""

    run_dir: str | None = None
    mode: str = "predict"

    def __init__(self):
        from digitrec.inference.engine import load_predictor

        self.predictor = load_predictor(self.run_dir, threads=1)  # one actor per CPU: one thread each
        self.schema = answer_schema(self.mode)

    def __call__(self, parts):
        """Batches of manifest part files (a column `part`) -> their answers, one row per picture."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        return pa.concat_tables([self.answer(pq.read_table(part)) for part in parts["part"].to_pylist()])

    def answer(self, batch):
        """Manifest rows (index, file, and path or pixels) -> answer rows of `answer_schema`."""
        import pyarrow as pa

        pictures, errors = self._open(batch)
        read = {"read": self._read, "page": self._page}.get(self.mode)
        columns = read(pictures, errors) if read else self._predict(pictures)
        columns["error"] = errors
        columns["index"] = batch["index"].to_pylist()
        columns["file"] = batch["file"].to_pylist()
        return pa.table({name: pa.array(columns[name], self.schema.field(name).type) for name in self.schema.names})

    def _open(self, batch) -> tuple[list, list]:
        """Each row's picture, or None and its error. Pages are opened one at a time as they are read
        (`_page`): a part's 256 pages decoded whole at once would hold gigabytes."""
        pictures, errors = [], []
        pixels = batch["pixels"].to_pylist() if "pixels" in batch.column_names else None
        whys = batch["error"].to_pylist() if "error" in batch.column_names else [None] * batch.num_rows
        for item, why in zip(pixels or batch["path"].to_pylist(), whys, strict=True):
            if self.mode == "page" and pixels is None and why is None:
                pictures.append(item)  # the path, opened when its page is read
                errors.append(None)
                continue
            picture, error = _opened(lambda item=item, why=why: self._open_one(item, why, pixels is not None))
            pictures.append(picture)
            errors.append(error)
        return pictures, errors

    def _open_one(self, item, why: str | None, is_pixels: bool):
        from PIL import Image

        from digitrec.data.formats import read_image, read_picture_file
        from digitrec.imaging.decode import open_image
        from digitrec.reading.page import open_page

        if why is not None:  # listed, not to be opened (a link out of the folder, a loop)
            raise DigitrecError(why)
        if is_pixels:
            image = np.frombuffer(item, np.uint8).reshape(28, 28)
            return Image.fromarray(255 - image) if self.mode != "predict" else image
        if self.mode == "page":
            return open_page(read_picture_file(Path(item)))
        if self.mode != "predict":
            return open_image(read_picture_file(Path(item)))
        return read_image(Path(item))

    def _predict(self, images: list) -> dict:
        from digitrec.core.constants import UNSURE_BELOW

        ok = [i for i, image in enumerate(images) if image is not None]
        digit, confidence, unsure, probabilities = ([None] * len(images) for _ in range(4))
        if ok:
            probs = self.predictor.probabilities(np.stack([images[i] for i in ok]))
            for i, p in zip(ok, probs, strict=True):
                digit[i], confidence[i] = int(p.argmax()), float(p.max())
                unsure[i], probabilities[i] = confidence[i] < UNSURE_BELOW, p.tolist()
        return {"digit": digit, "confidence": confidence, "unsure": unsure, "probabilities": probabilities}

    def _read(self, pictures: list, errors: list) -> dict:
        """Numbers, one picture at a time (`read` segments each); a picture with no digits gets its error."""
        def columns(reading) -> dict:
            answer = reading.as_dict()
            return {"text": answer["text"], "confidence": answer["confidence"],
                    "digits": json.dumps(answer["digits"]), "rejected": answer["rejected"]}

        return _one_at_a_time(pictures, errors, self.predictor.read, columns,
                              ("text", "confidence", "digits", "rejected"))

    def _page(self, pictures: list, errors: list) -> dict:
        """Pages, one at a time: each page's fields as JSON and how many; a page that cannot be read gets its error."""
        def columns(page) -> dict:
            return {"fields": json.dumps(page.as_dict()["fields"]), "count": len(page.fields)}

        def read(item):
            if isinstance(item, str):  # a page's path: opened now, one page held at a time
                item, error = _opened(lambda: self._open_one(item, None, False))
                if error is not None:
                    raise DigitrecError(error)
            return self.predictor.read_page(item)

        return _one_at_a_time(pictures, errors, read, columns, ("fields", "count"))


def _reader_for(run_dir: str | os.PathLike | None, mode: str) -> type:
    """PictureReader bound to a model and a mode as class attributes: the class is all an actor needs, so one
    restarted on another node has no constructor arguments to find."""
    return type("PictureReader", (PictureReader,), {"run_dir": str(run_dir) if run_dir else None, "mode": mode})


# ---------------------------------------------------------------- reading an archive


@dataclass
class ArchiveResult:
    pictures: int
    errors: int
    seconds: float
    out: Path


def read_archive(source: str, out: str | os.PathLike, run_dir: str | None = None, mode: str = "predict",
                 overwrite: bool = False, on_progress: Callable[[int, int], None] | None = None,
                 workers: int | None = None) -> ArchiveResult:
    """Every picture of `source` read on the connected Ray (call `connect` first) into the Parquet dataset `out`.

    The answers are written in a staging folder beside `out` and renamed into place at the end: a killed job
    leaves `out` as it was, and the same command starts it again. `on_progress(done, total)` after each batch."""
    import pyarrow.parquet as pq
    import ray.data

    if mode not in MODES:
        raise DigitrecError(f"unknown mode '{mode}'", expected=", ".join(MODES))
    from digitrec.inference.engine import load_predictor

    run_dir = str(Path(run_dir).resolve()) if run_dir else None  # each node opens it from its own folder
    load_predictor(run_dir, threads=1)  # a broken model is one error here, not one per actor
    plan = plan_source(source)
    source_path = Path(source) if plan.kind != "glob" else None
    out = check_out_folder(Path(out), source_path, overwrite)
    staging = _staging(out)
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed job (checked: only its files): start again
    start = time.perf_counter()
    try:
        total = write_manifest(plan, staging / MANIFEST)
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        parts = sorted(str(p) for p in (staging / MANIFEST).iterdir())
        # One part per block and per call, so every actor gets work however small the job. Ray Data restarts
        # an actor whose node went away and retries its part elsewhere (its defaults).
        answers = ray.data.from_items([{"part": p} for p in parts], override_num_blocks=len(parts)).map_batches(
            _reader_for(run_dir, mode), batch_size=1, batch_format="pyarrow", num_cpus=1,
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=workers or cpus),
        )
        seen = np.zeros(total, dtype=bool)
        writer, part, in_part, errors, done = None, 0, 0, 0, 0
        schema = answer_schema(mode)
        for batch in answers.iter_batches(batch_format="pyarrow", batch_size=None):
            index = batch["index"].to_numpy()
            fresh = ~seen[index]
            if not fresh.all():  # answered twice (a retried task): keep the first
                batch, index = batch.filter(fresh), index[fresh]
            seen[index] = True
            if writer is None or in_part >= OUT_PART_ROWS:
                if writer is not None:
                    writer.close()
                writer, in_part = pq.ParquetWriter(staging / f"part-{part:05d}.parquet", schema), 0
                part += 1
            writer.write_table(batch.cast(schema))
            in_part += len(batch)
            done += len(batch)
            errors += len(batch) - batch["error"].null_count
            if on_progress:
                on_progress(done, total)
        if writer is not None:
            writer.close()
        missing = total - done
        if missing:
            raise DigitrecError(f"{missing} of {total} pictures came back without an answer", where=str(source),
                                expected="every picture answered once; run the command again")
        shutil.rmtree(staging / MANIFEST)
        _put_in_place(staging, out, source_path, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ArchiveResult(total, errors, time.perf_counter() - start, out)


def check_out_folder(out: Path, source: Path | None, overwrite: bool) -> Path:
    """`out` may take the Parquet dataset: never the source, a folder holding it or one inside it; an existing,
    non-empty one only with `overwrite`, and then only one digitrec made, only its own files to be replaced (see
    `files.check_output_folder`; a Parquet file it did not write would be read as part of the answers). A staging
    folder left by a killed job is started over only when it holds nothing but such a job's files."""
    from digitrec.core.files import check_output_folder

    resolved = out.resolve()
    if source is not None:
        src = source.resolve()
        if resolved == src or resolved in src.parents or src in resolved.parents:  # Parquet among the pictures
            raise DigitrecError("refusing to write over the pictures being read", where=str(out),
                                expected="an --out folder outside the source")
    if (out / "config.json").is_file():  # a run, or a line model: its files are never a dataset's to replace
        raise DigitrecError("is a run's folder (it holds config.json)", where=str(out),
                            expected="an --out folder of its own for the answers")
    check_output_folder(out, overwrite, DATASET_WRITES)
    _check_staging(_staging(out))
    return out


DATASET_WRITES = ("*.parquet",)  # what an --out dataset folder holds of digitrec's (and readers read)


def _staging(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def _check_staging(staging: Path) -> None:
    """A staging folder is a job's only when it holds nothing but the picture list and answer parts."""
    from digitrec.core import files

    if not os.path.lexists(staging):
        return
    if staging.is_symlink() or not staging.is_dir():
        raise DigitrecError("is in the way of the job's staging folder and is not one", where=str(staging),
                            expected="move it away")
    for entry in os.scandir(staging):
        ours = (entry.name == MANIFEST and entry.is_dir(follow_symlinks=False)
                and all(e.is_file(follow_symlinks=False) for e in os.scandir(entry.path))) or \
               (entry.is_file(follow_symlinks=False) and (entry.name.endswith(".parquet")
                                                         or entry.name == files.MANIFEST))
        if not ours:
            raise DigitrecError("holds files that a job of digitrec did not write, so it will not be removed",
                                where=str(staging / entry.name), expected="move them away")


def _put_in_place(staging: Path, out: Path, source: Path | None, overwrite: bool) -> None:
    """The answers in `staging` become the dataset `out`: a new `out` is `staging` renamed, its manifest in it; an
    existing one (checked again now) loses only the files its manifest lists, then takes the new parts."""
    from digitrec.core import files

    parts = {p.name for p in staging.iterdir() if p.name != files.MANIFEST}
    if not os.path.lexists(out):
        files.write_manifest(staging, parts)
        staging.rename(out)
        return
    check_out_folder(out, source, overwrite)
    files.clear_written(out)
    taken = sorted(name for name in parts if os.path.lexists(out / name))
    if taken:
        raise DigitrecError("digitrec did not write this, so it is not replaced", where=str(out / taken[0]),
                            expected="move it away")
    for name in sorted(parts):
        os.rename(staging / name, out / name)
    files.add_written(out, parts)
    staging.rmdir()


def progress_bar(unit: str = "picture", quiet: bool = False):
    """A tqdm bar for `on_progress(done, total)`: pictures done and pictures a second, on stderr."""
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit=unit, unit_scale=True, file=sys.stderr, disable=True if quiet else None)
        bar.update(done - bar.n)

    def close() -> None:
        if bar is not None:
            bar.close()

    update.close = close
    return update
