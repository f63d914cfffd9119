"""xconv's suite runs on its own pytest plugin, `xconv.testing`.

It gives the `xp` and `backend` fixtures, parametrized over the backends under test:
``--xconv-backends`` or ``XCONV_TEST_BACKENDS`` (a comma list, e.g. ``numpy,torch``);
by default, every backend usable here. A backend named there but not usable here is a
skip that says why, never a silent pass; an unknown name is a usage error.
"""

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

# pytester runs small test files in-process, for tests/test_testing_plugin.py
pytest_plugins = ["xconv.testing", "pytester"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def benchmarks_module(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """Imports ``benchmarks.<name>`` (the repository's benchmark suite, not a package
    of xconv's) with the repository root on ``sys.path`` for this test."""
    monkeypatch.syspath_prepend(str(ROOT))
    return lambda name: importlib.import_module(f"benchmarks.{name}")
