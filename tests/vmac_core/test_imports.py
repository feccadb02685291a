import ast
import pathlib
import subprocess
import sys

import vmac_core

FORBIDDEN = ["prefect", "dask", "distributed", "zarr", "fsspec", "great_expectations", "ffmpeg", "av", "pydantic", "MinkowskiEngine"]
MODULES = [
    "vmac_core.masking",
    "vmac_core.sparse",
    "vmac_core.encoders",
    "vmac_core.decoder",
    "vmac_core.videomac",
    "vmac_core.checkpoint",
    "vmac_core.model_config",
    "vmac_core.schedules",
]


def test_model_core_imports_without_pipeline_packages():
    # Block the packages outright: an import of any of them would raise ImportError.
    code = (
        "import sys\n"
        f"for name in {FORBIDDEN!r}: sys.modules[name] = None\n"
        f"import importlib\nfor m in {MODULES!r}: importlib.import_module(m)\n"
        "loaded = [n for n in sys.modules if n.split('.')[0] in {'prefect','dask','zarr','fsspec','pydantic'} and sys.modules[n] is not None]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


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
    root = pathlib.Path(vmac_core.__file__).parent
    mine = [root / f"{m.split('.')[-1]}.py" for m in MODULES] + list((root / "encoders").glob("*.py")) + list((root / "sparse").glob("*.py"))
    checked = 0
    for path in mine:
        if path.exists():
            assert _file_io_uses(ast.parse(path.read_text())) == [], path.name
            checked += 1
    assert checked >= 10
