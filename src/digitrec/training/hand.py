"""Teaching a trained model one person's hand (`digitrec tune`, `Predictor.tune`, `serve --tune-every`).

A few labelled pictures of the user's own digits (a folder DIR/<digit>/*.png, which `serve --collect`
writes) fine-tune every weight of a run for a few hundred small steps. Each batch mixes the user's
examples, with the run's own training augmentation, and replayed MNIST training digits: the examples are
learnt, MNIST is not forgotten. Batch-norm statistics stay the base model's (a handful of pictures would
move them far), and the base's calibration temperature is kept.

The result is a run folder like any other: weights, config.json (naming the base run, the SHA-256 of its
weights and of the examples), model.onnx for the server, and the base's line model for `read`.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digitrec import data
from digitrec.core import hardware
from digitrec.core.constants import IMAGE_FORMATS_TEXT, NUM_CLASSES
from digitrec.core.errors import DigitrecError
from digitrec.data.formats import Digits, iter_image_files, read_image
from digitrec.inference import runs
from digitrec.models.recipes import check_seed
from digitrec.models.tensors import to_input
from digitrec.reading.line import LINES_DIR
from digitrec.training.augment import augment

FEW = 3  # fewer examples of a digit than this are said to be too few (tuning still runs)
DIGIT_FOLDERS = {str(d) for d in range(10)}


@dataclass
class TuneSettings:
    steps: int = 240
    batch_size: int = 128
    user_share: float = 0.25  # of each batch: the user's examples; the rest replayed MNIST digits
    lr: float = 1e-3
    seed: int = 0
    replay: int = 20_000  # MNIST training digits kept for replay

    def __post_init__(self) -> None:
        check_seed(self.seed)


@dataclass
class TuneResult:
    config: runs.RunConfig
    counts: list[int]  # examples per digit
    too_few: list[int]  # digits with fewer than FEW examples
    seconds: float
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why) of each example left out


def load_examples(folder: str | Path) -> Digits:
    """The user's labelled pictures: DIR/<digit>/<any name>.png|jpg|..., those that can be read."""
    return read_examples(folder)[0]


def read_examples(folder: str | Path) -> tuple[Digits, list[tuple[str, str]]]:
    """The user's labelled pictures, DIR/<digit>/<any name>.png|jpg|..., and the files skipped, each with
    why: one that cannot be read, that preprocessing refuses (no digit in it), or that lies outside a
    digit's folder. One bad file does not stop the user from teaching the rest of their hand; tuning is
    refused only when nothing is left, or when every example of a digit the folder labels was skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DigitrecError("no such folder" if not folder.exists() else "not a folder", where=str(folder),
                            expected="a folder of labelled pictures: DIR/<digit>/*.png")
    try:
        paths = list(iter_image_files(folder))
    except OSError as e:
        raise DigitrecError(f"cannot list the folder ({e.strerror or e})", where=e.filename or str(folder),
                            expected="a folder this user may read") from None
    if not paths:
        raise DigitrecError("no pictures found", where=str(folder),
                            expected=f"labelled pictures in DIR/0/ ... DIR/9/ ({IMAGE_FORMATS_TEXT})")
    images, labels, files, skipped = [], [], [], []
    for path in paths:
        label, why = _example_label(folder, path), None
        try:
            image = read_image(path)
        except DigitrecError as e:
            why = e.what
        except OSError as e:  # permission denied, an I/O error
            why = f"cannot be read ({e.strerror or e})"
        if why is None and label is None:
            why = "picture outside a digit's folder (expected DIR/<digit>/, the digit it shows)"
        if why is not None:
            skipped.append((str(path), why, label))
            continue
        images.append(image)
        labels.append(label)
        files.append(str(path))
    _refuse_what_is_left(folder, labels, skipped)
    digits = Digits(np.stack(images), np.array(labels, dtype=np.int64), str(folder), files=files)
    return digits, [(name, why) for name, why, _ in skipped]


def _example_label(folder: Path, path: Path) -> int | None:
    top = path.relative_to(folder).parts
    return int(top[0]) if len(top) >= 2 and top[0] in DIGIT_FOLDERS else None


def _refuse_what_is_left(folder: Path, kept: list[int], skipped: list[tuple[str, str, int | None]]) -> None:
    if not kept:
        name, why, _ = skipped[0]
        more = f" (and {len(skipped) - 1} more skipped)" if len(skipped) > 1 else ""
        raise DigitrecError(f"no example left to tune on: {why}{more}", where=name,
                            expected="readable pictures of digits in DIR/0/ ... DIR/9/")
    for name, why, label in skipped:
        if label is not None and label not in kept:
            raise DigitrecError(f"no example of {label} left to tune on: {why}", where=name,
                                expected=f"a readable picture of {label} in {folder / str(label)}, or that "
                                         "picture taken out of it")


def examples_sha256(examples: Digits) -> str:
    """One checksum of the examples: their pictures and their labels, in the folder's order."""
    digest = hashlib.sha256()
    for name, label in zip(examples.files or [], examples.y, strict=True):
        digest.update(f"{label}:".encode())
        digest.update(hashlib.sha256(Path(name).read_bytes()).digest())
    return digest.hexdigest()


def _replay_digits(replay: str | Path | None, count: int, seed: int) -> Digits:
    try:
        train = data.load(replay, "train")
    except DigitrecError as e:
        raise DigitrecError(f"tuning replays MNIST training digits so as not to forget them: {e.what}",
                            where=e.where, expected="--replay MNIST_DIR or DIGITREC_DATA (digitrec data download)") \
            from None
    if train.y is None:
        raise DigitrecError("replay data has no labels", where=train.source, expected="MNIST's training split")
    keep = np.random.default_rng(seed).permutation(len(train))[:count]
    return train.subset(np.sort(keep))


def _freeze_batch_norm(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
            module.eval()


def fine_tune(model: nn.Module, recipe, examples: Digits, replay: Digits, settings: TuneSettings,
              on_step: Callable[[int, int], None] | None = None) -> nn.Module:
    """The tuning loop: every step a batch of the user's examples (drawn with replacement, augmented)
    and replayed digits; AdamW with a cosine-decaying rate."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    user_x, user_y = torch.as_tensor(examples.x), torch.as_tensor(examples.y)
    replay_x, replay_y = torch.as_tensor(replay.x), torch.as_tensor(replay.y)
    n_user = max(1, round(settings.batch_size * settings.user_share))
    n_replay = settings.batch_size - n_user
    opt = torch.optim.AdamW(model.parameters(), settings.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + math.cos(math.pi * step / settings.steps)))
    model.train()
    _freeze_batch_norm(model)
    for step in range(settings.steps):
        u = torch.randint(len(user_x), (n_user,), generator=generator)
        r = torch.randint(len(replay_x), (n_replay,), generator=generator)
        x = to_input(torch.cat([user_x[u], replay_x[r]]))
        y = torch.cat([user_y[u], replay_y[r]])
        if recipe.augment:
            x = augment(x, recipe, generator)
        loss = F.cross_entropy(model(x), y, label_smoothing=recipe.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if on_step:
            on_step(step + 1, settings.steps)
    return model.eval()


def tune_run(examples_dir: str | Path, out: str | Path, base: str | Path | None = None,
             replay: str | Path | None = None, settings: TuneSettings | None = None,
             on_step: Callable[[int, int], None] | None = None) -> TuneResult:
    """Fine-tune the run `base` (the bundled model when None) on the pictures in `examples_dir` into the new
    run folder `out`. Everything is checked before anything is written; the folder appears whole."""
    settings = settings or TuneSettings()
    started = time.perf_counter()
    hardware.configure_threads()
    examples, skipped = read_examples(examples_dir)
    base_dir = runs.run_path(base)
    if not (base_dir / runs.CONFIG).is_file():
        raise DigitrecError("no run folder here", where=str(base_dir), expected="a run folder with config.json")
    model, config = runs.load_run(base_dir)  # an ensemble is tuned whole: its averaged reading learns the hand
    out = Path(out)
    if out.is_symlink():  # the tuned run is renamed into place: a symlink would not be replaced
        raise DigitrecError("is a symlink", where=str(out), expected="a new folder for the tuned run")
    if out.exists() and any(out.iterdir()):
        raise DigitrecError("folder exists and is not empty", where=str(out), expected="a new folder for the tuned run")
    _check_staging(out)
    replay_digits = _replay_digits(replay, settings.replay, settings.seed)
    counts = np.bincount(examples.y, minlength=NUM_CLASSES).tolist()
    model = fine_tune(model, config.recipe, examples, replay_digits, settings, on_step)
    tuned = runs.RunConfig(
        name=out.name, arch=config.arch, recipe=config.recipe, data=config.data, parameters=config.parameters,
        members=config.members, digitrec=config.digitrec, hardware=hardware.describe(), started=None, status="finished",
        epochs_done=config.epochs_done, temperature=config.temperature, trained_by="digitrec tune",
        extra={"tuned_from": {"path": str(base_dir.resolve()), "weights_sha256": runs.weights_sha256(base_dir),
                              "examples": str(Path(examples_dir).resolve()),
                              "examples_sha256": examples_sha256(examples),
                              "examples_per_digit": counts, "replay": replay_digits.source,
                              "settings": asdict(settings)}},
    )
    _write_run(out, model, tuned, base_dir)
    tuned.train_seconds = round(time.perf_counter() - started, 2)
    runs.write_config(out, tuned)
    return TuneResult(tuned, counts, [d for d, c in enumerate(counts) if c < FEW], tuned.train_seconds, skipped)


STAGING_MARK = ".digitrec-tuning"  # in the staging folder digitrec makes: only such a folder is ever removed


def _check_staging(out: Path) -> Path:
    """The staging folder beside `out`: new, or one a killed tune left (a real folder holding the marker)."""
    staging = out.parent / f".{out.name}.tuning"
    if os.path.lexists(staging) and not (not staging.is_symlink() and staging.is_dir()
                                         and (staging / STAGING_MARK).is_file()):
        raise DigitrecError("digitrec did not make this, so it will not be removed", where=str(staging),
                            expected="another --out name, or move it away yourself")
    return staging


def _write_run(out: Path, model: nn.Module, config: runs.RunConfig, base_dir: Path) -> None:
    """Weights, config, ONNX and the base's line model, in a temporary folder renamed into place: a killed
    tune leaves no half run."""
    from digitrec.inference.engine import Predictor
    from digitrec.inference.export import export_onnx

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = _check_staging(out)
    shutil.rmtree(staging, ignore_errors=True)  # a killed tune's: it holds the marker
    staging.mkdir()
    (staging / STAGING_MARK).write_bytes(b"")
    config.weights_sha256 = runs.save_weights(staging, model)
    runs.write_config(staging, config)
    export_onnx(Predictor(model, config, staging), staging / runs.ONNX)
    if (base_dir / LINES_DIR).is_dir():
        shutil.copytree(base_dir / LINES_DIR, staging / LINES_DIR)
    (staging / STAGING_MARK).unlink()
    if out.exists():
        out.rmdir()  # checked empty above
    staging.rename(out)
