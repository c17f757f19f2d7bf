"""The fast filters give exactly what scipy and numpy give (preprocessing's answers must not move by a bit)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from digitrec.imaging.morphology import (
    EIGHT_CONNECTED,
    FOUR_CONNECTED,
    closing,
    edge_padded,
    max_filter,
    min_cross,
    min_filter,
)

SHAPES = st.tuples(st.integers(1, 24), st.integers(1, 24))
PICTURES = st.one_of(
    arrays(np.float32, SHAPES, elements=st.floats(-300, 300, width=32)),
    arrays(np.uint8, SHAPES),
    arrays(bool, SHAPES),
)


@settings(max_examples=300, deadline=None)
@given(PICTURES, st.sampled_from([1, 3, 5, 7, 9, 13, 25]))
def test_square_filters_are_ndimages(picture, size):
    for ours, theirs in ((max_filter, ndimage.maximum_filter), (min_filter, ndimage.minimum_filter)):
        out, expected = ours(picture, size), theirs(picture, size)
        assert out.dtype == expected.dtype
        np.testing.assert_array_equal(out, expected)


@settings(max_examples=200, deadline=None)
@given(PICTURES, st.sampled_from([1, 3, 5, 9]), st.sampled_from([1, 3, 7]))
def test_box_filters_and_closing_are_ndimages(picture, rows, columns):
    box = (rows, columns)
    np.testing.assert_array_equal(max_filter(picture, box), ndimage.maximum_filter(picture, box))
    np.testing.assert_array_equal(min_filter(picture, box), ndimage.minimum_filter(picture, box))
    np.testing.assert_array_equal(closing(picture, box), ndimage.grey_closing(picture, size=box))


@settings(max_examples=200, deadline=None)
@given(PICTURES)
def test_cross_erosion_is_ndimages(picture):
    np.testing.assert_array_equal(min_cross(picture), ndimage.grey_erosion(picture, footprint=FOUR_CONNECTED))


def test_filters_leave_their_input_alone_and_refuse_even_squares():
    picture = np.arange(20, dtype=np.float32).reshape(4, 5)
    kept = picture.copy()
    max_filter(picture, 3), min_filter(picture, 5), min_cross(picture)
    np.testing.assert_array_equal(picture, kept)
    for size in (4, (3, 2)):
        with pytest.raises(ValueError, match="odd sizes"):
            max_filter(picture, size)


def test_label_structures_are_ndimages_own():
    np.testing.assert_array_equal(FOUR_CONNECTED, ndimage.generate_binary_structure(2, 1))
    np.testing.assert_array_equal(EIGHT_CONNECTED, ndimage.generate_binary_structure(2, 2))


@given(arrays(np.float32, SHAPES), st.integers(0, 5), st.integers(0, 5))
def test_edge_padding_is_numpys(array, more_rows, more_columns):
    expected = np.pad(array, ((0, more_rows), (0, more_columns)), mode="edge")
    np.testing.assert_array_equal(edge_padded(array, *expected.shape), expected)
