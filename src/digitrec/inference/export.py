"""ONNX export: float32 [N, 1, 28, 28] in [0, 1] (MNIST style, preprocessed) -> logits [N, 10]."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from digitrec.core.constants import IMAGE_SIZE, INPUT_NAME, NUM_CLASSES, OUTPUT_NAME
from digitrec.core.errors import DigitrecError
from digitrec.core.files import atomic_path
from digitrec.core.version import __version__
from digitrec.inference.engine import Predictor
from digitrec.inference.runs import weights_sha256

PREPROCESSING = ("float32 [N, 1, 28, 28] in [0, 1]: light ink on black, cropped to the ink, fitted in 20x20, "
                 "centred by mass in 28x28 (digitrec.imaging.fit.to_mnist, then / 255); outputs logits [N, 10]; "
                 "probabilities are softmax(logits / temperature), the temperature in this file's metadata")


def export_onnx(predictor: Predictor, out: Path, opset: int = 18) -> Path:
    try:
        import onnx  # an optional extra: everything but export works without it
    except ImportError:
        raise DigitrecError("ONNX export needs the onnx package", expected='pip install "digitrec[train]"') from None

    model = predictor.model.eval()
    example = torch.rand(2, 1, IMAGE_SIZE, IMAGE_SIZE)
    out = Path(out)
    with atomic_path(out) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                opset_version=opset, dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, dynamo=False,
            )
        proto = onnx.load(tmp)
        metadata = {
            "name": predictor.name,
            "architecture": predictor.config.arch,
            "digitrec_version": __version__,
            "test_accuracy": json.dumps(predictor.config.test_accuracy),
            "preprocessing": PREPROCESSING,
            "labels": json.dumps(list(range(NUM_CLASSES))),
            "temperature": str(predictor.config.temperature),  # probabilities = softmax(logits / temperature)
        }
        weights = weights_sha256(predictor.path)
        if weights:  # lets `digitrec predict` check that a run's model.onnx still matches its weights
            metadata["weights_sha256"] = weights
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name = "digitrec"
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return out
