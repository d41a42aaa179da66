"""napari tests: skipped cleanly when napari (or its Qt binding) is not installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari", reason="napari is not installed (pip install cascope[napari-test])")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed")

from cascope.io import write

#: Screenshots for the README are written here.
DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def blob_volume(rng: np.random.Generator, shift: int = 0) -> np.ndarray:
    """Two bright boxes on a noisy background, (Z, Y, X) uint16."""
    vol = rng.normal(100.0, 5.0, (8, 40, 40))
    vol[2:6, 4 + shift : 12 + shift, 4:12] += 300
    vol[2:6, 24:34, 24:34] += 300
    return vol.astype(np.uint16)


@pytest.fixture
def volume_folder(tmp_path: Path, rng: np.random.Generator) -> Path:
    folder = tmp_path / "volumes"
    folder.mkdir()
    for i in range(2):
        write(
            folder / f"vol{i}.tif",
            blob_volume(rng, shift=i),
            axes="ZYX",
            voxel_size={"Z": 2.0, "Y": 0.5, "X": 0.5},
        )
    return folder


def run_and_wait(qtbot, widget, timeout: int = 60_000) -> int:
    """Press a widget's Run button, wait for its worker, return timer ticks seen meanwhile."""
    from qtpy.QtCore import QTimer

    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(5)
    widget.run_button.clicked.emit()
    # The call returned while the work goes on in a thread: the event loop keeps turning.
    assert widget.worker is not None
    qtbot.waitUntil(
        lambda: widget.worker is not None and not widget.worker.is_running, timeout=timeout
    )
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=5000)
    timer.stop()
    return len(ticks)


@pytest.fixture
def run_widget(qtbot):
    """:func:`run_and_wait` bound to the test's ``qtbot``."""

    def run(widget, timeout: int = 60_000) -> int:
        return run_and_wait(qtbot, widget, timeout)

    return run


@pytest.fixture
def screenshot():
    """Save a window screenshot as ``docs/images/<name>.png``."""

    def save(viewer, name: str, dock=None) -> Path:
        path = DOC_IMAGES / f"{name}.png"
        save_screenshot(viewer, path, dock)
        return path

    return save


def save_screenshot(viewer, path: Path, dock=None) -> None:
    """Write a screenshot of the whole window (dock widgets included) for the README."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication
    from skimage.io import imsave

    window = viewer.window._qt_window
    window.resize(1500, 900)
    if dock is not None:
        dock.setMinimumWidth(430)
        window.resizeDocks([dock], [430], Qt.Horizontal)
    for _ in range(5):
        QApplication.processEvents()
    viewer.reset_view()
    QApplication.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    imsave(path, viewer.screenshot(canvas_only=False, flash=False), check_contrast=False)
