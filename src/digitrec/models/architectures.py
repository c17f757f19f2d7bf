"""The model registry: architectures by name (`create_model(name, **kwargs)`), ensembles, test-time views.

Every model takes float32 [N, 1, 28, 28] in [0, 1] (light ink on black) and returns logits [N, 10].
Normalisation to MNIST's mean and spread happens inside `forward`, so the CLI, the server,
ONNX export and the tests cannot disagree about it.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from digitrec.core.constants import NUM_CLASSES, NUM_PIXELS
from digitrec.core.errors import DigitrecError

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

_REGISTRY: dict[str, tuple[Callable[..., nn.Module], str]] = {}


def register(name: str, description: str, **variant):
    """Register `factory` under `name`; keyword arguments make a named variant of an existing factory."""

    def wrap(factory: Callable[..., nn.Module]):
        _REGISTRY[name] = (partial(factory, **variant) if variant else factory, description)
        return factory

    return wrap


class Normalize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - MNIST_MEAN) / MNIST_STD


def _conv_bn(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, padding: int | None = None) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2 if padding is None else padding, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


@register("cnn", "the default: stride-2 stem and two conv-BN-ReLU stages (16, 32, 96 channels), 1.7M MACs")
def cnn(widths: tuple[int, int, int] = (16, 32, 96)) -> nn.Module:
    """28x28 -> 5x5 stride-2 stem without padding (12x12) -> 3x3 conv -> max-pool (6x6) -> 3x3 conv
    -> global max-pool -> linear.

    Why this shape: on a CPU the full-resolution stage costs most (a 28x28 BN alone took a quarter of a
    training step); the stride-2 stem reads every input pixel once and the network works at 12x12 and
    6x6, where convolutions are dense enough to run near the CPU's peak."""
    stem, middle, last = widths
    return nn.Sequential(
        Normalize(),
        _conv_bn(1, stem, 5, stride=2, padding=0),
        _conv_bn(stem, middle), nn.MaxPool2d(2),
        _conv_bn(middle, last), nn.AdaptiveMaxPool2d(1),
        nn.Flatten(), nn.Linear(last, NUM_CLASSES),
    )


register("cnn-wide", "the cnn at (24, 48, 96) channels, 3.1M MACs: the best recipe's network", widths=(24, 48, 96))(cnn)
register("cnn-wider", "the cnn at (24, 56, 112) channels, 3.9M MACs: the most under 4M", widths=(24, 56, 112))(cnn)


@register("vgg", "a teacher for ensembles trained on a GPU: three stages of two 3x3 conv-BN-ReLU (32, 64, 128 "
          "channels) at 28, 14 and 7 px, 29M MACs, far above the bundled size class")
def vgg(widths: tuple[int, int, int] = (32, 64, 128)) -> nn.Module:
    """Why a second family: a student learns from its teacher's probabilities, and the `cnn`'s ensemble (99.50 %
    on validation) was hardly better than its students (99.30-99.40 %). Full-resolution stages see thin strokes
    that the `cnn`'s stride-2 stem averages away; on a GPU the extra multiply-adds cost next to nothing."""
    a, b, c = widths
    return nn.Sequential(
        Normalize(),
        _conv_bn(1, a), _conv_bn(a, a), nn.MaxPool2d(2),
        _conv_bn(a, b), _conv_bn(b, b), nn.MaxPool2d(2),
        _conv_bn(b, c), _conv_bn(c, c), nn.AdaptiveMaxPool2d(1),
        nn.Flatten(), nn.Linear(c, NUM_CLASSES),
    )


@register("mlp", "the seed's baseline: Flatten, Dense 128 ReLU, Dense 128 ReLU, Dense 10")
def mlp() -> nn.Module:
    return nn.Sequential(
        Normalize(), nn.Flatten(),
        nn.Linear(NUM_PIXELS, 128), nn.ReLU(),
        nn.Linear(128, 128), nn.ReLU(),
        nn.Linear(128, NUM_CLASSES),
    )


@register("keras-cnn", "Keras 'Simple MNIST convnet': Conv32, pool, Conv64, pool, dropout 0.5, Dense 10")
def keras_cnn() -> nn.Module:
    return nn.Sequential(
        Normalize(),
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, NUM_CLASSES),
    )


class Ensemble(nn.Module):
    """Averages its members' probabilities; returns log-probabilities, so softmax gives that average back."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = torch.stack([m(x).softmax(1) for m in self.members]).mean(0)
        return probabilities.clamp_min(1e-12).log()


class ShiftAverage(nn.Module):
    """Test-time augmentation inside the model: averages the probabilities for each digit and copies of it
    shifted by `offsets` (dx, dy) pixels (default: `px` left, right, up and down); returns
    log-probabilities like `Ensemble`.

    Inside the model, so evaluate, predict, serve and the exported ONNX file all read digits the same way.
    All views run as one batch. Five views: five times the inference cost, for +0.05 % on validation
    (MODEL_CARD.md)."""

    def __init__(self, model: nn.Module, px: int = 1, offsets: list[tuple[int, int]] | None = None):
        super().__init__()
        self.model = model
        self.offsets = offsets or [(0, 0), (px, 0), (-px, 0), (0, px), (0, -px)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, (h, w) = max(max(abs(dx), abs(dy)) for dx, dy in self.offsets), x.shape[-2:]
        padded = F.pad(x, (p, p, p, p))
        views = [padded[:, :, p + dy : p + dy + h, p + dx : p + dx + w] for dx, dy in self.offsets]
        probabilities = self.model(torch.cat(views)).softmax(1).reshape(len(views), -1, NUM_CLASSES).mean(0)
        return probabilities.clamp_min(1e-12).log()


def with_test_time_shifts(model: nn.Module, px: int) -> nn.Module:
    """`model` wrapped in `ShiftAverage` when `px` > 0 (a recipe's `tta_shift_px`), else as it is."""
    return ShiftAverage(model, px) if px else model


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """An eval-mode copy with each conv-BN pair folded into one conv, in channels_last layout.

    The same function, 4x the throughput on a 2-core AVX2 CPU (benchmarks/inference.py)."""
    fused = deepcopy(model).eval()
    for block in fused.modules():
        if isinstance(block, nn.Sequential):
            for i in range(len(block) - 1):
                if isinstance(block[i], nn.Conv2d) and isinstance(block[i + 1], nn.BatchNorm2d):
                    block[i] = fuse_conv_bn_eval(block[i], block[i + 1])
                    block[i + 1] = nn.Identity()
    return fused.to(memory_format=torch.channels_last)


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def describe(name: str) -> str:
    return _REGISTRY[name][1]


def create_model(name: str, **kwargs) -> nn.Module:
    """A fresh model by registry name; keyword arguments reach its factory (`create_model("cnn", widths=...)`)."""
    if name not in _REGISTRY:
        raise DigitrecError(f"unknown architecture '{name}'", expected=", ".join(list_models()))
    return _REGISTRY[name][0](**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_multiply_adds(model: nn.Module, size: int = 28) -> int:
    """Multiply-adds of one read of one [1, 1, size, size] picture, by its convolutions and linear layers
    (what sets a network's cost; normalisation, pooling and activations are a few percent more)."""
    total = 0

    def count(layer: nn.Module, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        per_output = layer.weight[0].numel()  # in_channels / groups x kernel area, or in_features
        total += output[0].numel() * per_output

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 1, size, size))
    finally:
        for hook in hooks:
            hook.remove()
    return total


class LineReader(nn.Module):
    """The line model: a strip [N, 1, 32, W] (light ink on black, 0-1, digits 20 px tall; see `lines`) ->
    class scores [N, W / 4, classes], one column every 4 pixels: ten digits, the signs when it reads them
    (`reading.line.CHARS`), CTC's blank last (11 classes: digits only).

    Convolutions read each 4-pixel column with its neighbours (a receptive field about one digit wide);
    a bidirectional GRU then sees the whole line, so that a column between two touching digits knows
    where the one ends and the next begins."""

    def __init__(self, widths: tuple[int, int, int] = (32, 48, 64), hidden: int = 96, classes: int = NUM_CLASSES + 1):
        super().__init__()
        a, b, c = widths
        self.features = nn.Sequential(
            Normalize(),
            _conv_bn(1, a), nn.MaxPool2d(2),  # 16 x W/2
            _conv_bn(a, b), nn.MaxPool2d(2),  # 8 x W/4
            _conv_bn(b, c), _conv_bn(c, c), nn.MaxPool2d((2, 1)),  # 4 x W/4
            _conv_bn(c, 2 * c, kernel=(4, 3), padding=(0, 1)),  # 1 x W/4
        )
        self.sequence = nn.GRU(2 * c, hidden, batch_first=True, bidirectional=True)
        self.classes = nn.Linear(2 * hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = self.features(x).squeeze(2).transpose(1, 2)  # [N, T, C]
        return self.classes(self.sequence(columns)[0])
