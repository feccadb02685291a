"""vmac_synthetic stands alone: numpy and the standard library only, no pipeline packages."""

import ast
import pathlib
import subprocess
import sys

import vmac_synthetic

BLOCKED = ["torch", "prefect", "dask", "zarr", "fsspec", "pydantic", "PIL", "scipy", "av"]


def test_imports_and_renders_with_pipeline_packages_blocked():
    # sys.modules[name] = None makes any import of that package raise ImportError.
    code = (
        "import sys\n"
        f"for name in {BLOCKED!r}: sys.modules[name] = None\n"
        "import importlib, pkgutil, vmac_synthetic\n"
        "for m in pkgutil.iter_modules(vmac_synthetic.__path__): importlib.import_module(f'vmac_synthetic.{m.name}')\n"
        "spec = vmac_synthetic.ClipSpec('x', 16, 24, 2, 24.0, 'figure', 2, seed=0)\n"
        "assert vmac_synthetic.render_clip(spec).frames_thwc.shape == (2, 16, 24, 3)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_imports_only_numpy_stdlib_and_itself():
    root = pathlib.Path(vmac_synthetic.__file__).parent
    allowed = set(sys.stdlib_module_names) | {"numpy", "vmac_synthetic", "__future__"}
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            outside = [n for n in names if n.split(".")[0] not in allowed]
            assert not outside, f"{path.name} imports {outside}"
