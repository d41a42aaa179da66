"""Real runs and a study folder for the report tests (see ``helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.report.helpers import RECORDINGS, assemble_study, make_run, simulated_movie


@pytest.fixture(scope="session")
def study_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders of the six recordings, by id (each written with its report)."""
    root = tmp_path_factory.mktemp("report_runs")
    runs = {}
    for rid, _, _, seed, amplitude in RECORDINGS:
        movie = simulated_movie(root / "movies" / rid, seed, amplitude)
        runs[rid] = make_run(movie, root / "runs" / rid)
    return runs


@pytest.fixture(scope="session")
def study_folder(study_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A six-recording study with one more, failed, recording."""
    return assemble_study(tmp_path_factory.mktemp("report_study") / "study", study_runs)
