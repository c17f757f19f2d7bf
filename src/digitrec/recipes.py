"""Training recipes: everything that decides how a model is trained, typed, named, overridable.

`digitrec train --recipe NAME --set key=value` starts from a named recipe and changes any field; an
unknown key or a value of the wrong type is refused with one line naming the valid keys.
"""

from __future__ import annotations

import math
import typing
from dataclasses import asdict, dataclass, fields, replace

from digitrec.errors import DigitrecError


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
    # old scanner gives it, read back through preprocessing (`digitrec.rendered`); `render_views` such
    # pictures are made of each training digit, once, and cached.
    rendered: float = 0.0
    render_views: int = 2
    # Which renderers draw those views (`digitrec.rendered.RENDERERS`), comma-separated; the default is
    # `rendered.TRAINING_KINDS`, which leaves out digits stretched to fill a box and printed frames. The bundled
    # network names `boxed` too: going on from trained weights with a teacher that had seen such views, it cost
    # MNIST validation nothing (session 18, MODEL_CARD), where a student from random weights lost 0.2 %.
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
        """Refuse settings that cannot train (instead of a traceback mid-run); returns the recipe."""
        from digitrec.models import list_models  # models imports torch; a recipe is read on torch-free paths
        from digitrec.rendered import RENDERERS

        fraction = "a fraction 0-1"
        kinds = self.render_kinds.split(",")
        rules = {  # field: (is the value usable, what is expected)
            "arch": (self.arch in list_models(), ", ".join(list_models())),
            "epochs": (self.epochs >= 1 or self.steps >= 1, "at least 1"),
            "steps": (self.steps >= 0, "0 or more"),
            "batch_size": (self.batch_size >= 1, "at least 1"),
            "lr": (math.isfinite(self.lr) and self.lr > 0, "a positive number"),
            "weight_decay": (math.isfinite(self.weight_decay) and self.weight_decay >= 0, "0 or more"),
            "optimizer": (self.optimizer in ("adam", "adamw"), "adam or adamw"),
            "schedule": (self.schedule in ("onecycle", "constant"), "onecycle or constant"),
            "teacher_reads": (self.teacher_reads in ("view", "clean"), "view or clean"),
            "label_smoothing": (0 <= self.label_smoothing < 1, "0 to under 1"),
            **{name: (0 <= getattr(self, name) <= 1, fraction)
               for name in ("lowres", "thickness", "blocky", "ink_levels", "broken", "hollow", "rendered",
                            "teacher_weight")},
            "render_views": (1 <= self.render_views <= 8, "1-8"),
            "render_kinds": (all(kind in RENDERERS for kind in kinds) and len(set(kinds)) == len(kinds),
                             "different kinds from " + ", ".join(RENDERERS) + ", comma-separated"),
            "ema": (0 <= self.ema < 1, "0 (off) to under 1"),
            "val_fraction": (0 <= self.val_fraction <= 0.5, "0 (train on all) to 0.5"),
            "tta_shift_px": (0 <= self.tta_shift_px <= 4, "0-4"),
        }
        for name, (ok, expected) in rules.items():
            if not ok:
                raise DigitrecError(f"recipe setting {name}={getattr(self, name)!r}", expected=expected)
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


def parse_overrides(pairs: list[str]) -> dict:
    """`["lr=0.003", "epochs=2"]` -> `{"lr": 0.003, "epochs": 2}`, each value of its field's type."""
    types = Recipe.field_types()
    valid = "one of " + ", ".join(types)
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise DigitrecError(f"--set {pair!r} has no '='", expected="--set key=value, key " + valid)
        if key not in types:
            raise DigitrecError(f"--set {pair}: unknown recipe field '{key}'", expected=valid)
        out[key] = _typed(text.strip(), types[key], pair)
    return out


def _typed(text: str, kind: type, pair: str):
    try:
        if kind is int:
            return int(text)
        if kind is float:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
    except ValueError:
        raise DigitrecError(f"--set {pair}: {text!r} is not {'an integer' if kind is int else 'a number'}",
                            expected=f"{pair.partition('=')[0]} as {kind.__name__}") from None
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
        from digitrec.models import list_models  # models imports torch; a recipe is read on torch-free paths

        if arch not in list_models():
            raise DigitrecError(f"unknown architecture '{arch}'", expected=", ".join(list_models()))
        recipe = recipe.update(arch=arch)
    return recipe
