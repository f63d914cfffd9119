"""The suite's own ``--grid-sample=K`` option (tests/conftest.py), which CI's JAX and
Dask sessions use: K evenly spread cases of each test's grid per backend, the rest
deselected, and backend-agnostic tests untouched."""

from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")

TESTS = """
import pytest

@pytest.mark.parametrize("n", range(10))
def test_grid(xp, n):
    assert n >= 0

@pytest.mark.parametrize("n", range(4))
def test_agnostic(n):
    assert n >= 0

def test_single(xp):
    assert xp is not None
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_sample=TESTS)
    return pytester


def _collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line]


def test_keeps_k_spread_cases_per_grid_and_backend(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--xconv-backends=numpy", "--grid-sample=3", "--co", "-q")
    result.assert_outcomes()  # collection only: nothing ran, nothing failed
    names = _collected(result)
    grid = [name for name in names if "test_grid" in name]
    assert len(grid) == 3
    # the first, the middle (index round(4.5) = 4) and the last of n = 0..9
    for n in (0, 4, 9):
        assert any(f"-{n}]" in name or f"[{n}-" in name for name in grid), (n, grid)
    # backend-agnostic parametrized tests and single cases are all kept
    assert sum("test_agnostic" in name for name in names) == 4
    assert sum("test_single" in name for name in names) == 1
    assert "7 deselected" in result.stdout.str()


def test_without_the_option_every_case_runs(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--xconv-backends=numpy")
    result.assert_outcomes(passed=15)


def test_k_below_one_is_a_usage_error(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--xconv-backends=numpy", "--grid-sample=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--grid-sample must be at least 1, got 0*"])
