"""Shape and padding algebra, checked by hand (no arrays involved)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import same_pads

from xconv.functional import ConvGeometry


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "expected_out", "expected_pads"),
    [
        (5, 3, 1, 1, 5, (1, 1)),
        (4, 3, 2, 1, 2, (0, 1)),  # odd pixel at the end
        (5, 3, 2, 1, 3, (1, 1)),
        (8, 4, 1, 1, 8, (1, 2)),
        (7, 1, 3, 1, 3, (0, 0)),
        (6, 3, 2, 2, 3, (1, 2)),  # dilated kernel spans 5: (3 - 1) * 2 + 5 - 6 = 3
        (2, 5, 1, 1, 2, (2, 2)),  # kernel larger than the input: 'same' still works
    ],
)
def test_same_padding_by_hand(size, kernel, stride, dilation, expected_out, expected_pads):
    g = ConvGeometry.build((size, size), kernel, stride=stride, padding="same", dilation=dilation)
    assert g.out_size == (expected_out, expected_out)
    assert g.padding == (expected_pads, expected_pads)
    assert same_pads(size, kernel, stride, dilation) == expected_pads  # the tests' own copy


def test_output_size_formula():
    g = ConvGeometry.build(
        (10, 11), (3, 2), stride=(3, 2), padding=((2, 0), (1, 1)), dilation=(1, 2)
    )
    # (10 + 2 - 2 - 1) // 3 + 1 = 4 ; (11 + 2 - 2 - 1) // 2 + 1 = 6
    assert g.out_size == (4, 6)
    assert g.padded_size == (12, 13)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"stride": 0}, ValueError, "`stride` must be a positive integer or pair of them, got 0"),
        ({"stride": 1.5}, TypeError, "`stride` must be a positive integer"),
        ({"stride": (1, 2, 3)}, TypeError, "`stride`"),
        ({"stride": True}, TypeError, "`stride`"),
        ({"dilation": -1}, ValueError, "`dilation`"),
        ({"padding": -1}, ValueError, "`padding` must be an integer >= 0"),
        ({"padding": "full"}, ValueError, "got 'full'"),
        ({"padding": ((1, 2), 3)}, TypeError, "`padding`"),
        ({"padding": ((1, -2), (0, 0))}, ValueError, "`padding`"),
        ({"padding": 1.0}, TypeError, "`padding`"),
    ],
)
def test_bad_options_are_named(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        ConvGeometry.build((8, 8), 3, **kwargs)


def test_kernel_larger_than_padded_input_is_refused():
    with pytest.raises(ValueError, match="kernel spans 5 pixels along the width"):
        ConvGeometry.build((8, 4), (3, 5))
    with pytest.raises(ValueError, match="kernel spans 7 pixels along the height"):
        ConvGeometry.build((6, 6), 3, dilation=3, padding=0)
    assert ConvGeometry.build((4, 4), 5, padding=1).out_size == (2, 2)


@pytest.mark.parametrize(
    ("option", "value"), [("stride", True), ("stride", 1.0), ("dilation", (1, True))]
)
def test_cached_geometry_does_not_admit_equal_values_of_other_types(option, value):
    # True == 1 and 1.0 == 1 as dict keys: a geometry cached for 1 must not answer for them
    ConvGeometry.build((6, 6), 3, stride=1, dilation=1)
    with pytest.raises(TypeError, match=f"`{option}`"):
        ConvGeometry.build((6, 6), 3, **{option: value})


def test_cached_geometry_is_the_one_built():
    first = ConvGeometry.build((9, 7), (3, 2), stride=2, padding="same")
    again = ConvGeometry.build((9, 7), (3, 2), stride=2, padding="same")
    uncached = ConvGeometry.build((np.int64(9), 7), (3, 2), stride=np.int64(2), padding="same")
    assert again is first
    assert uncached == first
    pool = ConvGeometry.for_pooling((5, 5), 2)
    assert ConvGeometry.for_pooling((5, 5), 2) is pool
    with pytest.raises(ValueError, match="no input pixel"):
        ConvGeometry.for_pooling((5, 5), 2, padding=2)
    with pytest.raises(ValueError, match="no input pixel"):
        ConvGeometry.for_pooling((5, 5), 2, padding=2)  # refused again: errors are not cached
