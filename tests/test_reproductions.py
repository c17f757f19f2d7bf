"""Refusals and answers a user once met as tracebacks, silent writes or warnings, each through the command as
it runs (`digitrec.cli.main` in this process): what no other test checks at the command line."""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_cli import check_refusal, run_cli, run_main

from digitrec.data import synthetic
from digitrec.inference import runs

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _digit_png() -> bytes:
    buffer = io.BytesIO()
    synthetic.drawn_digits(1, seed=3, size=112)[0][0].save(buffer, format="PNG")
    return buffer.getvalue()


def _bundled_copy(tmp_path: Path, name: str = "run") -> Path:
    return Path(shutil.copytree(runs.BUNDLED_DIR, tmp_path / name, ignore=shutil.ignore_patterns("lines")))


@pytest.mark.parametrize(("flag", "value", "field"), [
    ("--epochs", "0", "epochs"), ("--epochs", "-1", "epochs"), ("--batch-size", "0", "batch_size"),
    ("--lr", "nan", "lr"), ("--val-fraction", "0.999", "val_fraction"),
])
def test_train_flags_that_cannot_train_are_refused_before_a_folder_is_made(tmp_path, capsys, flag, value, field):
    out = tmp_path / "run"
    check_refusal(*run_main(capsys, "train", "--recipe", "fast", flag, value, "--out", str(out), "--quiet"), field)
    assert not out.exists()


def test_a_config_whose_recipe_is_not_a_table_is_one_line_naming_it(tmp_path, capsys):
    run = _bundled_copy(tmp_path)
    (run / runs.CONFIG).write_text('{"arch": "cnn", "recipe": "nonsense"}')
    check_refusal(*run_main(capsys, "predict", str(EXAMPLES), "--model", str(run)), "config.json")


def test_weights_changed_after_bundling_are_refused_on_the_torch_path_too(tmp_path, capsys):
    run = _bundled_copy(tmp_path)
    weights = bytearray((run / runs.WEIGHTS).read_bytes())
    weights[-100] ^= 0xFF
    (run / runs.WEIGHTS).write_bytes(bytes(weights))
    code, out, err = run_main(capsys, "predict", str(EXAMPLES), "--model", str(run), "--engine", "torch")
    check_refusal(code, out, err, str(run / runs.WEIGHTS))


def test_a_folder_with_a_float_tiff_of_nan_reads_every_other_picture_and_names_it(tmp_path, capsys):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.png").write_bytes(_digit_png())
    pixels = np.full((40, 40), np.nan, np.float32)
    pixels[10:30, 18:22] = np.inf
    Image.fromarray(pixels, mode="F").save(folder / "nan.tiff", format="TIFF")
    code, out, err = run_main(capsys, "predict", str(folder), "--json")
    rows = {Path(r["file"]).name: r for r in json.loads(out)}
    assert code == 2 and "Traceback" not in err
    assert all(rows[f"{i}.png"]["digit"] is not None for i in range(5))
    assert rows["nan.tiff"]["digit"] is None and "nan.tiff" in err


def test_a_jpeg_with_a_corrupt_exif_block_reads_without_a_warning(tmp_path):
    # The real command: whether a library's warning reaches stderr depends on the process's warning filters,
    # which pytest changes for the tests run in this process.
    picture = tmp_path / "exif.jpg"
    buffer = io.BytesIO()
    Image.open(io.BytesIO(_digit_png())).convert("RGB").save(
        buffer, format="JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05garbage")
    picture.write_bytes(buffer.getvalue())
    result = run_cli("predict", str(picture))
    assert result.returncode == 0 and result.stderr.strip() == "" and "exif.jpg" in result.stdout


@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="needs Linux's /proc (read, never written)")
def test_an_output_under_a_file_of_proc_is_one_line(capsys):
    check_refusal(*run_main(capsys, "predict", str(EXAMPLES), "--out", "/proc/version/x.json"), "/proc/version")


def test_export_into_a_folder_is_one_line(tmp_path, capsys):
    check_refusal(*run_main(capsys, "export", "--out", str(tmp_path)), "folder")
