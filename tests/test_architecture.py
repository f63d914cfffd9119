"""xconv's import graph keeps the layering written down in docs/architecture.md.

Every import in `xconv/` is read with `ast` (function-level ones and those under
`TYPE_CHECKING` included), relative imports resolved, and mapped to its *part*: a
subpackage (`xconv.functional`) or a top-level module (`xconv.model`). The package
root (`xconv/__init__.py`, `xconv/__main__.py`) is the top: it may import anything and
nothing may import it. Then:

- no cycle between parts;
- a part imports only parts on lower rows of `LAYERS` (not its own row's others);
- no part imports another part's private module (`xconv.functional._conv`): the
  public names of a part are its interface.
"""

from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "xconv"
DOC = ROOT / "docs" / "architecture.md"

#: the layering, lowest row first; a part may import only parts on lower rows.
#: Parts that do not exist yet are simply absent from the graph. Keep in step with
#: the list in docs/architecture.md (a test below compares them).
LAYERS: list[list[str]] = [
    [
        "xconv.config",
        "xconv._typing",
        "xconv._validation",
        "xconv._resolve",
        "xconv.data",
        "xconv._atomic",
    ],
    ["xconv._limits"],
    ["xconv.backends"],
    ["xconv.functional"],
    ["xconv.layers", "xconv.losses", "xconv.optimizers"],
    ["xconv.testing"],
    ["xconv.callbacks"],
    ["xconv.training"],
    ["xconv.distributed"],
    ["xconv.model"],
    ["xconv.models"],
    ["xconv._cli"],
]

TOP = "xconv"

#: known violations, as (importing file, imported module); none today
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Import:
    """One import: the file it is in, its line, and the module it imports."""

    path: str  # relative to the repository root
    line: int
    module: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.module}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    """Whether `name` (xconv.something) is a module or package of the source tree."""
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports(path: Path) -> list[Import]:
    """Every import of xconv's own modules in `path`, at any depth of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    rel = str(path.relative_to(ROOT))
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(rel, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            for alias in node.names:
                # `from package import module` imports the module, else a name of base
                sub = f"{base}.{alias.name}"
                found.append(Import(rel, node.lineno, sub if _is_module(sub) else base))
    return [i for i in found if i.module == TOP or i.module.startswith(TOP + ".")]


def _part(module: str) -> str:
    """The part a module belongs to: xconv.<first component>, or the top."""
    pieces = module.split(".")
    if len(pieces) == 1 or pieces[1] == "__main__":
        return TOP
    return ".".join(pieces[:2])


def _private_inside(module: str) -> bool:
    """Whether `module` is a private module inside its part (xconv.functional._conv)."""
    return any(piece.startswith("_") for piece in module.split(".")[2:])


ALL_IMPORTS = sorted(
    {i for path in PACKAGE.rglob("*.py") for i in _imports(path)},
    key=lambda i: (i.path, i.line, i.module),
)


def _edges() -> dict[str, dict[str, list[Import]]]:
    """part -> imported part -> the imports that make the edge (top and self excluded)."""
    graph: dict[str, dict[str, list[Import]]] = {}
    for imp in ALL_IMPORTS:
        source, target = _part(_module_name(ROOT / imp.path)), _part(imp.module)
        if source == TOP or target in (TOP, source):
            continue
        graph.setdefault(source, {}).setdefault(target, []).append(imp)
    return graph


def _rank() -> dict[str, int]:
    return {part: row for row, parts in enumerate(LAYERS) for part in parts}


def _known(imp: Import) -> bool:
    return (imp.path, imp.module) in KNOWN_VIOLATIONS


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_walk_finds_function_level_relative_and_type_checking_imports():
    seen = {(i.path, i.module) for i in ALL_IMPORTS}
    # module level, relative, `from package import module`
    assert ("xconv/functional/_im2col.py", "xconv.functional._numpy_kernels") in seen
    # function level
    assert any(i.path == "xconv/model.py" and i.module == "xconv.distributed" for i in ALL_IMPORTS)
    # under TYPE_CHECKING
    assert ("xconv/functional/_cupy_kernels.py", "xconv.functional._geometry") in seen
    assert len(ALL_IMPORTS) > 50


def test_every_part_has_a_place_in_the_layers():
    parts = {_part(_module_name(path)) for path in PACKAGE.rglob("*.py")} - {TOP}
    listed = [part for row in LAYERS for part in row]
    assert len(listed) == len(set(listed)), "a part is listed twice in LAYERS"
    missing = sorted(parts - set(listed))
    assert not missing, f"parts missing from LAYERS and docs/architecture.md: {missing}"


def test_no_cycle_between_parts():
    graph = {
        source: {t for t, imps in targets.items() if not all(_known(i) for i in imps)}
        for source, targets in _edges().items()
    }
    cycle = _find_cycle(graph)
    if cycle is not None:
        edges = _edges()
        why = [str(edges[a][b][0]) for a, b in itertools.pairwise(cycle)]
        pytest.fail(f"import cycle {' -> '.join(cycle)}: " + "; ".join(why))


def test_imports_go_down_the_layers():
    rank = _rank()
    wrong = [
        f"{imp} ({source} may import only parts below it)"
        for source, targets in _edges().items()
        for target, imps in targets.items()
        if source in rank and target in rank and rank[target] >= rank[source]
        for imp in imps
        if not _known(imp)
    ]
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_part_imports_another_parts_private_modules():
    wrong = [
        str(imp)
        for imp in ALL_IMPORTS
        if _part(imp.module) not in (TOP, _part(_module_name(ROOT / imp.path)))
        and _private_inside(imp.module)
        and not _known(imp)
    ]
    assert not wrong, "private modules of another part (use its public names):\n" + "\n".join(
        wrong
    )


def test_known_violations_still_exist():
    """An allow-list entry that no longer matches an import must go."""
    seen = {(i.path, i.module) for i in ALL_IMPORTS}
    assert not (KNOWN_VIOLATIONS - seen)


def test_the_checks_catch_what_they_should():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
    assert _part("xconv.functional._conv") == "xconv.functional"
    assert _part("xconv.model") == "xconv.model"
    assert _private_inside("xconv.functional._conv")
    assert not _private_inside("xconv._validation")
    assert not _private_inside("xconv.functional")


def test_the_document_lists_the_same_layers():
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"```text\n(.*?)```", text, re.S)
    assert block is not None, "docs/architecture.md lost its ```text block of layers"
    rows = [
        re.findall(r"xconv\.[\w.]+", line)
        for line in block.group(1).splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert [row for row in rows if row] == LAYERS
