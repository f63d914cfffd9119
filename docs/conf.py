"""Sphinx configuration of xconv's documentation site (``nox -s docs`` builds it)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import xconv  # noqa: E402  (after the path of the local extension)

project = "xconv"
author = "The xconv developers"
copyright = "2026, The xconv developers"
# the one version, written in xconv/__init__.py
release = xconv.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.napoleon",
    "xconv_benchmarks",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_generated/*.md"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# the docstrings quote names in single backticks: show them as code
default_role = "code"
autodoc_default_options = {"show-inheritance": True}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autosummary_generate = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # Attributes: as fields (no second description of a name)
napoleon_custom_sections = ["Shape"]

# the doctest builder runs the pages' doctest/testcode blocks; the docstrings' examples
# run under pytest (--doctest-modules), in their modules' namespaces
doctest_test_doctest_blocks = ""
# every doctest block starts with these imports (and the NumPy backend)
doctest_global_setup = """
import numpy as np
import xconv
"""

html_theme = "pydata_sphinx_theme"
html_title = f"xconv {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
