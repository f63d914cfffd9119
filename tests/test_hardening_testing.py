"""xconv.testing's helpers can fail: NaN is a failure, integers are exact, options checked.

Each case here passed silently before issue #27: a comparison written ``x > allowed``
is False for NaN, and integers compared through float64 lose their last bits. The
last section's cases broke the promise that a bad argument is a TypeError or ValueError
naming it, raised before any work.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from xconv.testing import (
    assert_close,
    check_gradient,
    from_numpy,
    nox_sessions,
    numerical_gradient,
    reference_torch,
    to_numpy,
    xconv_requirement,
)

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
    with pytest.raises(TypeError, match="`seed` must be a non-negative integer"):
        check_gradient(cube, X, 3 * X**2, seed=0.5)


def test_check_gradient_still_accepts_numpy_scalars_as_options():
    check_gradient(cube, X, 3 * X**2, eps=np.float64(1e-6), rtol=np.float32(1e-6))
    check_gradient(cube, X, 3 * X**2, directions=np.int64(2), seed=np.int64(1))


# -- hostile arguments: refused by name, before any work -------------------------------
# Each was a broken promise of tests/test_hostile_arguments.py's KNOWN_DEFECTS: a raw
# exception, a warning, or a refusal that did not say which argument was wrong.


NOT_DATA = pytest.mark.parametrize(
    "value", [None, "x", ("a", "b"), [None]], ids=["None", "str", "str-tuple", "None-list"]
)


@NOT_DATA
def test_assert_close_refuses_an_actual_that_is_not_numeric_data(value):
    with pytest.raises(TypeError, match="`actual`"):
        assert_close(value, [1.0, 2.0])


@NOT_DATA
def test_assert_close_refuses_an_expected_that_is_not_numeric_data(value):
    with pytest.raises(TypeError, match="`expected`"):
        assert_close(np.array([1.0, 2.0]), value)


def test_assert_close_of_huge_values_fails_without_an_overflow_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AssertionError, match=r"index \(1,\): actual 1e\+300"):
            assert_close(np.array([0.0, 1e300]), np.zeros(2))


def test_assert_close_checks_msg():
    with pytest.raises(TypeError, match="`msg` must be a str or None"):
        assert_close(np.ones(2), np.ones(2), msg=np.array([1.0, 2.0]))
    with pytest.raises(AssertionError, match=r"^shapes differ"):
        assert_close(np.ones(2), np.ones(3), msg=None)


def _never_called(*args, **kwargs):
    raise AssertionError("the function was called before its arguments were checked")


def test_check_gradient_refuses_an_fn_that_is_not_callable():
    with pytest.raises(TypeError, match="`fn` must be a function, got None"):
        check_gradient(None, X, 3 * X**2)


@pytest.mark.parametrize(
    ("inputs", "grads"),
    [(None, X), ("abc", X), (1.0, 1.0), ([1.0], [1.0]), (np.array(["a", "b"]), X[:2])],
    ids=["None", "str", "float", "list-of-float", "str-array"],
)
def test_check_gradient_refuses_inputs_that_are_not_arrays_of_numbers(inputs, grads):
    with pytest.raises(TypeError, match="`inputs`"):
        check_gradient(_never_called, inputs, grads)


@pytest.mark.parametrize(
    "grads", [None, "x", ["a", "b", "c"], X + 1j], ids=["None", "str", "str-list", "complex"]
)
def test_check_gradient_refuses_grads_that_are_not_real_numeric_data(grads):
    with pytest.raises(TypeError, match="`grads`"):
        check_gradient(_never_called, X, grads)


@pytest.mark.parametrize("seed", [-1, np.int64(-3), np.array(-1)])
def test_check_gradient_refuses_a_negative_seed(seed):
    with pytest.raises(ValueError, match="`seed` must be a non-negative integer"):
        check_gradient(_never_called, X, 3 * X**2, seed=seed)


@pytest.mark.parametrize("dtype", ["x", "nan", [], ("a", "b"), b","])
def test_from_numpy_refuses_what_is_no_dtype(dtype):
    with pytest.raises(TypeError, match="`dtype` must be a dtype of numpy"):
        from_numpy([1.0, 2.0], np, dtype=dtype)


def test_from_numpy_refuses_an_array_as_device():
    with pytest.raises(TypeError, match="`device` must be a device of numpy, got an array"):
        from_numpy([1.0, 2.0], np, device=np.array([1.0, 2.0]))


@pytest.fixture
def fresh_nox_registry(monkeypatch):
    nox_registry = pytest.importorskip("nox.registry")
    monkeypatch.setattr(nox_registry, "_REGISTRY", {})
    return nox_registry


@pytest.mark.parametrize("backends", [[1], None, "numpy", np.array(1.0)])
def test_nox_sessions_checks_backends(fresh_nox_registry, backends):
    with pytest.raises(TypeError, match="`backends` must be a sequence of backend names"):
        nox_sessions(backends)


@pytest.mark.parametrize(
    ("constraints", "error"),
    [(1, TypeError), ("pins\x00.txt", ValueError), ("a" * 300, ValueError)],
    ids=["int", "nul", "too-long"],
)
def test_nox_sessions_checks_constraints(fresh_nox_registry, constraints, error):
    with pytest.raises(error, match="`constraints`"):
        nox_sessions(["numpy"], constraints=constraints)


@pytest.mark.parametrize(("name", "error"), [(1, TypeError), (None, TypeError), ("", ValueError)])
def test_nox_sessions_checks_name(fresh_nox_registry, name, error):
    with pytest.raises(error, match="`name`"):
        nox_sessions(["numpy"], name=name)
    assert not fresh_nox_registry.get()


def test_numerical_gradient_refuses_an_f_that_is_not_callable():
    with pytest.raises(TypeError, match="`f` must be a function, got None"):
        numerical_gradient(None, X)


@pytest.mark.parametrize(
    "a", ["x", 1j, 10**400, [None]], ids=["str", "complex", "huge-int", "None-list"]
)
def test_numerical_gradient_refuses_an_a_that_is_not_real_numbers(a):
    with pytest.raises(TypeError, match="`a`"):
        numerical_gradient(_never_called, a)


@pytest.mark.parametrize(
    ("eps", "error"),
    [(0, ValueError), (-1e-6, ValueError), (10**400, ValueError), (None, TypeError)],
    ids=["zero", "negative", "huge-int", "None"],
)
def test_numerical_gradient_checks_eps(eps, error):
    with pytest.raises(error, match="`eps`"):
        numerical_gradient(_never_called, X, eps=eps)


@pytest.mark.parametrize("fn_name", [None, 1, b"relu"])
def test_reference_torch_refuses_an_fn_name_that_is_not_a_str(fn_name):
    with pytest.raises(TypeError, match="`fn_name` must be a str"):
        reference_torch(fn_name, X)


@pytest.mark.parametrize("x", [None, "x", {}])
def test_to_numpy_refuses_what_is_not_data_by_name(x):
    with pytest.raises(TypeError, match="`x`: expected an array"):
        to_numpy(x)


@pytest.mark.parametrize("extras", ["test", [1], None])
def test_xconv_requirement_checks_extras(extras):
    with pytest.raises(TypeError, match="`extras` must be a sequence of extra names"):
        xconv_requirement("xconv", extras=extras)
    assert xconv_requirement("xconv", extras=("test",)) == "xconv[test]"


@pytest.mark.parametrize("source", ["./xconv\x00", "./" + "a" * 300], ids=["nul", "too-long"])
def test_xconv_requirement_refuses_a_source_path_the_system_cannot_look_up(source):
    with pytest.raises(ValueError, match=r"`source` .* is no usable path"):
        xconv_requirement(source)
