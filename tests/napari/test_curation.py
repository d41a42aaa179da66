"""The curation tool driven by key presses in a real viewer; masks on disk; resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from cascope.napari._curation import CANDIDATES, MASK, CurationWidget
from cascope.napari._session import CurationSession

pytestmark = pytest.mark.napari


def press(qtbot, viewer, key: str) -> None:
    qtbot.keyClick(viewer.window._qt_viewer.canvas.native, key)


def test_session_confirm_undo_threshold(volume_folder: Path) -> None:
    s = CurationSession(volume_folder)
    assert int(s.candidates.max()) == 2
    # Both boxes are 4 x 8 x 8 = 256 and 4 x 10 x 10 = 400 voxels.
    sizes = sorted(np.bincount(s.candidates.ravel())[1:].tolist())
    assert sizes[0] >= 256 and sizes[1] >= 400
    comp = s.toggle_component((3, 28, 28))
    assert comp > 0 and comp in s.removed
    assert s.confirm() == int((s.candidates == 3 - comp).sum())
    assert not s.mask[3, 28, 28] and s.mask[3, 8, 8] == 1
    assert s.undo() and s.mask.max() == 0
    s.set_threshold(1.2)
    assert s.candidates.max() == 0
    assert s.undo() and s.candidates.max() == 2


def test_keyboard_workflow_saves_and_resumes(
    make_napari_viewer, qtbot, volume_folder: Path, screenshot
):
    viewer = make_napari_viewer(show=True)
    widget = CurationWidget(viewer)
    dock = viewer.window.add_dock_widget(widget, name="Curate labels")
    widget.open(volume_folder)
    s = widget.session
    assert s is not None and s.current.name == "vol0.tif"
    out = volume_folder / "curated"

    # Volume 0: remove the lower-right box (what a click does), confirm it, save.
    s.toggle_component((3, 28, 28))
    widget._refresh()
    press(qtbot, viewer, "c")
    mask_layer = viewer.layers[MASK]
    assert mask_layer.data[3, 8, 8] == 1 and mask_layer.data[3, 28, 28] == 0
    press(qtbot, viewer, "u")
    assert viewer.layers[MASK].data.max() == 0
    press(qtbot, viewer, "c")
    press(qtbot, viewer, "v")
    assert tuple(viewer.dims.order) == (2, 0, 1) and s.view == "zy"
    press(qtbot, viewer, "v")
    assert tuple(viewer.dims.order) == (0, 1, 2)
    press(qtbot, viewer, "s")
    saved0 = tifffile.imread(out / "vol0_mask.tif")
    assert saved0.shape == (8, 40, 40)
    assert saved0[3, 8, 8] == 1 and saved0[3, 28, 28] == 0
    assert (saved0 > 0).sum() >= 256
    assert s.current.name == "vol1.tif"

    # Volume 1: the threshold slider updates the candidates live; skip it, then come back.
    widget.threshold_slider.value = 1.2
    assert viewer.layers[CANDIDATES].data.max() == 0
    widget.threshold_slider.value = 0.5
    assert viewer.layers[CANDIDATES].data.max() == 2
    press(qtbot, viewer, "n")
    state = json.loads((out / "curation.json").read_text())
    assert state["status"] == {"vol0.tif": "saved", "vol1.tif": "skipped"}
    press(qtbot, viewer, "r")
    assert s.current.name == "vol0.tif"
    assert viewer.layers[MASK].data[3, 8, 8] == 1  # the saved mask comes back

    # Re-saving vol0 keeps a backup of the first mask.
    press(qtbot, viewer, "c")
    press(qtbot, viewer, "s")
    assert len(list(out.glob("vol0_mask.bak-*.tif"))) == 1
    viewer.layers.selection.active = viewer.layers[MASK]
    screenshot(viewer, "curation", dock)

    # Reopen: a new session resumes at the first volume still to do (none: vol1 was skipped).
    state = json.loads((out / "curation.json").read_text())
    assert state["status"]["vol0.tif"] == "saved"
    fresh = CurationSession(volume_folder)
    assert fresh.status == {"vol0.tif": "saved", "vol1.tif": "skipped"}
    assert fresh.threshold == pytest.approx(0.5)
    assert fresh.mask_path(fresh.files[0]).exists()


def test_resume_opens_first_unfinished_volume(volume_folder: Path) -> None:
    s = CurationSession(volume_folder)
    s.confirm()
    s.save_and_next()
    resumed = CurationSession(volume_folder)
    assert resumed.current.name == "vol1.tif"
    assert resumed.status["vol0.tif"] == "saved"
    resumed.previous()
    np.testing.assert_array_equal(resumed.mask, s.mask if s.index == 0 else resumed.mask)
    saved = tifffile.imread(volume_folder / "curated" / "vol0_mask.tif")
    np.testing.assert_array_equal(resumed.mask, saved)


def test_starting_labels_become_candidates(volume_folder: Path, tmp_path: Path) -> None:
    from cascope.io import write
    from cascope.segment import label_volume

    labels = tmp_path / "labels"
    labels.mkdir()
    for f in sorted(volume_folder.glob("*.tif")):
        vol = tifffile.imread(f)
        write(labels / f"{f.stem}_labels.tif", label_volume(vol, min_size=50), axes="ZYX")
    s = CurationSession(volume_folder, labels=labels)
    np.testing.assert_array_equal(s.candidates, tifffile.imread(labels / "vol0_labels.tif"))
