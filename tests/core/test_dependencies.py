"""Every declared dependency is imported by the code behind it, and every import is declared."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import cascope

SRC = Path(cascope.__file__).parent
PYPROJECT = SRC.parents[1] / "pyproject.toml"

#: Distribution name -> the module the code imports, where the two differ.
MODULE = {
    "scikit-image": "skimage",
    "scikit-learn": "sklearn",
    "pyyaml": "yaml",
    "connected-components-3d": "cc3d",
    "scikit-posthocs": "scikit_posthocs",
    "dask-jobqueue": "dask_jobqueue",
    "bioimageio.core": "bioimageio",
    "bioimageio.spec": "bioimageio",
    "napari": "napari",
}

#: Declared but used without an import statement of ours, and why.
USED_WITHOUT_IMPORT = {
    "PyWavelets": "skimage.restoration.estimate_sigma computes the noise level with it",
    "imagecodecs": "tifffile and zarr decode compressed pages and chunks with it",
    "pyarrow": "pandas writes and reads the parquet event tables with it",
    "onnxscript": "torch.onnx.export writes ONNX files with it",
    "npe2": "napari reads the plugin's manifest (napari.yaml) with it",
    "onnx": "torch.onnx.export serialises the network with it",
    "onnxruntime": "bioimageio.core runs a package's ONNX weights with it",
    "pydantic": "the [bioimageio] extra repeats it only to pin its version",
}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]


def _loads_by_name(call: ast.Call) -> bool:
    """``importlib.import_module("x")``, ``find_spec("x")`` or a helper such as
    ``_import_optional("x")``: an import of an optional library by name."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return (
        name in ("import_module", "find_spec") or name.startswith("_import")
    ) and bool(call.args) and isinstance(call.args[0], ast.Constant) and isinstance(
        call.args[0].value, str
    )


def _imported(folder: Path, *, skip: str | None = None) -> set[str]:
    """Top-level modules imported anywhere under ``folder`` (inside functions too)."""
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        if skip is not None and skip in path.relative_to(folder).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _loads_by_name(node):
                found.add(node.args[0].value.split(".")[0])  # type: ignore[attr-defined]
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def _project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["project"]


def test_every_core_dependency_is_imported_by_the_package():
    imported = _imported(SRC, skip="napari")
    unused = [
        name
        for name in map(_name, _project()["dependencies"])
        if MODULE.get(name, name).replace("-", "_") not in imported
        and name not in USED_WITHOUT_IMPORT
    ]
    assert unused == [], f"declared in pyproject.toml but never imported: {unused}"


def test_every_extra_is_used_by_the_code_behind_it():
    extras = _project()["optional-dependencies"]
    imported = _imported(SRC) | _imported(SRC.parents[1] / "benchmarks")
    unused = []
    for extra, requirements in extras.items():
        for name in map(_name, requirements):
            if name == "cascope" or name in USED_WITHOUT_IMPORT:
                continue
            module = MODULE.get(name, name).replace("-", "_").split(".")[0]
            if extra in ("test", "napari-test"):  # tools that run the tests, not imports
                continue
            if module not in imported:
                unused.append(f"[{extra}] {name}")
    assert unused == [], f"extras nobody imports: {unused}"


def test_every_third_party_import_is_declared():
    project = _project()
    declared = {
        MODULE.get(n, n).replace("-", "_").split(".")[0].lower()
        for n in map(_name, project["dependencies"])
    }
    for requirements in project["optional-dependencies"].values():
        declared |= {MODULE.get(n, n).replace("-", "_").lower() for n in map(_name, requirements)}
    stdlib = set(sys.stdlib_module_names)
    undeclared = sorted(
        m
        for m in _imported(SRC)
        if m not in stdlib and m != "cascope" and m.lower() not in declared
    )
    assert undeclared == [], f"imported but not declared in pyproject.toml: {undeclared}"
