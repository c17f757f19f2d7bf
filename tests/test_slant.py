"""A line's slant, and a line leaning far read upright: `imaging.slant` and `read_number`."""

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from test_read import number_picture

from digitrec import load_model
from digitrec.imaging.slant import SLANT_KEPT, SLANT_TARGET, Shear, deslanted, slant
from digitrec.reading import numbers


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
        ink = leaning_strokes(alpha)
        read, shear = deslanted(ink)
        assert shear is None and read is ink


def test_a_line_leaning_far_is_sheared_to_mnists_usual_slant_and_boxes_map_back():
    ink = leaning_strokes(-0.6)
    upright, shear = deslanted(ink)
    assert shear.alpha == pytest.approx(-0.6 - SLANT_TARGET, abs=0.05)
    assert upright.shape[0] == ink.shape[0] and upright.sum() == pytest.approx(ink.sum(), rel=0.02)  # nothing cut
    assert slant(upright) == pytest.approx(SLANT_TARGET, abs=0.05)
    # each bar's box in the sheared line maps back to the box around the bar in the line, within a pixel or two
    labels = ndimage.label(upright > 0.5)[0]
    for n, (rows, cols) in enumerate(ndimage.find_objects(labels)):
        x0, y0, x1, y1 = shear.box_back([cols.start, rows.start, cols.stop, rows.stop])
        own = ndimage.find_objects(ndimage.label(ink > 0.5)[0])[n]
        assert (y0, y1) == (rows.start, rows.stop)
        assert abs(x0 - own[1].start) <= 2 and abs(x1 - own[1].stop) <= 2


@pytest.mark.parametrize("alpha", [-1.6, -1.4, -0.9, 0.5, 1.3])
def test_a_steep_line_or_one_leaning_back_ends_within_the_range(alpha):
    """Edges leaning over 45 degrees are not measured, so a steep line is measured again once sheared: one round
    alone leaves -1.6, -1.4 and 1.3 outside the range."""
    ink = leaning_strokes(alpha)
    upright, shear = deslanted(ink)
    assert SLANT_KEPT[0] <= slant(upright) <= SLANT_KEPT[1]
    assert np.array_equal(upright, shear.apply(ink))  # the line read is the shear given back


def test_a_mark_off_the_middle_row_is_boxed_where_it_is():
    """Away from the middle row the shear moves ink by alpha times its distance: a point near the foot of a
    leaning line goes back to its own place, not to its mirror image."""
    ink = np.zeros((80, 320), np.float32)
    ink[66:70, 150:154] = 1.0
    shear = Shear(ink.shape, -0.42)
    rows, cols = ndimage.find_objects(ndimage.label(shear.apply(ink) > 0.5)[0])[0]
    x0, y0, x1, y1 = shear.box_back([cols.start, rows.start, cols.stop, rows.stop])
    assert ink[y0:y1, x0:x1].sum() == ink.sum() and x1 - x0 <= 4 + 2 + 2


def test_boxes_map_back_inside_the_line_even_over_blank_columns():
    shear = Shear((54, 433), 0.671)
    for box in ([0, 0, 1, 54], [472, 0, 473, 54], [200, 0, 260, 54], [-5, 10, 600, 20]):
        x0, y0, x1, y1 = shear.box_back(box)
        assert 0 <= x0 < x1 <= 433


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_a_number_written_leaning_far_is_read_sheared_with_boxes_on_its_digits(model, monkeypatch):
    upright = number_picture("2746", seed=3)
    w, h = upright.size
    lean = 0.7  # PIL's AFFINE samples x + 0.7 y: the line leans right far more than MNIST's writers did
    extra = int(lean * h) + 4
    leaning = upright.transform((w + 2 * extra, h), Image.AFFINE, (1, lean, -extra - lean * h / 2, 0, 1, 0),
                                resample=Image.BILINEAR, fillcolor=255)
    applied = []  # the shears `read_number` reads the line with

    def recorded(ink):
        read, shear = deslanted(ink)
        applied.append(shear.alpha if shear is not None else 0.0)
        return read, shear

    monkeypatch.setattr(numbers, "deslanted", recorded)
    reading = model.read(leaning)
    assert reading.text == "2746" and len(applied) == 1 and applied[0] < -0.3
    ink = np.asarray(leaning) < 128
    truth = sorted(b for b in ndimage.find_objects(ndimage.label(ink, structure=np.ones((3, 3)))[0])
                   if b[0].stop - b[0].start > h / 3)
    truth = sorted(truth, key=lambda b: b[1].start)
    assert len(truth) == 4
    for d, (rows, cols) in zip(reading.digits, truth, strict=True):
        x0, y0, x1, y1 = d.box
        assert 0 <= x0 < x1 <= leaning.width and 0 <= y0 < y1 <= leaning.height
        # the digit's own box is inside the one given, which is no wider than it and the shear's drift
        assert x0 <= cols.start + 2 and cols.stop - 2 <= x1 and y0 <= rows.start + 2 and rows.stop - 2 <= y1
        assert x1 - x0 <= (cols.stop - cols.start) + abs(applied[0]) * h + 6
    applied.clear()
    numbers.read_number(leaning, model, model.line_model, deslant=False)
    assert not applied  # read as written
