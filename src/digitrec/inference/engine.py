"""Predictions from a trained model: arrays, pictures, folders, Kaggle submissions.

Two engines behind one interface (`probabilities`): `Predictor` runs the PyTorch model; `OnnxPredictor`
runs the run folder's `model.onnx` in onnxruntime and never imports torch, which alone takes about
2.5 s to import on a 2-core machine: the difference between a slow and a fast `digitrec predict test.csv`.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from digitrec.core.arrays import softmax, to_float
from digitrec.core.constants import IMAGE_FORMATS_TEXT, IMAGE_SIZE, INPUT_NAME, NUM_CLASSES, UNSURE_BELOW
from digitrec.core.errors import DigitrecError
from digitrec.core.files import atomic_write_text
from digitrec.core.hardware import has_torch, require_torch, thread_count
from digitrec.data import Digits, iter_image_files, read_image, read_picture_file
from digitrec.imaging.decode import open_image
from digitrec.imaging.fit import to_mnist
from digitrec.inference import runs
from digitrec.inference.runs import RunConfig
from digitrec.models import tensors
from digitrec.reading.line import LineModel
from digitrec.reading.numbers import Reading, read_number

if TYPE_CHECKING:
    from torch import nn

ONNX_FILE = runs.ONNX
ENGINES = ("auto", "torch", "onnx")  # auto: onnx when the run folder has a model.onnx


@dataclass
class ImagePrediction:
    file: str
    digit: int | None
    confidence: float | None
    probabilities: list[float] | None
    error: str | None = None

    @property
    def unsure(self) -> bool | None:
        """Read, but with a confidence under UNSURE_BELOW: more often wrong than a user would want."""
        return None if self.confidence is None else self.confidence < UNSURE_BELOW

    def as_dict(self) -> dict:
        out = {"file": self.file, "digit": self.digit, "confidence": self.confidence, "unsure": self.unsure,
               "probabilities": self.probabilities}
        if self.error:
            out["error"] = self.error
        return out


class _Engine:
    """What both engines share over their `probabilities` and `logits`."""

    config: RunConfig
    path: Path

    @property
    def name(self) -> str:
        return self.config.name

    @cached_property
    def line_model(self) -> LineModel | None:
        """The run's line model (`RUN/lines/line.onnx`), loaded on first use; None when it has none."""
        return LineModel.of_run(self.path)

    def probabilities(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 [N, 28, 28] MNIST-style images -> probabilities [N, 10]."""
        raise NotImplementedError

    def read(self, picture: str | os.PathLike | bytes | Image.Image) -> Reading | list[Reading]:
        """A whole number: the digits of one line of writing, left to right, each with its box
        (`digitrec.reading.numbers`). A path, image bytes or a PIL image; a folder gives one reading per picture in
        it, in the order `digitrec read FOLDER` lists them."""
        if isinstance(picture, (str, os.PathLike)):
            path = picture if isinstance(picture, Path) else Path(picture)  # a folder's Unreadable stays one
            if path.is_dir():
                return [self._read_file(file) for file in _image_files(path)[0]]
            return self._read_file(path)
        if isinstance(picture, bytes):
            picture = open_image(picture)
        return read_number(picture, self, self.line_model)

    def _read_file(self, path: Path) -> Reading:
        try:
            return read_number(open_image(read_picture_file(path)), self, self.line_model)
        except DigitrecError as e:
            raise e.located(str(path)) from None

    def as_images(self, pictures) -> np.ndarray:
        """Arrays, PIL images, paths or folders -> uint8 [N, 28, 28] through the one preprocessing path (a folder:
        every picture in it, in the order `digitrec predict FOLDER` lists them). Arrays of 28x28 MNIST-style
        digits (light ink on black, centred) are taken as they are: uint8 0-255, or floats in 0-1; any other
        array is a picture, its values stretched from their least to their greatest."""
        if isinstance(pictures, (str, os.PathLike)) and Path(pictures).is_dir():
            pictures = _image_files(Path(pictures))[0]
        if isinstance(pictures, (str, os.PathLike, Image.Image)):
            pictures = [pictures]
        if isinstance(pictures, np.ndarray):
            if pictures.shape[-2:] == (IMAGE_SIZE, IMAGE_SIZE) and pictures.ndim in (2, 3):
                if pictures.dtype == np.uint8:
                    return pictures.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)  # already MNIST style
                if np.issubdtype(pictures.dtype, np.floating) and pictures.size and \
                        pictures.min() >= 0 and pictures.max() <= 1:  # MNIST as most libraries give it
                    return np.round(pictures * 255).astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
            if pictures.ndim == 2:
                return to_mnist(pictures)[None]
            return np.stack([to_mnist(a) for a in pictures])
        images = []
        for item in pictures:
            if isinstance(item, (str, os.PathLike)):
                images.append(read_image(Path(item)))
            elif isinstance(item, Image.Image):
                images.append(to_mnist(item))
            else:
                images.append(self.as_images(np.asarray(item))[0])
        return np.stack(images)

    def predict_proba(self, pictures) -> np.ndarray:
        return self.probabilities(self.as_images(pictures))

    def predict(self, pictures) -> np.ndarray:
        """Digits for arrays (uint8 [N, 28, 28] MNIST style, or any picture), PIL images or paths."""
        return self.predict_proba(pictures).argmax(1)


class Predictor(_Engine):
    """A loaded model and its run config: the object the CLI, the server and the Python API share."""

    def __init__(self, model: nn.Module, config: RunConfig, path: Path):
        from digitrec.models.architectures import fuse_for_inference  # models imports torch: only this engine needs it

        self.model = fuse_for_inference(model)
        self.config = config
        self.path = path

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Predictor:
        run_dir = runs.run_path(path)
        model, config = runs.load_run(run_dir)
        return cls(model, config, run_dir)

    def probabilities(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 [N, 28, 28] MNIST-style images -> probabilities [N, 10]."""
        return tensors.probabilities(self.model, images, batch_size, self.config.temperature)

    def logits(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, 28, 28] -> the network's raw scores [N, 10], before the temperature."""
        return tensors.forward_batches(self.model, images, 256).numpy() if len(images) else \
            np.empty((0, NUM_CLASSES), np.float32)


class OnnxPredictor(_Engine):
    """A run folder's `model.onnx` in onnxruntime: the same `probabilities` as `Predictor`, without torch.

    The ONNX file records the SHA-256 of the weights it was exported from; a file that no longer
    matches the run's `model.safetensors` is refused rather than silently used."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort  # 0.3 s to import; the torch engine never needs it

        self.path = Path(path)
        self.config = runs.read_config(self.path)
        onnx_path = self.path / ONNX_FILE
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or thread_count()
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable models
            raise DigitrecError(f"unreadable ONNX model ({e.__class__.__name__})", where=str(onnx_path)) from None
        names = [i.name for i in self.session.get_inputs()]
        if names != [INPUT_NAME] or list(self.session.get_inputs()[0].shape[1:]) != [1, IMAGE_SIZE, IMAGE_SIZE]:
            raise DigitrecError(f"model.onnx takes {names} {[i.shape for i in self.session.get_inputs()]}",
                                where=str(onnx_path),
                                expected=f"one input '{INPUT_NAME}' of [N, 1, 28, 28] (digitrec export)")
        recorded = self.session.get_modelmeta().custom_metadata_map.get("weights_sha256")
        if recorded != runs.weights_sha256(self.path):
            raise DigitrecError("model.onnx was exported from other weights than model.safetensors",
                                where=str(onnx_path),
                                expected=f"a fresh export: digitrec export --model {self.path} --out {onnx_path}")

    def probabilities(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """uint8 [N, 28, 28] MNIST-style images -> probabilities [N, 10]."""
        out = np.empty((len(images), NUM_CLASSES), dtype=np.float32)
        for i in range(0, len(images), batch_size):
            out[i : i + batch_size] = softmax(self.logits(images[i : i + batch_size]), self.config.temperature)
        return out

    def logits(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, 28, 28] -> the network's raw scores [N, 10], before the temperature."""
        logits = self.session.run(None, {INPUT_NAME: to_float(images)})[0]
        if not np.isfinite(logits).all():  # exported from weights that diverged
            raise DigitrecError("the model answers NaN or infinity", where=str(self.path / ONNX_FILE),
                                expected="a model exported from finite weights")
        return logits


def load_predictor(path: str | os.PathLike | None = None, engine: str = "auto",
                   threads: int | None = None) -> Predictor | OnnxPredictor:
    """The run's model for batch prediction: onnxruntime when the run has a model.onnx (or `engine="onnx"`),
    PyTorch otherwise (or `engine="torch"`). `threads`: onnxruntime's threads (default: the cores)."""
    run_dir = runs.run_path(path)
    if engine not in ENGINES:
        raise DigitrecError(f"unknown engine '{engine}'", expected=", ".join(ENGINES))
    if engine == "onnx" and not (run_dir / ONNX_FILE).exists():
        raise DigitrecError("run folder has no model.onnx", where=str(run_dir),
                            expected=f"digitrec export --model {run_dir} --out {run_dir / ONNX_FILE}")
    if engine == "onnx" or (engine == "auto" and (run_dir / ONNX_FILE).exists()):
        return OnnxPredictor(run_dir, threads)
    runs.read_config(run_dir)  # a folder that is no run is named as such, with or without torch
    require_torch(str(run_dir), "the torch engine needs PyTorch" if engine == "torch" else
                  "has no model.onnx: reading it needs PyTorch")
    return Predictor.load(run_dir)


def scoring_predictor(path: str | os.PathLike | None = None) -> Predictor | OnnxPredictor:
    """The engine `evaluate` and `report` score with: PyTorch when it is installed, the engine a run's own
    validation figures came from; else the run's model.onnx in onnxruntime (the core install)."""
    return load_predictor(path, "torch" if has_torch() else "auto")


def predict_files(predictor: Predictor | OnnxPredictor, target: Path) -> list[ImagePrediction]:
    """Every image under `target` (or `target` itself); a bad file gets an error, the rest their digits."""
    files, base = _image_files(target)
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


@dataclass
class FileReading:
    file: str
    reading: Reading | None
    error: str | None = None

    def as_dict(self) -> dict:
        if self.reading is None:
            return {"file": self.file, "text": None, "confidence": None, "digits": [], "error": self.error}
        return {"file": self.file, **self.reading.as_dict()}


def read_files(predictor: Predictor | OnnxPredictor, target: Path) -> list[FileReading]:
    """Every picture under `target` (or `target` itself) read as a number; a bad file gets its error."""
    files, base = _image_files(target)
    results = []
    for path in files:
        name = str(path.relative_to(base))
        try:  # each path is a picture of the walk or its Unreadable: never `read`, whose is_dir follows links
            reading = read_number(open_image(read_picture_file(path)), predictor, predictor.line_model)
            results.append(FileReading(name, reading))
        except DigitrecError as e:
            results.append(FileReading(name, None, e.what))
    return results


def _image_files(target: Path) -> tuple[list[Path], Path]:
    target = Path(target)
    if not target.exists():
        raise DigitrecError("no such file or folder", where=str(target))
    if not target.is_dir() and not target.is_file():  # a FIFO or a device would block reading
        raise DigitrecError("not a regular file", where=str(target), expected="an image file or a folder")
    files = list(iter_image_files(target)) if target.is_dir() else [target]
    if not files:
        raise DigitrecError("no image files found", where=str(target), expected=f"{IMAGE_FORMATS_TEXT} files")
    return files, target.parent
