"""vmac_core is torch + numpy only: every module imports without the pipeline's packages, and none
touches files (callers save and load)."""

import ast
import pathlib
import pkgutil
import subprocess
import sys

import vmac_core

FORBIDDEN = ["prefect", "dask", "distributed", "zarr", "fsspec", "great_expectations", "ffmpeg", "av", "pydantic",
             "MinkowskiEngine"]
# Imports MinkowskiEngine at its top, an optional package; checked below to import nothing else.
OPTIONAL = {"vmac_core.sparse.minkowski"}
ALLOWED_AT_TOP = {"__future__", "torch", "numpy", "vmac_core", "MinkowskiEngine", "typing", "dataclasses", "math",
                  "collections", "functools", "itertools", "enum"}


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(vmac_core.__path__, "vmac_core."))


def _path(module: str) -> pathlib.Path:
    root = pathlib.Path(vmac_core.__file__).parent
    relative = pathlib.Path(*module.split(".")[1:])
    package = root / relative / "__init__.py"
    return package if package.exists() else (root / relative).with_suffix(".py")


def test_every_module_is_found():
    assert {"vmac_core.masking", "vmac_core.encoders.convnext", "vmac_core.sparse.minkowski"} <= set(_modules())
    assert len(_modules()) >= 15


def test_model_core_imports_without_pipeline_packages():
    # Block the packages outright: an import of any of them would raise ImportError.
    modules = [m for m in _modules() if m not in OPTIONAL]
    code = (
        "import sys\n"
        f"for name in {FORBIDDEN!r}: sys.modules[name] = None\n"
        f"import importlib\nfor m in {modules!r}: importlib.import_module(m)\n"
        "loaded = [n for n in sys.modules if n.split('.')[0] in {'prefect','dask','zarr','fsspec','pydantic'} and sys.modules[n] is not None]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _top_level_imports(tree: ast.Module) -> list[str]:
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    return names


def test_optional_modules_import_only_torch_numpy_and_their_package_at_top():
    for module in OPTIONAL:
        tops = {name.split(".")[0] for name in _top_level_imports(ast.parse(_path(module).read_text()))}
        assert tops <= ALLOWED_AT_TOP, (module, tops - ALLOWED_AT_TOP)


def _file_io_uses(tree: ast.AST) -> list[str]:
    """Calls and imports in a module's code (not its docstrings) that could touch files."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "open":
                found.append("open()")
            if isinstance(func, ast.Attribute) and func.attr in {"save", "load", "open", "read_text", "write_text"}:
                found.append(f".{func.attr}()")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [n for n in names if n.split(".")[0] in {"os", "io", "pathlib", "shutil", "tempfile", "pickle"}]
    return found


def test_model_core_does_no_file_io():
    for module in _modules():
        assert _file_io_uses(ast.parse(_path(module).read_text())) == [], module
