"""`xconv.testing`, the pytest plugin other projects test their array-API code with.

The plugin itself runs under pytest's `pytester` on small test files (ids, choosing
backends, usage errors, skips, off unless enabled); the helpers are tested directly, on
every backend under test.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from helpers import torch

import xconv.backends as backends
from xconv.backends import _registry
from xconv.testing import (
    ENV_VAR,
    TOLERANCES,
    TORCH_MISSING,
    _compare,
    _gradient,
    assert_close,
    check_gradient,
    from_numpy,
    numerical_gradient,
    reference_torch,
    to_numpy,
)

ROOT = Path(__file__).resolve().parent.parent

BACKEND_TEST = """
def test_namespace(xp, backend):
    assert backend.namespace is xp

def test_plain():
    pass
"""

NO_BACKEND_TEST = "def test_nothing():\n    pass\n"

#: a second backend for the in-process runs: one already imported, since pytester unloads
#: what a run imports (nox's sessions have torch, the reference, but not array_api_strict)
OTHER = next((n for n in ("array_api_strict", "torch") if n in backends.available()), None)


@pytest.fixture
def imported():
    """Import the inner runs' libraries before `pytester` snapshots `sys.modules`.

    pytester removes what an in-process run imported; NumPy's submodules cannot be
    imported twice in one process.
    """
    if OTHER is None:
        pytest.skip("neither array_api_strict nor torch is installed: one run needs two backends")
    for name in ("numpy", OTHER):
        backends.get(name).namespace.asarray([1.0])


@pytest.fixture
def run(imported, pytester, monkeypatch):
    """Run pytest in-process on `BACKEND_TEST` (or `source`) with `args`."""
    monkeypatch.delenv(ENV_VAR, raising=False)

    def run(*args, source=BACKEND_TEST):
        pytester.makepyfile(test_file=source)
        return pytester.runpytest(*args)

    return run


# -- the plugin ---------------------------------------------------------------------------


def test_each_test_runs_once_per_backend_and_its_id_names_it(run):
    result = run("-p", "xconv.testing", f"--xconv-backends=numpy,{OTHER}", "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            f"xconv backends under test: numpy, {OTHER} (from --xconv-backends;*",
            "*test_namespace?numpy? PASSED*",
            f"*test_namespace?{OTHER}? PASSED*",
            "*test_plain PASSED*",
        ]
    )


def test_the_environment_variable_chooses_and_the_option_wins(run, monkeypatch):
    monkeypatch.setenv(ENV_VAR, OTHER)
    result = run("-p", "xconv.testing", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*(from XCONV_TEST_BACKENDS;*", f"*test_namespace?{OTHER}?*"])
    result = run("-p", "xconv.testing", "--xconv-backends=numpy", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_namespace?numpy? PASSED*"])


def test_a_backend_is_named_by_either_spelling(run):
    # the extra's spelling (array-api-strict) names the backend (array_api_strict)
    result = run("-p", "xconv.testing", f"--xconv-backends=numpy,{OTHER.replace('_', '-')}", "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"xconv backends under test: numpy, {OTHER} *"])


def test_by_default_every_usable_backend_is_under_test(run):
    result = run("-p", "xconv.testing", source=NO_BACKEND_TEST)
    result.assert_outcomes(passed=1)
    usable = ", ".join(backends.available())
    result.stdout.fnmatch_lines([f"xconv backends under test: {usable} (from every backend*"])


def test_an_unknown_backend_is_a_usage_error(run, monkeypatch):
    result = run("-p", "xconv.testing", "--xconv-backends=numpy,nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--xconv-backends names unknown xconv backends ?'nope'? ('numpy,nope'); known: numpy*"]
    )
    monkeypatch.setenv(ENV_VAR, ",")
    result = run("-p", "xconv.testing")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*XCONV_TEST_BACKENDS names no backend (','); known: numpy*"])
    # the option given blank names no backend, as ',' does: not every backend
    for blank in ("--xconv-backends=", "--xconv-backends= "):
        result = run("-p", "xconv.testing", blank)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*--xconv-backends names no backend*; known: numpy*"])
    # empty names are dropped; a blank variable means the default
    monkeypatch.setenv(ENV_VAR, "numpy,,")
    assert run("-p", "xconv.testing").ret == pytest.ExitCode.OK
    monkeypatch.setenv(ENV_VAR, " ")
    # (a test without `xp`: the in-process run must not import every library here)
    assert run("-p", "xconv.testing", source=NO_BACKEND_TEST).ret == pytest.ExitCode.OK


class MissingBackend(backends.Backend):
    name = "missing_lib"
    module = "xconv_no_such_library"
    array_api_name = "missing_lib"
    extra = "missing"


def test_a_backend_missing_here_is_a_skip_with_its_reason(run, monkeypatch):
    monkeypatch.setattr(_registry, "_backends", dict(_registry._backends))
    backends.register(MissingBackend())
    result = run("-p", "xconv.testing", "--xconv-backends=numpy,missing_lib", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED*xconv backend 'missing_lib' is not usable here*"
            "xconv_no_such_library is not installed*"
        ]
    )


def test_the_plugin_is_off_unless_enabled(run):
    # without -p (and whether or not the pytest11 entry point is installed): no fixture
    result = run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'xp' not found*"])
    assert "xconv backends under test" not in result.stdout.str()
    # the entry point's module alone adds the options and stays off ...
    result = run("-p", "xconv.testing._options")
    result.assert_outcomes(passed=1, errors=1)
    # ... until --xconv-backends asks for backends
    result = run("-p", "xconv.testing._options", "--xconv-backends=numpy")
    result.assert_outcomes(passed=2)


def test_a_conftest_or_the_ini_file_enables_it(run, pytester):
    pytester.makeconftest('pytest_plugins = ["xconv.testing"]\n')
    run("--xconv-backends=numpy").assert_outcomes(passed=2)
    (pytester.path / "conftest.py").unlink()
    pytester.makeini(f"[pytest]\nxconv_testing = true\nxconv_backends = {OTHER}\n")
    result = run("-p", "xconv.testing._options", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*(from ini xconv_backends;*", f"*test_namespace?{OTHER}?*"])


def test_a_test_that_parametrizes_xp_itself_is_left_alone(run):
    source = (
        "import numpy, pytest\n"
        "@pytest.mark.parametrize('xp', [numpy])\n"
        "def test_own(xp):\n"
        "    assert xp is numpy\n"
    )
    result = run("-p", "xconv.testing", f"--xconv-backends={OTHER}", source=source)
    result.assert_outcomes(passed=1)


def test_import_xconv_leaves_pytest_out_and_a_missing_pytest_is_named():
    code = (
        "import sys, xconv, xconv.functional, xconv.layers, xconv.backends\n"
        "print('xconv.testing' in sys.modules, 'pytest' in sys.modules)\n"
        "sys.modules['pytest'] = None  # as if pytest were not installed\n"
        "import xconv.testing\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False False"
    assert result.returncode != 0
    assert (
        "ImportError: xconv.testing needs pytest, which is not installed: "
        "pip install 'xconv[test]'" in result.stderr
    )


# -- to_numpy, from_numpy, assert_close ---------------------------------------------------


def test_host_round_trip(xp):
    a = np.arange(6.0).reshape(2, 3)
    x = from_numpy(a, xp, dtype="float32")
    assert x.dtype == xp.float32
    host = to_numpy(x)
    assert isinstance(host, np.ndarray)
    np.testing.assert_array_equal(host, a)


def test_conversions_refuse_what_no_backend_handles():
    with pytest.raises(TypeError, match="expected an array, got object"):
        to_numpy(object())
    with pytest.raises(TypeError, match="`xp` must be the array namespace"):
        from_numpy([1.0], types.SimpleNamespace())


def test_assert_close_across_namespaces(xp):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    assert_close(from_numpy(a, xp, dtype="float64"), a)
    assert_close(a, from_numpy(a, xp, dtype="float64"))
    # a float32 result against a float64 reference: float32's tolerances apply
    assert_close(from_numpy(a, xp, dtype="float32"), a)
    with pytest.raises(AssertionError, match=r"rtol=1e-05, atol=1e-07, from float32 and float64"):
        assert_close(from_numpy(a, xp, dtype="float32"), a + 1e-3)


def test_assert_close_names_the_worst_element(xp):
    actual = from_numpy([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], xp, dtype="float64")
    expected = np.array([[1.0, 2.0, 3.1], [4.0, 5.5, 6.0]])
    with pytest.raises(AssertionError) as info:
        assert_close(actual, expected, msg="conv2d forward")
    message = str(info.value)
    assert message.startswith("conv2d forward\narrays differ at 2 of 6 elements")
    assert "(rtol=1e-10, atol=1e-12, from float64)" in message
    assert "worst at index (1, 1): actual 5.0, expected 5.5, |difference| 0.5 > allowed" in message


def test_assert_close_tolerances_given():
    assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.1]), atol=0.2)
    assert_close(np.array([100.0]), np.array([101.0]), rtol=0.01)
    with pytest.raises(AssertionError, match=r"rtol=0, atol=0\.01, given"):
        assert_close(np.array([1.0]), np.array([1.1]), rtol=0, atol=0.01)
    with pytest.raises(ValueError, match=r"`rtol` \(=-1\)"):
        assert_close(np.array([1.0]), np.array([1.0]), rtol=-1)


def test_assert_close_checks_shape_and_dtype_kind():
    with pytest.raises(AssertionError, match=r"shapes differ: actual \(2,\), expected \(1, 2\)"):
        assert_close(np.zeros(2), np.zeros((1, 2)))
    with pytest.raises(AssertionError, match=r"dtype kinds differ: actual float64 \(floating\)"):
        assert_close(np.zeros(2), np.zeros(2, dtype=np.int64))
    with pytest.raises(AssertionError, match=r"actual 1, expected 2"):
        assert_close(np.array([1]), np.array([2]))  # integers: exact
    assert_close(np.array([True, False]), np.array([True, False]))
    assert_close(np.array([1.0, 2.0]), [1, 2])  # host data as `expected`: any kind


def test_assert_close_nan_and_inf():
    assert_close(np.array([np.nan, np.inf, -np.inf]), np.array([np.nan, np.inf, -np.inf]))
    with pytest.raises(AssertionError, match=r"index \(0,\): actual nan, expected 1.0"):
        assert_close(np.array([np.nan, 1.0]), np.array([1.0, 1.0]))
    with pytest.raises(AssertionError, match=r"actual inf, expected -inf"):
        assert_close(np.array([np.inf]), np.array([-np.inf]))


def test_default_tolerances_follow_the_least_precise_dtype():
    assert _compare._tolerances(np.dtype("float64")) == TOLERANCES["float64"]
    assert _compare._tolerances(np.dtype("float32"), np.dtype("float64")) == TOLERANCES["float32"]
    assert _compare._tolerances(np.dtype("complex64")) == TOLERANCES["float32"]
    assert _compare._tolerances(np.dtype("float16")) == TOLERANCES["float16"]
    assert _compare._tolerances(np.dtype("int32"), np.dtype("bool")) == (0.0, 0.0)


# -- check_gradient ------------------------------------------------------------------------


def _cubic(xp):
    """sum(x**3 * w) and its gradients with respect to x and w."""

    def f(x, w):
        return xp.sum(x**3 * w)

    def grads(x, w):
        return 3 * x**2 * w, x**3

    return f, grads


def test_a_correct_gradient_passes(xp):
    f, grads = _cubic(xp)
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    inputs = (from_numpy(x, xp), from_numpy(w, xp))
    check_gradient(f, inputs, grads(x, w))  # every element
    check_gradient(f, inputs, grads(x, w), directions=3)  # random directions
    check_gradient(
        lambda *, x, w: f(x, w),
        {"x": inputs[0], "w": inputs[1]},
        dict(zip("xw", grads(x, w), strict=True)),
    )


def test_a_wrong_gradient_fails_and_says_where(xp):
    f, grads = _cubic(xp)
    x, w = np.full((2, 2), 0.5), np.ones((2, 2))
    gx, gw = grads(x, w)
    gw_wrong = gw.copy()
    gw_wrong[1, 0] += 1e-3
    inputs = {"x": from_numpy(x, xp), "w": from_numpy(w, xp)}
    with pytest.raises(AssertionError) as info:
        check_gradient(lambda x, w: f(x, w), inputs, {"x": gx, "w": gw_wrong})
    message = str(info.value)
    assert "gradient of input 'w' disagrees with central finite differences" in message
    assert "every element" in message
    assert "worst at index (1, 0): claimed 0.126" in message
    with pytest.raises(AssertionError, match=r"input 'w'.*random direction 0 of 2, seed 0"):
        check_gradient(lambda x, w: f(x, w), inputs, {"x": gx, "w": gw_wrong}, directions=2)


def test_large_inputs_are_checked_along_random_directions(xp):
    x = np.random.default_rng(2).standard_normal(150)  # more than 100 elements

    def f(x):
        return xp.sum(xp.sin(x))

    check_gradient(f, from_numpy(x, xp), np.cos(x))
    with pytest.raises(AssertionError, match=r"random direction 0 of 8"):
        check_gradient(f, from_numpy(x, xp), np.cos(x) * 1.001)


def test_check_gradient_needs_float64_throughout(monkeypatch):
    x = np.array([1.0, 2.0])
    with pytest.raises(AssertionError, match="`fn` returned float32 from float64 inputs"):
        check_gradient(lambda x: np.sum(x.astype(np.float32)), x, 2 * x)
    with pytest.raises(ValueError, match="`fn` must return a scalar"):
        check_gradient(lambda x: x, x, x)
    monkeypatch.setattr(_gradient, "_float64_problem", lambda xp, device: "no float64 here")
    with pytest.raises(pytest.skip.Exception, match="check_gradient needs float64: no float64"):
        check_gradient(lambda x: np.sum(x), x, np.ones(2))


def test_float64_problem_names_the_namespace():
    assert _gradient._float64_problem(np, "cpu") is None
    fake = types.SimpleNamespace(__name__="fake_array_lib")
    assert _gradient._float64_problem(fake, None) == "fake_array_lib has no float64 dtype"


def test_check_gradient_validates_its_arguments():
    x = np.ones(2)
    with pytest.raises(ValueError, match="`grads` must be a sequence of 1 gradients"):
        check_gradient(np.sum, [x], [x, x])
    with pytest.raises(ValueError, match=r"`grads` must be a mapping with the keys"):
        check_gradient(np.sum, {"x": x}, {"y": x})
    with pytest.raises(ValueError, match=r"the gradient for input 0 has shape \(3,\)"):
        check_gradient(np.sum, x, np.ones(3))
    with pytest.raises(ValueError, match="`eps` must be positive"):
        check_gradient(np.sum, x, x, eps=0)
    with pytest.raises(ValueError, match="`directions` must be None or an int from 1 to 100000"):
        check_gradient(np.sum, x, x, directions=0)


def test_numerical_gradient():
    g = numerical_gradient(lambda a: float(np.sum(a**2)), np.array([[1.0, -2.0]]))
    np.testing.assert_allclose(g, [[2.0, -4.0]], rtol=1e-8)


# -- reference_torch ----------------------------------------------------------------------


def test_reference_torch_skips_without_torch(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torch" else find_spec(name, *a),
    )
    with pytest.raises(pytest.skip.Exception, match=r"PyTorch .* is not installed"):
        reference_torch("relu", np.zeros(2))
    assert "xconv[torch]" in TORCH_MISSING


@pytest.mark.skipif(torch is None, reason=TORCH_MISSING)
def test_reference_torch_runs_on_host_float64_copies(xp):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    out = reference_torch("conv2d", from_numpy(x, xp, dtype="float32"), w, padding=1)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float64
    x32 = x.astype(np.float32).astype(np.float64)  # the float32 input, widened exactly
    expected = torch.nn.functional.conv2d(torch.tensor(x32), torch.tensor(w), padding=1)
    np.testing.assert_array_equal(out, expected.numpy())
    # a function of torch itself, where torch.nn.functional has none
    assert_close(reference_torch("logsumexp", x, dim=1), np.log(np.exp(x).sum(axis=1)))


@pytest.mark.skipif(torch is None, reason=TORCH_MISSING)
def test_reference_torch_tuples_integers_and_unknown_names():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    values, indices = reference_torch("max_pool2d", x, 2, return_indices=True)
    np.testing.assert_array_equal(values, [[[[5.0, 7.0], [13.0, 15.0]]]])
    assert indices.dtype == np.int64
    one_hot = reference_torch("one_hot", np.array([0, 2]), num_classes=3)
    np.testing.assert_array_equal(one_hot, [[1, 0, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match=r"`fn_name` must name a function.*'no_such_op'"):
        reference_torch("no_such_op", x)


# -- nox ----------------------------------------------------------------------------------


def test_nox_sessions_defines_one_session_per_backend(monkeypatch):
    nox = pytest.importorskip("nox", reason="nox is not installed (pip install nox)")
    from xconv.testing import nox_sessions

    monkeypatch.setattr(nox.registry, "_REGISTRY", {})
    nox_sessions(["numpy", "torch"], name="check")
    session = nox.registry.get()["check"]
    assert session.__doc__.startswith("Run the tests on one array backend")
    assert [param.arg_names for param in session.parametrize] == [("backend",)] * 2
    with pytest.raises(ValueError, match=r"`backends` names unknown backends \['tensorflow'\]"):
        nox_sessions(["tensorflow"])


class _Session:
    """Just enough of a `nox.Session` to run a session function of `nox_sessions`."""

    def __init__(self, fail_install=False):
        self.fail_install, self.installed, self.ran, self.posargs = fail_install, [], [], []

    def install(self, *args):
        import nox.command

        if self.fail_install:
            raise nox.command.CommandFailed("pip failed")
        self.installed.append(args)

    def run(self, *args, env=None):
        self.ran.append((args, env))

    def error(self, message):
        raise RuntimeError(message)


@pytest.fixture
def sessions(monkeypatch):
    """`nox_sessions` with nox's registry emptied for the test."""
    nox = pytest.importorskip("nox", reason="nox is not installed (pip install nox)")
    from xconv.testing import nox_sessions

    monkeypatch.setattr(nox.registry, "_REGISTRY", {})
    monkeypatch.delenv("XCONV", raising=False)
    return nox_sessions


def test_nox_sessions_default_backends_include_dask_and_take_either_spelling(sessions):
    import nox

    sessions()
    params = nox.registry.get()["tests"].parametrize
    assert [p.call_spec["backend"] for p in params] == [
        "numpy", "array_api_strict", "torch", "jax", "dask"
    ]  # fmt: skip
    sessions(["array-api-strict"], name="strict")
    assert [p.call_spec["backend"] for p in nox.registry.get()["strict"].parametrize] == [
        "array_api_strict"
    ]
    with pytest.raises(ValueError, match=r"`constraints` must be a file"):
        sessions(constraints="no-such-constraints.txt")


def test_a_session_installs_xconv_from_where_it_is_told(sessions, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    monkeypatch.chdir(tmp_path)
    pins = tmp_path / "constraints.txt"
    pins.write_text("torch==2.13.0\n")
    session = _Session()
    sessions(["jax"], constraints=pins, name="pinned")(session, "jax")
    assert session.installed == [
        ("--constraint", str(pins), "-e", ".", "xconv[test,jax,torch]")
    ]  # fmt: skip
    (args, env), *_ = session.ran
    assert args[:3] == ("pytest", "-p", "xconv.testing")
    assert env == {ENV_VAR: "jax", "JAX_ENABLE_X64": "1"}
    # a clone, from the environment variable; without the reference
    monkeypatch.setenv("XCONV", str(ROOT))
    session = _Session()
    sessions(["numpy"], reference=False, name="light")(session, "numpy")
    assert session.installed == [("-e", ".", f"{ROOT}[test]")]


def test_a_session_says_how_to_point_at_xconv(sessions, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError, match=r"pip could not install 'xconv\[test,torch\]'.*XCONV"):
        sessions(["numpy"], name="index")(_Session(fail_install=True), "numpy")
    with pytest.raises(RuntimeError, match=r"'\./no-such-clone' does not exist.*XCONV=\.\./xconv"):
        sessions(["numpy"], xconv="./no-such-clone", name="clone")(_Session(), "numpy")
    (tmp_path / "pyproject.toml").unlink()
    with pytest.raises(RuntimeError, match=r"has no pyproject\.toml"):
        sessions(["numpy"], name="bare")(_Session(), "numpy")


def test_xconv_requirement(tmp_path):
    from xconv.testing import xconv_requirement

    assert xconv_requirement("xconv") == "xconv"
    assert xconv_requirement("xconv>=0.1,<0.3", extras=["test"]) == "xconv[test]>=0.1,<0.3"
    assert xconv_requirement(str(ROOT), extras=["test", "torch"]) == f"{ROOT}[test,torch]"
    wheel = tmp_path / "xconv-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    assert xconv_requirement(str(wheel), extras=["test"]) == f"{wheel}[test]"
    with pytest.raises(ValueError, match=r"without a pyproject\.toml, not a clone of xconv"):
        xconv_requirement(str(tmp_path))
    with pytest.raises(ValueError, match=r"does not exist"):
        xconv_requirement(str(tmp_path / "missing.whl"))
    with pytest.raises(ValueError, match=r"without extras"):
        xconv_requirement("xconv[test]")
    with pytest.raises(TypeError, match=r"`source` must be a non-empty string"):
        xconv_requirement("")
