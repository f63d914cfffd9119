"""Cross-backend testing for array-API code: a pytest plugin and its helpers.

Enable the plugin with ``-p xconv.testing``, ``pytest_plugins = ["xconv.testing"]``
in your top conftest, or ``xconv_testing = true`` in the pytest ini file. It is off
otherwise, although installing xconv registers its options (entry point
``pytest11``): see `xconv.testing._options`. Enabled, it gives tests

- the fixtures ``xp`` (an array namespace) and ``backend`` (its `xconv.backends.Backend`),
  each test running once per backend under test, its id naming the backend:
  ``--xconv-backends=numpy,torch``, else ``XCONV_TEST_BACKENDS``, else the ini key
  ``xconv_backends``, else every backend usable here. An unknown name is a usage
  error; a backend that is not usable here gives skips with the reason;
- a report header line naming the backends under test.

The helpers work with or without the plugin:

- `assert_close`: compare arrays of any backends and devices, tolerances by dtype;
- `check_gradient`: claimed gradients against central finite differences in float64;
- `reference_torch`: a ``torch.nn.functional`` function as the reference, on the CPU
  in float64 (skipping the test, with `TORCH_MISSING` as the reason, where PyTorch is
  not installed: it comes with the ``torch`` extra, not the ``test`` one);
- `to_numpy`, `from_numpy`, `numerical_gradient`: host copies and plain differences;
- `nox_sessions`: one nox session per backend; `xconv_requirement`: the pip argument
  installing xconv from a release, a clone or a wheel.

Example:
    >>> import numpy as np
    >>> from xconv.testing import assert_close
    >>> assert_close(np.float32(1 / 3), 1 / 3)

Importing this module needs pytest (``pip install 'xconv[test]'``); ``import xconv``
never imports it.

PYTEST_DONT_REWRITE: a conftest may import this module before it names it in
``pytest_plugins``; its checks raise their own AssertionErrors and need no rewriting.
"""

try:
    import pytest  # noqa: F401  (the helpers skip and the plugin registers through it)
except ImportError as exc:  # pragma: no cover - the test extra installs pytest
    raise ImportError(
        "xconv.testing needs pytest, which is not installed: pip install 'xconv[test]'"
    ) from exc

from ._compare import TOLERANCES, assert_close, from_numpy, to_numpy
from ._gradient import check_gradient, numerical_gradient
from ._nox import BACKEND_EXTRAS, XCONV_SOURCE, nox_sessions, xconv_requirement
from ._options import ENV_VAR
from ._torch import TORCH_MISSING, reference_torch

#: what enabling this module as a pytest plugin registers: the options, then the fixtures
pytest_plugins = ["xconv.testing._options", "xconv.testing._plugin"]

__all__ = [
    "BACKEND_EXTRAS",
    "ENV_VAR",
    "TOLERANCES",
    "TORCH_MISSING",
    "XCONV_SOURCE",
    "assert_close",
    "check_gradient",
    "from_numpy",
    "nox_sessions",
    "numerical_gradient",
    "reference_torch",
    "to_numpy",
    "xconv_requirement",
]
