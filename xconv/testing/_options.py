"""The always-loaded part of xconv's pytest plugin: its options, and the switch.

pytest loads this module through the ``pytest11`` entry point wherever xconv is
installed. It only adds ``--xconv-backends`` and two ini keys, so installing xconv
changes no one's test run. The fixtures and the parametrization live in
`xconv.testing._plugin`, registered when the plugin is enabled: by ``-p xconv.testing``,
``pytest_plugins = ["xconv.testing"]`` in a conftest, ``xconv_testing = true`` in the
ini file, or ``--xconv-backends`` on the command line.

PYTEST_DONT_REWRITE: ``xconv.testing`` imports this module before pytest registers it.
"""

from __future__ import annotations

import importlib

import pytest

#: the plugin's name for ``-p`` and ``pytest_plugins``
PLUGIN = "xconv.testing"
#: environment variable naming the backends under test (a comma list)
ENV_VAR = "XCONV_TEST_BACKENDS"
OPTION = "--xconv-backends"
INI_ENABLE = "xconv_testing"
INI_BACKENDS = "xconv_backends"


def backend_name(name: str) -> str:
    """A backend's registered name from either spelling: ``array-api-strict`` (the
    extra's, with hyphens) is ``array_api_strict``."""
    return name.strip().replace("-", "_")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xconv", "xconv cross-backend testing (xconv.testing)")
    group.addoption(
        OPTION,
        dest="xconv_backends",
        default=None,
        metavar="NAMES",
        help=(
            "comma list of xconv backends that the xp and backend fixtures run on, "
            "e.g. numpy,array_api_strict,torch,jax,dask (array-api-strict works too) "
            f"(default: ${ENV_VAR}, else the ini key {INI_BACKENDS}, else every backend "
            "usable here); enables xconv.testing"
        ),
    )
    parser.addini(INI_ENABLE, type="bool", default=False, help="enable xconv.testing's fixtures")
    parser.addini(
        INI_BACKENDS,
        type="string",
        default="",
        help=f"xconv backends under test when neither {OPTION} nor ${ENV_VAR} names them",
    )


def pytest_configure(config: pytest.Config) -> None:
    enabled = config.getoption("xconv_backends") is not None or config.getini(INI_ENABLE)
    if enabled and not config.pluginmanager.has_plugin(PLUGIN):
        # the package is imported already (this module is in it): register it as it is,
        # as `import_plugin` would, but without its warning that it cannot be rewritten
        config.pluginmanager.register(importlib.import_module(PLUGIN), PLUGIN)
