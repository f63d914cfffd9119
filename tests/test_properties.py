"""Property test: random convolutions agree with PyTorch float64, forward and backward."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import relative_error, requires_torch_reason, to_np, to_xp, torch, torch_conv2d
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xconv.functional import conv2d, conv2d_backward, im2col

pytestmark = pytest.mark.skipif(torch is None, reason=requires_torch_reason)

small = st.integers(1, 3)


@st.composite
def convolutions(draw):
    """A valid convolution: shapes, options (all padding forms, groups, dilation), bias."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    depthwise = draw(st.booleans())
    cg = 1 if depthwise else draw(small)
    fg = draw(small)
    kh, kw = draw(small), draw(small)
    stride = (draw(small), draw(small))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(
        st.one_of(
            st.just("same"),
            st.just("valid"),
            st.integers(0, 2),
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
            st.tuples(
                st.tuples(st.integers(0, 2), st.integers(0, 2)),
                st.tuples(st.integers(0, 2), st.integers(0, 2)),
            ),
        )
    )
    # the input must hold the dilated kernel once padded (for 'valid' and numbers)
    span_h, span_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    h = draw(st.integers(span_h, span_h + 5))
    w = draw(st.integers(span_w, span_w + 5))
    return {
        "x_shape": (draw(st.integers(1, 3)), cg * groups, h, w),
        "w_shape": (fg * groups, cg, kh, kw),
        "bias": draw(st.booleans()),
        "options": {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups},
        "symmetric_padding": draw(st.tuples(st.integers(0, 2), st.integers(0, 2))),
        "seed": draw(st.integers(0, 2**16)),
    }


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=convolutions())
def test_random_convolutions_match_torch(xp, case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["x_shape"])
    w = rng.standard_normal(case["w_shape"])
    b = rng.standard_normal(case["w_shape"][0]) if case["bias"] else None
    options = case["options"]
    ref_out = torch_conv2d(x, w, b, **options)["out"]
    grad_output = rng.standard_normal(ref_out.shape)
    ref = torch_conv2d(x, w, b, grad_output=grad_output, **options)

    out = conv2d(to_xp(x, xp), to_xp(w, xp), None if b is None else to_xp(b, xp), **options)
    assert relative_error(to_np(out), ref["out"]) <= 1e-9
    gi, gw, gb = conv2d_backward(
        to_xp(grad_output, xp), to_xp(x, xp), to_xp(w, xp), bias=b is not None, **options
    )
    assert relative_error(to_np(gi), ref["grad_input"]) <= 1e-9
    assert relative_error(to_np(gw), ref["grad_weight"]) <= 1e-9
    if b is None:
        assert gb is None
    else:
        assert relative_error(to_np(gb), ref["grad_bias"]) <= 1e-9


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=convolutions())
def test_random_im2col_matches_unfold(xp, case):
    options = dict(case["options"], padding=case["symmetric_padding"])  # unfold's only kind
    del options["groups"]
    x = np.random.default_rng(case["seed"]).standard_normal(case["x_shape"])
    kernel = case["w_shape"][2:]
    cols = im2col(to_xp(x, xp), kernel, **options)
    expected = torch.nn.functional.unfold(torch.tensor(x), kernel, **options).numpy()
    np.testing.assert_array_equal(to_np(cols), expected)
