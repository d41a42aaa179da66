"""The curation dock widget: a thin napari/Qt binding of :class:`CurationSession`.

Keys (active anywhere in the viewer): ``c`` confirm (the candidate under the mouse, else every
kept candidate) into the mask with the selected label, ``s`` save the mask and open the next
volume, ``n`` skip, ``r`` return to the previous volume, ``v`` toggle the y–x / z–y view,
``u`` undo. A click on a candidate (pan/zoom mode) keeps or removes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.types import FileDialogMode
from magicgui.widgets import Container, FileEdit, FloatSlider, Label, PushButton

from cascope.napari._session import CurationSession

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)

IMAGE, CANDIDATES, MASK = "curation image", "candidates", "mask"
KEYS = ("c", "s", "n", "r", "v", "u")
_HELP = (
    "c confirm · s save + next · n skip\nr previous · v toggle view · u undo\n"
    "click a candidate to keep/remove it"
)


class CurationWidget(Container):
    """Dock widget curating instance masks for a folder of volumes with the keyboard.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (napari passes it).
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self.viewer = napari_viewer
        self.session: CurationSession | None = None
        self.folder_edit = FileEdit(label="volumes", mode=FileDialogMode.EXISTING_DIRECTORY)
        self.labels_edit = FileEdit(
            label="start labels", mode=FileDialogMode.EXISTING_DIRECTORY, nullable=True, value=None
        )
        self.open_button = PushButton(text="Open folder")
        self.threshold_slider = FloatSlider(
            label="threshold", min=0.0, max=1.2, step=0.005, value=0.5
        )
        self.status_label = Label(value="open a folder of volumes")
        self.help_label = Label(value=_HELP)
        super().__init__(
            widgets=[
                self.folder_edit,
                self.labels_edit,
                self.open_button,
                self.threshold_slider,
                self.status_label,
                self.help_label,
            ]
        )
        self.open_button.changed.connect(lambda: self.open(Path(str(self.folder_edit.value))))
        self.threshold_slider.changed.connect(self._on_threshold)
        self._actions: dict[str, Callable[[], None]] = {
            "c": self.confirm,
            "s": self.save_and_next,
            "n": self.skip,
            "r": self.previous,
            "v": self.toggle_view,
            "u": self.undo,
        }
        for key, action in self._actions.items():
            self.viewer.bind_key(key, _ignore_arg(action), overwrite=True)

    # ----------------------------------------------------------------- opening and display
    def open(self, folder: Path, labels: Path | None = None) -> None:
        """Open (or resume) the curation of a folder of volumes."""
        start = labels if labels is not None else self.labels_edit.value
        with self.folder_edit.changed.blocked():
            self.folder_edit.value = folder
        self.session = CurationSession(Path(folder), labels=Path(str(start)) if start else None)
        self._show()

    def _layer(self, name: str, data: Any, kind: str) -> Any:
        assert self.session is not None
        scale = _scale(self.session.voxel_size, data.ndim)
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data = data
            layer.scale = scale
            return layer
        if kind == "image":
            return self.viewer.add_image(data, name=name, scale=scale, contrast_limits=(0, 1))
        layer = self.viewer.add_labels(data, name=name, scale=scale)
        for key, action in self._actions.items():
            layer.bind_key(key, _ignore_arg(action), overwrite=True)
        return layer

    def _show(self) -> None:
        s = self.session
        assert s is not None
        self._layer(IMAGE, s.image, "image")
        cand = self._layer(CANDIDATES, s.preview(), "labels")
        cand.opacity = 0.4
        cand.contour = 1
        mask = self._layer(MASK, s.mask, "labels")
        mask.selected_label = s.selected_label
        if self._click not in cand.mouse_drag_callbacks:
            cand.mouse_drag_callbacks.append(self._click)
            mask.mouse_drag_callbacks.append(self._click)
        self.viewer.layers.selection.active = mask
        with self.threshold_slider.changed.blocked():
            self.threshold_slider.value = float(np.clip(s.threshold, 0.0, 1.2))
        self._apply_view()
        self._update_status()

    def _refresh(self) -> None:
        s = self.session
        assert s is not None
        self.viewer.layers[CANDIDATES].data = s.preview()
        mask = self.viewer.layers[MASK]
        if mask.data is not s.mask:
            mask.data = s.mask
        mask.refresh()
        self._update_status()

    def _update_status(self) -> None:
        s = self.session
        assert s is not None
        counts = {k: sum(v == k for v in s.status.values()) for k in ("saved", "skipped")}
        state = "all done · " if s.done else ""
        self.status_label.value = (
            f"{state}{s.current.name} ({s.index + 1}/{len(s.files)}) · saved {counts['saved']}"
            f" · skipped {counts['skipped']} · view {s.view}"
        )

    def _apply_view(self) -> None:
        s = self.session
        assert s is not None
        if s.image.ndim == 3:
            self.viewer.dims.order = (0, 1, 2) if s.view == "yx" else (2, 0, 1)

    # ----------------------------------------------------------------- actions
    def _sync_mask(self) -> None:
        """Take over hand edits made with napari's paint tools."""
        s = self.session
        assert s is not None
        data = np.asarray(self.viewer.layers[MASK].data)
        if data is not s.mask and not np.array_equal(data, s.mask):
            s.set_mask(data)
        s.selected_label = int(self.viewer.layers[MASK].selected_label)

    def _cursor_voxel(self) -> tuple[int, ...] | None:
        layer = self.viewer.layers[CANDIDATES]
        pos = layer.world_to_data(self.viewer.cursor.position)
        voxel = tuple(int(round(v)) for v in pos)
        if any(not 0 <= v < n for v, n in zip(voxel, layer.data.shape, strict=True)):
            return None
        return voxel if layer.data[voxel] > 0 else None

    def confirm(self) -> None:
        """Key ``c``: the candidate under the mouse (else every kept one) into the mask."""
        if self.session is None:
            return
        self._sync_mask()
        self.session.confirm(self._cursor_voxel())
        self._refresh()

    def save_and_next(self) -> None:
        """Key ``s``: save the mask, open the next volume."""
        if self.session is None:
            return
        self._sync_mask()
        self.session.save_and_next()
        self._show()

    def skip(self) -> None:
        """Key ``n``: skip this volume."""
        if self.session is not None:
            self.session.skip()
            self._show()

    def previous(self) -> None:
        """Key ``r``: back to the previous volume."""
        if self.session is not None and self.session.previous():
            self._show()

    def toggle_view(self) -> None:
        """Key ``v``: y–x plane <-> z–y plane."""
        if self.session is not None:
            self.session.toggle_view()
            self._apply_view()
            self._update_status()

    def undo(self) -> None:
        """Key ``u``: undo the last edit."""
        if self.session is not None and self.session.undo():
            self._refresh()

    def _on_threshold(self, value: float) -> None:
        if self.session is not None:
            self.session.set_threshold(value)
            self._refresh()

    def _click(self, layer: Any, event: Any) -> Generator[None, None, None]:
        """Keep/remove the candidate under a click (not a drag) in pan/zoom mode."""
        if self.session is None or layer.mode != "pan_zoom":
            return
        start = np.asarray(event.position)
        yield
        while event.type == "mouse_move":
            yield
        if np.linalg.norm(np.asarray(event.position) - start) > 2:
            return
        voxel = self.viewer.layers[CANDIDATES].world_to_data(event.position)
        if self.session.toggle_component(tuple(voxel)):
            self._refresh()


def _ignore_arg(action: Callable[[], None]) -> Callable[[Any], None]:
    def handler(_: Any) -> None:
        action()

    handler.__doc__ = action.__doc__
    return handler


def _scale(voxel_size: dict[str, float] | None, ndim: int) -> list[float]:
    vs = voxel_size or {}
    return [float(vs.get(a, 1.0)) for a in "ZYX"[-ndim:]]
