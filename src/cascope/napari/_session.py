"""The curation workflow as a plain Python object: no viewer, no Qt, fully testable.

A :class:`CurationSession` walks through a folder of volumes. For the current volume it holds the
contrast-normalised image, the *candidates* (connected components above a threshold, or the
starting labels of ``cascope label``), which candidates are kept, and the curated *mask*. The
keyboard actions of the napari tool map one to one onto its methods:

``c`` :meth:`confirm`, ``s`` :meth:`save_and_next`, ``n`` :meth:`skip`, ``r`` :meth:`previous`,
``v`` :meth:`toggle_view`, ``u`` :meth:`undo`.

Progress (masks and a JSON state file) is written after every saved volume, so reopening the
same folder resumes where the work stopped. A mask that already exists is copied to a backup
before it is replaced.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from cascope import _json as strict_json
from cascope.errors import InputError
from cascope.io import atomic_output, read, recording_stem, write
from cascope.napari._files import back_up
from cascope.preprocess.normalization import percentile_normalization
from cascope.segment import connected_components, threshold_value

log = logging.getLogger(__name__)

STATE_NAME = "curation.json"
MASK_SUFFIX = "_mask.tif"
VOLUME_SUFFIXES = (".tif", ".tiff", ".h5", ".hdf5", ".zarr")
Status = Literal["todo", "saved", "skipped"]
View = Literal["yx", "zy"]
_MAX_UNDO = 20


@dataclass
class _Snapshot:
    mask: NDArray[np.int32]
    removed: set[int]
    candidates: NDArray[np.int32]


@dataclass
class CurationSession:
    """Curate instance masks for every volume of a folder.

    Parameters
    ----------
    folder : Path
        Folder of (Z, Y, X) volumes (TIFF, HDF5 or Zarr).
    output : Path, optional
        Where masks (``<stem>_mask.tif``) and ``curation.json`` go (default
        ``<folder>/curated``). An existing state file there is resumed.
    labels : Path, optional
        Folder of starting labels (e.g. written by ``cascope label``): ``<stem>*.tif`` is used as
        the candidates of volume ``<stem>``.
    min_size : int
        Smallest candidate component in voxels.
    connectivity : {6, 18, 26}
        Voxel connectivity of candidate components.
    """

    folder: Path
    output: Path | None = None
    labels: Path | None = None
    min_size: int = 20
    connectivity: Literal[6, 18, 26] = 26
    files: list[Path] = field(init=False, default_factory=list)
    status: dict[str, Status] = field(init=False, default_factory=dict)
    index: int = field(init=False, default=0)
    threshold: float = field(init=False, default=0.5)
    selected_label: int = field(init=False, default=1)
    view: View = field(init=False, default="yx")
    image: NDArray[np.float32] = field(init=False, repr=False)
    candidates: NDArray[np.int32] = field(init=False, repr=False)
    mask: NDArray[np.int32] = field(init=False, repr=False)
    removed: set[int] = field(init=False, default_factory=set)
    voxel_size: dict[str, float] | None = field(init=False, default=None)
    _history: list[_Snapshot] = field(init=False, default_factory=list, repr=False)
    _auto_threshold: bool = field(init=False, default=True, repr=False)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        if not self.folder.is_dir():
            raise InputError("is not a folder of volumes", self.folder)
        self.output = Path(self.output) if self.output else self.folder / "curated"
        self.files = sorted(
            p
            for p in self.folder.iterdir()
            if p.name.lower().endswith(VOLUME_SUFFIXES) and not p.name.startswith(".")
        )
        if not self.files:
            raise InputError(f"holds no volumes ({', '.join(VOLUME_SUFFIXES)})", self.folder)
        self.status = {p.name: "todo" for p in self.files}
        self.index = 0
        self._resume()
        self.load(self.index)

    # ----------------------------------------------------------------- files and state
    @property
    def state_path(self) -> Path:
        """The JSON file recording progress."""
        assert self.output is not None
        return self.output / STATE_NAME

    @property
    def current(self) -> Path:
        """The volume being curated."""
        return self.files[self.index]

    def mask_path(self, volume: Path | None = None) -> Path:
        """Where the mask of a volume (default: the current one) is saved."""
        assert self.output is not None
        stem = recording_stem(volume or self.current)
        return self.output / f"{stem}{MASK_SUFFIX}"

    @property
    def done(self) -> bool:
        """True when no volume is left to curate."""
        return all(s != "todo" for s in self.status.values())

    def _resume(self) -> None:
        if not self.state_path.exists():
            return
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"cannot read the curation state: {err}", self.state_path) from err
        for name, st in dict(state.get("status", {})).items():
            if name in self.status and st in ("todo", "saved", "skipped"):
                self.status[name] = st
        self.threshold = float(state.get("threshold", self.threshold))
        self.selected_label = int(state.get("selected_label", self.selected_label))
        self._auto_threshold = False
        todo = [i for i, p in enumerate(self.files) if self.status[p.name] == "todo"]
        self.index = todo[0] if todo else len(self.files) - 1
        log.info("resuming %s at %s", self.folder, self.files[self.index].name)

    def _write_state(self) -> None:
        assert self.output is not None
        self.output.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {
            "folder": str(self.folder),
            "status": self.status,
            "current": self.current.name,
            "threshold": self.threshold,
            "selected_label": self.selected_label,
            "min_size": self.min_size,
        }
        with atomic_output(self.state_path, force=True) as tmp:
            tmp.write_text(strict_json.dumps(state, indent=2))

    # ----------------------------------------------------------------- loading a volume
    def load(self, index: int) -> None:
        """Open volume ``index``: normalise its contrast, build candidates, restore its mask."""
        if not 0 <= index < len(self.files):
            raise IndexError(f"volume {index} does not exist ({len(self.files)} volumes)")
        self.index = index
        movie = read(self.current)
        if movie.ndim not in (2, 3):
            raise InputError(f"expected a (Z, Y, X) volume, got axes {movie.axes}", self.current)
        raw = movie.to_numpy()
        self.voxel_size = movie.voxel_size
        # Per-volume contrast: 1st..99.8th percentile to 0..1 makes one threshold fit all volumes.
        self.image = percentile_normalization(raw).apply(raw)
        self._history.clear()
        self.removed = set()
        start = self._starting_labels(raw.shape)
        if start is not None:
            self.candidates = start
        else:
            if self._auto_threshold:
                # A fresh session starts at Otsu's threshold of its first volume.
                self.threshold = threshold_value(self.image, method="otsu")
                self._auto_threshold = False
            self.candidates = self._components(self.threshold)
        mask_file = self.mask_path()
        if mask_file.exists():
            self.mask = np.asarray(read(mask_file).to_numpy(), dtype=np.int32)
        else:
            self.mask = np.zeros(raw.shape, np.int32)

    def _starting_labels(self, shape: tuple[int, ...]) -> NDArray[np.int32] | None:
        if self.labels is None:
            return None
        stem = recording_stem(self.current)
        found = sorted(
            p
            for p in Path(self.labels).glob(f"{stem}*.tif*")
            if p.name[len(stem)] in "._"  # vol1 must not pick vol10's labels
        )
        if not found:
            return None
        lab = np.asarray(read(found[0]).to_numpy(), dtype=np.int32)
        if lab.shape != shape:
            raise InputError(f"labels of shape {lab.shape} do not fit the volume {shape}", found[0])
        return lab

    def _components(self, threshold: float) -> NDArray[np.int32]:
        return connected_components(
            self.image > threshold, connectivity=self.connectivity, min_size=self.min_size
        )

    # ----------------------------------------------------------------- editing
    def _push(self) -> None:
        self._history.append(_Snapshot(self.mask.copy(), set(self.removed), self.candidates.copy()))
        del self._history[:-_MAX_UNDO]

    def set_threshold(self, value: float) -> None:
        """Recompute the candidates at a new threshold (normalised units: 0 dark, 1 bright)."""
        self._push()
        self._auto_threshold = False
        self.threshold = float(value)
        self.candidates = self._components(self.threshold)
        self.removed = set()

    def toggle_component(self, position: tuple[int, ...]) -> int:
        """Keep or remove the candidate component under a voxel (a click).

        Returns
        -------
        int
            The component's id (0 when the voxel is background: nothing changes).
        """
        comp = int(self.candidates[_voxel(position, self.candidates.shape)])
        if comp == 0:
            return 0
        self._push()
        self.removed ^= {comp}
        return comp

    @property
    def kept(self) -> NDArray[np.bool_]:
        """Voxels of the candidates that are kept (the live preview of what ``c`` writes)."""
        if not self.removed:
            return self.candidates > 0
        return (self.candidates > 0) & ~np.isin(self.candidates, list(self.removed))

    def preview(self) -> NDArray[np.int32]:
        """Kept candidates with their ids, removed ones cleared (what the viewer shows)."""
        return np.where(self.kept, self.candidates, 0).astype(np.int32)

    def confirm(self, position: tuple[int, ...] | None = None) -> int:
        """Write candidates into the mask with the selected label (key ``c``).

        Parameters
        ----------
        position : tuple of int, optional
            A voxel (e.g. under the mouse): only the component there is written. Without it,
            every kept candidate is written.

        Returns
        -------
        int
            Number of voxels written.
        """
        if position is not None:
            comp = int(self.candidates[_voxel(position, self.candidates.shape)])
            region = self.candidates == comp if comp else np.zeros_like(self.mask, bool)
        else:
            region = self.kept
        n = int(region.sum())
        if n == 0:
            return 0
        self._push()
        self.mask[region] = self.selected_label
        return n

    def set_mask(self, mask: NDArray[Any]) -> None:
        """Replace the mask (hand edits made in the viewer), undoably."""
        if mask.shape != self.mask.shape:
            raise InputError(f"mask of shape {mask.shape} does not fit {self.mask.shape}")
        self._push()
        self.mask = np.asarray(mask, dtype=np.int32).copy()

    def undo(self) -> bool:
        """Return to the state before the last edit; False when there is nothing to undo."""
        if not self._history:
            return False
        snap = self._history.pop()
        self.mask, self.removed, self.candidates = snap.mask, snap.removed, snap.candidates
        return True

    def toggle_view(self) -> View:
        """Switch between the y–x plane and the z–y plane (key ``v``)."""
        self.view = "zy" if self.view == "yx" else "yx"
        return self.view

    # ----------------------------------------------------------------- navigation
    def save(self) -> Path:
        """Write the mask of the current volume (an existing one is backed up first)."""
        path = self.mask_path()
        assert self.output is not None
        self.output.mkdir(parents=True, exist_ok=True)
        replaced = back_up(path) is not None
        axes = "ZYX" if self.mask.ndim == 3 else "YX"
        top = int(self.mask.max(initial=0))
        data = self.mask.astype(np.uint16 if top < 2**16 else np.uint32)
        write(path, data, axes=axes, voxel_size=self.voxel_size, force=replaced, inputs=self.files)
        self.status[self.current.name] = "saved"
        self._write_state()
        return path

    def _advance(self) -> bool:
        todo = [i for i, p in enumerate(self.files) if self.status[p.name] == "todo"]
        later = [i for i in todo if i > self.index]
        nxt = later[0] if later else (todo[0] if todo else None)
        if nxt is None:
            return False
        self.load(nxt)
        return True

    def save_and_next(self) -> bool:
        """Save the mask and open the next volume still to do (key ``s``).

        Returns
        -------
        bool
            False when every volume is done (the last one stays open).
        """
        self.save()
        return self._advance()

    def skip(self) -> bool:
        """Leave the current volume without a mask and open the next one (key ``n``)."""
        self.status[self.current.name] = "skipped"
        self._write_state()
        return self._advance()

    def previous(self) -> bool:
        """Go back to the previous volume, with its saved mask (key ``r``)."""
        if self.index == 0:
            return False
        self.load(self.index - 1)
        self._write_state()
        return True


def _voxel(position: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    pos = tuple(int(round(float(v))) for v in position[-len(shape) :])
    return tuple(min(max(v, 0), n - 1) for v, n in zip(pos, shape, strict=True))
