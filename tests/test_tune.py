"""Teaching a model one hand: `digitrec tune`, the examples folder, `serve --collect` and /api/correct."""

import io
import json
import os
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digitrec.cli import main
from digitrec.data import synthetic
from digitrec.data.formats import iter_image_files
from digitrec.imaging.fit import to_mnist
from digitrec.inference.engine import Predictor, load_predictor
from digitrec.inference.runs import read_config, weights_sha256
from digitrec.serving.app import create_app
from digitrec.serving.corrections import INPUTS, Collector
from digitrec.training.hand import TuneSettings, examples_sha256, load_examples, tune_run

FAST = TuneSettings(steps=40, replay=1000)  # enough to learn a hand's 1 (0 of 20 read right before, 20 after)


def _hand_folder(folder, hand="backhand", k=3, seed=0, digits=range(10)):
    rng = np.random.default_rng(seed)
    for d in digits:
        (folder / str(d)).mkdir(parents=True, exist_ok=True)
        for n in range(k):
            synthetic.hand_digit(hand, d, rng, size=112).save(folder / str(d) / f"{n}.png")
    return folder


@pytest.mark.slow
def test_tuning_learns_a_hand_and_records_where_it_came_from(tmp_path, replay_dir):
    examples = _hand_folder(tmp_path / "mine", k=3)
    test = [synthetic.hand_digit("backhand", 1, np.random.default_rng(99), size=112) for _ in range(20)]
    base = Predictor.load()
    before = (base.predict(test) == 1).mean()
    result = tune_run(examples, tmp_path / "tuned", replay=replay_dir, settings=FAST)
    tuned = load_predictor(tmp_path / "tuned")  # model.onnx was exported: the server's engine
    after = (tuned.probabilities(np.stack([to_mnist(p) for p in test])).argmax(1) == 1).mean()
    assert before < 0.5 and after >= 0.9, (before, after)
    config = read_config(tmp_path / "tuned")
    assert config.extra["tuned_from"]["weights_sha256"] == weights_sha256(base.path)
    assert config.extra["tuned_from"]["examples_sha256"] == examples_sha256(load_examples(examples))
    assert config.extra["tuned_from"]["examples_per_digit"] == [3] * 10 and result.too_few == []
    assert (tmp_path / "tuned" / "lines" / "line.onnx").exists() == (base.path / "lines" / "line.onnx").exists()
    assert config.temperature == base.config.temperature


def test_too_few_examples_still_tune_and_are_named(tmp_path, replay_dir, capsys):
    examples = _hand_folder(tmp_path / "mine", k=1, digits=[1, 7])
    code = main(["tune", "--data", str(examples), "--out", str(tmp_path / "t"), "--replay", str(replay_dir),
                 "--steps", "5", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0 and "run saved" in out
    assert "fewer than 3 examples of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in err
    assert load_examples(examples).y.tolist() == [1, 7]


def test_examples_checksum_follows_pictures_and_labels(tmp_path):
    examples = _hand_folder(tmp_path / "a", k=1, digits=[2, 3])
    first = examples_sha256(load_examples(examples))
    (examples / "2" / "0.png").rename(examples / "3" / "9.png")  # the same picture, another label
    assert examples_sha256(load_examples(examples)) != first


@pytest.mark.parametrize("make, message", [
    (lambda d: d.mkdir(), "no pictures found"),
    (lambda d: None, "no such folder"),
    (lambda d: (d.mkdir(), (d / "x.png").write_bytes(b"")), "empty file"),
    (lambda d: (d.mkdir(), (d / "3").mkdir(), (d / "3" / "a.png").write_text("not a picture")), "not a readable image"),
    (lambda d: (d.mkdir(), synthetic.hand_digit("quick", 3, np.random.default_rng(0), 60).save(d / "loose.png")),
     "picture outside a digit's folder"),
])
def test_bad_example_folders_are_one_clear_error_and_write_nothing(tmp_path, replay_dir, capsys, make, message):
    make(tmp_path / "ex")
    code = main(["tune", "--data", str(tmp_path / "ex"), "--out", str(tmp_path / "out"), "--replay", str(replay_dir)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_missing_base_model_or_replay_data_is_refused(tmp_path, replay_dir, capsys, monkeypatch):
    examples = _hand_folder(tmp_path / "mine", k=1, digits=[1])
    assert main(["tune", "--data", str(examples), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "none"),
                 "--replay", str(replay_dir)]) == 2
    assert "no run folder here" in capsys.readouterr().err
    monkeypatch.delenv("DIGITREC_DATA", raising=False)
    assert main(["tune", "--data", str(examples), "--out", str(tmp_path / "o")]) == 2
    assert "replays MNIST training digits" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_an_existing_run_folder_is_not_overwritten(tmp_path, replay_dir, capsys):
    examples = _hand_folder(tmp_path / "mine", k=1, digits=[1])
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("mine")
    assert main(["tune", "--data", str(examples), "--out", str(tmp_path / "o"), "--replay", str(replay_dir)]) == 2
    assert "not empty" in capsys.readouterr().err and (tmp_path / "o" / "keep.txt").read_text() == "mine"


# ---------------------------------------------------------------- collecting corrections


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def collect_client(tmp_path):
    app = create_app(load_predictor(threads=1), collector=Collector(tmp_path / "kept"))
    return TestClient(app), tmp_path / "kept"


def _drawn(digit: int) -> bytes:
    return _png(synthetic.hand_digit("backhand", digit, np.random.default_rng(digit), size=140))


def test_a_correction_is_kept_as_a_labelled_example_every_verb_reads(collect_client):
    client, kept = collect_client
    assert client.get("/api/model").json()["collect"] is True
    answer = client.post("/api/correct", files={"file": ("../../etc/passwd", _drawn(1), "image/png")},
                         data={"label": "1"}).json()
    assert answer["digit"] == 1 and answer["kind"] == "corrected" and answer["examples"] == 1
    saved = list((kept / "1").iterdir())
    assert len(saved) == 1 and "passwd" not in saved[0].name
    assert Image.open(kept / INPUTS / "1" / saved[0].name).size == (28, 28)
    client.post("/api/correct", files={"file": ("x.png", _drawn(4), "image/png")},
                data={"label": "4", "confirmed": "1"})
    assert [p.relative_to(kept).as_posix().split("/")[0] for p in iter_image_files(kept)] == ["1", "4"]
    assert load_examples(kept).y.tolist() == [1, 4]
    log = (kept / ".examples.csv").read_text().splitlines()
    assert log[1].split(",")[2] == "confirmed"


def test_a_number_correction_keeps_each_digit(collect_client):
    client, kept = collect_client
    rng = np.random.default_rng(3)
    ink = synthetic.number_ink([to_mnist(synthetic.hand_digit("quick", d, rng, size=112)) for d in (3, 8)],
                               (0.5, 0.6), rng)
    picture, _ = synthetic.number_on_paper(ink, rng, photographed=False)
    answer = client.post("/api/correct", files={"file": ("n.png", picture, "image/png")}, data={"text": "38"})
    assert answer.status_code == 200, answer.text
    assert sorted(load_examples(kept).y.tolist()) == [3, 8]
    wrong_count = client.post("/api/correct", files={"file": ("n.png", picture, "image/png")}, data={"text": "388"})
    assert wrong_count.status_code == 422 and "the correction has 3" in wrong_count.json()["error"]


@pytest.mark.parametrize("fields", [{}, {"label": "12"}, {"label": "x"}, {"text": "12a"}, {"label": "-1"}])
def test_a_correction_without_a_digit_is_a_422(collect_client, fields):
    client, kept = collect_client
    response = client.post("/api/correct", files={"file": ("x.png", _drawn(2), "image/png")}, data=fields)
    assert response.status_code == 422 and "error" in response.json()
    assert not any(iter_image_files(kept))


def test_a_folder_that_cannot_be_written_is_a_507_and_the_server_goes_on(collect_client):
    client, kept = collect_client
    (kept / "5").write_text("a file where the digit's folder should be")
    response = client.post("/api/correct", files={"file": ("x.png", _drawn(5), "image/png")}, data={"label": "5"})
    assert response.status_code == 507 and "could not keep the example" in response.json()["error"]
    assert client.post("/api/predict", files={"file": ("x.png", _drawn(5), "image/png")}).status_code == 200


def test_without_collect_nothing_is_kept(tmp_path):
    client = TestClient(create_app(load_predictor(threads=1)))
    assert client.get("/api/model").json()["collect"] is False
    response = client.post("/api/correct", files={"file": ("x.png", _drawn(2), "image/png")}, data={"label": "2"})
    assert response.status_code == 403 and "--collect" in json.loads(response.text)["error"]


def test_serve_refuses_an_unwritable_collect_folder_before_starting(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["serve", "--collect", str(tmp_path / "file" / "sub"), "--port", "1"]) == 2
    assert "cannot write examples here" in capsys.readouterr().err
    assert main(["serve", "--tune-every", "5", "--port", "1"]) == 2
    assert "--tune-every needs --collect" in capsys.readouterr().err


def test_serve_refuses_tune_every_without_mnist_to_replay(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DIGITREC_DATA", raising=False)
    assert main(["serve", "--collect", str(tmp_path / "k"), "--tune-every", "5", "--port", "1"]) == 2
    assert "--tune-every needs MNIST to replay" in capsys.readouterr().err


@pytest.mark.slow
def test_retuning_in_the_background_swaps_the_model_in(tmp_path, replay_dir, monkeypatch):
    """--tune-every: after N examples a `digitrec tune` child runs; the next request gets the tuned model."""
    monkeypatch.setenv("DIGITREC_DATA", str(replay_dir))
    collector = Collector(tmp_path / "kept", tune_every=3, tune_steps=20)
    client = TestClient(create_app(load_predictor(threads=1), collector=collector))
    name = client.get("/api/model").json()["name"]
    answers = [client.post("/api/correct", files={"file": ("x.png", _drawn(d), "image/png")},
                           data={"label": str(d)}).json() for d in (1, 2, 3)]
    assert [a["tuning"] for a in answers] == [False, False, True]
    deadline = time.monotonic() + 180
    while collector.current_model() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert collector.current_model() is not None, (tmp_path / "kept" / ".tuned" / "tune.log").read_text()
    assert client.get("/api/model").json()["name"] != name
    assert client.post("/api/predict", files={"file": ("x.png", _drawn(1), "image/png")}).status_code == 200


# ---------------------------------------------------------------- one tuning at a time: the lock

LOCK_HOLDER = ("import sys, time; from pathlib import Path; from digitrec.serving.corrections import _try_lock\n"
               "assert _try_lock(Path(sys.argv[1])) is not None; print('held', flush=True); time.sleep(60)\n")


def test_a_killed_tuning_never_blocks_the_next(tmp_path):
    import subprocess
    import sys

    from digitrec.serving.corrections import _try_lock

    lock = tmp_path / "lock"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert _try_lock(lock) is None  # held by a live process
        holder.kill()
        holder.wait(timeout=30)
        fd = _try_lock(lock)  # the kernel let go of it with the process: no stale file to take over
        assert fd is not None
        assert _try_lock(lock) is None  # a second taker in the same process is refused as well
        os.close(fd)
        os.close(_try_lock(lock))
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_file_naming_a_live_process_does_not_block_tuning(tmp_path, monkeypatch):
    # The file a killed tuning left behind, whose process id now belongs to another live process (this one):
    # only a held lock blocks, never what a file says.
    collector = Collector(tmp_path / "kept", tune_every=1)
    (tmp_path / "kept" / ".tuned").mkdir()
    (tmp_path / "kept" / ".tuned" / "lock").write_text(str(os.getpid()))
    started = []
    monkeypatch.setattr(Collector, "_tune", lambda self, command, out, count, lock: started.append(lock))
    assert collector._maybe_tune(1)
    deadline = time.monotonic() + 10
    while not started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert started
    assert not collector._maybe_tune(1)  # one tuning at a time while it holds the lock
    os.close(started[0])
    assert collector._maybe_tune(1)


def test_a_failed_tuning_lets_go_of_the_lock(tmp_path, capsys):
    import sys

    from digitrec.serving.corrections import _try_lock

    collector = Collector(tmp_path / "kept", tune_every=1)
    (tmp_path / "kept" / ".tuned").mkdir()
    lock = _try_lock(tmp_path / "kept" / ".tuned" / "lock")
    collector._tune([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "kept" / ".tuned" / "run", 1, lock)
    assert "failed (exit 3)" in capsys.readouterr().err
    os.close(_try_lock(tmp_path / "kept" / ".tuned" / "lock"))


def test_a_tuning_that_ends_while_the_lock_is_taken_is_not_run_twice(tmp_path, monkeypatch):
    """The count was read before the lock: a worker could tune again the examples a tuning had just taken."""
    from digitrec.serving import corrections

    collector = corrections.Collector(tmp_path / "kept", tune_every=3)
    tuned = tmp_path / "kept" / corrections.TUNED
    real_lock = corrections._try_lock

    def lock_after_another_tuning_ended(path):
        (tuned / corrections.COUNT).write_text("3")  # the other worker's tuning of the same 3 examples ended
        return real_lock(path)

    monkeypatch.setattr(corrections, "_try_lock", lock_after_another_tuning_ended)
    started = []
    monkeypatch.setattr(corrections.threading, "Thread", lambda **kw: started.append(kw) or None)
    assert collector._maybe_tune(3) is False and not started
    assert corrections._try_lock(tuned / corrections.LOCK) is not None  # the lock was let go
