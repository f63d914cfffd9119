"""The public API is what `__all__` says, and importing xconv stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

MODULES = [
    "xconv",
    "xconv.backends",
    "xconv.config",
    "xconv.data",
    "xconv.distributed",
    "xconv.functional",
    "xconv.layers",
    "xconv.losses",
    "xconv.model",
    "xconv.models",
    "xconv.optimizers",
    "xconv.testing",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_complete(name):
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=_isort_key), "keep __all__ sorted (ruff RUF022)"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith(("_", "pytest_"))  # pytest_plugins: pytest's, not ours
        and not isinstance(value, type(sys))
        and getattr(value, "__module__", name).startswith(name)  # defined here, not imported
    }
    assert public <= set(exported), f"public but not exported: {public - set(exported)}"


def _isort_key(name: str) -> tuple[int, str]:
    """CONSTANTS, then Classes, then functions: the order ruff keeps `__all__` in."""
    if name.isupper():
        return 0, name
    return (1 if name[:1].isupper() else 2), name


def test_import_is_light():
    # importing imports no array library; `available()` imports at most CuPy, where it
    # is installed, to ask the driver for a device (the others: is the package there)
    code = (
        "import sys, xconv, xconv.functional, xconv.layers, xconv.backends\n"
        "heavy = ('cupy', 'torch', 'jax', 'dask', 'array_api_strict')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
        "xconv.backends.available()\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    after_import, after_available = result.stdout.split("\n")[:2]
    assert after_import == ""
    assert after_available in ("", "cupy")


def test_version():
    import xconv

    assert xconv.__version__.count(".") >= 2
