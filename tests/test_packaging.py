"""Packaging: one version, a license the wheel carries, ranges for users, pins for us."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import xconv

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once():
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", xconv.__version__)
    project = PYPROJECT["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "xconv.__version__"}
    # no other file writes it: the docs and the command line read xconv.__version__
    literal = re.escape(xconv.__version__)
    for path in [ROOT / "pyproject.toml", ROOT / "docs" / "conf.py", ROOT / "xconv" / "_cli.py"]:
        assert not re.search(literal, path.read_text()), path
    assert "xconv.__version__" in (ROOT / "docs" / "conf.py").read_text()


def test_version_on_the_command_line_is_the_packages():
    result = subprocess.run(
        [sys.executable, "-m", "xconv", "--version"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    assert result.stdout == f"xconv {xconv.__version__}\n"


def test_the_license_is_declared_and_shipped():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 The xconv developers\n")
    assert "License :: " not in " ".join(project["classifiers"])  # PEP 639: the expression
    # PEP 639's fields need setuptools 77.0.3 or later (older ones refuse `license = "MIT"`)
    assert PYPROJECT["build-system"]["requires"] == ["setuptools>=77.0.3"]


def test_classifiers_name_the_pythons_and_the_typing():
    classifiers = PYPROJECT["project"]["classifiers"]
    for classifier in [
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Typing :: Typed",
        "Operating System :: OS Independent",
    ]:
        assert classifier in classifiers
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    assert (ROOT / "xconv" / "py.typed").exists()


def test_extras_are_ranges_and_the_pins_are_constraints():
    extras = PYPROJECT["project"]["optional-dependencies"]
    for name, requirements in extras.items():
        for requirement in requirements:
            assert "==" not in requirement, f"xconv[{name}] pins {requirement}: use a range"
    assert "torch>=2.4" in extras["torch"]
    # the test extra stays light: PyTorch, the reference, is its own extra
    assert not any(requirement.startswith("torch") for requirement in extras["test"])
    pins = [
        line.strip()
        for line in (ROOT / "constraints" / "dev.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # only this torch may be installed on the development machines (a CPU wheel on disk)
    assert "torch==2.13.0" in pins


def test_every_nox_install_goes_through_the_constraints():
    text = (ROOT / "noxfile.py").read_text()
    # one direct call, inside _install, which passes --constraint constraints/dev.txt
    assert text.count("session.install(") == 1
    assert re.search(r'session\.install\("--constraint", str\(CONSTRAINTS\)', text)
    assert 'CONSTRAINTS = ROOT / "constraints" / "dev.txt"' in text
    # pip run by hand (the build session's fresh environment) gets it too
    calls = re.findall(r"session\.run\(\*pip[^\n]*", text)
    assert calls
    for call in calls:
        assert '"--constraint", str(CONSTRAINTS)' in call
