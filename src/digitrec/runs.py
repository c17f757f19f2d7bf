"""The run folder: config.json, model.safetensors, metrics.csv, checkpoint and figures.

A run folder is what people pass around (`--model RUN_DIR`); the bundled model is one too.
torch is imported only by the functions that need it: reading a config must not cost its import
(`digitrec predict` through onnxruntime never loads torch).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING

from digitrec.data import atomic_write_bytes, atomic_write_text
from digitrec.errors import DigitrecError

if TYPE_CHECKING:
    from torch import nn

BUNDLED_DIR = Path(__file__).parent / "bundled"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.csv"
CHECKPOINT = "checkpoint.pt"


def run_path(path: str | os.PathLike | None) -> Path:
    return BUNDLED_DIR if path is None else Path(path)


def write_config(run_dir: Path, config: dict) -> None:
    atomic_write_text(Path(run_dir) / CONFIG, json.dumps(config, indent=2, sort_keys=False) + "\n")


def read_config(run_dir: str | os.PathLike | None) -> dict:
    run_dir = run_path(run_dir)
    path = run_dir / CONFIG
    if not run_dir.is_dir():
        raise DigitrecError("no such run folder", where=str(run_dir), expected="a folder made by digitrec train")
    if not path.exists():
        raise DigitrecError("run folder has no config.json", where=str(run_dir))
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DigitrecError(f"config is not valid JSON ({e})", where=str(path)) from None


def save_weights(run_dir: Path, model: nn.Module) -> None:
    """Weights as safetensors, written to a temporary name and renamed into place."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    target = Path(run_dir) / WEIGHTS
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=".model.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def weights_sha256(run_dir: Path) -> str | None:
    """SHA-256 of a run's weights file: what a model.onnx or a distilled run records of the weights it came from."""
    path = Path(run_dir) / WEIGHTS
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def load_weights(run_dir: Path, model: nn.Module) -> nn.Module:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(run_dir) / WEIGHTS
    if not path.exists():
        raise DigitrecError("run folder has no model.safetensors (did training finish?)", where=str(run_dir))
    try:
        state = load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise DigitrecError(f"corrupt or truncated weights ({e})", where=str(path)) from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise DigitrecError(f"weights do not fit the architecture: {first}", where=str(path)) from None
    return model.eval()


def save_checkpoint(run_dir: Path, state: dict) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(Path(run_dir) / CHECKPOINT, buffer.getvalue())


def load_checkpoint(run_dir: Path) -> dict:
    import torch

    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise DigitrecError("no checkpoint to resume from", where=str(run_dir), expected=CHECKPOINT)
    try:
        # weights_only: a checkpoint is data, never code to run.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a damaged zip or pickle stream
        raise DigitrecError(f"corrupt or half-written checkpoint ({e.__class__.__name__})", where=str(path)) from None


def write_metrics(run_dir: Path, history: list) -> None:
    out = io.StringIO()
    names = [f.name for f in fields(history[0])] if history else []
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if v is None else round(v, 6) if isinstance(v, float) else v)
                         for k, v in asdict(row).items()})
    atomic_write_text(Path(run_dir) / METRICS, out.getvalue())


def read_metrics(run_dir: Path) -> list:
    from digitrec.train import EpochMetrics

    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows.append(EpochMetrics(
                epoch=int(row["epoch"]),
                **{k: (float(row[k]) if row[k] != "" else None) for k in row if k != "epoch"},
            ))
    return rows


def load_run(path: str | os.PathLike | None = None) -> tuple[nn.Module, dict]:
    """The model of a run folder (the bundled model when `path` is None) and its config."""
    from digitrec.models import Ensemble, create_model, with_test_time_shifts

    run_dir = run_path(path)
    config = read_config(run_dir)
    if "arch" not in config:
        raise DigitrecError("config.json names no architecture", where=str(run_dir / CONFIG), expected="'arch'")
    if config["arch"] == "ensemble":
        model = Ensemble([with_test_time_shifts(create_model(m["arch"]), m.get("tta_shift_px", 0))
                          for m in config["members"]])
    else:
        model = with_test_time_shifts(create_model(config["arch"]), config.get("recipe", {}).get("tta_shift_px", 0))
    return load_weights(run_dir, model), config


def make_ensemble(member_dirs: list[Path], out: Path) -> dict:
    """One run folder whose model averages the probabilities of several runs."""
    from digitrec import __version__
    from digitrec.models import Ensemble, count_parameters

    if len(member_dirs) < 2:
        raise DigitrecError("an ensemble needs at least two runs", expected="RUN_DIR RUN_DIR ...")
    loaded = [load_run(d) for d in member_dirs]
    model = Ensemble([m for m, _ in loaded])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "name": out.name,
        "arch": "ensemble",
        "members": [{"arch": c["arch"], "path": str(Path(d).resolve()), "val_accuracy": c.get("val_accuracy"),
                     "tta_shift_px": c.get("recipe", {}).get("tta_shift_px", 0)}
                    for d, (_, c) in zip(member_dirs, loaded, strict=True)],
        "parameters": count_parameters(model),
        "data": loaded[0][1].get("data", {}),
        "recipe": loaded[0][1].get("recipe", {}),
        "digitrec": __version__,
        "status": "finished",
    }
    save_weights(out, model)
    write_config(out, config)
    return config
