"""Training the line model (`digitrec train-lines`): whole numbers composed from MNIST training digits.

Each training line is a picture made the way users' pictures look (1-8 digits, spaced, touching or
overlapping, drifting in size and baseline, slanted, sometimes with a dash, dot or comma between digits,
on white or photographed paper with ruled lines) and then read back through the same path `read` takes
(`preprocess.ink_map` -> `lines.to_line`), so the model learns from what it will be shown. Lines for
validation come from training digits set aside (`lines.line_split`), never from the test set.

The run folder: `line.safetensors` (kept after every epoch: the best on validation so far), `line.onnx`
(what `read` uses), `metrics.csv`, `config.json`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from digitrec.core import hardware
from digitrec.core.errors import BlankImageError, DigitrecError, NoDigitError
from digitrec.core.files import atomic_path, atomic_write_text
from digitrec.core.version import __version__
from digitrec.data.formats import Digits
from digitrec.data.synthetic import number_ink, number_on_paper
from digitrec.imaging.decode import open_image
from digitrec.imaging.ink import ink_map
from digitrec.models.architectures import LineReader
from digitrec.models.recipes import check_seed
from digitrec.reading.line import BLANK, LINE_HEIGHT, LINE_ONNX, WORK_HEIGHT, decode, digit_height, frames, to_line

LINE_WEIGHTS, LINE_CONFIG, LINE_METRICS = "line.safetensors", "config.json", "metrics.csv"
# (low, high) gap between neighbours as a share of a digit's width, and how often each is drawn
VAL_SEED = 10_000
GAP_STYLES = [((0.1, 0.9), 0.35), ((-0.1, 0.05), 0.25), ((-0.25, -0.05), 0.2), ((-0.25, 0.8), 0.2)]
# Validation lines: 2,000 (a reading accuracy to within about 1 %), or a tenth of the training lines when that
# is fewer: a toy run of a few hundred lines would otherwise spend most of its time composing validation lines.
VAL_LINES, MIN_VAL_LINES = 2_000, 100


@dataclass
class LineSettings:
    lines: int = 100_000  # training lines, made once
    val_lines: int | None = None  # None: VAL_LINES, or a tenth of `lines` when that is fewer
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    init: str | None = None  # a line model's folder to start from (more epochs on new lines)

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and 0 < self.lr <= 1):
            raise DigitrecError(f"--lr {self.lr!r}", expected="a learning rate over 0, at most 1")


def training_line(digits: Digits, rng: np.random.Generator) -> tuple[np.ndarray, str] | None:
    """One composed number, as a picture file and back through `read`'s path -> (strip, its digits)."""
    length = int(rng.integers(1, 9))
    picks = rng.choice(len(digits), length, replace=False)
    styles, weights = zip(*GAP_STYLES, strict=True)
    gaps = styles[rng.choice(len(styles), p=np.array(weights) / sum(weights))]
    ink = number_ink([digits.x[i] for i in picks], gaps, rng, size=(24, 96), slant=0.25, marks=0.1)
    payload, _ = number_on_paper(ink, rng, photographed=rng.random() < 0.4)
    try:
        strip = strip_of(open_image(payload))
    except (BlankImageError, NoDigitError):
        return None
    return strip, "".join(str(int(digits.y[i])) for i in picks)


def strip_of(picture) -> np.ndarray:
    ink, _ = ink_map(picture, WORK_HEIGHT)
    return to_line(ink, digit_height(ink)).pixels


def _make_chunk(args: tuple[Digits, int, int]) -> list[tuple[np.ndarray, str]]:
    digits, count, seed = args
    rng = np.random.default_rng(seed)
    made = []
    while len(made) < count:
        line = training_line(digits, rng)
        if line is not None:
            made.append(line)
    return made


def make_lines(digits: Digits, count: int, seed: int, workers: int | None = None) -> list[tuple[np.ndarray, str]]:
    """`count` training lines from `digits`, made in parallel; the same seed gives the same lines."""
    chunk = 2_000
    jobs = [(digits, min(chunk, count - start), seed * 1_000_003 + start) for start in range(0, count, chunk)]
    with ProcessPoolExecutor(workers or hardware.available_cores()) as pool:
        return [line for part in pool.map(_make_chunk, jobs) for line in part]


def _batches(lines: list, batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Batches of lines of similar width (less padding), in random order."""
    order = rng.permutation(len(lines))
    groups = [sorted(order[i : i + batch_size * 32], key=lambda k: lines[k][0].shape[1])
              for i in range(0, len(order), batch_size * 32)]
    batches = [g[i : i + batch_size] for g in groups for i in range(0, len(g), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _tensor(strips: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(s.shape[1] for s in strips)
    width += -width % 4
    x = np.zeros((len(strips), 1, LINE_HEIGHT, width), np.float32)
    for i, s in enumerate(strips):
        x[i, 0, :, : s.shape[1]] = s / 255.0
    return torch.from_numpy(x), torch.tensor([frames(s.shape[1]) for s in strips])


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Small changes of ink level and a pixel of vertical shift: the strips themselves are fixed."""
    level = 0.7 + 0.3 * torch.rand(len(x), 1, 1, 1, generator=generator)
    shift = int(torch.randint(-2, 3, (1,), generator=generator))
    return torch.roll(x * level, shift, dims=2)


def read_strings(model: LineReader, strips: list[np.ndarray], batch_size: int = 256) -> list[str]:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(strips), batch_size):
            x, lengths = _tensor(strips[i : i + batch_size])
            probs = model(x).softmax(-1).numpy()
            out += ["".join(str(d.digit) for d in decode(p[:n])) for p, n in zip(probs, lengths.tolist(), strict=True)]
    return out


def train_lines(train_set: Digits, val_set: Digits, out: Path, settings: LineSettings,
                on_progress: Callable[[str], None] = print) -> dict:
    """Make the lines, train, keep the epoch best on validation; returns the run's config."""
    out.mkdir(parents=True, exist_ok=True)
    hardware.configure_threads()
    started = time.time()
    if settings.val_lines is None:
        settings = replace(settings, val_lines=min(VAL_LINES, max(MIN_VAL_LINES, settings.lines // 10)))
    on_progress(f"making {settings.lines:,} training and {settings.val_lines:,} validation lines")
    train_lines_ = make_lines(train_set, settings.lines, settings.seed)
    val_lines = make_lines(val_set, settings.val_lines, VAL_SEED)  # the same lines for every run: comparable
    on_progress(f"made in {time.time() - started:.0f} s")
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model = LineReader()
    if settings.init:
        model.load_state_dict(load_line_state(Path(settings.init)))
    opt = torch.optim.AdamW(model.parameters(), settings.lr, weight_decay=1e-4)
    steps = math.ceil(len(train_lines_) / settings.batch_size) * settings.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, settings.lr, total_steps=steps, pct_start=0.15)
    autocast = hardware.bf16_autocast_supported()
    history, best = [], -1.0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        loss_sum, seen, t0 = 0.0, 0, time.time()
        for batch in _batches(train_lines_, settings.batch_size, rng):
            x, lengths = _tensor([train_lines_[k][0] for k in batch])
            labels = [train_lines_[k][1] for k in batch]
            targets = torch.tensor([int(c) for text in labels for c in text])
            target_lengths = torch.tensor([len(t) for t in labels])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = model(_augment(x, generator))
            log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # [T, N, C]
            loss = F.ctc_loss(log_probs, targets, lengths, target_lengths, blank=BLANK, zero_infinity=True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(batch)
            seen += len(batch)
        read = read_strings(model, [s for s, _ in val_lines])
        accuracy = float(np.mean([r == t for r, (_, t) in zip(read, val_lines, strict=True)]))
        history.append({"epoch": epoch, "train_loss": round(loss_sum / seen, 5), "val_string_accuracy": accuracy,
                        "seconds": round(time.time() - t0, 1)})
        on_progress(f"epoch {epoch}/{settings.epochs}: loss {loss_sum / seen:.4f}, validation strings "
                    f"{accuracy:.2%} ({time.time() - t0:.0f} s)")
        if accuracy > best:
            best = accuracy
            save_line_model(model, out)
        _write_metrics(out, history)
    model.load_state_dict(load_line_state(out))
    export_line_onnx(model, out)
    config = {"kind": "line-reader", "settings": asdict(settings), "val_string_accuracy": best,
              "train_digits": len(train_set), "val_digits": len(val_set), "seconds": round(time.time() - started),
              "digitrec_version": __version__, "hardware": hardware.describe()}
    atomic_write_text(out / LINE_CONFIG, json.dumps(config, indent=2) + "\n")
    return config


def _write_metrics(out: Path, history: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(out / LINE_METRICS, buffer.getvalue())


def save_line_model(model: LineReader, out: Path) -> None:
    from safetensors.torch import save_file

    with atomic_path(out / LINE_WEIGHTS) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))


def load_line_state(out: Path) -> dict:
    from safetensors.torch import load_file

    try:
        return load_file(str(out / LINE_WEIGHTS))
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise DigitrecError(f"unreadable line model ({e.__class__.__name__})", where=str(out / LINE_WEIGHTS)) from None


def export_line_onnx(model: LineReader, out: Path) -> Path:
    import warnings

    model = model.float().eval()
    with atomic_path(out / LINE_ONNX) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(2, 1, LINE_HEIGHT, 96),), str(tmp), input_names=["strip"],
                          output_names=["scores"], opset_version=18, dynamo=False,
                          dynamic_axes={"strip": {0: "batch", 3: "width"}, "scores": {0: "batch", 1: "frames"}})
    return out / LINE_ONNX
