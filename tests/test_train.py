import numpy as np
import pytest
import torch
from conftest import copy_run

from digitrec.core.errors import DigitrecError
from digitrec.data import views
from digitrec.inference import runs
from digitrec.models import architectures
from digitrec.models.recipes import Recipe, get_recipe
from digitrec.models.tensors import channels_last, to_input
from digitrec.training.augment import augment, augment_with_clean, elastic_field, hollow_strokes, random_affine
from digitrec.training.loop import distillation_targets, train, train_run


def test_to_input_scales_uint8_to_unit_range(tiny_digits):
    x = to_input(tiny_digits.x)
    assert x.shape == (50, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() == 0 and x.max() == 1
    assert torch.equal(x * 255, torch.as_tensor(tiny_digits.x, dtype=torch.float32).unsqueeze(1))


@pytest.mark.parametrize("arch", ["cnn", "cnn-wide", "keras-cnn"])
def test_convolutions_run_channels_last(tiny_digits, arch):
    # One-channel NCHW strides would send every later layer down PyTorch's slower NCHW path.
    x = to_input(tiny_digits.x[:4])
    assert x.stride() == (784, 1, 28, 1)
    model = architectures.create_model(arch).to(memory_format=torch.channels_last)
    conv_outputs = []
    for layer in model.modules():
        if isinstance(layer, torch.nn.Conv2d):
            layer.register_forward_hook(lambda module, inputs, out: conv_outputs.append(out))
    model(channels_last(random_affine(x, get_recipe("default"), torch.Generator().manual_seed(0))))
    assert conv_outputs and all(o.is_contiguous(memory_format=torch.channels_last) and o.stride(1) == 1
                                for o in conv_outputs)


def test_random_affine_moves_pixels_but_keeps_ink(tiny_digits):
    x = to_input(tiny_digits.x[:16])
    recipe = get_recipe("default")
    out = random_affine(x, recipe, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert not torch.allclose(out, x)
    assert torch.allclose(out.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=0.3)


def test_lowres_augmentation_blurs_but_keeps_full_contrast(tiny_digits):
    x = to_input(tiny_digits.x[:16])
    recipe = get_recipe("best").update(lowres=1.0, rotate_deg=0, scale=0, shift_px=0)
    out = augment(x, recipe, torch.Generator().manual_seed(0))
    assert torch.allclose(out.amax(dim=(1, 2, 3)), torch.ones(16))
    assert (out > 0.05).sum() > (x > 0.05).sum()  # blurred strokes are wider


def test_hollow_strokes_leave_a_rim_around_a_hollow_as_wide_as_the_pen():
    bar = torch.zeros(1, 1, 28, 28)
    bar[..., 6:22, 12:15] = 1.0  # a 3-pixel-wide upright stroke
    out = hollow_strokes(bar, 1.0, torch.Generator().manual_seed(0))
    assert out.amax() == 1.0  # full contrast, as preprocessing gives
    row = out[0, 0, 14]
    assert (row[11] > 0.5) and (row[15] > 0.5)  # the rim, a pixel outside the stroke on either side
    assert (row[12:15] < 0.01).all()  # inside: paper, as wide as the pen
    assert (row[:10] == 0).all() and (row[17:] == 0).all()
    assert torch.equal(hollow_strokes(bar, 0.0, torch.Generator()), bar)
    batch = bar.repeat(200, 1, 1, 1)
    hollowed = (hollow_strokes(batch, 0.25, torch.Generator().manual_seed(1))[:, 0, 14, 13] < 0.5).float().mean()
    assert 0.15 < hollowed < 0.35  # about the fraction asked for


def test_elastic_distortion_bends_smoothly_within_its_bound(tiny_digits):
    field = elastic_field(64, 28, 2.0, torch.Generator().manual_seed(0))
    px = field * 28 / 2  # grid units back to pixels
    assert field.shape == (64, 28, 28, 2)
    assert px.abs().max() <= 2.0 + 1e-5
    assert px.abs().mean() > 0.3  # it does move things
    assert (px[:, 1:] - px[:, :-1]).abs().max() < 1.0  # neighbours move together: strokes bend, never tear
    x = to_input(tiny_digits.x[:16])
    recipe = get_recipe("best").update(rotate_deg=0, scale=0, shift_px=0, lowres=0, elastic_px=2.0)
    out = augment(x, recipe, torch.Generator().manual_seed(0))
    assert not torch.allclose(out, x)
    ink_kept = out.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert ((ink_kept > 0.5) & (ink_kept < 2)).all()  # stretched or squeezed, never erased


def test_weight_average_is_the_model_trained_and_saved(tmp_path, small_train):
    subset = small_train.subset(np.arange(640))
    result = train(_quick("cnn", epochs=2, ema=0.99), subset, None, tmp_path)
    raw = runs.load_checkpoint(tmp_path)["model"]
    averaged = result.model.state_dict()
    assert not result.model.training
    assert not torch.allclose(averaged["7.weight"], raw["7.weight"])
    # After twenty steps the average sits near, not on, the last weights.
    assert torch.allclose(averaged["7.weight"], raw["7.weight"], atol=0.2)


def test_step_budget_gives_small_data_sets_more_epochs():
    recipe = get_recipe()
    assert recipe.steps and recipe.epochs_for(54_000) == 7 and recipe.epochs_for(37_800) == 10
    assert recipe.update(epochs=2).epochs_for(37_800) == 2  # epochs asked for win


def _quick(arch: str, epochs: int = 1, **kw) -> Recipe:
    return get_recipe(arch=arch).update(epochs=epochs, batch_size=64, **kw)


def test_mlp_learns_digits_it_never_saw(tmp_path, small_train, digits):
    result = train(_quick("mlp", epochs=2), small_train, digits["test"], tmp_path)
    assert result.history[-1].val_accuracy > 0.85
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_same_seed_same_weights_other_seed_differs(tmp_path, small_train):
    subset = small_train.subset(np.arange(320))
    a = train(_quick("cnn", seed=3), subset, None, tmp_path / "a").model.state_dict()
    b = train(_quick("cnn", seed=3), subset, None, tmp_path / "b").model.state_dict()
    c = train(_quick("cnn", seed=4), subset, None, tmp_path / "c").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("ema", [0.0, 0.99])
def test_resume_after_a_kill_gives_the_same_model(tmp_path, small_train, ema):
    subset = small_train.subset(np.arange(320))  # five batches an epoch
    recipe = _quick("cnn", epochs=3, ema=ema)
    straight = train(recipe, subset, None, tmp_path / "straight").model.state_dict()

    class Killed(Exception):
        pass

    def kill_after_first(metrics):
        if metrics.epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train(recipe, subset, None, tmp_path / "resumed", on_epoch=kill_after_first)
    assert runs.load_checkpoint(tmp_path / "resumed")["epoch"] == 1
    resumed = train(recipe, subset, None, tmp_path / "resumed", resume=True)
    assert [m.epoch for m in resumed.history] == [1, 2, 3]
    state = resumed.model.state_dict()
    assert all(torch.allclose(state[k].float(), straight[k].float(), atol=1e-6) for k in state)


def test_half_written_checkpoint_is_refused(tmp_path):
    (tmp_path / runs.CHECKPOINT).write_bytes(b"PK\x03\x04 half a zip")
    with pytest.raises(DigitrecError, match="corrupt or half-written checkpoint"):
        runs.load_checkpoint(tmp_path)


def _small_loader(monkeypatch, n_train=1500, n_val=200):
    import digitrec.data as data_module

    real = data_module.load_for_training

    def small(path, val_fraction, seed):
        train_set, val_set = real(path, val_fraction, seed)
        return train_set.subset(np.arange(n_train)), None if val_set is None else val_set.subset(np.arange(n_val))

    monkeypatch.setattr(data_module, "load_for_training", small)


def test_train_run_writes_a_complete_run_folder(tmp_path, digits_dir, monkeypatch, no_figures):
    # Its figures: tests/test_plots.py::test_training_leaves_figures.
    _small_loader(monkeypatch)
    run_dir = tmp_path / "run"
    _, config = train_run(_quick("mlp", epochs=2), digits_dir, run_dir)
    assert {"model.safetensors", "config.json", "metrics.csv"} <= {p.name for p in run_dir.iterdir()}
    assert not (run_dir / runs.CHECKPOINT).exists()
    assert config.status == "finished" and len(config.data.sha256) == 64
    assert config.hardware["cpu"] and config.recipe.epochs == 2 and config.data.train == 1500
    assert [m.epoch for m in runs.read_metrics(run_dir)] == [1, 2]
    model, loaded_config = runs.load_run(run_dir)
    assert loaded_config == config and isinstance(model[-1], torch.nn.Linear)
    with pytest.raises(DigitrecError, match="already holds a run"):
        train_run(_quick("mlp"), digits_dir, run_dir)


class _FixedTeacher(torch.nn.Module):
    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits


def test_distillation_targets_mix_smoothed_labels_with_the_teachers_probabilities():
    labels = torch.tensor([3, 7])
    teacher = _FixedTeacher(torch.tensor([[0.0] * 9 + [5.0], [2.0] + [0.0] * 9]))
    x = torch.zeros(2, 1, 28, 28)
    recipe = get_recipe("best")
    labels_only = distillation_targets(teacher, x, labels, recipe.update(teacher_weight=0.0))
    assert torch.allclose(labels_only[0], torch.full((10,), 0.01) + 0.9 * torch.eye(10)[3])
    teacher_only = distillation_targets(teacher, x, labels, recipe.update(teacher_weight=1.0))
    assert torch.allclose(teacher_only, teacher.logits.softmax(1))
    mixed = distillation_targets(teacher, x, labels, recipe.update(teacher_weight=0.8))
    assert torch.allclose(mixed, 0.2 * labels_only + 0.8 * teacher_only)
    assert torch.allclose(mixed.sum(1), torch.ones(2))


class _WatchingTeacher(torch.nn.Module):
    """Records how much of each picture it is shown is ink, and answers nothing in particular."""

    def __init__(self):
        super().__init__()
        self.ink = []

    def forward(self, x):
        self.ink.append((x > 0.5).float().mean().item())
        return torch.zeros(x.shape[0], 10)


def test_a_teacher_reads_digits_before_they_are_hollowed(tmp_path, small_train):
    subset = small_train.subset(np.arange(256))
    plain = _quick("mlp", rotate_deg=0, scale=0, shift_px=0, schedule="constant", teacher="watching")
    watched = {}
    for hollow in (0.0, 1.0):
        teacher = _WatchingTeacher()
        train(plain.update(hollow=hollow), subset, None, tmp_path / str(hollow), teacher=teacher)
        watched[hollow] = teacher.ink
    assert watched[1.0] == watched[0.0]  # the whole digit, not its outline


def test_augment_with_clean_turns_the_clean_digits_as_it_turns_the_batch(tiny_digits):
    x = to_input(tiny_digits.x[:16])
    recipe = get_recipe("best").update(lowres=1.0)  # every digit of the batch blurred as well as turned
    out, clean = augment_with_clean(x, x, recipe, torch.Generator().manual_seed(3))
    turned = random_affine(x, recipe, torch.Generator().manual_seed(3))
    assert torch.allclose(clean, turned, atol=1e-6)
    assert torch.allclose(out, augment(x, recipe, torch.Generator().manual_seed(3)), atol=1e-6)
    assert not torch.allclose(out, clean, atol=0.05)


@pytest.mark.parametrize("reads", ["view", "clean"])
def test_a_teacher_reads_the_view_or_the_digit_as_written(tmp_path, small_train, monkeypatch, reads):

    # Every digit swapped for a blank view: a teacher reading the view sees no ink, one reading the digit does.
    monkeypatch.setattr(views, "cached_views",
                        lambda images, views, seed, kinds: np.zeros((views, *images.shape), np.uint8))
    teacher = _WatchingTeacher()
    recipe = _quick("mlp", schedule="constant", rendered=1.0, teacher="watching", teacher_reads=reads)
    train(recipe, small_train.subset(np.arange(256)), None, tmp_path, teacher=teacher)
    assert len(teacher.ink) == 4
    assert all(ink > 0.05 for ink in teacher.ink) if reads == "clean" else all(ink == 0 for ink in teacher.ink)


def test_student_learns_what_the_teacher_says(tmp_path, digits_dir, digits, monkeypatch, no_figures, trained_run):
    _small_loader(monkeypatch)
    quick = _quick("mlp", epochs=3, rotate_deg=0, scale=0, shift_px=0, lr=3e-3)
    copy_run(trained_run, tmp_path / "teacher")
    # A teacher that reads every digit d as d + 1: a student that learns from it must say so too.
    teacher, _ = runs.load_run(tmp_path / "teacher")
    last = teacher[-1]
    last.weight.data, last.bias.data = last.weight.data.roll(1, 0), last.bias.data.roll(1, 0)
    edited = runs.read_config(tmp_path / "teacher")
    edited.weights_sha256 = runs.save_weights(tmp_path / "teacher", teacher)  # an edit on purpose, recorded
    runs.write_config(tmp_path / "teacher", edited)

    _, config = train_run(quick.update(teacher=str(tmp_path / "teacher"), teacher_weight=1.0), digits_dir,
                          tmp_path / "student")
    assert config.teacher.weights_sha256 == runs.weights_sha256(tmp_path / "teacher")
    assert config.recipe.teacher == str(tmp_path / "teacher")
    assert config.val_accuracy < 0.3  # measured against the true labels
    student, _ = runs.load_run(tmp_path / "student")
    unseen = digits["test"]
    with torch.no_grad():
        agree = (student(to_input(unseen.x)).argmax(1) == teacher(to_input(unseen.x)).argmax(1)).float().mean()
    assert agree > 0.8


def test_train_refuses_a_teacher_recipe_without_its_teacher(tmp_path, small_train):
    # train() alone would otherwise learn from the labels while the config claims a teacher.
    with pytest.raises(DigitrecError, match="teacher needs its model"):
        train(_quick("mlp", teacher="runs/ens"), small_train.subset(np.arange(100)), None, tmp_path)


def test_a_teacher_that_saw_the_validation_digits_is_refused(tmp_path, digits_dir, monkeypatch, no_figures,
                                                             trained_run):
    _small_loader(monkeypatch, n_train=300, n_val=50)
    quick = _quick("mlp", epochs=1, teacher=str(trained_run))  # the teacher learnt split_seed 0's split
    with pytest.raises(DigitrecError, match="validation would flatter"):
        train_run(quick.update(split_seed=1), digits_dir, tmp_path / "other-split")
    # Another seed on the same split (an ensemble's members) may teach; holding nothing out, so may anyone.
    _, same_split = train_run(quick.update(seed=1), digits_dir, tmp_path / "s1")
    _, config = train_run(quick.update(split_seed=1, val_fraction=0.0), digits_dir, tmp_path / "all")
    assert same_split.status == config.status == "finished"


def test_a_run_starts_from_its_init_runs_weights(tmp_path, digits_dir, monkeypatch, no_figures, trained_run):
    _small_loader(monkeypatch)  # its 200 validation digits are the ones `trained_run` was judged on
    quick = _quick("mlp", epochs=2, rotate_deg=0, scale=0, shift_px=0, lr=3e-3)
    first = runs.read_config(copy_run(trained_run, tmp_path / "first"))
    # Next to nothing learnt on top: the weights are the init run's, not a fresh random start's.
    still = quick.update(init=str(tmp_path / "first"), epochs=1, lr=1e-12, schedule="constant")
    _, config = train_run(still, digits_dir, tmp_path / "continued")
    assert config.init.weights_sha256 == runs.weights_sha256(tmp_path / "first")
    assert config.recipe.init == str((tmp_path / "first").resolve())
    assert config.val_accuracy == pytest.approx(first.val_accuracy, abs=0.006)
    start, _ = runs.load_run(tmp_path / "first")
    after, _ = runs.load_run(tmp_path / "continued")
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(start.state_dict().values(),
                                                                 after.state_dict().values(), strict=True))
    _, fresh = train_run(quick.update(epochs=1, lr=1e-12, schedule="constant"), digits_dir, tmp_path / "fresh")
    assert fresh.val_accuracy < 0.5 < config.val_accuracy
    # A run resumed after its init run's weights changed would no longer be what its config says.
    config.status = "running"
    runs.write_config(tmp_path / "continued", config)
    edited = runs.read_config(tmp_path / "first")
    start[-1].bias.data += 1
    edited.weights_sha256 = runs.save_weights(tmp_path / "first", start)
    runs.write_config(tmp_path / "first", edited)
    with pytest.raises(DigitrecError, match="init run's weights changed since the run started"):
        train_run(still, digits_dir, tmp_path / "continued", resume=True)


def test_an_init_run_of_another_arch_or_split_is_refused(tmp_path, digits_dir, small_train, trained_run):
    quick = _quick("mlp", epochs=1)
    with pytest.raises(DigitrecError, match="init run is a mlp, not a cnn"):
        train_run(_quick("cnn", init=str(trained_run)), digits_dir, tmp_path / "cnn")
    with pytest.raises(DigitrecError, match="init run may have learnt the digits this run holds out"):
        train_run(quick.update(init=str(trained_run), split_seed=1), digits_dir, tmp_path / "other-split")
    with pytest.raises(DigitrecError, match="missing: no such run folder"):
        train_run(quick.update(init=str(tmp_path / "missing")), digits_dir, tmp_path / "nowhere")
    with pytest.raises(DigitrecError, match="init run needs its weights"):
        train(quick.update(init="runs/x"), small_train.subset(np.arange(100)), None, tmp_path / "bare")


def test_a_run_with_test_time_shifts_saves_loads_and_exports_them(tmp_path, digits_dir, digits, monkeypatch,
                                                                  no_figures):
    import onnxruntime as ort

    from digitrec.inference.engine import Predictor
    from digitrec.inference.export import export_onnx

    _small_loader(monkeypatch)
    _, config = train_run(_quick("mlp", epochs=1, tta_shift_px=1), digits_dir, tmp_path / "run")
    model, _ = runs.load_run(tmp_path / "run")
    assert isinstance(model, architectures.ShiftAverage)
    unseen = digits["test"]
    with torch.no_grad():
        probabilities = model(to_input(unseen.x)).exp()
    assert torch.allclose(probabilities.sum(1), torch.ones(500), atol=1e-5)
    path = export_onnx(Predictor.load(tmp_path / "run"), tmp_path / "run.onnx")
    runtime = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = runtime.run(None, {"image": to_input(unseen.x).numpy()})[0]
    assert np.allclose(np.exp(got), probabilities.numpy(), atol=1e-4)
    # An ensemble keeps each member's own way of reading.
    train_run(_quick("mlp", epochs=1), digits_dir, tmp_path / "plain")
    runs.make_ensemble([tmp_path / "run", tmp_path / "plain"], tmp_path / "ens")
    ensemble, _ = runs.load_run(tmp_path / "ens")
    assert [type(m) for m in ensemble.members][0] is architectures.ShiftAverage
    assert not isinstance(ensemble.members[1], architectures.ShiftAverage)


class _Killed(Exception):
    """Stands for a kill -9 at a chosen point: nothing after it runs."""


def _kill_on(step_or_epoch):
    def hook(*args):
        if getattr(args[0], "epoch", args[0]) == step_or_epoch:
            raise _Killed
    return hook


@pytest.mark.parametrize("kill", ["first-batch", "after-epoch-1", "between-checkpoint-and-metrics",
                                  "during-a-weights-write"])
def test_a_killed_run_is_resumed_or_restarted_and_loses_no_finished_epoch(tmp_path, digits_dir, monkeypatch, kill,
                                                                          no_figures):
    _small_loader(monkeypatch, n_train=600, n_val=100)
    recipe, run = _quick("mlp", epochs=3), tmp_path / "run"
    real_write_metrics, real_replace_weights = runs.write_metrics, runs.replace_weights
    if kill == "between-checkpoint-and-metrics":  # epoch 2's checkpoint is written, its metrics row is not
        monkeypatch.setattr(runs, "write_metrics", lambda d, h: _kill_on(2)(len(h)) or real_write_metrics(d, h))
    if kill == "during-a-weights-write":  # the second epoch's weights file is half written when the kill comes
        def half_written(run_dir, config, model):
            if runs.read_config(run_dir).epochs_done == 1:
                (run_dir / ".model.safetensors.x1y2z3w4.tmp").write_bytes(b"half")
                raise _Killed
            return real_replace_weights(run_dir, config, model)
        monkeypatch.setattr(runs, "replace_weights", half_written)
    with pytest.raises(_Killed):
        train_run(recipe, digits_dir, run, on_batch=_kill_on(1) if kill == "first-batch" else None,
                  on_epoch=_kill_on(1) if kill == "after-epoch-1" else None)
    monkeypatch.setattr(runs, "write_metrics", real_write_metrics)
    monkeypatch.setattr(runs, "replace_weights", real_replace_weights)
    config = runs.read_config(run)
    if kill == "first-batch":
        assert config.epochs_done == 0 and not (run / runs.WEIGHTS).exists()
        with pytest.raises(DigitrecError, match="--resume"):
            train_run(recipe, digits_dir, run)  # a new run there is refused, and says how to go on
    else:
        assert config.epochs_done >= 1
        model, _ = runs.load_run(run)  # every finished epoch left a loadable model
        assert isinstance(model[-1], torch.nn.Linear)
    _, finished = train_run(recipe, digits_dir, run, resume=True)
    assert finished.status == "finished" and finished.epochs_done == 3
    assert [m.epoch for m in runs.read_metrics(run)] == [1, 2, 3]
    assert not list(run.glob(".*.tmp")) and not (run / runs.CHECKPOINT).exists()
    runs.load_run(run)


def test_weights_edited_after_the_run_are_refused(tmp_path, digits_dir, monkeypatch, no_figures):
    _small_loader(monkeypatch, n_train=300, n_val=50)
    train_run(_quick("mlp", epochs=1), digits_dir, tmp_path / "run")
    weights = tmp_path / "run" / runs.WEIGHTS
    payload = bytearray(weights.read_bytes())
    payload[-3] ^= 0x40
    weights.write_bytes(bytes(payload))
    with pytest.raises(DigitrecError, match="weights changed since the run saved them"):
        runs.load_run(tmp_path / "run")
