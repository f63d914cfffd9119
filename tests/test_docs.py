"""The documentation site: an API page for every public module, naming every public name."""

from __future__ import annotations

import importlib
import re
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
MODULES = [
    "xconv",
    "xconv.backends",
    "xconv.callbacks",
    "xconv.config",
    "xconv.data",
    "xconv.distributed",
    "xconv.functional",
    "xconv.layers",
    "xconv.losses",
    "xconv.models",
    "xconv.optimizers",
    "xconv.testing",
]


@pytest.mark.parametrize("name", MODULES)
def test_api_page_documents_every_public_name(name):
    module = importlib.import_module(name)
    public = {
        item
        for item in module.__all__
        if not item.startswith("__") and not isinstance(getattr(module, item), types.ModuleType)
    }
    page = (DOCS / "api" / f"{name}.rst").read_text()
    assert f".. automodule:: {name}\n" in page
    documented = set(re.findall(r"^\.\. auto(?:class|function|data):: (\w+)$", page, re.M))
    assert documented == public, f"docs/api/{name}.rst: add {public - documented}"
    listed = set(re.findall(r"^   (\w+)$", page, re.M))
    assert listed == public, f"docs/api/{name}.rst's summary table: add {public - listed}"


def test_every_api_page_is_in_the_index():
    index = (DOCS / "api" / "index.rst").read_text()
    pages = sorted(path.stem for path in (DOCS / "api").glob("xconv*.rst"))
    assert pages == sorted(MODULES)
    for page in pages:
        assert f"\n   {page}\n" in index


def test_every_guide_page_is_in_the_toctree():
    index = (DOCS / "index.md").read_text()
    for path in DOCS.glob("*.md"):
        if path.stem != "index":
            assert f"\n{path.stem}\n" in index, f"{path.name} is in no toctree"
