"""The torch side of a model's input: uint8 pictures to NHWC tensors, and batched forward passes. Predict,
train, evaluate and export all go through here.

torch is imported inside the functions that use it, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from digitrec.core.constants import NUM_CLASSES

if TYPE_CHECKING:
    import torch
    from torch import nn


def to_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float32 [N, 1, 28, 28] in [0, 1] as a tensor with NHWC strides."""
    import torch

    x = torch.as_tensor(images)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    return channels_last(x.float().div_(255.0))


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """The same one-channel batch with NHWC strides, (H*W, 1, W, 1) instead of (H*W, H*W, W, 1).

    With one channel both layouts are the same bytes, but convolutions read the NCHW strides as NCHW
    and run every later layer in PyTorch's slower NCHW path: half the training speed on a 2-core CPU
    (measured in benchmarks/train_speed.py's run of the default recipe)."""
    import torch

    n, c, h, w = x.shape
    if x.stride(1) == 1 and x.is_contiguous(memory_format=torch.channels_last):
        return x  # already NHWC (to_input's output when no augmentation follows): no copy
    if c != 1:
        return x.contiguous(memory_format=torch.channels_last)
    return x.contiguous().view(n, h, w, c).permute(0, 3, 1, 2)


def forward_batches(model: nn.Module, images: np.ndarray, batch_size: int) -> torch.Tensor:
    """Logits [N, 10] for uint8 images, batch by batch, in whatever mode the model is in."""
    import torch

    device = next(model.parameters()).device  # a model still on the GPU while it trains
    with torch.inference_mode():
        out = [model(to_input(images[i : i + batch_size]).to(device)).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out) if out else torch.empty(0, NUM_CLASSES)


def predict_logits(model: nn.Module, images: np.ndarray, batch_size: int = 2048) -> torch.Tensor:
    """Logits [N, 10] in eval mode, for a model that may be training; its mode is restored."""
    was_training = model.training
    model.eval()
    try:
        return forward_batches(model, images, batch_size)
    finally:
        model.train(was_training)


def probabilities(model: nn.Module, images: np.ndarray, batch_size: int = 256, temperature: float = 1.0) -> np.ndarray:
    """uint8 [N, 28, 28] -> probabilities [N, 10] as float32 numpy, softmax(logits / temperature), from a
    model already in eval mode (switching modes costs more than a one-image forward pass)."""
    if len(images) == 0:
        return np.empty((0, NUM_CLASSES), dtype=np.float32)
    return (forward_batches(model, images, batch_size) / temperature).softmax(1).numpy()
