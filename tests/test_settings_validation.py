"""Settings are checked before a run starts: seeds in range, finite numbers that make sense, teacher and init
runs that exist, every value of a sweep's grid. One line on stderr, exit 2, nothing left behind, and for the
Ray verbs nothing started."""

import hashlib
import json
from dataclasses import fields
from pathlib import Path

import pytest

from digitrec.cli import main
from digitrec.core.errors import DigitrecError
from digitrec.inference import runs
from digitrec.models.recipes import SEED_MAX, SETTING_RULES, Recipe, check_setting, parse_overrides


def _refused(capsys, argv: list[str]) -> str:
    """Runs the CLI in this process; the error line it printed (exit 2, one line, no traceback)."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("digitrec: error: "), err
    assert "Traceback" not in err
    return err


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize(("setting", "named"), [
    ("split_seed=-1", "split_seed=-1"),
    ("seed=99999999999999999999", "seed=99999999999999999999"),
    (f"seed={SEED_MAX + 1}", "seed="),
    ("shift_px=1e308", "shift_px="),  # trained and was marked finished at 9.87 % validation
    ("shift_px=28", "shift_px="),  # a shift as large as the picture
    ("elastic_px=-1", "elastic_px="),
    ("rotate_deg=720", "rotate_deg="),
    ("scale=1", "scale="),
    ("lr=1e308", "lr="),
    ("batch_size=-5", "batch_size="),
    ("weight_decay=1e9", "weight_decay="),
    ("teacher=/nonexistent/run", "/nonexistent/run: no such run folder (expected a folder made by digitrec train as "
                                 "the teacher run"),
    ("init=/nonexistent/run", "/nonexistent/run: no such run folder (expected a folder made by digitrec train as "
                              "the init run"),
])
def test_train_refuses_a_bad_setting_before_the_run_folder_is_made(tmp_path, capsys, setting, named):
    out = tmp_path / "run"
    err = _refused(capsys, ["train", "--recipe", "fast", "--set", setting, "--out", str(out), "--quiet"])
    assert named in err
    assert not out.exists()


def test_a_huge_seed_flag_leaves_an_existing_folder_unchanged(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    before = _tree(out)
    err = _refused(capsys, ["train", "--recipe", "fast", "--seed", "99999999999999999999", "--out", str(out)])
    assert "seed=99999999999999999999" in err and f"0-{SEED_MAX}" in err
    assert _tree(out) == before


def test_resuming_a_run_whose_config_holds_a_bad_seed_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    config = runs.RunConfig(name="run", arch="mlp", recipe=Recipe(arch="mlp", epochs=1))
    runs.write_config(out, config)
    raw = json.loads((out / runs.CONFIG).read_text())
    raw["recipe"]["seed"] = 2**70
    (out / runs.CONFIG).write_text(json.dumps(raw))
    before = _tree(out)
    assert "seed=" in _refused(capsys, ["train", "--resume", str(out), "--quiet"])
    assert _tree(out) == before


def test_tune_refuses_a_negative_seed(tmp_path, capsys):
    (tmp_path / "mine" / "3").mkdir(parents=True)
    err = _refused(capsys, ["tune", "--data", str(tmp_path / "mine"), "--out", str(tmp_path / "t"), "--seed", "-1"])
    assert "--seed -1" in err and f"0-{SEED_MAX}" in err
    assert not (tmp_path / "t").exists()


def test_train_lines_refuses_a_negative_seed(tmp_path, capsys):
    assert "--seed -1" in _refused(capsys, ["train-lines", "--out", str(tmp_path / "lines"), "--seed", "-1"])


@pytest.mark.parametrize("argv", [
    ["ensemble", "--train", "2", "--set", "split_seed=-1"],
    ["ensemble", "--train", "2", "--set", "teacher=/nonexistent"],
    ["ensemble", "--train", "2", "--set", "init=/nonexistent"],
    ["ensemble", "--train", "2", "--set", "epochs=0"],  # the whole recipe, not only each value
    ["sweep", "--space", "lr=,", "--trials", "2"],
    ["sweep", "--space", "lr=0.01,", "--trials", "2"],
    ["sweep", "--space", "teacher=/nonexistent", "--trials", "2"],
    ["sweep", "--space", "init=,/nonexistent", "--trials", "2"],
    ["sweep", "--space", "shift_px=1,1e308", "--trials", "2"],
    ["sweep", "--space", "seed=0,-1", "--trials", "2"],
    ["sweep", "--space", "lr=0.01", "--space", "lr=0.02", "--trials", "2"],
    ["sweep", "--space", "lr=0.01", "--set", "split_seed=-1", "--trials", "2"],
])
def test_ray_verbs_refuse_bad_settings_before_ray_starts(tmp_path, capsys, monkeypatch, argv):
    pytest.importorskip("ray")
    from digitrec.cluster import connect

    def no_ray(*args, **kwargs):
        pytest.fail("Ray was started for settings that had to be refused first")

    monkeypatch.setattr(connect, "connected", no_ray)
    out = tmp_path / "out"
    _refused(capsys, [*argv, "--out", str(out)])
    assert not out.exists()


def test_ensemble_member_seeds_stay_in_range(tmp_path):
    from digitrec.cluster import sweeps

    with pytest.raises(DigitrecError, match=f"seeds {SEED_MAX - 1} to {SEED_MAX + 1} for 3 members"):
        sweeps.train_members(Recipe(seed=SEED_MAX - 1), None, tmp_path / "ens", 3)
    assert not (tmp_path / "ens").exists()


def test_a_sweep_can_try_without_and_with_a_teacher(tmp_path):
    from digitrec.cluster import sweeps

    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / runs.CONFIG).write_text("{}")
    space = sweeps.parse_space([f"teacher=,{teacher}", "lr=0.01,0.02"])
    assert space == {"teacher": ["", str(teacher.resolve())], "lr": [0.01, 0.02]}


def test_teacher_and_init_paths_are_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / runs.CONFIG).write_text("{}")
    monkeypatch.chdir(tmp_path)
    # A Ray trial may run in another folder: the run is named by its absolute path.
    assert parse_overrides(["teacher=t", "init="]) == {"teacher": str((tmp_path / "t").resolve()), "init": ""}


def test_every_recipe_field_has_a_range():
    assert set(SETTING_RULES) == {f.name for f in fields(Recipe)}


@pytest.mark.parametrize(("field", "value"), [
    ("epochs", 10_001), ("steps", -1), ("batch_size", 10**6), ("lr", 0.0), ("lr", 2.0), ("weight_decay", -0.1),
    ("label_smoothing", 1.0), ("rotate_deg", -1.0), ("scale", -0.1), ("shift_px", 30.0), ("elastic_px", 28.0),
    ("lowres", 2.0), ("thickness", -1.0), ("blocky", 1.5), ("ink_levels", 1.5), ("broken", -0.5),
    ("teacher_weight", 1.5), ("render_views", 9), ("tta_shift_px", 5), ("seed", -1), ("split_seed", 2**32),
    ("val_fraction", -0.1), ("ema", -0.5),
])
def test_every_numeric_field_refuses_values_out_of_its_range(field, value):
    with pytest.raises(DigitrecError, match=f"recipe setting {field}="):
        Recipe().update(**{field: value}).check()


@pytest.mark.parametrize(("field", "value", "kind"), [
    ("lr", "abc", "a finite number"), ("lr", float("inf"), "a finite number"), ("lr", True, "a finite number"),
    ("epochs", 2.0, "an integer"), ("seed", "1", "an integer"), ("arch", 3, "text"), ("teacher", None, "text"),
])
def test_a_stored_value_of_the_wrong_type_is_one_clear_error(field, value, kind):
    # config.json is edited by hand, or written by another version: check() must not crash comparing.
    recipe = Recipe.from_dict({**Recipe().as_dict(), field: value})
    with pytest.raises(DigitrecError, match=f"recipe setting {field}=.* is not {kind}"):
        recipe.check()


def test_the_edges_of_each_range_are_accepted():
    for field, value in [("shift_px", 27.9), ("seed", SEED_MAX), ("split_seed", 0), ("rotate_deg", 180.0),
                         ("lr", 1.0), ("val_fraction", 0.5), ("epochs", 1), ("rotate_deg", 0)]:
        check_setting(field, value)


@pytest.mark.parametrize(("change", "message"), [
    ({"temperature": 0}, "temperature=0"),
    ({"temperature": "warm"}, "temperature='warm'"),
    ({"epochs_done": -1}, "epochs_done=-1"),
    ({"recipe": {"tta_shift_px": 99}}, "tta_shift_px=99"),
    ({"recipe": {"split_seed": -1}}, "split_seed=-1"),
    ({"recipe": {"val_fraction": 7}}, "val_fraction=7"),
    ({"members": [{"arch": "mlp", "path": "a", "tta_shift_px": -2}]}, "tta_shift_px=-2"),
])
def test_a_run_config_with_values_reading_cannot_use_is_refused_on_load(tmp_path, change, message):
    (tmp_path / runs.CONFIG).write_text(json.dumps({"arch": "mlp", **change}))
    with pytest.raises(DigitrecError, match=message) as raised:
        runs.read_config(tmp_path)
    assert str(tmp_path / runs.CONFIG) in str(raised.value)


@pytest.mark.parametrize("lr", ["inf", "nan", "5", "-0.1"])
def test_train_lines_refuses_a_learning_rate_it_cannot_train_with(tmp_path, capsys, lr):
    assert f"--lr {float(lr)!r}" in _refused(capsys, ["train-lines", "--out", str(tmp_path / "lines"), "--lr", lr])
    assert not (tmp_path / "lines").exists()
