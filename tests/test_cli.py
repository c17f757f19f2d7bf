"""The command line: refusals are checked in this process through `digitrec.cli.main()`, as the command runs
it; a few tests run the real `python -m digitrec` in a child process (exit status, stdout and stderr as a user
sees them)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import write_idx, write_kaggle_csv
from PIL import Image

from digitrec.cli import main
from digitrec.data import synthetic


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """The real command in a child process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "digitrec", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """`digitrec ARGS` in this process, as `python -m digitrec` runs it: (exit status, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def check_refusal(code: int, out: str, err: str, *fragments: str) -> None:
    """Exit status 2 and one line on stderr, `digitrec: error: ...`, holding each fragment; no traceback."""
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("digitrec: error:"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def assert_refused(result: subprocess.CompletedProcess, *fragments: str) -> None:
    check_refusal(result.returncode, result.stdout, result.stderr, *fragments)


def refused(capsys, *args: str, says: tuple[str, ...] = ()) -> None:
    """`digitrec ARGS`, run in this process, is refused in one line that says each of `says`."""
    check_refusal(*run_main(capsys, *args), *says)


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("mlp", "cnn", "keras-cnn"):
        assert name in out
    assert "118,282" in out  # mlp: 784*128+128 + 128*128+128 + 128*10+10
    best = next(line.split() for line in out.splitlines() if line.startswith("best "))
    assert best[1] == "cnn-wide" and best[-1] == "5"  # read five times, shifted


def test_data_check_clean_and_dirty(tmp_path, tiny_digits):
    path = write_kaggle_csv(tmp_path / "train.csv", tiny_digits.x, tiny_digits.y)
    clean = run_cli("data", "check", str(path))
    assert clean.returncode == 0 and clean.stdout.rstrip().endswith("clean") and " 50 " in clean.stdout
    text = path.read_text().splitlines()
    text[3] = text[3].replace(",0,", ",x,", 1)
    path.write_text("\n".join(text) + "\n")
    dirty = run_cli("data", "check", str(path), "--json")
    assert dirty.returncode == 2
    report = json.loads(dirty.stdout)
    assert not report["clean"] and "line 4" in report["problems"][0] and "'x' is not a number" in report["problems"][0]


def test_missing_file(tmp_path):
    # The real command in a child process: exit status 2 and one line on stderr.
    assert_refused(run_cli("evaluate", "--data", str(tmp_path / "nope")), "nope", "no such file")


def test_truncated_idx(tmp_path, tiny_digits, capsys):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", tiny_digits.x)
    labels = write_idx(tmp_path / "t10k-labels-idx1-ubyte", tiny_digits.y)
    labels.write_bytes(labels.read_bytes()[:-7])
    refused(capsys, "evaluate", "--data", str(tmp_path), says=("t10k-labels-idx1-ubyte", "truncated"))


def test_run_folder_without_weights(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"arch": "cnn"}))
    refused(capsys, "predict", str(tmp_path), "--model", str(tmp_path), says=("no model.safetensors",))
    refused(capsys, "evaluate", "--model", str(tmp_path / "missing"), says=("no such run folder",))


def test_corrupt_weights(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"arch": "cnn"}))
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{half")
    refused(capsys, "evaluate", "--model", str(tmp_path), "--data", "x", says=("corrupt or truncated weights",))


def test_bad_csv_leaves_no_submission(tmp_path, tiny_digits, capsys):
    path = write_kaggle_csv(tmp_path / "test.csv", tiny_digits.x[:5], None)
    lines = path.read_text().splitlines()
    lines[2] = lines[2] + ",7"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "submission.csv"
    refused(capsys, "predict", str(path), "--out", str(out), says=("test.csv, line 3", "785 values"))
    assert not out.exists() and not list(tmp_path.glob(".submission*"))


def test_not_an_image_gets_an_error_and_the_rest_predictions(tmp_path):
    folder = tmp_path / "photos"
    (folder / "7").mkdir(parents=True)
    images, labels = synthetic.drawn_digits(3, seed=5)
    for image, label in zip(images, labels, strict=True):
        image.save(folder / "7" / f"{label}.png")
    (folder / "notes.png").write_bytes(b"not an image")
    Image.new("L", (50, 50), 255).save(folder / "blank.png")
    result = run_cli("predict", str(folder), "--json")
    assert result.returncode == 2  # something was wrong, and said so
    rows = {r["file"]: r for r in json.loads(result.stdout)}
    assert rows["photos/7/0.png"]["digit"] == 0 and rows["photos/7/2.png"]["digit"] == 2
    assert "not a readable image" in rows["photos/notes.png"]["error"]
    assert "blank" in rows["photos/blank.png"]["error"]
    assert rows["photos/7/1.png"]["probabilities"] and len(rows["photos/7/1.png"]["probabilities"]) == 10
    # Each picture that could not be read is also one line on stderr, naming it.
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("digitrec: error: ") for line in errors)
    assert any(str(folder / "notes.png") in line and "not a readable image" in line for line in errors)
    assert "Traceback" not in result.stderr


def test_kaggle_submission(tmp_path, digits, capsys):
    x, y = digits["test"].x[:300], digits["test"].y[:300]
    path = write_kaggle_csv(tmp_path / "test.csv", x, None)
    out = tmp_path / "submission.csv"
    code, _, err = run_main(capsys, "predict", str(path), "--out", str(out))
    assert code == 0, err
    lines = out.read_text().splitlines()
    assert lines[0] == "ImageId,Label" and len(lines) == 301
    ids = [int(line.split(",")[0]) for line in lines[1:]]
    labels = np.array([int(line.split(",")[1]) for line in lines[1:]])
    assert ids == list(range(1, 301))
    assert (labels == y).mean() >= 0.98


@pytest.mark.slow  # MNIST's 10,000 test digits
def test_evaluate_json_bundled(mnist_dir, capsys):
    code, out, err = run_main(capsys, "evaluate", "--data", str(mnist_dir), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["n"] == 10000 and report["split"] == "test"
    assert report["accuracy"] >= 0.995
    assert np.array(report["confusion"]).sum() == 10000 and len(report["per_class"]) == 10
    assert {"accuracy", "loss", "n", "per_class", "confusion"} <= set(report)


def test_unknown_arch_is_refused(tmp_path, digits_dir, capsys):
    refused(capsys, "train", "--arch", "resnet9000", "--data", str(digits_dir), "--out", str(tmp_path / "r"),
            says=("unknown architecture 'resnet9000'",))
    assert not (tmp_path / "r").exists()


def test_set_overrides_any_recipe_field_typed(tmp_path, digits_dir, no_figures):
    run = tmp_path / "r"
    assert main(["train", "--recipe", "default", "--set", "lr=0.003", "--set", "epochs=2", "--set", "arch=mlp",
                 "--data", str(digits_dir), "--out", str(run), "--quiet"]) == 0
    recipe = json.loads((run / "config.json").read_text())["recipe"]
    assert (recipe["lr"], recipe["epochs"], recipe["steps"], recipe["arch"]) == (0.003, 2, 0, "mlp")
    assert recipe["label_smoothing"] == 0.1  # the rest of the named recipe stays


@pytest.mark.parametrize(("setting", "fragment"), [
    ("nonsense=1", "unknown recipe field 'nonsense' (expected one of arch, epochs,"),
    ("lr=abc", "'abc' is not a number"),
    ("epochs=2.5", "'2.5' is not an integer"),
    ("lr=nan", "'nan' is not a number"),
    ("lr", "has no '='"),
    ("epochs=0", "epochs=0 (expected at least 1)"),
    ("batch_size=-4", "batch_size=-4"),
    ("optimizer=sgd", "adam or adamw"),
])
def test_set_refuses_unknown_keys_and_wrong_types(tmp_path, digits_dir, capsys, setting, fragment):
    out = tmp_path / "r"
    refused(capsys, "train", "--set", setting, "--data", str(digits_dir), "--out", str(out), says=(fragment,))
    assert not out.exists()


def test_examples_folder_with_bundled_model(capsys):
    from pathlib import Path

    examples = Path(__file__).parent.parent / "examples"
    code, out, err = run_main(capsys, "predict", str(examples), "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) >= 10
    # Example files are named for the digit they show: examples/drawn-7.png
    for row in rows:
        expected = int(Path(row["file"]).stem.split("-")[-1])
        assert row["digit"] == expected, row


def test_ensemble_is_a_run_folder_like_any_other(tmp_path, digits_dir, capsys):
    import shutil

    from digitrec.inference.runs import BUNDLED_DIR

    for name in ("a", "b"):
        shutil.copytree(BUNDLED_DIR, tmp_path / name)
    code, _, err = run_main(capsys, "ensemble", str(tmp_path / "a"), str(tmp_path / "b"),
                            "--out", str(tmp_path / "ens"))
    assert code == 0, err
    _, out, _ = run_main(capsys, "evaluate", "--model", str(tmp_path / "ens"), "--data", str(digits_dir), "--json")
    report = json.loads(out)
    assert report["accuracy"] >= 0.98 and report["n"] == 500 and report["split"] == "test"
    # An ensemble among the runs gives its networks, flattened: an ensemble of the ensemble and a run has 3.
    code, _, err = run_main(capsys, "ensemble", str(tmp_path / "ens"), str(tmp_path / "a"),
                            "--out", str(tmp_path / "ens2"))
    assert code == 0, err
    assert len(json.loads((tmp_path / "ens2" / "config.json").read_text())["members"]) == 3
    _, out, _ = run_main(capsys, "evaluate", "--model", str(tmp_path / "ens2"), "--data", str(digits_dir), "--json")
    assert json.loads(out)["accuracy"] >= 0.98
    refused(capsys, "ensemble", str(tmp_path / "a"), "--out", str(tmp_path / "e1"), says=("at least two runs",))


def test_an_ensemble_of_runs_is_calibrated_on_their_shared_validation_digits(tmp_path, digits_dir, capsys,
                                                                             monkeypatch, no_figures):
    for seed in ("1", "2"):
        code, _, err = run_main(capsys, "train", "--recipe", "fast", "--set", "arch=mlp", "--seed", seed,
                                "--data", str(digits_dir), "--out", str(tmp_path / seed), "--quiet")
        assert code == 0, err
    code, out, err = run_main(capsys, "ensemble", str(tmp_path / "1"), str(tmp_path / "2"), "--data", str(digits_dir),
                              "--out", str(tmp_path / "ens"))
    assert code == 0 and "calibrated on it" in out, out + err
    assert json.loads((tmp_path / "ens" / "config.json").read_text())["temperature"] != 1.0
    monkeypatch.delenv("DIGITREC_DATA", raising=False)
    code, _, err = run_main(capsys, "ensemble", str(tmp_path / "1"), str(tmp_path / "2"),
                            "--out", str(tmp_path / "ens2"))
    assert code == 0 and "not calibrated" in err, err  # said, not hidden
    assert json.loads((tmp_path / "ens2" / "config.json").read_text())["temperature"] == 1.0
    other = tmp_path / "other.npz"  # another data set: its held-out digits say nothing about these runs
    images = np.zeros((300, 28, 28), np.uint8)
    np.savez(other, x_train=images, y_train=np.arange(300) % 10, x_test=images[:10], y_test=np.arange(10))
    code, _, err = run_main(capsys, "ensemble", str(tmp_path / "1"), str(tmp_path / "2"), "--data", str(other),
                            "--out", str(tmp_path / "ens3"))
    assert code == 0 and "not calibrated" in err and "trained on 2,000" in err


def test_train_on_everything_says_nothing_is_held_out(tmp_path, tiny_digits, capsys):
    from digitrec.core.errors import DigitrecError
    from digitrec.inference.metrics import held_out
    from digitrec.inference.runs import read_config

    folder = tmp_path / "digits"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", tiny_digits.x)
    write_idx(folder / "train-labels-idx1-ubyte", tiny_digits.y)
    run = tmp_path / "run"
    assert main(["train", "--arch", "mlp", "--epochs", "1", "--val-fraction", "0", "--data", str(folder),
                 "--out", str(run), "--quiet"]) == 0
    assert "trained on all 50 digits (nothing held out)" in capsys.readouterr().out
    config = read_config(run)
    assert config.data.val == 0 and config.val_accuracy is None
    assert (run / "curves.png").exists() and not (run / "confusion.png").exists()
    with pytest.raises(DigitrecError, match="nothing is held out"):
        held_out(folder, config)
    # That run can teach another: --teacher reaches the recipe and the config names the teacher's weights.
    student = tmp_path / "student"
    assert main(["train", "--arch", "mlp", "--epochs", "1", "--val-fraction", "0", "--teacher", str(run),
                 "--tta-shift-px", "1", "--data", str(folder), "--out", str(student), "--quiet"]) == 0
    taught = json.loads((student / "config.json").read_text())
    assert taught["recipe"]["teacher"] == str(run.resolve()) and len(taught["teacher"]["weights_sha256"]) == 64
    assert taught["recipe"]["tta_shift_px"] == 1


def test_outputs_never_replace_inputs_or_existing_files_unasked(tmp_path, tiny_digits, capsys):
    import shutil

    from digitrec.inference.runs import BUNDLED_DIR

    csv = write_kaggle_csv(tmp_path / "t.csv", tiny_digits.x[:5], None)
    before = csv.read_bytes()
    refused(capsys, "predict", str(csv), "--out", str(csv), says=("refusing to overwrite an input",))
    refused(capsys, "predict", str(csv), "--out", str(csv), "--overwrite", says=("refusing to overwrite an input",))
    assert csv.read_bytes() == before
    run = tmp_path / "run"
    shutil.copytree(BUNDLED_DIR, run)
    weights = (run / "model.safetensors").read_bytes()
    refused(capsys, "predict", str(csv), "--model", str(run), "--out", str(run / "model.safetensors"), "--overwrite",
            says=("a run's own file",))
    assert (run / "model.safetensors").read_bytes() == weights
    existing = tmp_path / "sub.csv"
    existing.write_text("keep me\n")
    refused(capsys, "predict", str(csv), "--out", str(existing), says=("already exists", "--overwrite"))
    assert existing.read_text() == "keep me\n"
    assert run_main(capsys, "predict", str(csv), "--out", str(existing), "--overwrite")[0] == 0
    assert existing.read_text().startswith("ImageId,Label")
    refused(capsys, "predict", str(csv), "--out", str(tmp_path), says=("is a folder",))
    refused(capsys, "predict", str(csv), "--out", str(csv / "under-a-file.csv"), says=("is not a folder",))
    refused(capsys, "export", "--model", str(run), "--out", str(run / "config.json"), says=("a run's own file",))


def test_a_fifo_is_refused_not_waited_on(tmp_path, capsys):
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    refused(capsys, "predict", str(fifo), says=("not a regular file",))
    refused(capsys, "evaluate", "--data", str(fifo), says=("not a regular file",))
    refused(capsys, "read", str(fifo), says=("not a regular file",))


def test_output_folders_under_a_file_are_one_clear_error(tmp_path, digits_dir, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    refused(capsys, "train", "--recipe", "fast", "--data", str(digits_dir), "--out", str(a_file / "run"),
            says=("is not a folder",))
    refused(capsys, "data", "check", str(digits_dir), "--plots", str(a_file / "plots"), says=("is not a folder",))
    refused(capsys, "train", "--recipe", "fast", "--data", str(digits_dir), "--out", str(a_file), says=("is a file",))
    assert a_file.read_text() == "mine"


def test_evaluate_counts_a_picture_with_no_digit_as_an_error_and_goes_on(tmp_path, capsys):
    # A real-world folder with one blank picture stopped the whole evaluation at it; it is now one error
    # of many, named. Loading the same folder to train on still refuses it, naming the file.
    from digitrec import data
    from digitrec.core.errors import BlankImageError

    images, labels = synthetic.drawn_digits(6, seed=4)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (tmp_path / str(label)).mkdir(exist_ok=True)
        image.save(tmp_path / str(label) / f"{i}.png")
    (tmp_path / "3").mkdir(exist_ok=True)
    Image.new("L", (64, 64), 255).save(tmp_path / "3" / "blank.png")
    assert main(["evaluate", "--data", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    blank = str(tmp_path / "3" / "blank.png")
    assert report["n"] == 7 and list(report["refused"]) == [blank] and "blank" in report["refused"][blank]
    assert report["errors"] >= 1 and report["accuracy"] <= 6 / 7
    assert sum(map(sum, report["confusion"])) == 6  # the pictures read
    assert main(["evaluate", "--data", str(tmp_path)]) == 0
    assert "no digit read in 1 pictures" in capsys.readouterr().out
    with pytest.raises(BlankImageError, match="blank.png"):
        data.load_splits(tmp_path)
