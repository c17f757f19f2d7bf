"""Predictions from a trained model: arrays, pictures, folders, Kaggle submissions.

Two engines behind one interface (`probabilities`): `Predictor` runs the PyTorch model; `OnnxPredictor`
runs the run folder's `model.onnx` in onnxruntime and never imports torch, which alone takes about
2.5 s to import on a 2-core machine: the difference between a slow and a fast `digitrec predict test.csv`.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from digitrec import runs
from digitrec.data import Digits, atomic_write_text, iter_image_files, read_image
from digitrec.errors import DigitrecError
from digitrec.preprocess import to_mnist

if TYPE_CHECKING:
    from torch import nn

ONNX_FILE = "model.onnx"
ENGINES = ("auto", "torch", "onnx")


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
        from digitrec.models import fuse_for_inference

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

    def probabilities(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 [N, 28, 28] MNIST-style images -> probabilities [N, 10]."""
        import torch

        from digitrec.train import to_input

        if len(images) == 0:
            return np.empty((0, 10), dtype=np.float32)
        with torch.inference_mode():
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


class OnnxPredictor:
    """A run folder's `model.onnx` in onnxruntime: the same `probabilities` as `Predictor`, without torch.

    The ONNX file records the SHA-256 of the weights it was exported from; a file that no longer
    matches the run's `model.safetensors` is refused rather than silently used."""

    def __init__(self, path: Path):
        import onnxruntime as ort

        from digitrec.hardware import thread_count

        self.path = Path(path)
        self.config = runs.read_config(self.path)
        onnx_path = self.path / ONNX_FILE
        options = ort.SessionOptions()
        options.intra_op_num_threads = thread_count()
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable models
            raise DigitrecError(f"unreadable ONNX model ({e.__class__.__name__})", where=str(onnx_path)) from None
        recorded = self.session.get_modelmeta().custom_metadata_map.get("weights_sha256")
        if recorded != runs.weights_sha256(self.path):
            raise DigitrecError("model.onnx was exported from other weights than model.safetensors",
                                where=str(onnx_path),
                                expected=f"a fresh export: digitrec export --model {self.path} --out {onnx_path}")

    @property
    def name(self) -> str:
        return self.config.get("name") or self.path.name

    def probabilities(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """uint8 [N, 28, 28] MNIST-style images -> probabilities [N, 10]."""
        out = np.empty((len(images), 10), dtype=np.float32)
        for i in range(0, len(images), batch_size):
            x = images[i : i + batch_size].reshape(-1, 1, 28, 28).astype(np.float32) / 255
            logits = self.session.run(None, {"image": x})[0]
            exp = np.exp(logits - logits.max(1, keepdims=True))
            out[i : i + batch_size] = exp / exp.sum(1, keepdims=True)
        return out


def load_predictor(path: str | os.PathLike | None = None, engine: str = "auto") -> Predictor | OnnxPredictor:
    """The run's model for batch prediction: onnxruntime when the run has a model.onnx (or `engine="onnx"`),
    PyTorch otherwise (or `engine="torch"`)."""
    run_dir = runs.run_path(path)
    if engine not in ENGINES:
        raise DigitrecError(f"unknown engine '{engine}'", expected=", ".join(ENGINES))
    if engine == "onnx" and not (run_dir / ONNX_FILE).exists():
        raise DigitrecError("run folder has no model.onnx", where=str(run_dir),
                            expected=f"digitrec export --model {run_dir} --out {run_dir / ONNX_FILE}")
    if engine == "onnx" or (engine == "auto" and (run_dir / ONNX_FILE).exists()):
        return OnnxPredictor(run_dir)
    return Predictor.load(run_dir)


def predict_files(predictor: Predictor | OnnxPredictor, target: Path) -> list[ImagePrediction]:
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


def write_submission(predictor: Predictor | OnnxPredictor, digits: Digits, out: Path) -> np.ndarray:
    """Kaggle's `ImageId,Label`, ImageId from 1, one row per input row; written atomically."""
    labels = predictor.probabilities(digits.x).argmax(1)
    buffer = io.StringIO()
    buffer.write("ImageId,Label\n")
    buffer.writelines(f"{i},{d}\n" for i, d in enumerate(labels, start=1))
    atomic_write_text(Path(out), buffer.getvalue())
    return labels
