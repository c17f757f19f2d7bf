"""Inference speed of the bundled model (or --model RUN_DIR): digitrec's two engines (PyTorch, and the
ONNX export in onnxruntime) and onnxruntime called directly (an `InferenceSession` alone), batched and one
image at a time, and `digitrec predict test.csv` end to end with each engine.

    DIGITREC_DATA=../shared/data/mnist python benchmarks/inference.py [--model RUN_DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import data_path, machine_line, print_table

from digitrec import data
from digitrec.core import hardware
from digitrec.inference import runs
from digitrec.inference.engine import ONNX_FILE, OnnxPredictor, Predictor
from digitrec.inference.export import export_onnx

MIN_IMAGES_PER_S = 20_000
MAX_P50_MS = 1.0
MAX_CSV_SECONDS = 5.0


def throughput(fn, images: np.ndarray, repeats: int = 3) -> float:
    fn(images[:512])  # warm-up
    best = min(_timed(fn, images) for _ in range(repeats))
    return len(images) / best


def _timed(fn, arg) -> float:
    start = time.perf_counter()
    fn(arg)
    return time.perf_counter() - start


def p50_single_ms(fn, images: np.ndarray, count: int = 500) -> float:
    for i in range(20):
        fn(images[i : i + 1])
    return 1000 * statistics.median(_timed(fn, images[i : i + 1]) for i in range(count))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="run folder (default: the bundled model)")
    args = parser.parse_args()
    import onnxruntime as ort

    path = data_path()
    test = data.load(path, "test")
    predictor = Predictor.load(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # A copy of the run with a fresh model.onnx: digitrec's onnx engine, without touching the run.
        run_copy = Path(tmp) / "run"
        shutil.copytree(runs.run_path(args.model), run_copy, ignore=shutil.ignore_patterns("*.png", "*.html"))
        onnx_path = export_onnx(Predictor.load(run_copy), run_copy / ONNX_FILE)
        onnx_engine = OnnxPredictor(run_copy)
        options = ort.SessionOptions()
        options.intra_op_num_threads = hardware.thread_count()  # as the onnx engine does
        runtime = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

        def bare_onnx(images: np.ndarray) -> np.ndarray:
            x = images.reshape(-1, 1, 28, 28).astype(np.float32) / 255
            return runtime.run(None, {"image": x})[0]

        hardware.configure_threads()
        batched = {
            "digitrec, PyTorch engine (Predictor)": throughput(predictor.probabilities, test.x),
            "digitrec, onnx engine (OnnxPredictor)": throughput(onnx_engine.probabilities, test.x),
            "onnxruntime alone": throughput(bare_onnx, test.x),
        }
        torch.set_num_threads(1)  # one image: threads cost more than they give (as the server does)
        single_torch = p50_single_ms(predictor.probabilities, test.x)
        hardware.configure_threads()
        singles = [single_torch, p50_single_ms(onnx_engine.probabilities, test.x), p50_single_ms(bare_onnx, test.x)]
        agree = (predictor.probabilities(test.x).argmax(1) == onnx_engine.probabilities(test.x).argmax(1)).mean()
        for (name, images_per_s), single in zip(batched.items(), singles, strict=True):
            rows.append({
                "path": name,
                "batched images/s": f"{images_per_s:,.0f}",
                "p50 one image (ms)": f"{single:.3f}",
                "targets": "ok" if images_per_s >= MIN_IMAGES_PER_S and single <= MAX_P50_MS else "MISSED",
            })

        csv_path = Path(tmp) / "test.csv"
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
        from make_kaggle import write_csv

        splits = data.load_splits(path)
        x = np.concatenate([splits["test"].x, splits["train"].x])[:28_000]
        write_csv(csv_path, x, None)
        for engine in ("onnx", "torch"):
            start = time.perf_counter()
            cmd = [sys.executable, "-m", "digitrec", "predict", str(csv_path), "--out", str(Path(tmp) / "sub.csv"),
                   "--model", str(run_copy), "--engine", engine]
            subprocess.run(cmd, check=True, capture_output=True)
            csv_seconds = time.perf_counter() - start
            rows.append({"path": f"digitrec predict test.csv --engine {engine} (28,000 rows, end to end)",
                         "batched images/s": f"{28_000 / csv_seconds:,.0f}",
                         "p50 one image (ms)": f"total {csv_seconds:.2f} s",
                         "targets": "ok" if csv_seconds <= MAX_CSV_SECONDS else "MISSED"})
    print(machine_line())
    print(f"model: {predictor.name} ({predictor.config.arch}); the onnx and PyTorch engines agree on "
          f"{agree:.4%} of the 10,000 test images")
    print_table(rows)
    return 0 if all(r["targets"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
