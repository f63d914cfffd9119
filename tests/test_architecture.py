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
import importlib.util
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
    assert ("xconv/functional/_im2col.py", "xconv.functional._dispatch") in seen
    # function level
    assert any(i.path == "xconv/model.py" and i.module == "xconv.distributed" for i in ALL_IMPORTS)
    # under TYPE_CHECKING
    assert ("xconv/functional/_kernels/_cupy.py", "xconv.functional._geometry") in seen
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


# -- inside xconv.functional: generic ops, one seam, kernels by library ------------------

FUNCTIONAL = "xconv.functional"
KERNELS = "xconv.functional._kernels"
#: the array libraries; xconv's generic ops reach them only through array-api-compat
ARRAY_LIBRARIES = ("numpy", "cupy", "cupyx", "torch", "jax", "jaxlib", "dask", "array_api_strict")
#: generic modules that may import NumPy for something other than arrays: dropout makes
#: its host random generator there (the standard has no random numbers; every backend
#: draws from a host NumPy generator, so one seed gives one mask everywhere)
HOST_NUMPY = {"xconv/functional/_dropout.py"}
#: what a kernel module may import of xconv.functional: the seam and the plain data types
KERNEL_MAY_IMPORT = {
    "xconv.functional._interface",
    "xconv.functional._geometry",
    "xconv.functional._chunks",
}


def _all_imports(path: Path) -> list[tuple[int, str]]:
    """Every module `path` imports (any depth of the file), xconv's and others', with
    relative imports resolved: (line, module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                found.append((node.lineno, ".".join([*anchor, node.module or ""]).rstrip(".")))
            else:
                found.append((node.lineno, node.module or ""))
    return found


def _library(path: Path) -> str | None:
    """The array library whose kernels `path` holds (_kernels/_numpy/... -> "_numpy")."""
    parts = path.relative_to(PACKAGE / "functional").parts
    if parts[0] != "_kernels" or len(parts) < 2 or parts[1] == "__init__.py":
        return None
    return parts[1].removesuffix(".py")


def _kernel_seam_violations(
    files: dict[str, tuple[str | None, list[tuple[int, str]]]],
) -> list[str]:
    """The seam's rules broken by `files`: path -> (its library, or None for a generic
    module of xconv.functional; its imports)."""
    wrong = []
    for path, (library, imports) in sorted(files.items()):
        for line, module in imports:
            top = module.split(".")[0]
            where = f"{path}:{line} imports {module}"
            if library is None:
                if top == "numpy" and path in HOST_NUMPY:
                    continue
                if top in ARRAY_LIBRARIES:
                    wrong.append(f"{where}: a generic op imports an array library")
                continue
            if module.startswith(KERNELS + "."):
                other = module[len(KERNELS) + 1 :].split(".")[0]
                if other != library:
                    wrong.append(f"{where}: kernels of one library import another's")
            elif module.startswith(FUNCTIONAL) and module not in KERNEL_MAY_IMPORT:
                wrong.append(f"{where}: kernels import a generic op (only {KERNEL_MAY_IMPORT})")
            elif module.startswith("xconv.") and _part(module) not in (
                "xconv.config",
                "xconv._typing",
                "xconv._validation",
                FUNCTIONAL,
            ):
                wrong.append(f"{where}: kernels import {_part(module)}")
    return wrong


def _functional_files() -> dict[str, tuple[str | None, list[tuple[int, str]]]]:
    return {
        str(path.relative_to(ROOT)): (_library(path), _all_imports(path))
        for path in sorted((PACKAGE / "functional").rglob("*.py"))
    }


def test_generic_ops_import_no_array_library_and_kernels_stay_apart():
    """The generic ops are pure array API (array-api-compat and -extra only); each
    library's kernels import the seam (`_interface`), the geometry and the chunk types,
    never a generic op, another library's kernels, a layer or anything above."""
    files = _functional_files()
    assert any(library == "_numpy" for library, _ in files.values())
    assert any(library is None for library, _ in files.values())
    wrong = _kernel_seam_violations(files)
    assert not wrong, "the kernel seam is broken:\n" + "\n".join(wrong)


def test_the_seam_rules_fail_when_broken():
    broken = {
        "xconv/functional/_conv.py": (None, [(3, "numpy")]),
        "xconv/functional/_kernels/_numpy/_rows.py": (
            "_numpy",
            [(4, "xconv.functional._kernels._torch._ops"), (5, "xconv.functional._conv")],
        ),
        "xconv/functional/_kernels/_cupy.py": ("_cupy", [(6, "xconv.layers")]),
    }
    wrong = _kernel_seam_violations(broken)
    assert len(wrong) == 4, wrong
    fine = {
        "xconv/functional/_conv.py": (None, [(3, "array_api_compat"), (4, "xconv._typing")]),
        "xconv/functional/_kernels/_numpy/_rows.py": (
            "_numpy",
            [(4, "numpy"), (5, "xconv.functional._kernels._numpy._threads")],
        ),
    }
    assert _kernel_seam_violations(fine) == []


def test_each_public_op_chooses_its_kernels_once():
    """Every generic module that runs kernels gets them from `_dispatch.kernels_for`;
    no module of xconv.functional asks array-api-compat which library an array is of
    (`is_numpy_namespace`, ...) but the registry."""
    for path in sorted((PACKAGE / "functional").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        asks = re.findall(r"is_(?:numpy|cupy|torch|jax|dask)_(?:namespace|array)", text)
        if path.name == "_dispatch.py":
            assert asks, "the registry recognises namespaces with array-api-compat"
        else:
            assert not asks, f"{path.relative_to(ROOT)} asks which library an array is of"


# -- nothing imports the command line or the benchmarks; no cycle between files ---------


def test_nothing_in_the_library_imports_the_cli_or_the_benchmarks():
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "__main__.py"
        for line, module in _all_imports(path)
        if module.startswith(("xconv._cli", "benchmarks")) and _module_name(path) != "xconv._cli"
    ]
    assert not wrong, "\n".join(wrong)
    benchmarks = ROOT / "benchmarks"
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in benchmarks.rglob("*.py")
        for line, module in _all_imports(path)
        if module.startswith("xconv._cli")
    ]
    assert not wrong, "benchmarks use the library, not its command line:\n" + "\n".join(wrong)


def _type_checking_lines(path: Path) -> set[int]:
    """The lines of `path` inside ``if TYPE_CHECKING:`` blocks (imports for annotations
    only, which never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _file_graph() -> dict[str, set[str]]:
    """module -> the xconv modules it imports when it runs (any depth of the file;
    annotations-only imports and the package root left out)."""
    graph: dict[str, set[str]] = {}
    annotations_only = {
        str(path.relative_to(ROOT)): _type_checking_lines(path) for path in PACKAGE.rglob("*.py")
    }
    for imp in ALL_IMPORTS:
        source = _module_name(ROOT / imp.path)
        if TOP in (source, imp.module) or source == imp.module:
            continue
        if imp.line in annotations_only[imp.path]:
            continue
        graph.setdefault(source, set()).add(imp.module)
    return graph


def test_no_import_cycle_between_files():
    cycle = _find_cycle(_file_graph())
    assert cycle is None, f"import cycle between files: {' -> '.join(cycle or [])}"


# --- optional libraries imported at a module's top ----------------------------------

OPTIONAL_LIBRARIES = frozenset({"cupy", "dask", "jax", "torch"})


def _top_level_optional_imports(path: Path) -> set[str]:
    """The optional array libraries a module imports when it is itself imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:  # module level only: function-level imports are lazy
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(n.split(".")[0] for n in names if n.split(".")[0] in OPTIONAL_LIBRARIES)
    return found


def _collection_ignores() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("_root_conftest", ROOT / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.KERNELS_NEEDING)


def test_modules_importing_an_optional_library_are_left_out_of_doctests_without_it():
    # pytest imports every module under xconv/ for its doctests; one that imports jax
    # at its top breaks the numpy session's collection unless conftest.py skips it.
    ignores = _collection_ignores()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for library in _top_level_optional_imports(path):
            relative = path.relative_to(ROOT)
            covered = any(
                library == needed
                and (relative.as_posix() == ignored or ignored in map(str, relative.parents))
                for ignored, needed in ignores.items()
            )
            if not covered:
                missing.append(f"{relative} imports {library}")
    assert not missing, "add to KERNELS_NEEDING in conftest.py: " + "; ".join(missing)
    for ignored in ignores:
        assert (ROOT / ignored).exists(), f"conftest.py names a path that is gone: {ignored}"
