"""Ray: archives read with Ray Data, seeds and sweeps trained with Ray Tune, on local Ray (one process) and on a
two-node cluster on this machine whose nodes are removed mid-job. The logic tests at the top need no Ray; the
tests that do are marked `cluster` (skipped without the `cluster` extra)."""

import json
import socket
import sys
import time

import numpy as np
import pytest
from conftest import write_kaggle_csv
from PIL import Image
from test_cli import assert_refused, refused, run_cli
from test_read import number_picture

from digitrec.cluster import batch, connect, sweeps
from digitrec.core.errors import DigitrecError
from digitrec.data import synthetic


def _pictures(folder, count: int, seed: int = 0, bad: int = 0):
    """`count` pen-drawn digits as PNGs in shards of 50 (as an archive keeps them), `bad` broken files among them."""
    images, labels = synthetic.drawn_digits(count, seed=seed, size=64)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        shard = folder / f"{i // 50:03d}"
        shard.mkdir(parents=True, exist_ok=True)
        image.save(shard / f"{i:05d}-{label}.png")
    for i in range(bad):
        (folder / "000" / f"broken-{i}.png").write_bytes(b"\x89PNG not really")
    return labels


# ---------------------------------------------------------------- without Ray


def test_sources_are_told_apart(tmp_path):
    _pictures(tmp_path / "archive", 3)
    (tmp_path / "list.txt").write_text("archive/000/00000-0.png\n")
    (tmp_path / "list.csv").write_text("path,note\narchive/000/00000-0.png,x\n")
    write_kaggle_csv(tmp_path / "test.csv", np.zeros((2, 28, 28), np.uint8), None)
    assert batch.plan_source(str(tmp_path / "archive")).kind == "folder"
    assert batch.plan_source(str(tmp_path / "archive/*/*.png")).kind == "glob"
    assert batch.plan_source(str(tmp_path / "list.txt")).kind == "manifest"
    assert batch.plan_source(str(tmp_path / "list.csv")).kind == "manifest"
    assert batch.plan_source(str(tmp_path / "test.csv")).kind == "data"
    with pytest.raises(DigitrecError, match="no such file or folder"):
        batch.plan_source(str(tmp_path / "nothing"))


def test_manifest_parts_hold_every_picture_once(tmp_path, monkeypatch):
    pq = pytest.importorskip("pyarrow.parquet")

    monkeypatch.setattr(batch, "PART_ROWS", 7)
    _pictures(tmp_path / "archive", 23)
    (tmp_path / "archive" / ".hidden").mkdir()
    (tmp_path / "archive" / ".hidden" / "x.png").write_bytes(b"")
    count = batch.write_manifest(batch.Source("folder", str(tmp_path / "archive")), tmp_path / "m")
    table = pq.read_table(tmp_path / "m")
    assert count == 23 == table.num_rows and len(list((tmp_path / "m").iterdir())) == 4
    assert sorted(table["index"].to_pylist()) == list(range(23))
    assert sorted(table["file"].to_pylist())[0] == "archive/000/00000-0.png"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures")
    with pytest.raises(DigitrecError, match="no pictures found"):
        batch.write_manifest(batch.Source("folder", str(tmp_path / "empty")), tmp_path / "m2")


def test_sweep_space_is_typed_and_every_point_comes_before_repeats():
    space = sweeps.parse_space(["lr=0.001,0.01,0.1", "batch_size=64,128"])
    assert space == {"lr": [0.001, 0.01, 0.1], "batch_size": [64, 128]}
    points = sweeps.sweep_points(space, 8, seed=0)
    assert len({tuple(p.items()) for p in points[:6]}) == 6 and points[6:] == points[:2]
    assert sweeps.sweep_points(space, 8, seed=0) == points  # seeded
    with pytest.raises(DigitrecError, match="unknown recipe field"):
        sweeps.parse_space(["speed=1,2"])
    with pytest.raises(DigitrecError, match="not a number"):
        sweeps.parse_space(["lr=fast"])


def test_without_ray_the_verbs_say_how_to_install_it(tmp_path, capsys, monkeypatch):
    # `ray` made unimportable: the verbs that need it say so in one line, exit 2.
    monkeypatch.setitem(sys.modules, "ray", None)
    for args in (["predict", "examples", "--cluster", "--out", str(tmp_path / "o")],
                 ["ensemble", "--train", "2", "--out", str(tmp_path / "e")],
                 ["sweep", "--space", "lr=0.1", "--trials", "1", "--out", str(tmp_path / "s")]):
        refused(capsys, *args, says=('pip install "digitrec[cluster]"',))
    assert not (tmp_path / "o").exists()


@pytest.mark.cluster
@pytest.mark.slow
def test_unreachable_cluster_is_one_line_within_30_seconds(tmp_path):
    # The real command in a child process: a failed connection leaves nothing of Ray behind in this one.
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    result = run_cli("predict", "examples", "--cluster", f"127.0.0.1:{port}", "--out", str(tmp_path / "o"))
    assert_refused(result, f"127.0.0.1:{port}", "no Ray cluster answers there")
    assert time.monotonic() - start < 30
    assert_refused(run_cli("predict", "examples", "--cluster", "nonsense", "--out", str(tmp_path / "o")),
                   "not a cluster address")


@pytest.mark.cluster
def test_existing_output_folder_is_refused_before_ray_starts(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    refused(capsys, "predict", "examples", "--cluster", "--out", str(tmp_path / "out"), says=("already exists",))
    refused(capsys, "predict", "examples", "--cluster", "--out", "examples", "--overwrite",
            says=("refusing to write over the pictures",))
    refused(capsys, "predict", "examples", "--cluster", says=("--out FOLDER",))
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


# ---------------------------------------------------------------- local Ray, in this process


@pytest.fixture(scope="module")
def local_ray():
    pytest.importorskip("ray")
    connect.connect(None)
    yield
    connect.shutdown()


def _answers(folder) -> dict:
    import pyarrow.parquet as pq

    table = pq.read_table(folder).to_pylist()
    assert len({row["index"] for row in table}) == len(table), "a picture answered twice"
    return {row["file"]: row for row in table}


@pytest.mark.cluster
def test_predict_on_ray_matches_plain_predict(local_ray, tmp_path, monkeypatch):
    from digitrec.inference.batch import predict_files
    from digitrec.inference.engine import load_predictor

    monkeypatch.setattr(batch, "PART_ROWS", 64)  # several parts: both actors get work
    labels = _pictures(tmp_path / "archive", 300, bad=2)
    progress = []
    result = batch.read_archive(str(tmp_path / "archive"), tmp_path / "out",
                                  on_progress=lambda done, total: progress.append((done, total)))
    assert result.pictures == 302 and result.errors == 2 and progress[-1] == (302, 302)
    answers = _answers(tmp_path / "out")
    plain = {r.file: r for r in predict_files(load_predictor(), tmp_path / "archive")}
    assert set(answers) == set(plain)
    for file, row in answers.items():
        if plain[file].error:
            assert row["digit"] is None and row["error"] == plain[file].error
        else:
            assert row["digit"] == plain[file].digit and row["error"] is None
            assert np.allclose(row["probabilities"], plain[file].probabilities, atol=1e-5)
    right = [row["digit"] == int(file[-5]) for file, row in answers.items() if row["error"] is None]
    assert np.mean(right) >= 0.98 and len(labels) == 300
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir()), "staging left behind"


@pytest.mark.cluster
def test_lists_globs_and_kaggle_csvs_on_ray(local_ray, tmp_path, digits):
    import pyarrow.parquet as pq

    _pictures(tmp_path / "archive", 60)
    (tmp_path / "list.txt").write_text("archive/000/00000-0.png\n# a comment\narchive/000/missing.png\n\n")
    batch.read_archive(str(tmp_path / "list.txt"), tmp_path / "from-list")
    rows = _answers(tmp_path / "from-list")
    assert rows["archive/000/00000-0.png"]["digit"] == 0
    assert rows["archive/000/missing.png"]["error"].startswith("cannot be read")

    batch.read_archive(str(tmp_path / "archive" / "001" / "*.png"), tmp_path / "from-glob")
    assert len(_answers(tmp_path / "from-glob")) == 10

    x, y = digits["test"].x[:100], digits["test"].y[:100]
    write_kaggle_csv(tmp_path / "test.csv", x, None)
    batch.read_archive(str(tmp_path / "test.csv"), tmp_path / "from-csv")
    table = pq.read_table(tmp_path / "from-csv").sort_by("index")
    assert table["file"][0].as_py() == "test.csv:1"
    assert (np.array(table["digit"].to_pylist()) == y).mean() >= 0.97


@pytest.mark.cluster
def test_read_numbers_on_ray_and_overwrite(local_ray, tmp_path):
    from digitrec.core import files

    folder = tmp_path / "numbers"
    folder.mkdir()
    for text in ("2026", "417"):
        number_picture(text, seed=int(text) % 7).save(folder / f"{text}.png")
    (folder / "blank.png").write_bytes(_blank_png())
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.parquet").write_text("old")
    files.write_manifest(tmp_path / "out", {"old.parquet"})  # as a job of digitrec leaves it
    with pytest.raises(DigitrecError, match="already exists"):
        batch.read_archive(str(folder), tmp_path / "out", mode="read")
    batch.read_archive(str(folder), tmp_path / "out", mode="read", overwrite=True)
    rows = _answers(tmp_path / "out")
    assert rows["numbers/2026.png"]["text"] == "2026" and rows["numbers/417.png"]["text"] == "417"
    assert [d["digit"] for d in json.loads(rows["numbers/2026.png"]["digits"])] == [2, 0, 2, 6]
    assert rows["numbers/blank.png"]["error"] and rows["numbers/blank.png"]["text"] is None
    assert not (tmp_path / "out" / "old.parquet").exists()


@pytest.mark.cluster
def test_a_killed_job_is_started_again_by_the_same_command(local_ray, tmp_path):
    """A job killed mid-way leaves its hidden staging folder (manifest, some parts) and no output: the same
    command starts again from nothing and the output holds every picture once."""
    _pictures(tmp_path / "archive", 40)
    staging = tmp_path / ".out.partial"
    (staging / batch.MANIFEST).mkdir(parents=True)
    (staging / "part-00000.parquet").write_bytes(b"half a part from the killed job")
    result = batch.read_archive(str(tmp_path / "archive"), tmp_path / "out")
    assert result.pictures == 40 and len(_answers(tmp_path / "out")) == 40
    assert not staging.exists()


def _blank_png() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("L", (80, 40), 255).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.cluster
@pytest.mark.slow
def test_ensemble_and_sweep_on_local_ray(local_ray, tmp_path, digits_dir, capsys):
    """The CI acceptance: `ensemble --train 3 --recipe fast --cluster` and a 6-trial sweep over lr; the run
    folders they make load with --model like any other."""
    from digitrec.cli import main

    small = ["--set", "epochs=2", "--data", str(digits_dir)]
    assert main(["ensemble", "--train", "3", "--recipe", "fast", "--cluster", *small,
                 "--out", str(tmp_path / "ens")]) == 0
    config = json.loads((tmp_path / "ens" / "config.json").read_text())
    assert config["arch"] == "ensemble" and len(config["members"]) == 3
    assert config["temperature"] != 1.0 and config["val_accuracy"] > 0.9  # calibrated on the held-out digits
    seeds = sorted(json.loads((p / "config.json").read_text())["recipe"]["seed"]
                   for p in (tmp_path / "ens" / "members").iterdir())
    assert seeds == [0, 1, 2]
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "ens"), "--data", str(digits_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] > 0.9

    assert main(["sweep", "--recipe", "fast", "--space", "lr=0.0003,0.001,0.003,0.01,0.03,0.1", "--trials", "6",
                 "--cluster", *small[:2], "--set", "epochs=3", *small[2:], "--out", str(tmp_path / "sweep")]) == 0
    out = capsys.readouterr().out
    lines = (tmp_path / "sweep" / "trials.csv").read_text().splitlines()
    assert lines[0].startswith("trial,lr,epochs,val_accuracy") and len(lines) == 7
    assert sorted(float(line.split(",")[1]) for line in lines[1:]) == [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1]
    assert "stopped early" in "".join(lines) and "finished" in "".join(lines)  # ASHA stopped some
    assert (tmp_path / "sweep" / "trials.png").stat().st_size > 10_000
    command = next(line for line in out.splitlines() if line.strip().startswith("digitrec train"))
    assert "--set lr=" in command and "--recipe fast" in command
    best = next(line.split(",") for line in lines[1:] if line.split(",")[0] in out.split("best: ")[1])
    assert main(["evaluate", "--model", best[-1], "--data", str(digits_dir)]) == 0
    assert main(["sweep", "--recipe", "fast", "--space", "lr=0.1", "--trials", "1", "--cluster",
                 "--out", str(tmp_path / "sweep")]) == 2  # exists: refused


@pytest.mark.cluster
def test_overwrite_never_deletes_a_folder_of_other_files(tmp_path, digits_dir):
    """--overwrite replaces what digitrec wrote there (its manifest lists it), never a folder of someone else's."""
    from digitrec.core import files
    from digitrec.models.recipes import get_recipe

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(DigitrecError, match="digitrec did not write"):
        batch.check_out_folder(mine, None, overwrite=True)
    with pytest.raises(DigitrecError, match="digitrec did not write"):
        sweeps.train_members(get_recipe("fast", None), str(digits_dir), mine, 2, overwrite=True)
    with pytest.raises(DigitrecError, match="digitrec did not write"):
        sweeps.sweep(get_recipe("fast", None), str(digits_dir), {"lr": [0.1]}, 1, mine, overwrite=True)
    assert (mine / "thesis.tex").read_text() == "years of work"
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "part-00000.parquet").write_bytes(b"old answers")
    files.write_manifest(tmp_path / "answers", {"part-00000.parquet"})
    assert batch.check_out_folder(tmp_path / "answers", None, overwrite=True) == tmp_path / "answers"
