"""Every benchmark script imports, goes through the harness and renders its committed results."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
#: Every benchmark module (the peer drivers run in the peers' own environments).
MODULES = sorted(
    p.stem for p in BENCH.glob("*.py") if p.stem != "__init__" and not p.stem.endswith("_driver")
)

#: Not in this branch's care: moves onto the harness with its next change.
NOT_YET: set[str] = set()
SCRIPTS = [m for m in MODULES if m != "_harness"]


def _imports(name: str) -> set[str]:
    """The ``benchmarks`` modules a benchmark module imports (from its source)."""
    tree = ast.parse((BENCH / f"{name}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("benchmarks")
        ):
            found.add(node.module.removeprefix("benchmarks").lstrip(".") or "")
            if node.module == "benchmarks":
                found |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {
                a.name.split(".", 1)[1] for a in node.names if a.name.startswith("benchmarks.")
            }
    return found - {""}


@pytest.mark.parametrize("name", MODULES)
def test_every_benchmark_module_imports(bench, name):
    module = bench(name)
    if name != "_harness":
        assert callable(getattr(module, "main", None)) or name == "segmentation_roundtrip"


@pytest.mark.parametrize("name", [m for m in SCRIPTS if m not in NOT_YET])
def test_every_script_runs_through_the_harness(name):
    source = (BENCH / f"{name}.py").read_text()
    assert "sys.path" not in source, f"{name} edits the import path"
    assert "_harness" in _imports(name) or any(
        "_harness" in _imports(dep) for dep in _imports(name)
    ), f"{name} does not use benchmarks._harness"
    assert "--quick" in source, f"{name} has no small check run"


def test_no_circle_between_benchmark_modules():
    graph = {name: _imports(name) & set(MODULES) for name in MODULES}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    assert [n for n in MODULES if reaches(n, n, {n})] == []
    assert "segmentation" not in graph["segmentation_roundtrip"]


#: (module, markdown function, committed result): the table writer renders them as committed.
RENDERED = [
    ("careamics_compare", "markdown", "careamics_compare"),
    ("deepcad_compare", "markdown", "deepcad_compare"),
    ("deepcad_memory", "markdown", "deepcad_memory"),
    ("denoise_io_overlap", "markdown", "denoise_io_overlap"),
    ("denoise_out_of_core", "markdown", "denoise_out_of_core"),
    ("large_movie_rss", "_markdown", "large_movie_rss"),
    ("precision_cpu", "markdown", "precision_cpu"),
    ("training_divergence", "markdown", "training_divergence_lr3e-3"),
    ("denoise_detect", "_markdown", "denoise_detect"),
    ("events_detection", "_markdown", "events_detection"),
    ("axons_real", "markdown", "axons_real"),
    ("axons_real", "markdown", "axons_real_top_1500"),
]


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


@pytest.mark.parametrize(("module", "function", "result"), RENDERED)
def test_committed_results_render_unchanged(bench, module, function, result):
    doc = json.loads((BENCH / "results" / f"{result}.json").read_text())
    text = getattr(bench(module), function)(doc)
    committed = (BENCH / "results" / f"{result}.md").read_text()
    assert _table_lines(text) and _table_lines(text) == _table_lines(committed)


def test_segmentation_results_render_unchanged(bench, tmp_path):
    doc = json.loads((BENCH / "results" / "segmentation.json").read_text())
    bench("segmentation_roundtrip").write_markdown(doc, tmp_path)
    committed = (BENCH / "results" / "segmentation.md").read_text()
    assert _table_lines((tmp_path / "segmentation.md").read_text()) == _table_lines(committed)
    assert json.loads((tmp_path / "segmentation.json").read_text()) == doc


def test_a_quick_run_writes_its_results_elsewhere(tmp_path):
    """``python -m benchmarks.denoise_quality --quick`` from another folder: scores, both files."""
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "benchmarks.denoise_quality", "--quick", "--methods", "gaussian"]
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*cmd, "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads((out / "denoise_quality.json").read_text())["rows"]
    by = {r["method"]: r for r in rows}
    assert by["gaussian"]["si_psnr"] > by["noisy"]["si_psnr"] + 3
    assert {"psnr", "ssim", "si_psnr", "si_psnr_gain", "trace_corr"} <= set(by["gaussian"])
    assert "| gaussian |" in (out / "denoise_quality.md").read_text()
