"""xconv.testing's helpers can fail: NaN is a failure, integers are exact, options checked.

Each case here passed silently before issue #27: a comparison written ``x > allowed``
is False for NaN, and integers compared through float64 lose their last bits.
"""

from __future__ import annotations

import numpy as np
import pytest

from xconv.testing import assert_close, check_gradient

X = np.array([1.0, 2.0, 3.0])


def cube(x):
    return np.sum(x**3)


# -- assert_close --------------------------------------------------------------------

U64 = np.iinfo(np.uint64).max


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (np.array([2**53], dtype=np.int64), np.array([2**53 + 1], dtype=np.int64)),
        (np.array([U64], dtype=np.uint64), np.array([U64 - 1], dtype=np.uint64)),
        (np.array([U64], dtype=np.uint64), np.array([-1], dtype=np.int64)),
        (np.array([2**62 + 1], dtype=np.int64), [2**62]),
    ],
    ids=["int64-2**53", "uint64-max", "uint64-max-vs-minus-one", "int64-vs-list"],
)
def test_assert_close_compares_integers_exactly(actual, expected):
    with pytest.raises(AssertionError, match="differ at 1 of 1"):
        assert_close(actual, expected)


def test_assert_close_integer_tolerances_are_exact_too():
    assert_close(np.array([2**60 + 3]), np.array([2**60]), atol=3)
    with pytest.raises(AssertionError, match=r"\|difference\| 4 > allowed 3"):
        assert_close(np.array([2**60 + 4]), np.array([2**60]), atol=3)
    assert_close(np.array([1, 2], dtype=np.uint8), np.array([1, 2], dtype=np.int64))


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (complex(np.nan, 0.0), complex(0.0, np.nan)),
        (complex(np.nan, 1.0), complex(np.nan, 2.0)),
        (complex(np.inf, 0.0), complex(np.nan, 0.0)),
        (complex(1.0, np.nan), complex(1.0, 0.0)),
    ],
)
def test_assert_close_complex_nan_sits_in_one_part(actual, expected):
    with pytest.raises(AssertionError, match="differ at 1 of 1"):
        assert_close(np.array([actual]), np.array([expected]))


def test_assert_close_complex_nan_and_inf_at_the_same_parts_agree():
    values = np.array([complex(np.nan, 1.0), complex(np.inf, -2.0), complex(0.0, np.nan)])
    assert_close(values, values.copy())


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 10**400])
@pytest.mark.parametrize("name", ["rtol", "atol"])
def test_assert_close_refuses_tolerances_that_cannot_fail(name, value):
    with pytest.raises(
        ValueError, match=rf"`{name}` \(=.*\) must be a finite non-negative number"
    ):
        assert_close(np.ones(2), np.full(2, 5.0), **{name: value})


def test_assert_close_refuses_tolerances_that_are_not_numbers():
    with pytest.raises(TypeError, match="`rtol`"):
        assert_close(np.ones(2), np.ones(2), rtol=True)
    with pytest.raises(TypeError, match="`atol`"):
        assert_close(np.ones(2), np.ones(2), atol="0.1")


# -- check_gradient ------------------------------------------------------------------


@pytest.mark.parametrize("directions", [None, 3], ids=["every-element", "directions"])
def test_check_gradient_fails_on_a_nan_claim(directions):
    claimed = np.array([3.0, np.nan, 27.0])
    with pytest.raises(AssertionError, match="nan"):
        check_gradient(cube, X, claimed, directions=directions)


@pytest.mark.parametrize("directions", [None, 3], ids=["every-element", "directions"])
def test_check_gradient_fails_on_a_function_returning_nan(directions):
    with pytest.raises(AssertionError, match="nan"):
        check_gradient(lambda x: cube(x) * np.nan, X, 3 * X**2, directions=directions)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"eps": float("inf")}, "`eps` must be positive and finite"),
        ({"eps": float("nan")}, "`eps` must be positive and finite"),
        ({"eps": 0.0}, "`eps` must be positive and finite"),
        ({"rtol": float("nan")}, "`rtol` must be non-negative and finite"),
        ({"rtol": float("inf")}, "`rtol` must be non-negative and finite"),
        ({"atol": float("nan")}, "`atol` must be non-negative and finite"),
        ({"atol": -1e-8}, "`atol` must be non-negative and finite"),
        ({"atol": 10**400}, "`atol` must be non-negative and finite"),
        ({"directions": True}, "`directions` must be None or an int from 1 to 100000"),
        ({"directions": 2.0}, "`directions` must be None or an int from 1 to 100000"),
        # 10**400 directions would run for ever, not fail
        ({"directions": 10**400}, "`directions` must be None or an int from 1 to 100000"),
    ],
)
def test_check_gradient_refuses_options_that_cannot_fail(options, match):
    with pytest.raises(ValueError, match=match):
        check_gradient(cube, X, 2 * X**2, **options)


def test_check_gradient_refuses_a_seed_that_is_not_an_integer():
    with pytest.raises(TypeError, match="`seed` must be an integer"):
        check_gradient(cube, X, 3 * X**2, seed=0.5)


def test_check_gradient_still_accepts_numpy_scalars_as_options():
    check_gradient(cube, X, 3 * X**2, eps=np.float64(1e-6), rtol=np.float32(1e-6))
    check_gradient(cube, X, 3 * X**2, directions=np.int64(2), seed=np.int64(1))
