"""scripts/rebuild_bundled.py, the stages that rebuild the bundled models: their order, what a stopped stage
runs next, and what the bundled configs would record. Nothing is trained here (`--smoke` runs the chain)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rebuild():
    spec = importlib.util.spec_from_file_location("rebuild_bundled", ROOT / "scripts" / "rebuild_bundled.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_each_stage_needs_only_stages_listed_before_it(rebuild):
    seen = set()
    for stage in rebuild.STAGES:
        assert set(stage.needs) <= seen, stage.name
        seen.add(stage.name)
    assert {"render-t0", "vgg-t0", "ftbox30", "bundle", "lines-a", "lines", "bundle-lines", "lines-signs-5",
            "bundle-signs"} <= seen


def test_the_sign_readers_stage_is_the_shipped_one_and_its_bundle_is_seen_done(rebuild, tmp_path):
    """The shipped sign reader records the last lines-signs stage's command; bundling a finished sign run
    into OUT/bundled/lines/signs makes bundle-signs done (its line.onnx's SHA-256 recorded)."""
    import hashlib

    from digitrec.inference.runs import BUNDLED_DIR

    shipped = json.loads((BUNDLED_DIR / "lines" / "signs" / "config.json").read_text())
    assert shipped["trained_by"] == rebuild.described(rebuild.BY_NAME["lines-signs-5"], Path("runs/rebuild"))
    onnx = (BUNDLED_DIR / "lines" / "signs" / "line.onnx").read_bytes()
    assert shipped["line_onnx_sha256"] == hashlib.sha256(onnx).hexdigest()
    out, stage = tmp_path / "rebuild", rebuild.BY_NAME["bundle-signs"]
    run = out / "lines-signs-5"
    run.mkdir(parents=True)
    (run / "line.onnx").write_bytes(b"weights")
    (run / "metrics.csv").write_text("epoch\n1\n")
    (run / "config.json").write_text(json.dumps({"kind": "line-reader", "settings": {"init": None},
                                                 "val_string_accuracy": 0.96}))
    assert rebuild.state(stage, out) == "new"
    words = rebuild.command(stage, out, "MNIST")
    assert words[2:4] == ["lines", str(run)] and "--signs" in words
    import subprocess

    subprocess.run(words, check=True, capture_output=True)
    assert (out / "bundled" / "lines" / "signs" / "line.onnx").read_bytes() == b"weights"
    assert rebuild.state(stage, out) == "done"


def test_the_line_models_stage_is_the_shipped_one_and_a_bundle_over_it_keeps_both_done(rebuild, tmp_path):
    """The shipped line model records the last lines-pen stage's command; lines-pen starts from the line model's
    run (no stage reads OUT/bundled/lines); once bundle-pen has put its model over bundle-lines', both are done,
    and bundling the line model again makes bundle-pen new."""
    import hashlib

    from digitrec.inference.runs import BUNDLED_DIR

    shipped = json.loads((BUNDLED_DIR / "lines" / "config.json").read_text())
    assert shipped["trained_by"] == rebuild.described(rebuild.BY_NAME["lines-pen-3"], Path("runs/rebuild"))
    assert shipped["line_onnx_sha256"] == hashlib.sha256((BUNDLED_DIR / "lines" / "line.onnx").read_bytes()).hexdigest()
    out = tmp_path / "rebuild"
    first = rebuild.command(rebuild.BY_NAME["lines-pen"], out, "MNIST")
    assert first[first.index("--init") + 1] == str(out / "lines")
    import subprocess

    for name, weights in (("lines", b"first"), ("lines-pen-3", b"last")):
        run = out / name
        run.mkdir(parents=True)
        (run / "line.onnx").write_bytes(weights)
        (run / "metrics.csv").write_text("epoch\n1\n")
        (run / "config.json").write_text(json.dumps({"kind": "line-reader", "settings": {"init": None},
                                                     "val_string_accuracy": 0.96}))
    (out / "lines-a").mkdir()
    (out / "lines-a" / "metrics.csv").write_text("epoch\n1\n")
    for name in ("bundle-lines", "bundle-pen"):
        subprocess.run(rebuild.command(rebuild.BY_NAME[name], out, "MNIST"), check=True, capture_output=True)
    assert (out / "bundled" / "lines" / "line.onnx").read_bytes() == b"last"
    assert [rebuild.state(rebuild.BY_NAME[n], out) for n in ("bundle-lines", "bundle-pen")] == ["done", "done"]
    subprocess.run(rebuild.command(rebuild.BY_NAME["bundle-lines"], out, "MNIST"), check=True, capture_output=True)
    assert [rebuild.state(rebuild.BY_NAME[n], out) for n in ("bundle-lines", "bundle-pen")] == ["done", "new"]


def test_the_bundled_recipe_is_the_one_the_shipped_config_records(rebuild):
    """The ftbox30 stage's settings, run through the CLI's parser, give the shipped network's recipe."""
    from digitrec.inference import runs

    shipped = runs.read_config(None).recipe
    command = rebuild.command(rebuild.BY_NAME["ftbox30"], Path("runs/rebuild"), "MNIST")
    words = command[command.index("train") + 1:]
    settings = dict(w.split("=", 1) for w in words[words.index("--set") :] if "=" in w)
    for key, value in settings.items():
        assert str(getattr(shipped, key)) == value, key
    assert shipped.lr == float(words[words.index("--lr") + 1]) and shipped.seed == 0
    assert shipped.teacher == "runs/rebuild/vgg-t0" and shipped.init == "runs/rebuild/hollow-e90"


def test_a_finished_stage_is_skipped_and_a_stopped_one_resumed(rebuild, tmp_path):
    out, stage = tmp_path / "rebuild", rebuild.BY_NAME["render-t0"]
    assert rebuild.state(stage, out) == "new"
    (out / "render-t0").mkdir(parents=True)
    (out / "render-t0" / "config.json").write_text(json.dumps({"arch": "cnn-wide", "status": "running"}))
    assert rebuild.state(stage, out) == "partial"
    assert rebuild.resume_command(stage, out, "MNIST")[3:5] == ["train", "--resume"]
    (out / "render-t0" / "config.json").write_text(json.dumps({"arch": "cnn-wide", "status": "finished"}))
    assert rebuild.state(stage, out) == "done"
    lines = rebuild.BY_NAME["lines-a"]
    (out / "lines-a").mkdir()
    assert rebuild.state(lines, out) == "partial" and "--overwrite" in rebuild.resume_command(lines, out, "MNIST")


def test_what_a_bundled_config_records_names_no_machines_path(rebuild, tmp_path):
    for out in (Path("runs/rebuild"), ROOT / "runs" / "rebuild", tmp_path / "elsewhere"):
        for name in ("ftbox30", "lines"):
            text = rebuild.described(rebuild.BY_NAME[name], out)
            assert str(tmp_path) not in text and str(ROOT) not in text and sys.executable not in text
            assert text.startswith("python scripts/rebuild_bundled.py --out ") and f"stage {name}:" in text


def test_the_plan_lists_every_stage_with_its_time(rebuild, tmp_path, capsys):
    rebuild.show_plan(rebuild.STAGES, tmp_path / "rebuild", "MNIST")
    out = capsys.readouterr().out
    for stage in rebuild.STAGES:
        assert f"{stage.name} " in out
    assert "on 2 cores" in out and out.strip().splitlines()[-1].startswith("to run: about")
