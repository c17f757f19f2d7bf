import pytest

from digitrec.core.errors import DigitrecError
from digitrec.models.recipes import RECIPES, Recipe, get_recipe, list_recipes, parse_overrides


def test_overrides_are_typed_by_the_dataclass():
    got = parse_overrides(["lr=0.003", "epochs=2", "arch=mlp", "tta-shift-px=1", " seed = 4 "])
    assert got == {"lr": 0.003, "epochs": 2, "arch": "mlp", "tta_shift_px": 1, "seed": 4}
    assert isinstance(got["lr"], float) and isinstance(got["epochs"], int)
    assert parse_overrides(["lr=1"]) == {"lr": 1.0}  # an integer is a fine float


@pytest.mark.parametrize(("pair", "message"), [
    ("nonsense=1", "unknown recipe field 'nonsense'"),
    ("lr=abc", "'abc' is not a number"),
    ("lr=inf", "'inf' is not a number"),
    ("epochs=2.5", "'2.5' is not an integer"),
    ("epochs", "has no '='"),
])
def test_bad_overrides_name_the_field_and_the_valid_keys(pair, message):
    with pytest.raises(DigitrecError, match=message) as raised:
        parse_overrides([pair])
    if "unknown" in message or "=" in message:
        assert "batch_size" in str(raised.value)  # the valid keys are listed


def test_update_refuses_unknown_fields_instead_of_dropping_them():
    with pytest.raises(DigitrecError, match="unknown recipe field 'learning_rate'"):
        Recipe().update(learning_rate=0.1)
    assert Recipe().update(lr=None) == Recipe()  # None: not given on the command line


def test_epochs_asked_for_replace_a_step_budget():
    default = get_recipe("default")
    assert default.steps == 3000 and default.update(epochs=2).steps == 0
    assert default.update(epochs=2, steps=500).steps == 500


@pytest.mark.parametrize(("field", "value"), [
    ("epochs", 0), ("batch_size", 0), ("lr", float("nan")), ("lr", -1.0), ("val_fraction", 0.999),
    ("optimizer", "sgd"), ("schedule", "cosine"), ("arch", "resnet"), ("ema", 1.0), ("tta_shift_px", -1),
    ("rendered", 1.5), ("render_views", 0), ("hollow", -0.1), ("teacher_reads", "both"),
    ("render_kinds", "photos,crayon"), ("render_kinds", "scans,scans"), ("render_kinds", ""),
])
def test_settings_that_cannot_train_are_refused_before_training(field, value):
    with pytest.raises(DigitrecError, match=f"recipe setting {field}="):
        Recipe().update(**{field: value}).check()


def test_every_named_recipe_is_valid_and_listed():
    assert list_recipes() == list(RECIPES)
    for name in RECIPES:
        assert get_recipe(name).check() is RECIPES[name]
    assert get_recipe(arch="mlp") == RECIPES["mlp"]
    assert get_recipe("best", arch="cnn").arch == "cnn"
    with pytest.raises(DigitrecError, match="unknown recipe 'fastest'"):
        get_recipe("fastest")


def test_stored_recipes_load_across_versions():
    stored = Recipe(lr=0.01).as_dict()
    stored.pop("steps")  # an older run, before the field existed
    stored["retired_field"] = 3  # a field a later version dropped
    assert Recipe.from_dict(stored) == Recipe(lr=0.01)
