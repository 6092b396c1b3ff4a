"""The import contract (ARCHITECTURE.md): layers, no cycles, and function-local imports
only where they keep a heavy library out of a process.

Read from the source with `ast`, so it checks every module without importing any.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "extract", "classify", "predict")
# What each package may import of the others (itself always).
ALLOWED = {
    "common": set(),
    "extract": {"common"},
    "classify": {"common", "extract.featurefile", "extract.cache"},
    "predict": {"common", "extract", "classify"},
}
# Libraries slow to import or unneeded by some commands: a function may import these
# (or a module of ours that imports one of them) to keep them out of a process.
HEAVY = {"tensorflow", "keras", "openvino", "dask", "distributed", "sklearn", "scipy",
         "xgboost", "matplotlib", "skops", "joblib", "h5py", "PIL", "pandas", "numpy",
         "filelock", "tqdm", "onnx", "cleanlab", "umap"}
# Modules imported for what importing them does (the stderr filter): a function imports
# them where that effect is wanted.
FOR_EFFECT = {"common.quiet"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module, or package.name for `from package import name`
    local: bool  # inside a function
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}


def imports(name: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_checking: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_checking |= {id(inner) for inner in ast.walk(node)}
    functions = [node for node in ast.walk(tree)
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    local = {id(inner) for function in functions for inner in ast.walk(function)}
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue  # for annotations only: never run
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, id(node) in local, node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield Import(name, f"{node.module}.{alias.name}", id(node) in local, node.lineno)


def first_party(target: str, known: dict[str, Path]) -> str | None:
    """The module of ours that `target` names (a module, or a name inside one)."""
    while target:
        if target in known:
            return target
        target = target.rpartition(".")[0]
    return None


def graph(local: bool) -> dict[str, set[str]]:
    """Module -> modules of ours it imports (module level only, unless `local`)."""
    known = sources()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for found in imports(name, path):
            target = first_party(found.target, known)
            if target and target != name and (local or not found.local):
                edges[name].add(target)
    return edges


def heavy_at_import(known: dict[str, Path]) -> set[str]:
    """Our modules whose import (module level, transitively) loads a heavy library."""
    direct = {name for name, path in known.items()
              if any(not i.local and i.target.split(".")[0] in HEAVY for i in imports(name, path))}
    edges = graph(local=False)
    heavy, changed = set(direct), True
    while changed:
        changed = False
        for name, targets in edges.items():
            if name not in heavy and targets & heavy:
                heavy.add(name)
                changed = True
    return heavy


def test_each_package_imports_only_the_layers_below_it() -> None:
    known = sources()
    wrong = []
    for name, path in known.items():
        package = name.split(".")[0]
        for found in imports(name, path):
            target = first_party(found.target, known)
            if target is None or target.split(".")[0] == package:
                continue
            if not any(target == allowed or target.startswith(allowed + ".")
                       for allowed in ALLOWED[package]):
                wrong.append(f"{path.relative_to(REPO)}:{found.line} imports {target}")
    assert wrong == []


def test_no_import_cycles_between_modules() -> None:
    edges = graph(local=True)
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(edges[name]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_function_local_imports_only_keep_heavy_libraries_out() -> None:
    known = sources()
    heavy = heavy_at_import(known)
    stdlib = set(sys.stdlib_module_names)
    needless = []
    for name, path in known.items():
        for found in imports(name, path):
            if not found.local:
                continue
            top = found.target.split(".")[0]
            ours = first_party(found.target, known)
            if top in HEAVY or (ours is not None and (ours in heavy or ours in FOR_EFFECT)):
                continue
            kind = "standard library" if top in stdlib else "light module"
            needless.append(f"{path.relative_to(REPO)}:{found.line} imports {found.target} "
                            f"({kind}) inside a function")
    assert needless == []
