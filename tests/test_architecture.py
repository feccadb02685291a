"""The shape of the code (docs/architecture.md): layers, stage packages, module and function size.

Read from the source with ``ast``; nothing is imported, so a violation is reported even when the
module would fail to import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cli", "flows", "tasks", "vmac_core", "vmac_synthetic", "storage_schemas")
STAGES = ("ingest", "validate", "pretrain", "evaluate", "audit", "sample")
# What each package may import of the project (docs/architecture.md, "Layers").
ALLOWED = {
    "cli": {"cli", "flows", "tasks", "storage_schemas", "vmac_core"},
    "flows": {"flows", "tasks", "storage_schemas"},
    "tasks": {"tasks", "vmac_core", "vmac_synthetic", "storage_schemas"},
    "vmac_core": {"vmac_core"},
    "vmac_synthetic": {"vmac_synthetic"},
    "storage_schemas": {"storage_schemas", "vmac_core"},
}
# The method's config dataclass is the model section of the pre-training config (one definition):
# storage_schemas may import these vmac_core modules, and they import no torch.
TORCH_FREE = {"vmac_core.model_config", "vmac_core.architectures", "vmac_core.propagation_config", "vmac_core"}
# Third-party packages the method packages may use: the method is torch and numpy only.
THIRD_PARTY = {"vmac_core": {"torch", "numpy", "MinkowskiEngine", "MinkowskiEngineBackend"}, "vmac_synthetic": {"numpy"}}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# Modules that import project modules inside functions, on purpose (each says why at the import),
# and modules imported only where they are used because they load an optional, separately built
# dependency (MinkowskiEngine).
DEFERRED_IMPORTS = {"cli/commands.py"}
DEFERRED_MODULES = {"vmac_core.sparse.minkowski"}


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = modules()


def imports(path: Path, top_level_only: bool = False) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                out.extend((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                out.append((child.module, child.lineno, in_function))
                # `from tasks.io import lineage` imports the module tasks.io.lineage
                out.extend((f"{child.module}.{alias.name}", child.lineno, in_function) for alias in child.names
                           if f"{child.module}.{alias.name}" in MODULES)
            visit(child, nested)

    visit(tree, False)
    return [i for i in out if not (top_level_only and i[2])]


def project_module(name: str) -> str | None:
    """The project module ``name`` refers to (its longest known prefix), or None."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return None


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "tasks" and parts[1] in STAGES else None


def test_layers_point_one_way():
    wrong = []
    for name, path in MODULES.items():
        package = name.split(".")[0]
        for imported, line, _ in imports(path):
            top = imported.split(".")[0]
            if top in PACKAGES and top not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
            if package == "storage_schemas" and top == "vmac_core" and imported not in TORCH_FREE:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {imported} (configs must not load torch)")
            if name in TORCH_FREE and top not in _stdlib() and imported not in TORCH_FREE:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {imported} (must stay torch-free)")
            if package in THIRD_PARTY and top not in PACKAGES and top not in THIRD_PARTY[package]:
                if top not in _stdlib():
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports {imported} (not torch/numpy)")
    assert not wrong, "\n".join(wrong)


def _stdlib() -> set[str]:
    import sys

    return set(sys.stdlib_module_names) | {"__future__"}


def test_no_stage_package_imports_another():
    wrong = []
    for name, path in MODULES.items():
        mine = stage_of(name)
        for imported, line, _ in imports(path):
            theirs = stage_of(imported)
            if mine and theirs and theirs != mine:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({mine}) imports {imported} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_files():
    graph = {name: {m for i, _, _ in imports(path) if (m := project_module(i)) and m != name}
             for name, path in MODULES.items()}
    # A package's __init__ importing its own submodules is not a cycle between files.
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_project_imports_sit_at_module_tops():
    inside = []
    for name, path in MODULES.items():
        rel = str(path.relative_to(ROOT))
        if rel in DEFERRED_IMPORTS:
            continue
        inside += [f"{rel}:{line} imports {i} inside a function" for i, line, nested in imports(path)
                   if nested and i.split(".")[0] in PACKAGES and i not in DEFERRED_MODULES]
    assert not inside, "\n".join(inside)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{MODULES[name].relative_to(ROOT)} has {lines} lines"


def test_task_functions_stay_short():
    long = []
    for name, path in MODULES.items():
        if not name.startswith("tasks."):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}() has {length} lines")
    assert not long, "\n".join(long)


def test_code_cites_the_projects_own_docs():
    """Briefs outside the repository are not citable: the code points at docs/ instead."""
    cited = [f"{path.relative_to(ROOT)}:{n}" for path in [*MODULES.values(), *ROOT.glob("benchmarks/*.py")]
             for n, line in enumerate(path.read_text().splitlines(), 1) if "STACK.md" in line or "DESIGN.md" in line]
    assert not cited, "\n".join(cited)
