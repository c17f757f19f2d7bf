"""Predictions from a trained model: arrays, pictures, folders, Kaggle submissions."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from digitrec import runs
from digitrec.data import Digits, atomic_write_text, iter_image_files, read_image
from digitrec.errors import DigitrecError
from digitrec.models import fuse_for_inference
from digitrec.preprocess import to_mnist
from digitrec.train import to_input


@dataclass
class ImagePrediction:
    file: str
    digit: int | None
    confidence: float | None
    probabilities: list[float] | None
    error: str | None = None

    def as_dict(self) -> dict:
        out = {"file": self.file, "digit": self.digit, "confidence": self.confidence,
               "probabilities": self.probabilities}
        if self.error:
            out["error"] = self.error
        return out


class Predictor:
    """A loaded model and its run config: the object the CLI, the server and the Python API share."""

    def __init__(self, model: nn.Module, config: dict, path: Path):
        self.model = fuse_for_inference(model)
        self.config = config
        self.path = path

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Predictor:
        from digitrec.runs import load_run

        run_dir = runs.run_path(path)
        model, config = load_run(run_dir)
        return cls(model, config, run_dir)

    @property
    def name(self) -> str:
        return self.config.get("name") or self.path.name

    @torch.inference_mode()
    def probabilities(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 [N, 28, 28] MNIST-style images -> probabilities [N, 10]."""
        if len(images) == 0:
            return np.empty((0, 10), dtype=np.float32)
        chunks = [torch.softmax(self.model(to_input(images[i : i + batch_size])), 1)
                  for i in range(0, len(images), batch_size)]
        return torch.cat(chunks).numpy()

    def as_images(self, inputs) -> np.ndarray:
        """Arrays, PIL images or paths -> uint8 [N, 28, 28] through the one preprocessing path."""
        if isinstance(inputs, (str, os.PathLike, Image.Image)):
            inputs = [inputs]
        if isinstance(inputs, np.ndarray):
            if inputs.dtype == np.uint8 and inputs.shape[-2:] == (28, 28) and inputs.ndim in (2, 3):
                return inputs.reshape(-1, 28, 28)  # already MNIST style
            if inputs.ndim == 2:
                return to_mnist(inputs)[None]
            return np.stack([to_mnist(a) for a in inputs])
        images = []
        for item in inputs:
            if isinstance(item, (str, os.PathLike)):
                images.append(read_image(Path(item)))
            elif isinstance(item, Image.Image):
                images.append(to_mnist(item))
            else:
                images.append(self.as_images(np.asarray(item))[0])
        return np.stack(images)

    def predict_proba(self, inputs) -> np.ndarray:
        return self.probabilities(self.as_images(inputs))

    def predict(self, inputs) -> np.ndarray:
        """Digits for arrays (uint8 [N, 28, 28] MNIST style, or any picture), PIL images or paths."""
        return self.predict_proba(inputs).argmax(1)


def predict_files(predictor: Predictor, target: Path) -> list[ImagePrediction]:
    """Every image under `target` (or `target` itself); a bad file gets an error, the rest their digits."""
    target = Path(target)
    if not target.exists():
        raise DigitrecError("no such file or folder", where=str(target))
    files = list(iter_image_files(target)) if target.is_dir() else [target]
    if not files:
        raise DigitrecError("no image files found", where=str(target), expected="PNG, JPEG, GIF, BMP or WebP files")
    base = target.parent
    images, results, ok = [], [], []
    for path in files:
        name = str(path.relative_to(base))
        try:
            images.append(read_image(path))
            ok.append(len(results))
            results.append(ImagePrediction(name, None, None, None))
        except DigitrecError as e:
            results.append(ImagePrediction(name, None, None, None, error=e.what))
    if images:
        probs = predictor.probabilities(np.stack(images))
        for i, p in zip(ok, probs, strict=True):
            results[i].digit = int(p.argmax())
            results[i].confidence = float(p.max())
            results[i].probabilities = [round(float(v), 6) for v in p]
    return results


def write_submission(predictor: Predictor, digits: Digits, out: Path) -> np.ndarray:
    """Kaggle's `ImageId,Label`, ImageId from 1, one row per input row; written atomically."""
    labels = predictor.probabilities(digits.x).argmax(1)
    buffer = io.StringIO()
    buffer.write("ImageId,Label\n")
    buffer.writelines(f"{i},{d}\n" for i, d in enumerate(labels, start=1))
    atomic_write_text(Path(out), buffer.getvalue())
    return labels
