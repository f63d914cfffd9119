"""The documentation's benchmarks page: a section, with its machine and its plot, for
every current record in benchmarks/results."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
#: what each kind of result file shows as (the heading's start)
HEADINGS = {
    "conv": "## conv2d",
    "train": "## Training speed per backend",
    "delegation-runs": "## Delegation",
    "gpu": "## On a GPU",
    "record": "## Accuracy record",
    "mnist-recipe": "## MNIST's default recipe",
}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    pytest.importorskip("matplotlib", reason="the page's plots need matplotlib")
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        import xconv_benchmarks
    finally:
        sys.path.pop(0)
    out = tmp_path_factory.mktemp("generated")
    return xconv_benchmarks.render(RESULTS, out), out


def _current() -> list[tuple[str, str]]:
    """(file, kind) of each result file whose kind the page shows."""
    found = []
    for path in sorted(RESULTS.glob("*.json")):
        kind = json.loads(path.read_text()).get("benchmark")
        if kind in HEADINGS and not (kind == "train" and path.name < "train-cpu-2026-11-30"):
            found.append((path.name, kind))
    return found


@pytest.mark.parametrize(("name", "kind"), _current())
def test_every_current_record_has_its_section_machine_and_plot(page, name, kind):
    text, out = page
    heading = next(
        (line for line in text.splitlines() if line.startswith(HEADINGS[kind]) and name in line),
        None,
    )
    assert heading is not None, f"no section for {name}"
    section = text[text.index(heading) :].split("\n## ", 1)[0]
    assert "Machine: " in section
    for image in re.findall(r"\{image\} /_generated/(\S+)", section):
        assert (out / image).is_file()
    if kind != "record":  # LeNet-5's record is two small tables
        assert "{image}" in section, f"{name}'s section has no plot"


def test_the_pages_kinds_are_all_on_disk():
    kinds = {kind for _, kind in _current()}
    assert {"conv", "train", "delegation-runs", "gpu", "record"} <= kinds
