"""Regions of interest a user already has: ImageJ ROI sets, label images, Neurofinder JSON.

Every reader returns :class:`Rois`: the pixels of each ROI of a ``(Y, X)`` frame, so ROIs may
overlap (each keeps all its pixels) and traces can be read ROI by ROI. Formats:

``.zip`` / ``.roi``
    ImageJ ROI set or single ROI (``roifile``): polygons, freehand and traced outlines,
    rectangles and ovals. Lines and points have no area and are refused.
``.json``
    Neurofinder / suite2p-style list of ``{"coordinates": [[y, x], ...]}``: the pixels of each
    ROI (an optional ``"name"`` or ``"id"`` names it).
``.tif`` / ``.tiff`` / ``.png`` / ``.npy`` (numeric)
    A ``(Y, X)`` label image: 0 is background, every other value one ROI.

``stat.npy``
    suite2p's ROI statistics: a pickled array of dicts with ``ypix`` and ``xpix``. Pickles can
    run arbitrary code, so it is read by an unpickler that builds only numpy arrays, numpy
    scalars, dicts, lists and plain values and refuses anything else. With suite2p's
    ``iscell.npy`` beside it, only the ROIs classified as cells are kept.
"""

from __future__ import annotations

import json
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cascope.errors import InputError

log = logging.getLogger(__name__)

#: File suffixes read as label images.
LABEL_SUFFIXES = (".tif", ".tiff", ".png", ".npy")

_FLAG = "check --rois"


@dataclass(frozen=True)
class Rois:
    """ROIs of a ``(Y, X)`` frame.

    Attributes
    ----------
    names : list of str
        One name per ROI (the file's names, or the label values).
    pixels : list of (ndarray, ndarray)
        Row and column indices of each ROI's pixels (inside the frame).
    shape : tuple of int
        The frame shape ``(Y, X)``.
    """

    names: list[str]
    pixels: list[tuple[NDArray[np.intp], NDArray[np.intp]]]
    shape: tuple[int, int]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def areas(self) -> NDArray[np.int64]:
        """Pixels per ROI."""
        return np.array([len(ys) for ys, _ in self.pixels], dtype=np.int64)

    def labels(self) -> NDArray[np.int32]:
        """Label image: ROI ``k`` (1-based, file order) on its pixels; a later ROI wins overlaps."""
        out = np.zeros(self.shape, np.int32)
        for k, (ys, xs) in enumerate(self.pixels, start=1):
            out[ys, xs] = k
        return out

    def traces(self, data: Any, *, block: int = 256) -> NDArray[np.float64]:
        """Mean intensity of each ROI in each frame of a ``(T, Y, X)`` movie, read in blocks.

        Returns
        -------
        ndarray of float64, (n_rois, T)
        """
        shape = tuple(int(s) for s in data.shape)
        if len(shape) != 3 or shape[1:] != self.shape:
            raise InputError(f"the ROIs are for {self.shape} frames, the movie is {shape}")
        out = np.empty((len(self), shape[0]), np.float64)
        for s in range(0, shape[0], block):
            frames = np.asarray(data[s : s + block], dtype=np.float64)
            for k, (ys, xs) in enumerate(self.pixels):
                out[k, s : s + len(frames)] = frames[:, ys, xs].mean(axis=1)
        return out


def read_rois(path: str | Path, shape: tuple[int, int]) -> Rois:
    """Read ROIs for frames of ``shape`` from an ImageJ set, a label image or a JSON list.

    Parameters
    ----------
    path : str or Path
        The ROI file (see the module documentation for the formats).
    shape : tuple of int
        Frame shape ``(Y, X)`` of the movie the ROIs belong to.

    Returns
    -------
    Rois
        At least one ROI, each with at least one pixel inside the frame.

    Raises
    ------
    InputError
        Unknown or unreadable format, ROIs without area, ROIs outside the frame, a label image
        of another shape, a ``stat.npy`` pickle that names anything but numpy arrays.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"does not exist ({_FLAG})", p)
    shape = (int(shape[0]), int(shape[1]))
    suffix = p.suffix.lower()
    if suffix in (".zip", ".roi"):
        rois = _imagej(p, shape)
    elif suffix == ".json":
        rois = _json(p, shape)
    elif suffix == ".npy" and _is_object_npy(p):
        rois = _suite2p(p, shape)
    elif suffix in LABEL_SUFFIXES:
        rois = _label_image(p, shape)
    else:
        raise InputError(
            f"is not a known ROI format (ImageJ .zip/.roi, .json, or a label image "
            f"{'/'.join(LABEL_SUFFIXES)}; {_FLAG})",
            p,
        )
    if len(rois) == 0:
        raise InputError(f"holds no ROI with pixels inside the {shape} frame ({_FLAG})", p)
    log.info("%d ROIs from %s", len(rois), p)
    return rois


def _is_object_npy(path: Path) -> bool:
    from numpy.lib import format as npy

    try:
        with path.open("rb") as f:
            version = npy.read_magic(f)
            header = (
                npy.read_array_header_1_0(f) if version == (1, 0) else npy.read_array_header_2_0(f)
            )
    except (ValueError, OSError):
        return False
    return bool(header[2].hasobject)


#: The only globals a suite2p ``stat.npy`` pickle may name: numpy array and scalar builders.
_SAFE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickle numpy arrays and plain Python values only; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        return super().find_class(module, name)


def _suite2p(path: Path, shape: tuple[int, int]) -> Rois:
    from numpy.lib import format as npy

    try:
        with path.open("rb") as f:
            version = npy.read_magic(f)
            if version == (1, 0):
                npy.read_array_header_1_0(f)
            else:
                npy.read_array_header_2_0(f)
            stat = _ArrayUnpickler(f).load()
    except (pickle.UnpicklingError, ValueError, EOFError, TypeError, AttributeError) as err:
        raise InputError(
            f"is not a suite2p stat.npy that can be read safely ({err}); give a label image or "
            f"a JSON list of pixels to --rois",
            path,
        ) from err
    items = list(np.asarray(stat, dtype=object).ravel())
    if not all(isinstance(d, dict) and "ypix" in d and "xpix" in d for d in items):
        raise InputError("is not a suite2p stat.npy (entries without 'ypix'/'xpix')", path)
    keep = np.ones(len(items), bool)
    iscell = path.with_name("iscell.npy")
    if iscell.is_file():
        try:
            cls = np.load(iscell, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise InputError(f"is not a readable suite2p iscell.npy ({err})", iscell) from err
        flags = np.asarray(cls).reshape(len(items), -1)[:, 0] > 0.5
        keep &= flags
        log.info("%s: %d of %d ROIs are cells (iscell.npy)", path, int(flags.sum()), len(items))
    named = [
        (f"roi{k}", _clip(np.asarray(d["ypix"]), np.asarray(d["xpix"]), shape))
        for k, d in enumerate(items)
        if keep[k]
    ]
    return _collect(path, named, shape)


def _clip(
    ys: NDArray[Any], xs: NDArray[Any], shape: tuple[int, int]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    ys, xs = np.asarray(ys, np.intp), np.asarray(xs, np.intp)
    inside = (ys >= 0) & (ys < shape[0]) & (xs >= 0) & (xs < shape[1])
    return ys[inside], xs[inside]


def _collect(
    path: Path, named: list[tuple[str, tuple[NDArray[np.intp], NDArray[np.intp]]]], shape: Any
) -> Rois:
    kept = [(n, px) for n, px in named if len(px[0])]
    if len(kept) < len(named):
        log.warning(
            "%s: %d of %d ROIs lie outside the %s frame and are left out",
            path,
            len(named) - len(kept),
            len(named),
            shape,
        )
    return Rois([n for n, _ in kept], [px for _, px in kept], shape)


def _imagej(path: Path, shape: tuple[int, int]) -> Rois:
    import roifile
    from skimage.draw import ellipse, polygon

    try:
        found = roifile.ImagejRoi.fromfile(path)
    except Exception as err:  # roifile raises several kinds for a damaged file
        raise InputError(f"is not a readable ImageJ ROI file ({err}; {_FLAG})", path) from err
    items = found if isinstance(found, list) else [found]
    kind = roifile.ROI_TYPE
    named = []
    for k, roi in enumerate(items, start=1):
        name = roi.name or f"roi{k}"
        top, left, bottom, right = roi.top, roi.left, roi.bottom, roi.right
        if roi.roitype == kind.RECT:
            yy, xx = np.mgrid[top:bottom, left:right]
            px = _clip(yy.ravel(), xx.ravel(), shape)
        elif roi.roitype == kind.OVAL:
            centre = ((top + bottom - 1) / 2, (left + right - 1) / 2)
            ys, xs = ellipse(*centre, (bottom - top) / 2, (right - left) / 2)
            px = _clip(ys, xs, shape)
        elif roi.roitype in (kind.POLYGON, kind.FREEHAND, kind.TRACED):
            # ImageJ vertices lie on pixel corners and a pixel belongs to the ROI when its
            # centre is inside: pixel i's centre is at i + 0.5
            xy = np.asarray(roi.coordinates(), dtype=np.float64) - 0.5
            ys, xs = polygon(xy[:, 1], xy[:, 0])
            px = _clip(ys, xs, shape)
        else:
            raise InputError(
                f"ROI {name!r} is a {kind(roi.roitype).name.lower()}, which has no area; give "
                f"area ROIs (polygon, freehand, rectangle, oval) to --rois",
                path,
            )
        named.append((name, px))
    return _collect(path, named, shape)


def _json(path: Path, shape: tuple[int, int]) -> Rois:
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"is not valid JSON ({err}; {_FLAG})", path) from err
    if isinstance(doc, dict) and "rois" in doc:
        doc = doc["rois"]
    if not isinstance(doc, list):
        raise InputError(
            'is not a list of ROIs (expected [{"coordinates": [[y, x], ...]}, ...])', path
        )
    named = []
    for k, item in enumerate(doc, start=1):
        coords = item.get("coordinates") if isinstance(item, dict) else None
        try:
            yx = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        except (TypeError, ValueError) as err:
            raise InputError(
                f'ROI {k} has no "coordinates" list of [y, x] pixels ({_FLAG})', path
            ) from err
        if len(yx) == 0 or not np.isfinite(yx).all():
            raise InputError(f"ROI {k} has no finite [y, x] pixels ({_FLAG})", path)
        name = str(item.get("name", item.get("id", f"roi{k}")))
        ys, xs = _clip(np.rint(yx[:, 0]), np.rint(yx[:, 1]), shape)
        px = np.unique(np.stack([ys, xs]), axis=1)
        named.append((name, (px[0], px[1])))
    return _collect(path, named, shape)


def _label_image(path: Path, shape: tuple[int, int]) -> Rois:
    if path.suffix.lower() == ".npy":
        try:
            img = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise InputError(f"is not a readable .npy label image ({err})", path) from err
    elif path.suffix.lower() == ".png":
        import imageio.v3 as iio

        img = np.asarray(iio.imread(path))
    else:
        from cascope.io import read

        img = np.asarray(read(path).to_numpy())
    img = np.squeeze(img)
    if img.shape != shape:
        raise InputError(
            f"is a {img.shape} image, the movie's frames are {shape}: a label image must match "
            f"the frames ({_FLAG})",
            path,
        )
    if img.dtype.kind not in "iub":
        if not np.isfinite(img).all() or (img != np.rint(img)).any():
            raise InputError(f"is not a label image (non-integer values; {_FLAG})", path)
    if (img < 0).any():
        raise InputError(f"is not a label image (negative values; {_FLAG})", path)
    lab = img.astype(np.int64)
    ids = np.unique(lab[lab > 0])
    order = np.argsort(lab, axis=None, kind="stable")
    flat = lab.ravel()[order]
    starts = np.searchsorted(flat, ids)
    stops = np.searchsorted(flat, ids, side="right")
    named = []
    for v, a, b in zip(ids, starts, stops, strict=True):
        ys, xs = np.unravel_index(np.sort(order[a:b]), shape)
        named.append((str(int(v)), (np.asarray(ys, np.intp), np.asarray(xs, np.intp))))
    return Rois([n for n, _ in named], [px for _, px in named], shape)
