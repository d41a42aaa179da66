"""The core never imports the napari layer, and ``cascope --help`` stays light."""

import subprocess
import sys
from pathlib import Path

import cascope

SRC = Path(cascope.__file__).parent


def test_core_modules_do_not_import_napari():
    offenders = []
    for path in SRC.rglob("*.py"):
        if "napari" in path.relative_to(SRC).parts:
            continue
        text = path.read_text()
        if "import napari" in text or "from napari" in text or "cascope.napari" in text:
            offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


def test_help_imports_no_heavy_library():
    code = (
        "import sys; from typer.testing import CliRunner; from cascope.cli import app;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output;"
        "heavy = [m for m in ('torch', 'skimage', 'napari', 'monai', 'torchio', 'pandas', 'h5py')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
