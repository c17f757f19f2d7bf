"""The run folder: config.json (a typed `RunConfig`), model.safetensors, metrics.csv, checkpoint, figures.

A run folder is what people pass around (`--model RUN_DIR`); the bundled model is one too. No other
module reads or writes these files, or indexes a config by string.
torch is imported only by the functions that need it: reading a config must not cost its import
(`digitrec predict` through onnxruntime never loads torch).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitrec.core.errors import DigitrecError
from digitrec.core.files import atomic_write_bytes, atomic_write_text, is_temporary_of
from digitrec.core.version import __version__
from digitrec.models.recipes import Recipe, check_setting

if TYPE_CHECKING:
    from torch import nn

BUNDLED_DIR = Path(__file__).parent.parent / "bundled"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.csv"
CHECKPOINT = "checkpoint.pt"
ENSEMBLE = "ensemble"  # the `arch` of a run whose model averages other runs


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    lr: float


@dataclass
class DataInfo:
    """What a run learnt from: enough to find it again and to know it has not changed."""

    path: str | None = None
    kind: str | None = None
    sha256: str | None = None
    train: int = 0
    val: int = 0


@dataclass
class RunRef:
    """Another run this one learnt from (its teacher, or the run its weights started from)."""

    path: str
    arch: str
    weights_sha256: str | None


@dataclass
class Member:
    """One model of an ensemble: its own run folder and how it reads (its test-time shifts)."""

    arch: str
    path: str
    val_accuracy: float | None = None
    tta_shift_px: int = 0


@dataclass
class RunConfig:
    """Everything config.json says about a run. Keys this version does not know are kept in `extra` and
    written back, so nothing a newer or older digitrec recorded is lost."""

    name: str
    arch: str
    recipe: Recipe = field(default_factory=Recipe)
    data: DataInfo = field(default_factory=DataInfo)
    parameters: int | None = None
    teacher: RunRef | None = None
    init: RunRef | None = None  # the run whose weights training started from
    members: list[Member] | None = None
    digitrec: str | None = None
    hardware: dict | None = None
    started: str | None = None
    finished: str | None = None
    status: str = "running"
    epochs_done: int = 0  # finished epochs: model.safetensors holds the last one's weights while it runs
    weights_sha256: str | None = None  # of model.safetensors, checked when it is loaded
    pending_weights_sha256: str | None = None  # of weights being written (a kill then leaves either file)
    train_seconds: float | None = None
    wall_seconds_last_start: float | None = None  # wall time of the last start (a resumed run counts its own)
    val_accuracy: float | None = None
    val_loss: float | None = None
    # Probabilities are softmax(logits / temperature), fitted on the run's validation digits (1: not fitted).
    temperature: float = 1.0
    trained_by: str | None = None
    test_accuracy: float | None = None
    test_accuracy_ci95: list[float] | None = None
    test_loss: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_ensemble(self) -> bool:
        return self.arch == ENSEMBLE

    @property
    def finished_ok(self) -> bool:
        return self.status == "finished"

    def splits(self, _seen: frozenset[str] = frozenset()) -> set[tuple]:
        """(data SHA-256, validation fraction, seed) of every model in the run, an ensemble's members each:
        which digits each of them may have learnt. An ensemble that lists itself among its members (directly or
        through another) is refused in one line, not followed for ever."""
        if self.is_ensemble:
            out = set()
            for m in self.members or []:
                key = str(Path(m.path).resolve())
                if key in _seen:
                    raise DigitrecError("an ensemble lists itself among its members", where=m.path,
                                        expected="members that are other runs")
                out |= read_config(m.path).splits(_seen | {key})
            return out
        return {(self.data.sha256, self.recipe.val_fraction, self.recipe.split_seed)}

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out["recipe"] = self.recipe.as_dict()
        out["data"] = asdict(self.data)
        out["teacher"] = None if self.teacher is None else asdict(self.teacher)
        if self.init is None:  # only runs that started from another's weights say so
            del out["init"]
        else:
            out["init"] = asdict(self.init)
        if self.members is None:
            del out["members"]
        else:
            out["members"] = [asdict(m) for m in self.members]
        if self.pending_weights_sha256 is None:  # written only while new weights are on their way
            del out["pending_weights_sha256"]
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> RunConfig:
        if not isinstance(raw, dict):
            raise DigitrecError(f"config is a JSON {type(raw).__name__}", where=where, expected="a JSON object")
        if not isinstance(raw.get("arch"), str):
            raise DigitrecError("config.json names no architecture", where=where, expected="'arch': a name")
        known = {f.name for f in fields(cls)}
        try:
            config = cls(
                name=str(raw.get("name") or Path(where).parent.name),
                arch=raw["arch"],
                recipe=Recipe.from_dict(raw.get("recipe") or {}),
                data=DataInfo(**(raw.get("data") or {})),
                teacher=RunRef(**raw["teacher"]) if raw.get("teacher") else None,
                init=RunRef(**raw["init"]) if raw.get("init") else None,
                members=[Member(**m) for m in raw["members"]] if raw.get("members") is not None else None,
                **{k: raw[k] for k in known - {"name", "arch", "recipe", "data", "teacher", "init", "members", "extra"}
                   if k in raw},
                extra={k: v for k, v in raw.items() if k not in known},
            )
        except (TypeError, ValueError) as e:
            raise DigitrecError(f"config.json does not describe a run ({e})", where=where) from None
        return config.check(where)

    def check(self, where: str) -> RunConfig:
        """Refuse (one line naming `where`) a config whose values loading, reading or evaluating the run
        would use and cannot: a temperature that is not a positive number, test-time shifts or a held-out
        split outside their recipe ranges, a member that is not a run. Training settings a run no longer
        uses are not judged: a run from an older digitrec still loads."""
        try:
            for name in ("tta_shift_px", "val_fraction", "split_seed"):
                check_setting(name, getattr(self.recipe, name))
            for member in self.members or []:
                check_setting("tta_shift_px", member.tta_shift_px)
        except DigitrecError as e:
            raise e.located(where) from None
        rules = {  # field: (is the value usable, what is expected)
            "temperature": (_is_number(self.temperature) and 0 < self.temperature < 1e6,
                            "a positive number (1: not calibrated)"),
            "epochs_done": (_is_int(self.epochs_done) and self.epochs_done >= 0, "0 or more"),
            "status": (isinstance(self.status, str), "text"),
            "members": (all(isinstance(m.arch, str) and isinstance(m.path, str) for m in self.members or []),
                        "members naming an architecture and a run folder"),
        }
        for name, (ok, expected) in rules.items():
            if not ok:
                raise DigitrecError(f"config.json says {name}={repr(getattr(self, name))[:80]}", where=where,
                                    expected=expected)
        return self


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


ONNX = "model.onnx"  # the same model for onnxruntime (`digitrec export`)


def own_files(run_dir: str | os.PathLike) -> list[Path]:
    """A run folder's own files, which no output of another verb may replace."""
    return [Path(run_dir) / name for name in (WEIGHTS, CONFIG, METRICS, CHECKPOINT, ONNX)]


def run_path(path: str | os.PathLike | None) -> Path:
    return BUNDLED_DIR if path is None else Path(path)


def write_config(run_dir: Path, config: RunConfig) -> None:
    atomic_write_text(Path(run_dir) / CONFIG, json.dumps(config.to_dict(), indent=2) + "\n")


def read_config(run_dir: str | os.PathLike | None) -> RunConfig:
    run_dir = run_path(run_dir)
    path = run_dir / CONFIG
    if not run_dir.is_dir():
        raise DigitrecError("no such run folder", where=str(run_dir), expected="a folder made by digitrec train")
    if not path.exists():
        raise DigitrecError("run folder has no config.json", where=str(run_dir))
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DigitrecError(f"config is not valid JSON ({e})", where=str(path)) from None
    return RunConfig.from_dict(raw, str(path))


def _weights_payload(model: nn.Module) -> tuple[bytes, str]:
    from safetensors.torch import save

    payload = save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    return payload, hashlib.sha256(payload).hexdigest()


def save_weights(run_dir: Path, model: nn.Module) -> str:
    """Weights as safetensors, written to a temporary name and renamed into place; returns their SHA-256."""
    payload, sha = _weights_payload(model)
    atomic_write_bytes(Path(run_dir) / WEIGHTS, payload)
    return sha


def replace_weights(run_dir: Path, config: RunConfig, model: nn.Module) -> None:
    """New weights for a run that has a config, safe against a kill at any moment: the config first names
    the coming weights' SHA-256 as pending, then the weights are written, then the config takes them. At
    every point the weights file on disk matches the SHA-256 or the pending one that config.json holds."""
    payload, sha = _weights_payload(model)
    config.pending_weights_sha256 = sha
    write_config(run_dir, config)
    atomic_write_bytes(Path(run_dir) / WEIGHTS, payload)
    config.weights_sha256, config.pending_weights_sha256 = sha, None


def weights_sha256(run_dir: Path) -> str | None:
    """SHA-256 of a run's weights file: what a model.onnx or a distilled run records of the weights it came from."""
    path = Path(run_dir) / WEIGHTS
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def load_weights(run_dir: Path, model: nn.Module, sha256: str | tuple[str | None, ...] | None = None) -> nn.Module:
    """A run's weights into `model`, refused unless their SHA-256 is `sha256` (or one of them)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(run_dir) / WEIGHTS
    if not path.exists():
        raise DigitrecError("run folder has no model.safetensors (killed before its first epoch ended?)",
                            where=str(run_dir), expected=f"digitrec train --resume {run_dir}")
    accepted = {s for s in (sha256 if isinstance(sha256, tuple) else (sha256,)) if s}
    if accepted and hashlib.sha256(path.read_bytes()).hexdigest() not in accepted:
        raise DigitrecError("weights changed since the run saved them (damaged or edited)", where=str(path),
                            expected="the model.safetensors whose SHA-256 config.json records")
    try:
        state = load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise DigitrecError(f"corrupt or truncated weights ({e})", where=str(path)) from None
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if broken:  # a run that diverged: every answer would be NaN, and NaN is not JSON
        raise DigitrecError(f"weights hold NaN or infinite values ({broken[0]}, {len(broken)} tensors)",
                            where=str(path), expected="the weights of a run that trained without diverging")
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


# The files a run writes through files.atomic_path: only their temporaries are ever removed from a run folder.
RUN_WRITES = (WEIGHTS, CONFIG, METRICS, CHECKPOINT, "model.onnx", "curves.png", "confusion.png", "per_class.png",
              "errors.png", "samples.png", "confusion_test.png", "errors_test.png", "report.html",
              "metrics-first-run.csv")


def remove_stale_temporaries(run_dir: Path) -> None:
    """Half-written files of a run killed during an atomic write: only regular files named as atomic_path names
    them for the run's own files (`.NAME.XXXXXXXX.tmp`); anyone else's `.*.tmp`, a folder or a symlink stays."""
    for entry in os.scandir(run_dir):
        if is_temporary_of(entry.name, RUN_WRITES) and entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)


def write_metrics(run_dir: Path, history: list[EpochMetrics]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(EpochMetrics)], lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if v is None else round(v, 6) if isinstance(v, float) else v)
                         for k, v in asdict(row).items()})
    atomic_write_text(Path(run_dir) / METRICS, out.getvalue())


def read_metrics(run_dir: Path) -> list[EpochMetrics]:
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [EpochMetrics(epoch=int(row["epoch"]),
                             **{k: (float(row[k]) if row[k] != "" else None) for k in row if k != "epoch"})
                for row in csv.DictReader(f)]


def build_model(config: RunConfig) -> nn.Module:
    """The untrained network a run's weights fit: its architecture, an ensemble's members, test-time shifts."""
    from digitrec.models.architectures import Ensemble, create_model, with_test_time_shifts

    if config.is_ensemble:
        return Ensemble([with_test_time_shifts(create_model(m.arch), m.tta_shift_px) for m in config.members or []])
    return with_test_time_shifts(create_model(config.arch), config.recipe.tta_shift_px)


def load_run(path: str | os.PathLike | None = None) -> tuple[nn.Module, RunConfig]:
    """The model of a run folder (the bundled model when `path` is None) and its config."""
    run_dir = run_path(path)
    config = read_config(run_dir)
    accepted = (config.weights_sha256, config.pending_weights_sha256)
    return load_weights(run_dir, build_model(config), accepted if config.weights_sha256 else None), config


def make_ensemble(member_dirs: list[Path], out: Path) -> RunConfig:
    """One run folder whose model averages the probabilities of several runs. A run that is itself an
    ensemble gives its members (flattened: every network is one member, its weights in this folder)."""
    from digitrec.models.architectures import Ensemble, count_parameters

    if len(member_dirs) < 2:
        raise DigitrecError("an ensemble needs at least two runs", expected="RUN_DIR RUN_DIR ...")
    loaded = [(Path(d), *load_run(d)) for d in member_dirs]
    networks, members = [], []
    for path, model, config in loaded:
        if config.is_ensemble:
            networks.extend(model.members)
            members.extend(config.members or [])
        else:
            networks.append(model)
            members.append(Member(config.arch, str(path.resolve()), config.val_accuracy, config.recipe.tta_shift_px))
    model = Ensemble(networks)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    first = loaded[0][2]
    config = RunConfig(
        name=out.name, arch=ENSEMBLE, recipe=first.recipe, data=first.data, parameters=count_parameters(model),
        members=members, digitrec=__version__, status="finished",
    )
    config.weights_sha256 = save_weights(out, model)
    write_config(out, config)
    return config
