import json
import re

import pytest

from digitrec.core.errors import BlankImageError, DigitrecError, TooLargeError
from digitrec.core.files import atomic_path, atomic_write_text
from digitrec.inference import runs
from digitrec.models.recipes import Recipe


def test_the_bundled_config_reads_and_writes_back_unchanged(tmp_path):
    raw = json.loads((runs.BUNDLED_DIR / runs.CONFIG).read_text())
    config = runs.read_config(None)
    # One cnn-wide network (read once), started from the weights of a student distilled from an ensemble of
    # five, taught by a vgg network, with other pens and stretched boxes among its views
    # (scripts/rebuild_bundled.py lists the stages).
    assert config.arch == "cnn-wide" and not config.is_ensemble and config.recipe.views == 1
    assert config.teacher is not None and config.teacher.arch == "vgg" and config.recipe.rendered > 0
    assert config.init is not None and config.init.arch == "cnn-wide" and "boxed" in config.recipe.render_kinds
    assert config.weights_sha256 == runs.weights_sha256(runs.BUNDLED_DIR)  # checked on every load
    assert config.data.train + config.data.val == 60000 and config.test_accuracy >= 0.995
    assert 0.05 < config.temperature < 5 and config.recipe.thickness > 0  # calibrated; taught other pens
    runs.write_config(tmp_path, config)
    # The same, but for recipe fields added since it was trained, which now say their defaults.
    expected = {**raw, "recipe": {**Recipe().as_dict(), **raw["recipe"]}}
    assert json.loads((tmp_path / runs.CONFIG).read_text()) == expected


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_the_bundled_configs_name_no_machines_path():
    """What ships names other runs relative to the repository (with their weights' SHA-256) and data by its
    SHA-256: an absolute path of the machine that trained it means nothing in a user's clone."""
    configs = sorted(runs.BUNDLED_DIR.rglob("*.json"))
    assert len(configs) >= 2  # the digit network's and the line model's
    absolute = re.compile(r"(^|[\s'\"(=:,])(/|[A-Za-z]:[\\/])|/work/|/home/|/root/")
    for path in configs:
        for text in _strings(json.loads(path.read_text())):
            assert not absolute.search(text), f"{path.relative_to(runs.BUNDLED_DIR)}: {text[:120]}"
    config = runs.read_config(None)
    assert config.teacher.weights_sha256 and config.init.weights_sha256 and config.data.sha256
    assert "rebuild_bundled.py" in config.trained_by


def test_unknown_keys_survive_and_missing_ones_default(tmp_path):
    (tmp_path / runs.CONFIG).write_text(json.dumps({"arch": "mlp", "recipe": {"lr": 0.5}, "note": {"by": "hand"}}))
    config = runs.read_config(tmp_path)
    assert config.name == tmp_path.name and config.recipe == Recipe(lr=0.5) and config.status == "running"
    runs.write_config(tmp_path, config)
    assert json.loads((tmp_path / runs.CONFIG).read_text())["note"] == {"by": "hand"}


@pytest.mark.parametrize(("text", "message"), [
    ("null", "config is a JSON NoneType"),
    ('"arch"', "config is a JSON str"),
    ("{}", "names no architecture"),
    ('{"arch": 3}', "names no architecture"),
    ('{"arch": "mlp", "data": {"rows": 3}}', "does not describe a run"),
    ('{"arch": "mlp", "members": [{"x": 1}]}', "does not describe a run"),
    ("{not json", "not valid JSON"),
])
def test_a_garbage_config_is_one_clear_error(tmp_path, text, message):
    (tmp_path / runs.CONFIG).write_text(text)
    with pytest.raises(DigitrecError, match=message) as raised:
        runs.read_config(tmp_path)
    assert str(tmp_path) in str(raised.value)


def test_ensemble_config_knows_its_members_splits(tmp_path):
    for name, seed in (("a", 0), ("b", 1)):
        member = runs.RunConfig(name=name, arch="mlp", recipe=Recipe(split_seed=seed), data=runs.DataInfo(sha256="d"))
        (tmp_path / name).mkdir()
        runs.write_config(tmp_path / name, member)
    ensemble = runs.RunConfig(name="e", arch=runs.ENSEMBLE,
                              members=[runs.Member("mlp", str(tmp_path / n)) for n in ("a", "b")])
    assert ensemble.is_ensemble
    assert ensemble.splits() == {("d", 0.1, 0), ("d", 0.1, 1)}


def test_atomic_writes_leave_the_old_file_or_the_new_one(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and oct(target.stat().st_mode & 0o777) == "0o644"


def test_error_kinds_travel_with_the_exception():
    blank = BlankImageError("image is blank")
    assert blank.kind == "blank" and isinstance(blank, DigitrecError)
    assert TooLargeError("x").kind == "too_large" and DigitrecError("x").kind == "bad_input"
    moved = blank.located("photo.png")
    assert type(moved) is BlankImageError and str(moved) == "photo.png: image is blank"


def test_weights_that_diverged_to_nan_are_refused_not_printed_as_nan(tmp_path, capsys):
    import hashlib
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    from digitrec.cli import main

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(runs.BUNDLED_DIR / runs.CONFIG, run / runs.CONFIG)
    state = {k: v * float("nan") if v.is_floating_point() else v
             for k, v in load_file(runs.BUNDLED_DIR / runs.WEIGHTS).items()}
    save_file(state, run / runs.WEIGHTS)
    config = json.loads((run / runs.CONFIG).read_text())
    config["weights_sha256"] = hashlib.sha256((run / runs.WEIGHTS).read_bytes()).hexdigest()
    (run / runs.CONFIG).write_text(json.dumps(config))
    assert main(["predict", "examples", "--model", str(run), "--json"]) == 2
    out, err = capsys.readouterr()
    assert "NaN" not in out and "weights hold NaN or infinite values" in err


def test_a_teacher_or_init_run_that_may_have_learnt_the_held_out_digits_is_refused():
    from digitrec.training.lineage import same_held_out

    config = runs.RunConfig(name="t", arch="cnn", data=runs.DataInfo(sha256="abc"))
    recipe = Recipe()
    same_held_out(config, recipe, "abc", "T", "teacher")  # the same data, fraction and seed: accepted
    same_held_out(config, Recipe(val_fraction=0.0), "other", "T", "teacher")  # nothing held out: accepted
    for data_sha, other in (("other", recipe), ("abc", Recipe(split_seed=recipe.split_seed + 1))):
        with pytest.raises(DigitrecError, match="teacher may have learnt the digits this run holds out"):
            same_held_out(config, other, data_sha, "T", "teacher")
