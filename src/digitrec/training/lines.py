"""Training the line model (`digitrec train-lines`): whole numbers and values composed from MNIST training
digits and handwritten signs.

Each training line is a picture made the way users' pictures look and then read back through the same path
`read` takes (`ink_map` -> `lines.to_line`), so the model learns from what it will be shown. Two kinds:
plain numbers (1-8 digits, spaced, touching or overlapping, drifting in size and baseline, slanted, on white
or photographed paper with ruled lines), and values people write with signs in them (12.50, 1,250.00, -3,
24/12/2026, 05.12.26, 2026-12-05, 14:05: `data.signs`), the signs labelled as what they are. Lines for
validation come from training digits set aside (`lines.line_split`), never from the test set: the same
digit lines as always (`val_string_accuracy`, read digits only: comparable across models), plain numbers
without marks read whole (no sign invented), and value lines read whole.

The run folder: `line.safetensors` (kept after every epoch: the best on validation so far), `line.onnx`
(what `read` uses), `metrics.csv`, `config.json`; `line-checkpoint.pt` while it trains (the last finished
epoch: the same command goes on from it).
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
from digitrec.data.pages import repen
from digitrec.data.signs import value_ink, value_text
from digitrec.data.synthetic import number_ink, number_on_paper
from digitrec.imaging.decode import open_image
from digitrec.imaging.ink import ink_map
from digitrec.models.architectures import LineReader
from digitrec.models.recipes import check_seed
from digitrec.reading.line import (
    BLANK,
    CHARS,
    LINE_CLASSES,
    LINE_HEIGHT,
    LINE_ONNX,
    WORK_HEIGHT,
    decode,
    digit_height,
    frames,
    to_line,
)

LINE_WEIGHTS, LINE_CONFIG, LINE_METRICS = "line.safetensors", "config.json", "metrics.csv"
LINE_CHECKPOINT = "line-checkpoint.pt"
# (low, high) gap between neighbours as a share of a digit's width, and how often each is drawn
VAL_SEED = 10_000
GAP_STYLES = [((0.1, 0.9), 0.35), ((-0.1, 0.05), 0.25), ((-0.25, -0.05), 0.2), ((-0.25, 0.8), 0.2)]
# Validation lines: 2,000 (a reading accuracy to within about 1 %), or a tenth of the training lines when that
# is fewer: a toy run of a few hundred lines would otherwise spend most of its time composing validation lines.
VAL_LINES, MIN_VAL_LINES = 2_000, 100
VALUE_SHARE = 0.6  # of training lines, values with signs; the rest plain numbers


@dataclass
class LineSettings:
    lines: int = 100_000  # training lines, made once
    val_lines: int | None = None  # None: VAL_LINES, or a tenth of `lines` when that is fewer
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    init: str | None = None  # a line model's folder to start from (more epochs on new lines)
    signs: bool = False  # also the signs inside numbers (VALUE_SHARE of the lines values, 16 classes)
    one_pen: float = 0.0  # of training lines, this share redrawn with one pen, digits and signs alike

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if not (isinstance(self.one_pen, int | float) and 0 <= self.one_pen <= 1):
            raise DigitrecError(f"--one-pen {self.one_pen!r}", expected="a share of the lines, 0 to 1")
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and 0 < self.lr <= 1):
            raise DigitrecError(f"--lr {self.lr!r}", expected="a learning rate over 0, at most 1")


def _gaps(rng: np.random.Generator) -> tuple[float, float]:
    styles, weights = zip(*GAP_STYLES, strict=True)
    return styles[rng.choice(len(styles), p=np.array(weights) / sum(weights))]


def _read_back(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    payload, _ = number_on_paper(ink, rng, photographed=rng.random() < 0.4)
    try:
        return strip_of(open_image(payload))
    except (BlankImageError, NoDigitError):
        return None


def _one_pen(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The line redrawn along its strokes with one round pen (a tenth to a sixth of the digit height): digits
    and signs written with the same pen, as people write them. Without it, MNIST's digits keep their
    scanner's strokes and the signs the renderer's, and a slash can be told from a 1 by its pen alone
    (validation slash dates redrawn with one pen: 27 of 40 read right, against 34 as composed)."""
    return repen(ink, max(1.5, digit_height(ink) * rng.uniform(0.09, 0.17)))


def training_line(digits: Digits, rng: np.random.Generator, marks: float = 0.1,
                  one_pen: float = 0.0) -> tuple[np.ndarray, str] | None:
    """One composed number, as a picture file and back through `read`'s path -> (strip, its digits). With
    `marks`, a dash, dot or comma between two digits now and then that the label leaves out (the digit
    validation lines every line model is measured on)."""
    length = int(rng.integers(1, 9))
    picks = rng.choice(len(digits), length, replace=False)
    ink = number_ink([digits.x[i] for i in picks], _gaps(rng), rng, size=(24, 96), slant=0.25, marks=marks)
    if one_pen and rng.random() < one_pen:
        ink = _one_pen(ink, rng)
    strip = _read_back(ink, rng)
    return None if strip is None else (strip, "".join(str(int(digits.y[i])) for i in picks))


def value_line(digits: Digits, by_label: list[np.ndarray], rng: np.random.Generator,
               one_pen: float = 0.0) -> tuple[np.ndarray, str] | None:
    """One value with signs (`signs.value_text`), its digits drawn from `digits` -> (strip, its text)."""
    text = value_text(rng)
    items = [c if c not in "0123456789" else digits.x[rng.choice(by_label[int(c)])] for c in text]
    ink = value_ink(items, _gaps(rng), rng)
    if one_pen and rng.random() < one_pen:
        ink = _one_pen(ink, rng)
    strip = _read_back(ink, rng)
    return None if strip is None else (strip, text)


def _make_values(args: tuple[Digits, int, int, str, float]) -> list[tuple[np.ndarray, str]]:
    """A chunk of lines of one kind: "mixed" (training: values and plain numbers), "values", "plain" (no
    marks) or "digits" (the digit validation lines: marks the label leaves out); `one_pen` of them redrawn
    with one pen."""
    digits, count, seed, kind, one_pen = args
    rng = np.random.default_rng(seed)
    by_label = [np.flatnonzero(digits.y == d) for d in range(10)]
    made = []
    while len(made) < count:
        values = kind == "values" or (kind == "mixed" and rng.random() < VALUE_SHARE)
        if values:
            line = value_line(digits, by_label, rng, one_pen)
        else:
            line = training_line(digits, rng, marks=0.1 if kind == "digits" else 0.0, one_pen=one_pen)
        if line is not None:
            made.append(line)
    return made


def strip_of(picture) -> np.ndarray:
    ink, _ = ink_map(picture, WORK_HEIGHT)
    return to_line(ink, digit_height(ink)).pixels


def make_lines(digits: Digits, count: int, seed: int, workers: int | None = None,
               kind: str = "mixed", one_pen: float = 0.0) -> list[tuple[np.ndarray, str]]:
    """`count` lines of a kind (see `_make_values`) from `digits`, made in parallel; the same seed gives the
    same lines. The digit lines of a seed are the same lines as ever (every line model measured on them)."""
    chunk = 2_000
    jobs = [(digits, min(chunk, count - start), seed * 1_000_003 + start, kind, one_pen)
            for start in range(0, count, chunk)]
    with ProcessPoolExecutor(workers or hardware.available_cores()) as pool:
        return [line for part in pool.map(_make_values, jobs) for line in part]


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


def read_strings(model: LineReader, strips: list[np.ndarray], batch_size: int = 256,
                 only_digits: bool = False) -> list[str]:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(strips), batch_size):
            x, lengths = _tensor(strips[i : i + batch_size])
            probs = model(x).float().softmax(-1).numpy()
            out += ["".join(d.char for d in decode(p[:n], only_digits))
                    for p, n in zip(probs, lengths.tolist(), strict=True)]
    return out


def _accuracy(model: LineReader, lines: list[tuple[np.ndarray, str]], only_digits: bool = False) -> float:
    read = read_strings(model, [s for s, _ in lines], only_digits=only_digits)
    return float(np.mean([r == t for r, (_, t) in zip(read, lines, strict=True)]))


def widened(state: dict, classes: int = LINE_CLASSES) -> dict:
    """A line model's weights with `classes` outputs: a digits-only model's digit rows and blank row kept
    (the blank moves last), each new sign row small and random with a low bias, so that training from it
    starts reading digits as well as it did and learns the signs in a few epochs."""
    weight, bias = state["classes.weight"], state["classes.bias"]
    if weight.shape[0] == classes:
        return state
    generator = torch.Generator().manual_seed(0)
    grown_w = torch.randn(classes, weight.shape[1], generator=generator) * 0.01
    grown_b = torch.full((classes,), float(bias[BLANK]) - 4.0)
    grown_w[:BLANK], grown_b[:BLANK] = weight[:BLANK], bias[:BLANK]
    grown_w[-1], grown_b[-1] = weight[BLANK], bias[BLANK]
    return {**state, "classes.weight": grown_w, "classes.bias": grown_b}


CONV_LAYERS = ("features.1", "features.3", "features.5", "features.6", "features.8")


def state_from_onnx(path: Path, strips: list[np.ndarray]) -> dict:
    """A LineReader's weights from its exported `line.onnx` (a bundled model ships no torch weights).

    The export folded each batch norm into its convolution (y = Wx + b); the batch norm comes back so that
    it reproduces y in evaluation and, nearly, in training, where it normalises by the batch's own figures:
    its scale and shift are the per-channel spread and mean of Wx over `strips` (plus b). The GRU's gates
    come back in PyTorch's order (reset, update, new; ONNX stores update, reset, new)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    values = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    values |= {n.output[0]: torch.from_numpy(numpy_helper.to_array(n.attribute[0].t).copy())
               for n in graph.node if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    gru = next(n for n in graph.node if n.op_type == "GRU")
    matmul = next(n for n in graph.node if n.op_type == "MatMul")
    model = LineReader(classes=int(values["classes.bias"].shape[0]))
    state = model.state_dict()
    for name, node in zip(CONV_LAYERS, convs, strict=True):
        state[f"{name}.0.weight"] = values[node.input[1]]
        state[f"{name}.1.weight"] = torch.ones_like(state[f"{name}.1.weight"])
        state[f"{name}.1.bias"] = values[node.input[2]]
        state[f"{name}.1.running_mean"] = torch.zeros_like(state[f"{name}.1.running_mean"])
        state[f"{name}.1.running_var"] = torch.full_like(state[f"{name}.1.running_var"], 1 - 1e-5)
    w, r, b = (values[gru.input[k]] for k in (1, 2, 3))
    hidden = r.shape[2]
    order = torch.cat([torch.arange(hidden, 2 * hidden), torch.arange(hidden), torch.arange(2 * hidden, 3 * hidden)])
    for direction, suffix in ((0, ""), (1, "_reverse")):
        state[f"sequence.weight_ih_l0{suffix}"] = w[direction][order]
        state[f"sequence.weight_hh_l0{suffix}"] = r[direction][order]
        state[f"sequence.bias_ih_l0{suffix}"] = b[direction][: 3 * hidden][order]
        state[f"sequence.bias_hh_l0{suffix}"] = b[direction][3 * hidden :][order]
    state["classes.weight"] = values[matmul.input[1]].T.contiguous()
    state["classes.bias"] = values["classes.bias"]
    model.load_state_dict(state)
    model.eval()
    seen: dict[str, torch.Tensor] = {}
    hooks = [model.get_submodule(f"{name}.0").register_forward_hook(
        lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach())) for name in CONV_LAYERS]
    with torch.no_grad():
        model(_tensor(strips)[0])
    for hook in hooks:
        hook.remove()
    for name in CONV_LAYERS:
        z = seen[name].transpose(0, 1).reshape(seen[name].shape[1], -1)
        mean, var = z.mean(dim=1), z.var(dim=1) + 1e-4
        state[f"{name}.1.weight"] = var.sqrt()
        state[f"{name}.1.bias"] = state[f"{name}.1.bias"] + mean
        state[f"{name}.1.running_mean"] = mean
        state[f"{name}.1.running_var"] = var - 1e-5
    return state


def initial_state(folder: Path, strips: list[np.ndarray]) -> dict:
    """A line model's weights to start from: its `line.safetensors`, else its `line.onnx`."""
    if not (folder / LINE_WEIGHTS).is_file() and (folder / LINE_ONNX).is_file():
        return state_from_onnx(folder / LINE_ONNX, strips)
    return load_line_state(folder)


def line_reader_for(state: dict) -> LineReader:
    """A LineReader shaped for these weights (11 classes: digits only; 16: digits and signs), loaded."""
    model = LineReader(classes=int(state["classes.weight"].shape[0]))
    model.load_state_dict(state)
    return model


def train_lines(train_set: Digits, val_set: Digits, out: Path, settings: LineSettings,
                on_progress: Callable[[str], None] = print) -> dict:
    """Make the lines, train, keep the epoch best on validation; returns the run's config."""
    out.mkdir(parents=True, exist_ok=True)
    hardware.configure_threads()
    started = time.time()
    if settings.val_lines is None:
        settings = replace(settings, val_lines=min(VAL_LINES, max(MIN_VAL_LINES, settings.lines // 10)))
    sets = 3 if settings.signs else 1
    on_progress(f"making {settings.lines:,} training and {settings.val_lines:,} x {sets} validation lines")
    # Without signs: the digit lines every digits-only line model was trained on (marks left out of the label).
    train_lines_ = make_lines(train_set, settings.lines, settings.seed, kind="mixed" if settings.signs else "digits",
                              one_pen=settings.one_pen)
    # The same validation lines for every run: comparable.
    val_digit_lines = make_lines(val_set, settings.val_lines, VAL_SEED, kind="digits")
    val_plain = make_lines(val_set, settings.val_lines, VAL_SEED + 1, kind="plain") if settings.signs else []
    val_values = make_lines(val_set, settings.val_lines, VAL_SEED + 2, kind="values") if settings.signs else []
    on_progress(f"made in {time.time() - started:.0f} s")
    classes = LINE_CLASSES if settings.signs else BLANK + 1
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model = LineReader(classes=classes)
    if settings.init:
        state = initial_state(Path(settings.init), [s for s, _ in train_lines_[:256]])
        if state["classes.weight"].shape[0] > classes:
            raise DigitrecError("this line model reads signs", where=settings.init, expected="train-lines --signs")
        model.load_state_dict(widened(state, classes))
    opt = torch.optim.AdamW(model.parameters(), settings.lr, weight_decay=1e-4)
    steps = math.ceil(len(train_lines_) / settings.batch_size) * settings.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, settings.lr, total_steps=steps, pct_start=0.15)
    autocast = hardware.bf16_autocast_supported()
    history, best, first = [], -1.0, 1
    checkpoint = out / LINE_CHECKPOINT
    if checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=True)  # a checkpoint is data, never code to run
        if saved["settings"] == asdict(settings):
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["opt"])
            sched.load_state_dict(saved["sched"])
            rng.bit_generator.state, history, best = saved["rng"], saved["history"], saved["best"]
            generator.set_state(saved["generator"])
            first = saved["epoch"] + 1
            on_progress(f"going on from epoch {saved['epoch']} ({checkpoint})")
    for epoch in range(first, settings.epochs + 1):
        model.train()
        loss_sum, seen, t0 = 0.0, 0, time.time()
        for batch in _batches(train_lines_, settings.batch_size, rng):
            x, lengths = _tensor([train_lines_[k][0] for k in batch])
            labels = [train_lines_[k][1] for k in batch]
            targets = torch.tensor([CHARS.index(c) for text in labels for c in text])
            target_lengths = torch.tensor([len(t) for t in labels])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = model(_augment(x, generator))
            log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # [T, N, C]
            loss = F.ctc_loss(log_probs, targets, lengths, target_lengths, blank=classes - 1, zero_infinity=True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(batch)
            seen += len(batch)
        accuracy = _accuracy(model, val_digit_lines, only_digits=True)
        row = {"epoch": epoch, "train_loss": round(loss_sum / seen, 5), "val_string_accuracy": accuracy}
        said = f"validation strings {accuracy:.2%}"
        if settings.signs:
            row["val_plain_accuracy"] = _accuracy(model, val_plain)
            row["val_value_accuracy"] = _accuracy(model, val_values)
            said += (f" (digit lines, read digits only), plain numbers {row['val_plain_accuracy']:.2%}, values "
                     f"{row['val_value_accuracy']:.2%}")
        history.append(row | {"seconds": round(time.time() - t0, 1)})
        on_progress(f"epoch {epoch}/{settings.epochs}: loss {loss_sum / seen:.4f}, {said} ({time.time() - t0:.0f} s)")
        # With signs, the best epoch on digit lines and values together: a sign learned must not cost digits.
        if _score(row) > best:
            best = _score(row)
            save_line_model(model, out)
        _write_metrics(out, history)
        with atomic_path(checkpoint) as tmp:
            torch.save({"settings": asdict(settings), "epoch": epoch, "model": model.state_dict(),
                        "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": rng.bit_generator.state,
                        "generator": generator.get_state(), "history": history, "best": best}, tmp)
    model.load_state_dict(load_line_state(out))
    export_line_onnx(model, out)
    chosen = max(history, key=_score)
    checkpoint.unlink(missing_ok=True)
    config = {"kind": "line-reader", "settings": asdict(settings), "classes": CHARS[: classes - 1] + " (blank last)",
              **{k: v for k, v in chosen.items() if k.startswith("val_")}, "epoch": chosen["epoch"],
              "train_digits": len(train_set), "val_digits": len(val_set), "seconds": round(time.time() - started),
              "digitrec_version": __version__, "hardware": hardware.describe()}
    atomic_write_text(out / LINE_CONFIG, json.dumps(config, indent=2) + "\n")
    return config


def _score(row: dict) -> float:
    return row["val_string_accuracy"] + row.get("val_value_accuracy", 0.0)


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
