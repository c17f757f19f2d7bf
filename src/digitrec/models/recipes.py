"""Training recipes: everything that decides how a model is trained, typed, named, overridable.

`digitrec train --recipe NAME --set key=value` starts from a named recipe and changes any field; an
unknown key or a value of the wrong type is refused with one line naming the valid keys.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from digitrec.core.constants import IMAGE_SIZE
from digitrec.core.errors import DigitrecError


@dataclass(frozen=True)
class Recipe:
    """Everything that decides how a model is trained; stored whole in the run's config.json."""

    arch: str = "cnn"
    epochs: int = 7
    batch_size: int = 128
    lr: float = 6e-3
    weight_decay: float = 5e-4
    optimizer: str = "adamw"  # or "adam"
    schedule: str = "onecycle"  # or "constant"
    label_smoothing: float = 0.0
    rotate_deg: float = 10.0  # random affine augmentation on whole batches; 0 turns it off
    scale: float = 0.1
    shift_px: float = 2.0
    lowres: float = 0.0  # fraction of each batch shrunk to 7-16 px and scaled back up (small, blurry digits)
    # Other hands, pens and scanners: fractions of each batch whose strokes are made a pixel thicker or
    # thinner; block-averaged to 8x8 or 16x16 counts and scaled back up (old scanners); given another ink
    # level profile (gamma 0.5-2: faint pencil, saturated marker); broken by small gaps.
    thickness: float = 0.0
    blocky: float = 0.0
    ink_levels: float = 0.0
    broken: float = 0.0
    # Fraction of each batch drawn hollow: only the outline of a stroke a pixel wider (outlined lettering,
    # "bubble" digits). A teacher reads these digits before they are hollowed: the change keeps what a digit is.
    hollow: float = 0.0
    # Fraction of each batch replaced by the digit as a photo, a marker, a ball-point, pencil, ruled paper or an
    # old scanner gives it, read back through preprocessing (`digitrec.data.views`); `render_views` such
    # pictures are made of each training digit, once, and cached.
    rendered: float = 0.0
    render_views: int = 2
    # Which renderers draw those views (`digitrec.data.views.RENDERERS`), comma-separated; the default is
    # `rendered.TRAINING_KINDS`, which leaves out digits stretched to fill a box and printed frames. The bundled
    # network names `boxed` too: going on from trained weights with a teacher that had seen such views, it cost
    # MNIST validation nothing, where a student from random weights lost 0.2 % (docs/decisions/0001-bundled-model.md).
    render_kinds: str = "photos,scans,marker,ballpoint,pencil,ruled"
    elastic_px: float = 0.0  # largest shift of a smooth random (elastic) distortion, in pixels; 0: off
    ema: float = 0.0  # decay of an exponential moving average of the weights, which become the model; 0: off
    tta_shift_px: int = 0  # the saved model also reads each digit shifted this far each way (ShiftAverage); 0: off
    # Distillation: a run folder (often an ensemble) whose probabilities on each augmented batch join the
    # labels as targets, `teacher_weight` of the way; "": learn from the labels alone.
    teacher: str = ""
    teacher_weight: float = 0.8
    # What the teacher reads: "view", the very batch the student reads (its soft answers then also say how
    # much of a digit a pen, scanner or augmentation left readable), or "clean", the same training digit
    # turned and shifted alike but as MNIST wrote it (no rendered view, pen, scanner or ink change), so a
    # view the teacher misreads still gets the digit's answer.
    teacher_reads: str = "view"
    # A run folder whose weights the network starts from instead of random ones (the same architecture, the
    # same held-out digits): to go on learning from a run, with another teacher or other settings; "": random.
    init: str = ""
    val_fraction: float = 0.1
    seed: int = 0  # initial weights, shuffling and augmentation
    split_seed: int = 0  # which digits are held out: seeds of one ensemble share it, so its validation is honest
    # A budget in optimizer steps instead of epochs (0: use `epochs`): a smaller data set, such as
    # Kaggle's 42,000-row train.csv, then gets more epochs for the same amount of learning.
    steps: int = 0

    @classmethod
    def field_types(cls) -> dict[str, type]:
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in fields(cls)}

    @classmethod
    def from_dict(cls, stored: dict) -> Recipe:
        """A recipe as a run's config.json recorded it. Fields added since then take their defaults; a
        field this version no longer has is dropped, so older runs still load."""
        known = cls.field_types()
        if "split_seed" not in stored:  # runs from before the split had its own seed split by `seed`
            stored = {**stored, "split_seed": stored.get("seed", 0)}
        return cls(**{k: v for k, v in stored.items() if k in known})

    def update(self, **overrides) -> Recipe:
        """A copy with `overrides` (None: not given); an unknown field is refused."""
        known = self.field_types()
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise DigitrecError(f"unknown recipe field '{unknown[0]}'", expected="one of " + ", ".join(known))
        chosen = {k: v for k, v in overrides.items() if v is not None}
        if "epochs" in chosen and "steps" not in chosen:
            chosen["steps"] = 0  # epochs asked for replace a step budget
        return replace(self, **chosen)

    def check(self) -> Recipe:
        """Refuse settings that cannot train, or make no sense, before anything is written (instead of a
        traceback mid-run, or a run that "finishes" having learnt nothing); returns the recipe."""
        for name in self.field_types():
            check_setting(name, getattr(self, name))
        if self.epochs < 1 and self.steps < 1:
            raise DigitrecError(f"recipe setting epochs={self.epochs!r}", expected="at least 1")  # or steps
        return self

    def as_dict(self) -> dict:
        return asdict(self)

    def epochs_for(self, n_train: int) -> int:
        """Epochs to run over `n_train` images: `epochs`, or the step budget in whole epochs."""
        if not self.steps:
            return self.epochs
        return max(1, round(self.steps / math.ceil(n_train / self.batch_size)))

    @property
    def views(self) -> int:
        """How many times the saved model reads each digit: once, or as given and four times shifted."""
        return 5 if self.tta_shift_px else 1

    @property
    def augment(self) -> bool:
        return bool(self.rotate_deg or self.scale or self.shift_px or self.lowres or self.elastic_px or self.thickness
                    or self.blocky or self.ink_levels or self.broken or self.hollow or self.rendered)


SEED_MAX = 2**32 - 1  # seeds numpy and torch both take: -1 or 2**64 is a traceback in either, after the run began


def _within(low: float, high: float, below_high: bool = False) -> Callable[[Any], bool]:
    return lambda v: low <= v < high if below_high else low <= v <= high


def _is_arch(name: str) -> bool:
    from digitrec.models.architectures import list_models  # models imports torch; a recipe is read on torch-free paths

    return name in list_models()


def _arch_names() -> str:
    from digitrec.models.architectures import list_models

    return ", ".join(list_models())


def _are_render_kinds(text: str) -> bool:
    from digitrec.data.views import RENDERERS

    kinds = text.split(",")
    return all(kind in RENDERERS for kind in kinds) and len(set(kinds)) == len(kinds)


def _render_kind_names() -> str:
    from digitrec.data.views import RENDERERS

    return "different kinds from " + ", ".join(RENDERERS) + ", comma-separated"


def _is_run_or_none(path: str) -> bool:
    """"" (none), or a folder holding a run's config.json: checked before any trial or epoch starts."""
    return not path or (Path(path) / "config.json").is_file()


_FRACTION = (_within(0, 1), "a fraction 0-1")
_PIXELS = (_within(0, IMAGE_SIZE, below_high=True), f"0 to under {IMAGE_SIZE} pixels, the picture's side")
_SEED = (_within(0, SEED_MAX), f"a seed 0-{SEED_MAX}")
_RUN = (_is_run_or_none, "a run folder (holding config.json), or nothing")
# Every field of Recipe: (is the value usable, what is expected); a callable `expected` is asked only when a
# value is refused (it imports torch or the renderers). A value of the wrong type is refused before its rule.
SETTING_RULES: dict[str, tuple[Callable[[Any], bool], str | Callable[[], str]]] = {
    "arch": (_is_arch, _arch_names),
    "epochs": (_within(0, 10_000), "0-10000 (0 only with a step budget, steps=N)"),
    "batch_size": (_within(1, 65_536), "1-65536"),
    "lr": (lambda v: 0 < v <= 1, "a learning rate over 0, at most 1"),
    "weight_decay": (_within(0, 1), "0-1"),
    "optimizer": (lambda v: v in ("adam", "adamw"), "adam or adamw"),
    "schedule": (lambda v: v in ("onecycle", "constant"), "onecycle or constant"),
    "label_smoothing": (_within(0, 1, below_high=True), "0 to under 1"),
    "rotate_deg": (_within(0, 180), "0-180 degrees"),
    "scale": (_within(0, 1, below_high=True), "0 to under 1 (each digit zoomed 1 - scale to 1 + scale)"),
    "shift_px": _PIXELS,
    "lowres": _FRACTION, "thickness": _FRACTION, "blocky": _FRACTION, "ink_levels": _FRACTION,
    "broken": _FRACTION, "hollow": _FRACTION, "rendered": _FRACTION,
    "render_views": (_within(1, 8), "1-8"),
    "render_kinds": (_are_render_kinds, _render_kind_names),
    "elastic_px": _PIXELS,
    "ema": (_within(0, 1, below_high=True), "0 (off) to under 1"),
    "tta_shift_px": (_within(0, 4), "0-4"),
    "teacher": _RUN,
    "teacher_weight": _FRACTION,
    "teacher_reads": (lambda v: v in ("view", "clean"), "view or clean"),
    "init": _RUN,
    "val_fraction": (_within(0, 0.5), "0 (train on all) to 0.5"),
    "seed": _SEED,
    "split_seed": _SEED,
    "steps": (_within(0, 10_000_000), "0 (use epochs) to 10000000"),
}
_TYPE_WORDS = {int: "an integer", float: "a finite number", str: "text"}


def check_seed(value: Any, name: str = "--seed") -> None:
    """A seed outside a recipe (`tune --seed`, `train-lines --seed`) refused in one line unless numpy and
    torch both take it."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise DigitrecError(f"{name} {value!r}", expected=f"a seed 0-{SEED_MAX}")


def check_member_seeds(recipe: Recipe, count: int) -> None:
    """The seeds of `count` members trained from `recipe` (seed, seed + 1, ...) are all usable seeds."""
    if recipe.seed + count - 1 > SEED_MAX:
        raise DigitrecError(f"seeds {recipe.seed} to {recipe.seed + count - 1} for {count} members",
                            expected=f"seeds at most {SEED_MAX}: a smaller --set seed")


def _of_type(value: Any, kind: type) -> bool:
    if isinstance(value, bool):  # JSON's true is no number of epochs
        return False
    if kind is float:
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, kind)


def check_setting(name: str, value: Any) -> None:
    """One recipe field's value, refused in one line when it is of the wrong type or out of its range."""
    kind = Recipe.field_types()[name]
    if not _of_type(value, kind):
        raise DigitrecError(f"recipe setting {name}={value!r} is not {_TYPE_WORDS[kind]}",
                            expected=f"{name} as {kind.__name__}")
    usable, expected = SETTING_RULES[name]
    if usable(value):
        return
    if SETTING_RULES[name] is _RUN:  # the path is what is wrong: named first, as any missing run folder is
        what = "no such run folder" if not Path(value).exists() else "not a run folder (no config.json)"
        raise DigitrecError(what, where=value, expected=f"a folder made by digitrec train as the {name} run ({name}= "
                            "for none)")
    raise DigitrecError(f"recipe setting {name}={value!r}", expected=expected() if callable(expected) else expected)


def parse_overrides(pairs: list[str], flag: str = "--set") -> dict:
    """`["lr=0.003", "epochs=2"]` -> `{"lr": 0.003, "epochs": 2}`, each value of its field's type and in its
    range (`check_setting`); a teacher or init run's path made absolute, so a trial on Ray finds it too."""
    types = Recipe.field_types()
    valid = "one of " + ", ".join(types)
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise DigitrecError(f"{flag} {pair!r} has no '='", expected=f"{flag} key=value, key " + valid)
        if key not in types:
            raise DigitrecError(f"{flag} {pair}: unknown recipe field '{key}'", expected=valid)
        value = _typed(text.strip(), types[key], pair, flag)
        check_setting(key, value)
        if key in ("teacher", "init") and value:
            value = str(Path(value).resolve())
        out[key] = value
    return out


def _typed(text: str, kind: type, pair: str, flag: str):
    try:
        if kind is int:
            return int(text)
        if kind is float:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
    except ValueError:
        raise DigitrecError(f"{flag} {pair}: {text!r} is not {'an integer' if kind is int else 'a number'}",
                            expected=f"{pair.partition('=')[0].strip()} as {kind.__name__}") from None
    return text


RECIPES: dict[str, Recipe] = {
    "default": Recipe(steps=3000, label_smoothing=0.1),  # 3,000 steps: 7 epochs of MNIST's 54,000
    "fast": Recipe(epochs=1, lr=1e-2, rotate_deg=0, scale=0, shift_px=0),
    # Every setting was chosen on a 10 % validation split; the final model then learns from all of
    # MNIST's 60,000 training digits (--val-fraction 0.1 brings the held-out curve back).
    # It also reads each digit five times, shifted (tta_shift_px): +0.05 % on all five validation splits
    # tried, for five times the inference cost; the bundled model reads once (MODEL_CARD.md).
    "best": Recipe(arch="cnn-wide", epochs=30, lr=6e-3, label_smoothing=0.1,
                   rotate_deg=12.0, scale=0.12, shift_px=2.5, lowres=0.25, val_fraction=0.0, tta_shift_px=1),
    "mlp": Recipe(arch="mlp", epochs=10, batch_size=64, lr=2e-3, weight_decay=0.0, optimizer="adam",
                  rotate_deg=0, scale=0, shift_px=0),
    "keras": Recipe(arch="keras-cnn", epochs=15, batch_size=128, lr=1e-3, weight_decay=0.0, optimizer="adam",
                    schedule="constant", rotate_deg=0, scale=0, shift_px=0),
}
ARCH_RECIPES = {"cnn": "default", "mlp": "mlp", "keras-cnn": "keras"}


def list_recipes() -> list[str]:
    return list(RECIPES)


def get_recipe(name: str | None = None, arch: str | None = None) -> Recipe:
    """A named recipe, or the usual recipe of an architecture, or the default."""
    if name is None:
        name = ARCH_RECIPES.get(arch or "cnn", "default")
    if name not in RECIPES:
        raise DigitrecError(f"unknown recipe '{name}'", expected=", ".join(RECIPES))
    recipe = RECIPES[name]
    if arch is not None:
        from digitrec.models.architectures import (
            list_models,  # models imports torch; a recipe is read on torch-free paths
        )

        if arch not in list_models():
            raise DigitrecError(f"unknown architecture '{arch}'", expected=", ".join(list_models()))
        recipe = recipe.update(arch=arch)
    return recipe
