"""The training loop: whole-batch tensor ops on data held as one uint8 tensor, no DataLoader.

Read top to bottom: set up, then for each epoch shuffle, augment, step, validate, checkpoint.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digitrec import hardware, runs
from digitrec.data import Digits
from digitrec.errors import DigitrecError
from digitrec.models import Recipe, count_parameters, create_model, with_test_time_shifts


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    lr: float


@dataclass
class TrainResult:
    model: nn.Module
    history: list[EpochMetrics] = field(default_factory=list)


def to_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float32 [N, 1, 28, 28] in [0, 1]: the one input form every model takes."""
    x = torch.as_tensor(images)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    return channels_last(x.float().div_(255.0))


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """The same one-channel batch with NHWC strides, (H*W, 1, W, 1) instead of (H*W, H*W, W, 1).

    With one channel both layouts are the same bytes, but convolutions read the NCHW strides as NCHW
    and run every later layer in PyTorch's slower NCHW path: half the training speed on a 2-core CPU
    (measured in benchmarks/train_speed.py's run of the default recipe)."""
    n, c, h, w = x.shape
    if x.stride(1) == 1 and x.is_contiguous(memory_format=torch.channels_last):
        return x  # already NHWC (to_input's output when no augmentation follows): no copy
    if c != 1:
        return x.contiguous(memory_format=torch.channels_last)
    return x.contiguous().view(n, h, w, c).permute(0, 3, 1, 2)


def augment(x: torch.Tensor, recipe: Recipe, generator: torch.Generator) -> torch.Tensor:
    """The recipe's augmentation of a whole batch: random affine, then some digits made low-resolution."""
    x = random_affine(x, recipe, generator)
    if recipe.lowres:
        chosen = torch.rand(x.shape[0], generator=generator) < recipe.lowres
        if chosen.any():
            side = int(torch.randint(7, 17, (1,), generator=generator))
            small = F.interpolate(x[chosen], size=(side, side), mode="area")
            x = x.clone()
            blurry = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
            # Preprocessing stretches real pictures to full contrast; do the same here.
            x[chosen] = blurry / blurry.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
    return x


def random_affine(x: torch.Tensor, recipe: Recipe, generator: torch.Generator) -> torch.Tensor:
    """Rotate, scale and shift a whole batch at once with one affine grid; bend it elastically if asked."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(recipe.rotate_deg)
    scale = 1 + (torch.rand(n, generator=generator) * 2 - 1) * recipe.scale
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (recipe.shift_px * 2 / x.shape[-1])
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if recipe.elastic_px:
        grid = grid + elastic_field(n, x.shape[-1], recipe.elastic_px, generator)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def elastic_field(n: int, side: int, max_px: float, generator: torch.Generator) -> torch.Tensor:
    """Smooth random displacements [n, side, side, 2] in grid units, at most `max_px` pixels.

    Simard et al. (2003) smooth per-pixel noise with a Gaussian (sigma 4 px); random shifts at a 4x4
    lattice of control points, upsampled bicubically, give the same slow bends at a fraction of the cost."""
    bound = max_px * 2 / side
    control = (torch.rand(n, 2, 4, 4, generator=generator) * 2 - 1) * bound
    field = F.interpolate(control, size=(side, side), mode="bicubic", align_corners=True)
    return field.clamp_(-bound, bound).permute(0, 2, 3, 1)  # bicubic overshoots its control points


class WeightAverage:
    """An exponential moving average of a model's weights and batch-norm statistics.

    With a constant or slowly falling learning rate the average of the last thousand-odd steps sits
    nearer the middle of the minimum than the last step; it is then the model that training returns
    and saves. After a one-cycle schedule, which ends at a learning rate of zero, it gained nothing on
    validation (MODEL_CARD.md), so no named recipe turns it on."""

    def __init__(self, model: nn.Module, decay: float):
        from copy import deepcopy

        self.model = deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.steps = 0
        self._averaged = [t for t in self.model.state_dict().values() if t.is_floating_point()]
        self._current = [t for t in model.state_dict().values() if t.is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        self.steps += 1
        # A shorter memory at first, so the random initial weights fade out quickly.
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        torch._foreach_lerp_(self._averaged, self._current, 1 - decay)


@torch.no_grad()
def distillation_targets(teacher: nn.Module, x: torch.Tensor, labels: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """Per-digit target probabilities: the teacher's reading of this very (augmented) batch, mixed with the
    smoothed labels. The teacher sees what the student sees, so its soft answers also say how much of a
    digit an augmentation left readable; the labels keep it honest where it errs."""
    smoothed = F.one_hot(labels, 10).float() * (1 - recipe.label_smoothing) + recipe.label_smoothing / 10
    return (1 - recipe.teacher_weight) * smoothed + recipe.teacher_weight * teacher(x).float().softmax(1)


def _split_of(config: dict) -> list[tuple]:
    """(data, validation fraction, seed) of every model in a run, an ensemble's members each."""
    if config.get("arch") == "ensemble":
        return [s for m in config["members"] for s in _split_of(runs.read_config(m["path"]))]
    recipe = config.get("recipe", {})
    return [(config.get("data", {}).get("sha256"), recipe.get("val_fraction"), recipe.get("seed"))]


def load_teacher(recipe: Recipe, data_sha256: str) -> tuple[nn.Module, dict]:
    """The teacher run's model, folded for fast inference, and what the run config records about it."""
    from digitrec.models import fuse_for_inference

    model, config = runs.load_run(recipe.teacher)
    if recipe.val_fraction:
        try:
            splits = set(_split_of(config))
        except DigitrecError:
            splits = set()
        if splits != {(data_sha256, recipe.val_fraction, recipe.seed)}:
            raise DigitrecError(
                "the teacher may have learnt the digits this run holds out, so validation would flatter the "
                "student", where=recipe.teacher,
                expected="--val-fraction 0, or a teacher trained on the same data with the same --val-fraction "
                "and --seed",
            )
    info = {"path": str(Path(recipe.teacher).resolve()), "arch": config["arch"],
            "weights_sha256": runs.weights_sha256(Path(recipe.teacher))}
    return fuse_for_inference(model).requires_grad_(False), info


def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise DigitrecError(f"unknown optimizer '{recipe.optimizer}'", expected="adam or adamw")


def _scheduler(opt: torch.optim.Optimizer, recipe: Recipe, epochs: int, steps_per_epoch: int):
    if recipe.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=recipe.lr, epochs=epochs, steps_per_epoch=steps_per_epoch, pct_start=0.25
        )
    if recipe.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    raise DigitrecError(f"unknown schedule '{recipe.schedule}'", expected="onecycle or constant")


@torch.no_grad()
def predict_logits(model: nn.Module, images: np.ndarray, batch_size: int = 2048) -> torch.Tensor:
    """Logits [N, 10] for uint8 images, in eval mode, batch by batch."""
    was_training = model.training
    model.eval()
    out = [model(to_input(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 10)


def evaluate_split(model: nn.Module, digits: Digits) -> tuple[float, float]:
    """(loss, accuracy) of a model on labelled digits."""
    logits = predict_logits(model, digits.x)
    target = torch.as_tensor(digits.y)
    return F.cross_entropy(logits, target).item(), (logits.argmax(1) == target).float().mean().item()


def train(
    recipe: Recipe,
    train_set: Digits,
    val_set: Digits | None,
    run_dir: Path,
    resume: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    teacher: nn.Module | None = None,
) -> TrainResult:
    """Train `recipe` on `train_set`, checkpointing into `run_dir` after every epoch; with a `teacher`, learn
    from its probabilities too (see `distillation_targets`)."""
    if bool(recipe.teacher) != (teacher is not None):
        raise DigitrecError("a recipe with a teacher needs its model, and only such a recipe takes one",
                            expected="train_run(), which loads the recipe's teacher")
    hardware.configure_threads()
    torch.manual_seed(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    model = create_model(recipe.arch).to(memory_format=torch.channels_last)
    steps_per_epoch = math.ceil(len(train_set) / recipe.batch_size)
    epochs = recipe.epochs_for(len(train_set))
    opt = _optimizer(model, recipe)
    sched = _scheduler(opt, recipe, epochs, steps_per_epoch)
    average = WeightAverage(model, recipe.ema) if recipe.ema else None
    result = TrainResult(average.model if average else model)
    if resume:
        state = runs.load_checkpoint(run_dir)
        model.load_state_dict(state["model"])
        if average:
            average.model.load_state_dict(state["average"])
            average.steps = state["average_steps"]
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        result.history = runs.read_metrics(run_dir)[: state["epoch"]]

    x = torch.as_tensor(train_set.x).unsqueeze(1)
    y = torch.as_tensor(train_set.y)
    autocast = hardware.bf16_autocast_supported()
    for epoch in range(len(result.history) + 1, epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(x), generator=generator)
        loss_sum, correct = 0.0, 0
        for step, begin in enumerate(range(0, len(x), recipe.batch_size)):
            index = order[begin : begin + recipe.batch_size]
            xb = to_input(x[index])
            if recipe.augment:
                xb = augment(xb, recipe, generator)
            xb = channels_last(xb)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = model(xb)
            if teacher is None:
                loss = F.cross_entropy(logits.float(), y[index], label_smoothing=recipe.label_smoothing)
            else:
                loss = F.cross_entropy(logits.float(), distillation_targets(teacher, xb, y[index], recipe))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if average:
                average.update()
            loss_sum += loss.item() * len(index)
            correct += (logits.argmax(1) == y[index]).sum().item()
            if on_batch:
                on_batch(step + 1, steps_per_epoch)
        val_loss, val_acc = evaluate_split(result.model, val_set) if val_set is not None else (None, None)
        metrics = EpochMetrics(
            epoch, loss_sum / len(x), correct / len(x), val_loss, val_acc,
            time.perf_counter() - start, opt.param_groups[0]["lr"],
        )
        result.history.append(metrics)
        state = {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "generator": generator.get_state(), "torch_rng": torch.get_rng_state(), "epoch": epoch,
        }
        if average:
            state.update(average=average.model.state_dict(), average_steps=average.steps)
        runs.save_checkpoint(run_dir, state)
        runs.write_metrics(run_dir, result.history)
        if on_epoch:
            on_epoch(metrics)
    result.model.eval()
    return result


def train_run(
    recipe: Recipe,
    data_path,
    run_dir: Path,
    resume: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> tuple[TrainResult, dict]:
    """Load data, train, and leave a complete run folder: weights, config, metrics, figures."""
    import datetime

    from digitrec import __version__, data

    run_dir = Path(run_dir)
    if resume:
        config = runs.read_config(run_dir)
        if config.get("status") == "finished":
            raise DigitrecError("run already finished; nothing to resume", where=str(run_dir))
        recipe = Recipe(**config["recipe"])
        data_path = config["data"]["path"]
    elif (run_dir / runs.CONFIG).exists():
        raise DigitrecError("run folder already holds a run", where=str(run_dir),
                            expected="a new --out folder, or --resume to continue it")
    elif recipe.teacher:
        recipe = recipe.update(teacher=str(Path(recipe.teacher).resolve()))  # --resume may run from elsewhere
    data_path = data.resolve_data_path(data_path)
    data_sha256 = data.fingerprint(data_path)
    if resume and data_sha256 != config["data"]["sha256"]:
        raise DigitrecError("data changed since the run started", where=str(data_path))
    train_set, val_set = data.load_for_training(data_path, recipe.val_fraction, recipe.seed)
    teacher, teacher_info = load_teacher(recipe, data_sha256) if recipe.teacher else (None, None)
    if resume and teacher_info and teacher_info != config.get("teacher"):
        raise DigitrecError("the teacher changed since the run started", where=recipe.teacher)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        config = {
            "name": run_dir.name,
            "arch": recipe.arch,
            "parameters": count_parameters(create_model(recipe.arch)),
            "recipe": recipe.as_dict(),
            "data": {"path": str(data_path.resolve()), "kind": data.detect_kind(data_path),
                     "sha256": data_sha256, "train": len(train_set),
                     "val": len(val_set) if val_set is not None else 0},
            "teacher": teacher_info,
            "digitrec": __version__,
            "hardware": hardware.describe(),
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "status": "running",
        }
        runs.write_config(run_dir, config)
    start = time.perf_counter()
    result = train(recipe, train_set, val_set, run_dir, resume, on_batch, on_epoch, teacher)
    model = with_test_time_shifts(result.model, recipe.tta_shift_px)
    runs.save_weights(run_dir, model)
    last = result.history[-1]
    val_loss, val_accuracy = last.val_loss, last.val_accuracy
    if val_set is not None and model is not result.model:  # the per-epoch figures read one view only
        val_loss, val_accuracy = evaluate_split(model, val_set)
    config.update({
        "status": "finished",
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "train_seconds": round(sum(m.seconds for m in result.history), 2),
        "wall_seconds_this_session": round(time.perf_counter() - start, 2),
        "val_accuracy": val_accuracy,
        "val_loss": val_loss,
        "hardware": hardware.describe(),
    })
    runs.write_config(run_dir, config)
    (run_dir / runs.CHECKPOINT).unlink(missing_ok=True)
    from digitrec import plots

    probabilities = None if val_set is None else torch.softmax(predict_logits(model, val_set.x), 1).numpy()
    plots.run_figures(run_dir, result.history, val_set, probabilities)
    return result, config
