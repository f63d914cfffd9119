"""xconv's suite runs on its own pytest plugin, `xconv.testing`.

It gives the `xp` and `backend` fixtures, parametrized over the backends under test:
``--xconv-backends`` or ``XCONV_TEST_BACKENDS`` (a comma list, e.g. ``numpy,torch``);
by default, every backend usable here. A backend named there but not usable here is a
skip that says why, never a silent pass; an unknown name is a usage error.

``--grid-sample=K``, an option of this repository's own (not the plugin's), keeps of
each test function's parametrized cases on each backend K spread evenly over the grid
(its first and last included) and deselects the rest: the same cases every run and on
every xdist worker. CI's JAX and Dask sessions use it to stay within CI's time (see
noxfile.py); the NumPy, array-api-strict and torch sessions run every case.
"""

import importlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

# pytester runs small test files in-process, for tests/test_testing_plugin.py
pytest_plugins = ["xconv.testing", "pytester"]

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xconv-suite", "xconv's own suite")
    group.addoption(
        "--grid-sample",
        type=int,
        default=None,
        metavar="K",
        help="keep K evenly spread cases of each parametrized test per backend",
    )


def _evenly_spread(n: int, k: int) -> set[int]:
    """k indices out of range(n), spread evenly, the first and last included."""
    if k >= n:
        return set(range(n))
    if k == 1:
        return {0}
    return {round(i * (n - 1) / (k - 1)) for i in range(k)}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    k = config.getoption("grid_sample")
    if k is None:
        return
    if k < 1:
        raise pytest.UsageError(f"--grid-sample must be at least 1, got {k}")
    grids: defaultdict[tuple[str, str], list[pytest.Item]] = defaultdict(list)
    for item in items:
        backend = _backend(item)
        if backend is not None:
            grids[(item.nodeid.split("[", 1)[0], backend)].append(item)
    dropped = set()
    for grid in grids.values():
        chosen = _evenly_spread(len(grid), k)
        dropped.update(id(item) for i, item in enumerate(grid) if i not in chosen)
    if dropped:
        config.hook.pytest_deselected(items=[item for item in items if id(item) in dropped])
        items[:] = [item for item in items if id(item) not in dropped]


def _backend(item: pytest.Item) -> str | None:
    """The backend an item runs on (its `xp` parameter), or None where it takes no `xp`."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or "xp" not in callspec.params:
        return None
    return str(callspec.params["xp"])


@pytest.fixture
def benchmarks_module(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """Imports ``benchmarks.<name>`` (the repository's benchmark suite, not a package
    of xconv's) with the repository root on ``sys.path`` for this test."""
    monkeypatch.syspath_prepend(str(ROOT))
    return lambda name: importlib.import_module(f"benchmarks.{name}")
