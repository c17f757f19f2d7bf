"""The predictors: one API (`predict`, `predict_proba`, `read`) over either engine, and `load_model`.

Each engine turns uint8 [N, 28, 28] images into logits (torch also keeps its own softmax); `Engine` does the
rest for both: probabilities in batches, arrays, pictures, bytes, paths and folders, reading whole numbers.
`OnnxPredictor` runs the run folder's `model.onnx` in onnxruntime and never imports torch, which alone takes
about 2.5 s to import on a 2-core machine: the difference between a slow and a fast `digitrec predict test.csv`.
`Predictor` runs the PyTorch model (the train extra): what training and `evaluate` use.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from digitrec.core.arrays import softmax, to_float
from digitrec.core.constants import IMAGE_SIZE, INPUT_NAME, NUM_CLASSES
from digitrec.core.errors import DigitrecError
from digitrec.core.hardware import has_torch, require_torch, thread_count
from digitrec.data import read_image, read_picture_file
from digitrec.imaging.decode import open_image
from digitrec.imaging.fit import to_mnist
from digitrec.inference import runs
from digitrec.inference.batch import image_files
from digitrec.inference.runs import RunConfig
from digitrec.models import tensors
from digitrec.reading.line import LineModel
from digitrec.reading.numbers import Reading, read_number
from digitrec.reading.page import Page, open_page, read_page

if TYPE_CHECKING:
    from torch import nn

ONNX_FILE = runs.ONNX
ENGINES = ("auto", "torch", "onnx")  # auto: onnx when the run folder has a model.onnx

# What `predict`, `predict_proba` and `as_images` take: one picture or many.
Pictures = np.ndarray | Image.Image | str | os.PathLike | bytes | list


class Engine:
    """A loaded run: its config, its line model and every way in. A subclass gives `logits` (and may give
    its framework's `softmax`)."""

    config: RunConfig
    path: Path
    batch_size = 256  # images per `logits` call in `probabilities`

    @property
    def name(self) -> str:
        return self.config.name

    @cached_property
    def line_model(self) -> LineModel | None:
        """The run's line model (`RUN/lines/line.onnx`), loaded on first use; None when it has none."""
        return LineModel.of_run(self.path)

    def logits(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, 28, 28] -> the network's raw scores [N, 10], before the temperature."""
        raise NotImplementedError

    def probabilities(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """uint8 [N, 28, 28] MNIST-style images -> probabilities [N, 10]: softmax(logits / temperature)."""
        batch_size = batch_size or self.batch_size
        out = np.empty((len(images), NUM_CLASSES), dtype=np.float32)
        for i in range(0, len(images), batch_size):
            out[i : i + batch_size] = self.softmax(self.logits(images[i : i + batch_size]))
        return out

    def softmax(self, logits: np.ndarray) -> np.ndarray:
        """Logits [N, 10] -> probabilities [N, 10] at the run's temperature."""
        return softmax(logits, self.config.temperature)

    def as_images(self, pictures: Pictures) -> np.ndarray:
        """Arrays, PIL images, image bytes, paths or folders -> uint8 [N, 28, 28] through the one preprocessing
        path (a folder: every picture in it, in the order `digitrec predict FOLDER` lists them). Arrays of 28x28
        MNIST-style digits (light ink on black, centred) are taken as they are: uint8 0-255, or floats in 0-1;
        any other array is a picture, its values stretched from their least to their greatest."""
        if isinstance(pictures, (str, os.PathLike)) and Path(pictures).is_dir():
            pictures = image_files(Path(pictures))[0]
        if isinstance(pictures, (str, os.PathLike, Image.Image, bytes, bytearray)):
            pictures = [pictures]
        if isinstance(pictures, np.ndarray):
            return _array_images(pictures)
        return np.stack([self._one_image(item) for item in pictures])

    def _one_image(self, item) -> np.ndarray:
        if isinstance(item, (str, os.PathLike)):
            return read_image(Path(item))
        if isinstance(item, (bytes, bytearray)):
            return to_mnist(open_image(bytes(item)))
        if isinstance(item, Image.Image):
            return to_mnist(item)
        return _array_images(np.asarray(item))[0]

    def predict_proba(self, pictures: Pictures) -> np.ndarray:
        """Probabilities [N, 10] for whatever `as_images` takes."""
        return self.probabilities(self.as_images(pictures))

    def predict(self, pictures: Pictures) -> np.ndarray:
        """Digits [N] for arrays (uint8 [N, 28, 28] MNIST style, or any picture), PIL images, bytes, paths or
        folders."""
        return self.predict_proba(pictures).argmax(1)

    def read(self, picture: str | os.PathLike | bytes | Image.Image | np.ndarray,
             digits_only: bool = False) -> Reading | list[Reading]:
        """A whole number: the digits of one line of writing, left to right, each with its box, and the signs
        written inside it (`.` `,` `-` `/` `:`) unless `digits_only` (`digitrec.reading.numbers`). A path, image
        bytes, a PIL image or an array; a folder gives one reading per picture in it, in the order
        `digitrec read FOLDER` lists them."""
        if isinstance(picture, (str, os.PathLike)):
            path = picture if isinstance(picture, Path) else Path(picture)  # a folder's Unreadable stays one
            if path.is_dir():
                return [self.read_file(file, digits_only) for file in image_files(path)[0]]
            return self.read_file(path, digits_only)
        if isinstance(picture, (bytes, bytearray)):
            picture = open_image(bytes(picture))
        return read_number(picture, self, self.line_model, digits_only)

    def read_page(self, picture: str | os.PathLike | bytes | Image.Image | np.ndarray,
                  digits_only: bool = False) -> Page:
        """Every handwritten field on a page (a form, a table, rows of digit boxes), each read as a number, in
        reading order (`digitrec.reading.page`). A path, image bytes, a PIL image or an array."""
        if isinstance(picture, (str, os.PathLike)):
            try:
                return read_page(open_page(read_picture_file(Path(picture))), self, self.line_model, digits_only)
            except DigitrecError as e:
                raise e.located(str(picture)) from None
        if isinstance(picture, (bytes, bytearray)):
            picture = open_page(bytes(picture))
        return read_page(picture, self, self.line_model, digits_only)

    def read_file(self, path: Path, digits_only: bool = False) -> Reading:
        """One picture file read as a number; its errors name the file. `path` may be an entry of a folder's
        walk (`data.iter_image_files`), whose unreadable entries are their own error."""
        try:
            return read_number(open_image(read_picture_file(path)), self, self.line_model, digits_only)
        except DigitrecError as e:
            raise e.located(str(path)) from None


def _array_images(pictures: np.ndarray) -> np.ndarray:
    """An array of 28x28 MNIST-style digits as it is (uint8, or floats in 0-1), else one or more pictures."""
    if pictures.shape[-2:] == (IMAGE_SIZE, IMAGE_SIZE) and pictures.ndim in (2, 3):
        if pictures.dtype == np.uint8:
            return pictures.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)  # already MNIST style
        if np.issubdtype(pictures.dtype, np.floating) and pictures.size and \
                pictures.min() >= 0 and pictures.max() <= 1:  # MNIST as most libraries give it
            return np.round(pictures * 255).astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    if pictures.ndim == 2:
        return to_mnist(pictures)[None]
    return np.stack([to_mnist(a) for a in pictures])


class Predictor(Engine):
    """The PyTorch engine: a run's network, folded for inference (the train extra)."""

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

    def logits(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, 28, 28] -> the network's raw scores [N, 10], before the temperature."""
        return tensors.forward_batches(self.model, images, self.batch_size).numpy() if len(images) else \
            np.empty((0, NUM_CLASSES), np.float32)

    def softmax(self, logits: np.ndarray) -> np.ndarray:
        """torch's softmax, which training and a run's own figures use: numpy's differs by up to 2e-7 (measured
        on 5,000 MNIST test digits), enough to change `digitrec predict --engine torch --json`'s confidences."""
        import torch

        return (torch.from_numpy(logits) / self.config.temperature).softmax(1).numpy()


class OnnxPredictor(Engine):
    """The onnxruntime engine: a run folder's `model.onnx`, without torch.

    The ONNX file records the SHA-256 of the weights it was exported from; a file that no longer
    matches the run's `model.safetensors` is refused rather than silently used."""

    batch_size = 1024

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort  # 0.3 s to import; the torch engine never needs it

        self.path = Path(path)
        self.config = runs.read_config(self.path)
        onnx_path = self.path / ONNX_FILE
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or thread_count()
        try:
            self.runtime = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable models
            raise DigitrecError(f"unreadable ONNX model ({e.__class__.__name__})", where=str(onnx_path)) from None
        names = [i.name for i in self.runtime.get_inputs()]
        if names != [INPUT_NAME] or list(self.runtime.get_inputs()[0].shape[1:]) != [1, IMAGE_SIZE, IMAGE_SIZE]:
            raise DigitrecError(f"model.onnx takes {names} {[i.shape for i in self.runtime.get_inputs()]}",
                                where=str(onnx_path),
                                expected=f"one input '{INPUT_NAME}' of [N, 1, 28, 28] (digitrec export)")
        recorded = self.runtime.get_modelmeta().custom_metadata_map.get("weights_sha256")
        if recorded != runs.weights_sha256(self.path):
            raise DigitrecError("model.onnx was exported from other weights than model.safetensors",
                                where=str(onnx_path),
                                expected=f"a fresh export: digitrec export --model {self.path} --out {onnx_path}")

    def logits(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, 28, 28] -> the network's raw scores [N, 10], before the temperature."""
        logits = self.runtime.run(None, {INPUT_NAME: to_float(images)})[0]
        if not np.isfinite(logits).all():  # exported from weights that diverged
            raise DigitrecError("the model answers NaN or infinity", where=str(self.path / ONNX_FILE),
                                expected="a model exported from finite weights")
        return logits


def load_predictor(path: str | os.PathLike | None = None, engine: str = "auto",
                   threads: int | None = None) -> Engine:
    """The run's model (the bundled one when `path` is None): onnxruntime when the run has a model.onnx (or
    `engine="onnx"`), without importing torch; PyTorch otherwise (or `engine="torch"`).
    `threads`: onnxruntime's threads (default: the cores)."""
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


def load_model(path: str | os.PathLike | None = None, engine: str = "auto") -> Engine:
    """`digitrec.load_model`: a run folder (the bundled model when `path` is None) as a predictor whose
    `predict`, `predict_proba` and `read` take arrays, PIL images, bytes, paths and folders. engine "auto":
    onnxruntime when the run has a model.onnx (the bundled model does), without importing torch; "torch"
    (or a run without model.onnx): PyTorch, from the train extra (`pip install "digitrec[train]"`)."""
    return load_predictor(path, engine)


def scoring_predictor(path: str | os.PathLike | None = None) -> Engine:
    """The engine `evaluate` and `report` score with: PyTorch when it is installed, the engine a run's own
    validation figures came from; else the run's model.onnx in onnxruntime (the core install)."""
    return load_predictor(path, "torch" if has_torch() else "auto")
