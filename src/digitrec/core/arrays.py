"""uint8 pictures to model input, and logits to probabilities, in numpy: the onnxruntime path's arithmetic."""

from __future__ import annotations

import numpy as np

from digitrec.core.constants import IMAGE_SIZE


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [N, 28, 28] -> float32 [N, 1, 28, 28] in [0, 1]: the one input form every model takes."""
    return images.reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE).astype(np.float32) / 255


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    logits = logits / temperature
    exp = np.exp(logits - logits.max(1, keepdims=True))
    return exp / exp.sum(1, keepdims=True)
