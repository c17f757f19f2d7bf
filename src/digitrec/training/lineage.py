"""A run's lineage: its teacher and init run, loaded and refused if they may have learnt its held-out digits."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from digitrec.core.errors import DigitrecError
from digitrec.inference.runs import RunConfig, RunRef, load_run, run_path, weights_sha256
from digitrec.models.recipes import Recipe

if TYPE_CHECKING:
    from torch import nn


def same_held_out(config: RunConfig, recipe: Recipe, data_sha256: str, where: str, role: str) -> None:
    """Refuses a run that may have learnt digits this recipe holds out for validation."""
    if not recipe.val_fraction:
        return
    try:
        splits = config.splits()
    except DigitrecError:
        splits = set()
    if splits != {(data_sha256, recipe.val_fraction, recipe.split_seed)}:
        raise DigitrecError(
            f"the {role} may have learnt the digits this run holds out, so validation would flatter this run",
            where=where,
            expected=f"--val-fraction 0, or a {role} trained on the same data with the same --val-fraction "
            "and split_seed",
        )


def load_teacher(recipe: Recipe, data_sha256: str) -> tuple[nn.Module, RunRef]:
    """The teacher run's model, folded for fast inference, and what the student's config records of it.

    Refused when the teacher may have learnt digits the student holds out for validation."""
    from digitrec.models.architectures import fuse_for_inference

    model, config = load_run(recipe.teacher)
    same_held_out(config, recipe, data_sha256, recipe.teacher, "teacher")
    info = RunRef(str(Path(recipe.teacher).resolve()), config.arch, weights_sha256(Path(recipe.teacher)))
    return fuse_for_inference(model).requires_grad_(False), info


def load_init(recipe: Recipe, data_sha256: str) -> tuple[dict, RunRef]:
    """The weights (a state dict) of the run `recipe.init` names, for a network of `recipe.arch` to start
    from, and what the new run's config records of it. Refused when it is another architecture or an
    ensemble, or may have learnt digits this run holds out."""
    from digitrec.models.architectures import ShiftAverage

    model, config = load_run(recipe.init)
    if config.arch != recipe.arch:
        raise DigitrecError(f"init run is a {config.arch}, not a {recipe.arch}", where=recipe.init,
                            expected=f"a run of --arch {recipe.arch}, or --arch {config.arch}")
    same_held_out(config, recipe, data_sha256, recipe.init, "init run")
    network = model.model if isinstance(model, ShiftAverage) else model
    info = RunRef(str(run_path(recipe.init).resolve()), config.arch, weights_sha256(run_path(recipe.init)))
    return network.state_dict(), info
