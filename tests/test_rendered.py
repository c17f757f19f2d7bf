"""Training digits drawn as other pens, papers and scanners give them (digitrec.data.views)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from test_train import _quick

from digitrec.core.errors import DigitrecError
from digitrec.data import views
from digitrec.training.augment import with_rendered
from digitrec.training.loop import train


def test_views_are_the_same_digits_through_preprocessing_and_seeded(small_train):
    images = small_train.x[:24]
    one = views.render_views(images, 2, seed=7, processes=1)
    two = views.render_views(images, 2, seed=7, processes=2)
    assert one.shape == (2, 24, 28, 28) and one.dtype == np.uint8
    assert np.array_equal(one, two)  # the work's split does not change the views
    assert not np.array_equal(one, views.render_views(images, 2, seed=8, processes=1))
    assert not np.array_equal(one[0], images) and not np.array_equal(one[0], one[1])
    # Still the same digit: each view correlates with its digit far more than with another digit.
    flat = lambda a: (a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(1, keepdims=True)).astype(float)  # noqa: E731
    v, x = flat(one[0]), flat(images)
    corr = (v @ x.T) / np.outer(np.linalg.norm(v, axis=1), np.linalg.norm(x, axis=1))
    assert (corr.argmax(axis=1) == np.arange(24)).mean() > 0.8


def test_a_recipe_names_the_kinds_of_view_and_the_default_is_rendered_training_kinds(small_train):
    from digitrec.models.recipes import Recipe

    assert tuple(Recipe().render_kinds.split(",")) == views.TRAINING_KINDS
    images = small_train.x[:12]
    usual = views.render_views(images, 2, seed=3, processes=1)
    assert np.array_equal(usual, views.render_views(images, 2, seed=3, processes=1, kinds=views.TRAINING_KINDS))
    boxed = views.render_views(images, 2, seed=3, processes=1, kinds=("boxed",))
    # A digit stretched to fill its box fills the 28x28's 20x20 box both ways, as no MNIST digit does.
    def wide(views):
        return ((views > 60).any(axis=2).sum(axis=2) >= 18).mean()

    assert wide(boxed) > 0.75 and wide(usual) < 0.4
    with pytest.raises(DigitrecError, match="unknown kind of rendered view 'crayon'"):
        views.render_views(images, 1, seed=3, kinds=("photos", "crayon"))


def test_views_are_cached_and_made_again_when_anything_changes(small_train, tmp_path, monkeypatch):
    monkeypatch.setenv(views.CACHE_ENV, str(tmp_path))
    images = small_train.x[:6]
    first = views.cached_views(images, 1, seed=0)
    assert len(list(tmp_path.glob("views-*.npy"))) == 1

    def no_drawing(*args, **kwargs):
        raise AssertionError("drawn again although cached")

    monkeypatch.setattr(views, "render_views", no_drawing)
    assert np.array_equal(views.cached_views(images, 1, seed=0), first)
    with pytest.raises(AssertionError, match="drawn again"):
        views.cached_views(images, 1, seed=1)  # other settings: other views
    with pytest.raises(AssertionError, match="drawn again"):
        views.cached_views(images, 1, seed=0, kinds=("photos", "boxed"))  # other kinds named: other views
    # Other kinds of picture drawn (views.py picks them): other views, not yesterday's from the cache.
    changed = tmp_path / "rendered.py"
    source = Path(views.__file__).read_text()
    changed.write_text(source.replace('"ruled")', '"ruled", "boxed")'))
    assert changed.read_text() != source
    monkeypatch.setattr(views, "__file__", str(changed))
    with pytest.raises(AssertionError, match="drawn again"):
        views.cached_views(images, 1, seed=0)


def test_a_fraction_of_each_batch_is_swapped_for_its_views():
    xb = torch.zeros(1000, 1, 28, 28, dtype=torch.uint8)
    views = torch.stack([torch.full_like(xb, 1), torch.full_like(xb, 2)])
    out = with_rendered(xb, views, 0.4, torch.Generator().manual_seed(0))
    kinds = out[:, 0, 0, 0]
    assert 0.33 < (kinds > 0).float().mean() < 0.47  # about 40 % replaced
    assert (kinds == 1).sum() > 100 and (kinds == 2).sum() > 100  # by either view


def test_training_with_rendered_views_learns(tmp_path, small_train, digits, monkeypatch):
    monkeypatch.setenv(views.CACHE_ENV, str(tmp_path / "cache"))
    subset = small_train.subset(np.arange(300))  # drawing the views is most of the test's time
    result = train(_quick("mlp", epochs=2, rendered=0.5, render_views=1), subset, digits["test"], tmp_path / "run")
    assert result.history[-1].val_accuracy > 0.6
    assert len(list((tmp_path / "cache").glob("views-*.npy"))) == 1


def test_a_damaged_cache_file_is_made_again(small_train, tmp_path, monkeypatch):
    monkeypatch.setenv(views.CACHE_ENV, str(tmp_path))
    images = small_train.x[:4]
    first = views.cached_views(images, 1, seed=0)
    (cached,) = tmp_path.glob("views-*.npy")
    cached.write_bytes(cached.read_bytes()[:100])  # cut short, as a full disk or a copy gone wrong leaves it
    assert np.array_equal(views.cached_views(images, 1, seed=0), first)


def test_a_pen_view_is_the_digit_redrawn_with_one_even_pen(small_train):
    from scipy import ndimage

    from digitrec.data.pages import pen_glyph

    images = small_train.x[:24]
    pen = views.render_views(images, 2, seed=5, processes=1, kinds=("pen",))
    assert np.array_equal(pen, views.render_views(images, 2, seed=5, processes=1, kinds=("pen",)))
    flat = lambda a: (a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(1, keepdims=True)).astype(float)  # noqa: E731
    v, x = flat(pen[0]), flat(images)
    corr = (v @ x.T) / np.outer(np.linalg.norm(v, axis=1), np.linalg.norm(x, axis=1))
    assert (corr.argmax(axis=1) == np.arange(24)).mean() > 0.8  # still the same digits
    # One pen: the stroke's half-width, where it is widest, is the pen's (MNIST's strokes swell and thin).
    for image in images[:8]:
        glyph = pen_glyph(image, 80, 8.0)
        assert glyph.shape[0] >= 76
        assert 3.0 <= ndimage.distance_transform_edt(glyph > 0.5).max() <= 5.5


def test_a_pen_view_of_a_flat_stroke_stays_small():
    """A dash-like image has almost no height to scale a digit's height from: its redraw stays bounded (it grew
    to 7 x 9,772 pixels, and its view to a 1.6 GiB canvas)."""
    from digitrec.data.pages import MAX_GLYPH_ASPECT, pen_glyph, pen_view

    for rows in (1, 2, 3):
        image = np.zeros((28, 28), np.uint8)
        image[13 : 13 + rows, 4:24] = 255
        glyph = pen_glyph(image, 60, 6.0)
        assert glyph.shape[1] <= MAX_GLYPH_ASPECT * 3 * 60
        assert len(pen_view(image, np.random.default_rng(0))) < 2_000_000
