"""The training loop: whole-batch tensor ops on data held as one uint8 tensor, no DataLoader.

Read top to bottom: set up, then for each epoch shuffle, augment, step, validate, checkpoint.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Callable
from copy import deepcopy
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digitrec import data
from digitrec.core import hardware
from digitrec.core.constants import NUM_CLASSES
from digitrec.core.errors import DigitrecError
from digitrec.core.version import __version__
from digitrec.data import Digits, views
from digitrec.inference import plots, runs
from digitrec.inference.calibration import fit_temperature
from digitrec.inference.runs import DataInfo, EpochMetrics, RunConfig
from digitrec.models.architectures import count_parameters, create_model, with_test_time_shifts
from digitrec.models.recipes import Recipe
from digitrec.models.tensors import channels_last, predict_logits, to_input
from digitrec.training.augment import augment, augment_with_clean, hollow_strokes, with_rendered
from digitrec.training.lineage import load_init, load_teacher


@dataclass
class TrainResult:
    model: nn.Module
    history: list[EpochMetrics] = field(default_factory=list)


class WeightAverage:
    """An exponential moving average of a model's weights and batch-norm statistics.

    With a constant or slowly falling learning rate the average of the last thousand-odd steps sits
    nearer the middle of the minimum than the last step; it is then the model that training returns
    and saves. After a one-cycle schedule, which ends at a learning rate of zero, it gained nothing on
    validation (MODEL_CARD.md), so no named recipe turns it on."""

    def __init__(self, model: nn.Module, decay: float):
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
    """Per-digit target probabilities: the teacher's reading of `x` (by default the very batch the student
    reads; the recipe's `teacher_reads` says), mixed with the smoothed labels. A teacher that sees what the
    student sees also says how much of a digit an augmentation left readable; the labels keep it honest
    where it errs."""
    smoothed = F.one_hot(labels, NUM_CLASSES).float() * (1 - recipe.label_smoothing) + recipe.label_smoothing / 10
    return (1 - recipe.teacher_weight) * smoothed + recipe.teacher_weight * teacher(x).float().softmax(1)


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


def evaluate_split(model: nn.Module, digits: Digits) -> tuple[float, float]:
    """(loss, accuracy) of a model on labelled digits."""
    return _loss_and_accuracy(predict_logits(model, digits.x), digits.y)


def _loss_and_accuracy(logits: torch.Tensor, labels: np.ndarray) -> tuple[float, float]:
    target = torch.as_tensor(labels)
    return F.cross_entropy(logits, target).item(), (logits.argmax(1) == target).float().mean().item()


class _Loop:
    """The state one training run carries from step to step, and what a checkpoint saves of it."""

    def __init__(self, recipe: Recipe, n_train: int, device: torch.device, init: dict | None = None):
        torch.manual_seed(recipe.seed)
        self.generator = torch.Generator().manual_seed(recipe.seed)  # on the CPU: the same draws on any device
        self.model = create_model(recipe.arch)
        if init is not None:
            self.model.load_state_dict(init)
        self.model = self.model.to(device=device, memory_format=torch.channels_last)
        self.steps_per_epoch = math.ceil(n_train / recipe.batch_size)
        self.epochs = recipe.epochs_for(n_train)
        self.opt = _optimizer(self.model, recipe)
        self.sched = _scheduler(self.opt, recipe, self.epochs, self.steps_per_epoch)
        self.average = WeightAverage(self.model, recipe.ema) if recipe.ema else None

    @property
    def kept_model(self) -> nn.Module:
        """The model training returns and saves: the weight average when there is one."""
        return self.average.model if self.average else self.model

    def state(self, epoch: int) -> dict:
        state = {
            "model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
            "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(), "epoch": epoch,
        }
        if self.average:
            state.update(average=self.average.model.state_dict(), average_steps=self.average.steps)
        return state

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        if self.average:
            self.average.model.load_state_dict(state["average"])
            self.average.steps = state["average_steps"]
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])


def _train_epoch(loop: _Loop, recipe: Recipe, x: torch.Tensor, y: torch.Tensor, teacher: nn.Module | None,
                 on_batch: Callable[[int, int], None] | None, views: torch.Tensor | None = None) -> tuple[float, float]:
    """One pass over the shuffled training set; returns (mean loss, accuracy) on the augmented batches."""
    loop.model.train()
    autocast = hardware.bf16_autocast_supported() if x.device.type == "cpu" else x.device.type == "cuda"
    order = torch.randperm(len(x), generator=loop.generator).to(x.device)
    loss_sum, correct = 0.0, 0
    for step, begin in enumerate(range(0, len(x), recipe.batch_size)):
        index = order[begin : begin + recipe.batch_size]
        xb, targets = _batch(loop, recipe, x, y, index, teacher, views)
        loss, logits = _step(loop, recipe, xb, y[index], targets, autocast)
        loss_sum += loss * len(index)
        correct += (logits.argmax(1) == y[index]).sum().item()
        if on_batch:
            on_batch(step + 1, loop.steps_per_epoch)
    return loss_sum / len(x), correct / len(x)


def _batch(loop: _Loop, recipe: Recipe, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor,
           teacher: nn.Module | None, views: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The digits at `index` as the network reads them (rendered views swapped in, augmented, hollowed),
    and the teacher's targets for them (None without a teacher)."""
    xb = x[index] if views is None else with_rendered(x[index], views[:, index], recipe.rendered, loop.generator)
    xb = to_input(xb)
    clean = to_input(x[index]) if teacher is not None and recipe.teacher_reads == "clean" else None
    if recipe.augment and clean is not None:
        xb, clean = augment_with_clean(xb, clean, recipe, loop.generator)
    elif recipe.augment:
        xb = augment(xb, recipe, loop.generator)
    xb = channels_last(xb)
    # The teacher reads the digit whole: hollowing keeps what a digit is, and teachers misread outlines.
    seen = xb if clean is None else channels_last(clean)
    targets = None if teacher is None else distillation_targets(teacher, seen, y[index], recipe)
    return hollow_strokes(xb, recipe.hollow, loop.generator), targets


def _step(loop: _Loop, recipe: Recipe, xb: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None,
          autocast: bool) -> tuple[float, torch.Tensor]:
    """One optimizer step on a batch; returns (its loss, its logits)."""
    with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = loop.model(xb)
    if targets is None:
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=recipe.label_smoothing)
    else:
        loss = F.cross_entropy(logits.float(), targets)
    loop.opt.zero_grad(set_to_none=True)
    loss.backward()
    loop.opt.step()
    loop.sched.step()
    if loop.average:
        loop.average.update()
    return loss.item(), logits


def train(
    recipe: Recipe,
    train_set: Digits,
    val_set: Digits | None,
    run_dir: Path,
    resume: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    teacher: nn.Module | None = None,
    after_epoch: Callable[[nn.Module, list[EpochMetrics]], None] | None = None,
    init: dict | None = None,
) -> TrainResult:
    """Train `recipe` on `train_set`, checkpointing into `run_dir` after every epoch; with a `teacher`, learn
    from its probabilities too (see `distillation_targets`). The checkpoint holds the history too, so a
    kill between any two writes loses no finished epoch; `after_epoch` then sees the kept model. `init`: the
    weights (a state dict) the network starts from, where the recipe names an init run."""
    if bool(recipe.teacher) != (teacher is not None):
        raise DigitrecError("a recipe with a teacher needs its model, and only such a recipe takes one",
                            expected="train_run(), which loads the recipe's teacher")
    hardware.configure_threads()
    device = hardware.training_device()
    if bool(recipe.init) != (init is not None):
        raise DigitrecError("a recipe with an init run needs its weights, and only such a recipe takes them",
                            expected="train_run(), which loads the recipe's init run")
    loop = _Loop(recipe, len(train_set), device, init)
    result = TrainResult(loop.kept_model)
    if resume:
        state = runs.load_checkpoint(run_dir)
        loop.restore(state)
        # The checkpoint's own history: metrics.csv may be a step behind it after a kill between writes.
        result.history = [EpochMetrics(**m) for m in state["history"]] if "history" in state \
            else runs.read_metrics(run_dir)[: state["epoch"]]

    teacher = teacher.to(device) if teacher is not None else None
    x = torch.as_tensor(train_set.x).unsqueeze(1).to(device)
    y = torch.as_tensor(train_set.y).to(device)
    view_stack = None
    if recipe.rendered:
        kinds = tuple(recipe.render_kinds.split(","))
        view_stack = torch.as_tensor(views.cached_views(train_set.x, recipe.render_views, recipe.split_seed, kinds))
        view_stack = view_stack.unsqueeze(2).to(device)
    for epoch in range(len(result.history) + 1, loop.epochs + 1):
        start = time.perf_counter()
        train_loss, train_accuracy = _train_epoch(loop, recipe, x, y, teacher, on_batch, view_stack)
        val_loss, val_acc = evaluate_split(result.model, val_set) if val_set is not None else (None, None)
        metrics = EpochMetrics(epoch, train_loss, train_accuracy, val_loss, val_acc,
                               time.perf_counter() - start, loop.opt.param_groups[0]["lr"])
        result.history.append(metrics)
        runs.save_checkpoint(run_dir, {**loop.state(epoch), "history": [asdict(m) for m in result.history]})
        runs.write_metrics(run_dir, result.history)
        if after_epoch:
            after_epoch(result.model, result.history)
        if on_epoch:
            on_epoch(metrics)
    result.model = result.model.cpu().eval()
    return result


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _start_config(run_dir: Path, recipe: Recipe, data_path: Path, data_sha256: str, train_set: Digits,
                  val_set: Digits | None, teacher_info: runs.RunRef | None,
                  init_info: runs.RunRef | None) -> RunConfig:
    return RunConfig(
        name=run_dir.name, arch=recipe.arch, recipe=recipe,
        parameters=count_parameters(create_model(recipe.arch)),
        data=DataInfo(str(data_path.resolve()), data.detect_kind(data_path), data_sha256, len(train_set),
                      len(val_set) if val_set is not None else 0),
        teacher=teacher_info, init=init_info, digitrec=__version__, hardware=hardware.describe(), started=_now(),
        status="running",
    )


def train_run(
    recipe: Recipe,
    data_path,
    run_dir: Path,
    resume: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> tuple[TrainResult, RunConfig]:
    """Load data, train, and leave a complete run folder: weights, config, metrics, figures."""
    run_dir = Path(run_dir)
    config = None
    if resume:
        config = runs.read_config(run_dir)
        if config.finished_ok:
            raise DigitrecError("run already finished; nothing to resume", where=str(run_dir))
        recipe, data_path = config.recipe, config.data.path
        # Killed before its first checkpoint: nothing to continue, so it starts again with its own settings.
        resume = (run_dir / runs.CHECKPOINT).exists()
    elif (run_dir / runs.CONFIG).exists():
        raise DigitrecError("run folder already holds a run", where=str(run_dir),
                            expected=f"a new --out folder, or --resume {run_dir} to continue (or restart) it")
    else:  # --resume may run from elsewhere
        recipe = recipe.update(teacher=str(Path(recipe.teacher).resolve()) if recipe.teacher else None,
                               init=str(runs.run_path(recipe.init).resolve()) if recipe.init else None)
    recipe.check()
    data_path = data.resolve_data_path(data_path)
    data_sha256 = data.fingerprint(data_path)
    if config and data_sha256 != config.data.sha256:
        raise DigitrecError("data changed since the run started", where=str(data_path))
    train_set, val_set = data.load_for_training(data_path, recipe.val_fraction, recipe.split_seed)
    teacher, teacher_info = load_teacher(recipe, data_sha256) if recipe.teacher else (None, None)
    if config and teacher_info != config.teacher:
        raise DigitrecError("the teacher changed since the run started", where=recipe.teacher)
    init, init_info = load_init(recipe, data_sha256) if recipe.init else (None, None)
    if config and init_info != config.init:
        raise DigitrecError("the init run's weights changed since the run started", where=recipe.init)
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.remove_stale_temporaries(run_dir)
    if config is None:
        config = _start_config(run_dir, recipe, data_path, data_sha256, train_set, val_set, teacher_info, init_info)
        runs.write_config(run_dir, config)

    def keep_epoch(model: nn.Module, history: list[EpochMetrics]) -> None:
        """After every epoch the folder holds a loadable model (that epoch's) and says how far it got."""
        runs.replace_weights(run_dir, config, with_test_time_shifts(model, recipe.tta_shift_px))
        config.epochs_done = len(history)
        runs.write_config(run_dir, config)

    start = time.perf_counter()
    result = train(recipe, train_set, val_set, run_dir, resume, on_batch, on_epoch, teacher, keep_epoch, init)
    _finish_run(run_dir, config, result, val_set, time.perf_counter() - start)
    return result, config


def _finish_run(run_dir: Path, config: RunConfig, result: TrainResult, val_set: Digits | None, seconds: float) -> None:
    """The final model saved, calibrated on the validation digits (its temperature), the config finished,
    the checkpoint dropped and the figures drawn."""
    model = with_test_time_shifts(result.model, config.recipe.tta_shift_px)
    # A run resumed from a checkpoint written just before a kill may have no epoch left to train: what the
    # checkpoint holds (its history, its weights) is written out here, not only after an epoch.
    runs.write_metrics(run_dir, result.history)
    config.epochs_done = len(result.history)
    runs.replace_weights(run_dir, config, model)
    config.val_loss, config.val_accuracy = result.history[-1].val_loss, result.history[-1].val_accuracy
    logits = None
    if val_set is not None:
        logits = predict_logits(model, val_set.x)
        if model is not result.model:  # the per-epoch figures read one view only
            config.val_loss, config.val_accuracy = _loss_and_accuracy(logits, val_set.y)
        config.temperature = fit_temperature(logits.numpy(), val_set.y)
    probabilities = None if logits is None else torch.softmax(logits / config.temperature, 1).numpy()
    # The figures before the word "finished": a kill while they are drawn leaves a run to resume, not a
    # finished one with half a figure.
    plots.run_figures(run_dir, result.history, val_set, probabilities)
    config.status, config.finished, config.hardware = "finished", _now(), hardware.describe()
    config.train_seconds = round(sum(m.seconds for m in result.history), 2)
    config.wall_seconds_last_start = round(seconds, 2)
    runs.write_config(run_dir, config)
    (run_dir / runs.CHECKPOINT).unlink(missing_ok=True)
