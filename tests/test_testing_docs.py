"""The testing guide cannot drift: its files are the example project's, its signatures
the code's, and every public name of `xconv.testing` is in it and in the README."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import xconv.testing

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "testing.md").read_text()
README = (ROOT / "README.md").read_text()
EXAMPLE = ROOT / "examples" / "cross-backend"

#: each `<!-- file: NAME -->` marker and the fenced block after it
FILES = dict(re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```\n", GUIDE, flags=re.DOTALL))
FUNCTIONS = sorted(
    name for name in xconv.testing.__all__ if inspect.isfunction(getattr(xconv.testing, name))
)


def test_the_guide_shows_every_file_of_the_example_project():
    on_disk = {
        str(path.relative_to(EXAMPLE))
        for path in EXAMPLE.rglob("*")
        if path.is_file()
        and not {".nox", "__pycache__", ".pytest_cache"} & set(path.parts)
        and ".egg-info" not in str(path)
    }
    assert set(FILES) == on_disk


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_file_in_the_guide_is_the_example_projects(name):
    assert FILES[name] == (EXAMPLE / name).read_text(), f"docs/testing.md's {name} differs"


def _plain(function: object) -> str:
    """`function`'s signature as the guide writes it: no annotations."""
    signature = inspect.signature(function)  # type: ignore[arg-type]
    parameters = [
        p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()
    ]
    plain = signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty)
    return str(plain)


@pytest.mark.parametrize("document", ["docs/testing.md", "README.md"])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_docs_give_each_helpers_real_signature(name, document):
    text = " ".join((ROOT / document).read_text().split())  # signatures may wrap
    found = re.findall(rf"\*\*`{name}(\(.*?\))`\*\*", text)
    assert found, f"{document} does not document {name}"
    assert found[0] == _plain(getattr(xconv.testing, name))


@pytest.mark.parametrize("name", sorted(xconv.testing.__all__))
def test_every_public_name_is_in_the_guide_and_the_readme(name):
    assert f"`{name}" in GUIDE
    section = README[README.index("## Test your own code across backends") :]
    assert f"`{name}" in section, f"the README's testing section does not name {name}"


def test_the_guide_names_every_backend_and_its_extra():
    for backend, extra in xconv.testing.BACKEND_EXTRAS.items():
        assert f"| `{backend}` |" in GUIDE
        if extra is not None:
            assert f"`{extra}`" in GUIDE
