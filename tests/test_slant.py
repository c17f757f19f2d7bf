"""A line's slant, and a line leaning far read upright: `imaging.slant` and `read_number`."""

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from test_read import number_picture

from digitrec import load_model
from digitrec.imaging.ink import ink_map
from digitrec.imaging.slant import SLANT_KEPT, SLANT_TARGET, Shear, shear_for, slant
from digitrec.reading.line import WORK_HEIGHT


def leaning_strokes(alpha: float, height: int = 60, count: int = 4) -> np.ndarray:
    """`count` upright bars of ink drawn leaning by `alpha` (x drift per row), on a line `height` tall."""
    ink = np.zeros((height + 20, 60 * count + 80), np.float32)
    columns = np.arange(ink.shape[1])
    for n in range(count):
        for y in range(10, 10 + height):
            middle = 40 + 60 * n + alpha * (y - 10 - height / 2) + 40
            ink[y] = np.maximum(ink[y], np.clip(4.0 - np.abs(columns - middle), 0, 1))  # a soft-edged pen
    return ink


@pytest.mark.parametrize("alpha", [-0.6, -0.3, 0.0, 0.4])
def test_the_slant_is_the_strokes_own_drift_per_row(alpha):
    assert slant(leaning_strokes(alpha)) == pytest.approx(alpha, abs=0.05)


def test_points_dashes_and_round_loops_do_not_tilt_the_measure():
    """Only near-upright edges count: a dash's long edges lie flat, and a loop's upright sides stand as the
    writing does (second moments of a leaning ellipse would say far more)."""
    ink = leaning_strokes(-0.5)
    ink[60:64, 20:60] = 1.0  # a dash
    ink[62:66, 150:154] = 1.0  # a point
    assert slant(ink) == pytest.approx(-0.5, abs=0.05)
    ys, xs = np.indices((80, 80))
    ring = np.abs(np.hypot((xs - 40) / 18, (ys - 40) / 30) - 1) < 0.12  # an upright 0
    assert slant(ring.astype(np.float32)) == pytest.approx(0.0, abs=0.05)


def test_a_line_within_the_range_mnist_wrote_is_left_as_it_is():
    for alpha in (SLANT_KEPT[0] + 0.05, 0.0, SLANT_KEPT[1] - 0.02):
        assert shear_for(leaning_strokes(alpha)) == 0.0


def test_a_line_leaning_far_is_sheared_to_mnists_usual_slant_and_boxes_map_back():
    ink = leaning_strokes(-0.6)
    alpha = shear_for(ink)
    assert alpha == pytest.approx(-0.6 - SLANT_TARGET, abs=0.05)
    shear = Shear(ink.shape, alpha)
    upright = shear.apply(ink)
    assert upright.shape[0] == ink.shape[0] and upright.sum() == pytest.approx(ink.sum(), rel=0.02)  # nothing cut
    assert slant(upright) == pytest.approx(SLANT_TARGET, abs=0.05)
    # each bar's box in the sheared line maps back to a box that holds the bar in the line
    labels = ndimage.label(upright > 0.5)[0]
    for n, (rows, cols) in enumerate(ndimage.find_objects(labels)):
        x0, y0, x1, y1 = shear.box_back([cols.start, rows.start, cols.stop, rows.stop])
        bar = (np.abs(np.arange(ink.shape[1]) - (40 + 60 * n + 40)) <= 40)
        inside = ink[y0:y1, x0:x1].sum()
        assert inside >= 0.95 * ink[:, bar].sum()


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_a_number_written_leaning_far_is_read_with_boxes_on_its_digits(model):
    upright = number_picture("2746", seed=3)
    w, h = upright.size
    alpha = 0.7  # PIL's AFFINE samples x + 0.7 y: the line leans right far more than MNIST's writers did
    extra = int(abs(alpha) * h) + 4
    leaning = upright.transform((w + 2 * extra, h), Image.AFFINE, (1, alpha, -extra - alpha * h / 2, 0, 1, 0),
                                resample=Image.BILINEAR, fillcolor=255)
    assert shear_for(ink_map(leaning, WORK_HEIGHT)[0]) < 0  # read upright, its boxes mapped back
    reading = model.read(leaning)
    assert reading.text == "2746"
    ink = np.asarray(leaning) < 128
    for d in reading.digits:
        x0, y0, x1, y1 = d.box
        assert 0 <= x0 < x1 <= leaning.width and 0 <= y0 < y1 <= leaning.height
        assert ink[y0:y1, x0:x1].sum() > 0.1 * ink.sum() / 4  # each box holds much of a digit's ink
    assert [d.box[0] for d in reading.digits] == sorted(d.box[0] for d in reading.digits)
