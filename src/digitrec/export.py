"""ONNX export: float32 [N, 1, 28, 28] in [0, 1] (MNIST style, preprocessed) -> logits [N, 10]."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import torch

from digitrec import __version__
from digitrec.errors import DigitrecError
from digitrec.predict import Predictor
from digitrec.runs import weights_sha256

PREPROCESSING = ("float32 [N, 1, 28, 28] in [0, 1]: light ink on black, cropped to the ink, fitted in 20x20, "
                 "centred by mass in 28x28 (digitrec.preprocess.to_mnist, then / 255); outputs logits [N, 10]")


def export_onnx(predictor: Predictor, out: Path, opset: int = 18) -> Path:
    try:
        import onnx
    except ImportError:
        raise DigitrecError("ONNX export needs the onnx package", expected='pip install "digitrec[onnx]"') from None

    model = predictor.model.eval()
    example = torch.rand(2, 1, 28, 28)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), tmp, input_names=["image"], output_names=["logits"], opset_version=opset,
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
            )
        proto = onnx.load(tmp)
        metadata = {
            "name": predictor.name,
            "architecture": str(predictor.config.get("arch")),
            "digitrec_version": __version__,
            "test_accuracy": json.dumps(predictor.config.get("test_accuracy")),
            "preprocessing": PREPROCESSING,
            "labels": json.dumps(list(range(10))),
        }
        weights = weights_sha256(predictor.path)
        if weights:  # lets `digitrec predict` check that a run's model.onnx still matches its weights
            metadata["weights_sha256"] = weights
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name = "digitrec"
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out
