"""Write a simulation to a folder: TIFF arrays, CSV tables and a ``truth.json`` describing them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cascope import _json as strict_json
from cascope.simulate.axons import AxonResult
from cascope.simulate.mscts import MsctResult
from cascope.simulate.pairs import PairResult
from cascope.simulate.somatic import SomaticResult

logger = logging.getLogger(__name__)

Result = SomaticResult | MsctResult | AxonResult | PairResult

_BIGTIFF_BYTES = 2**31


class _Folder:
    """Collects files written into a folder together with their descriptions."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, dict[str, Any]] = {}

    def array(self, name: str, data: NDArray[Any], *, axes: str, what: str, units: str) -> None:
        import tifffile

        # 'I' is tifffile's generic sequence axis (neurons, images): not time, channel or depth
        tifffile.imwrite(
            self.root / name,
            data,
            metadata={"axes": axes.replace("N", "I")},
            photometric="minisblack",
            bigtiff=data.nbytes >= _BIGTIFF_BYTES,
        )
        self.files[name] = {
            "what": what,
            "axes": axes,
            "shape": list(data.shape),
            "dtype": data.dtype.name,
            "units": units,
        }

    def table(self, name: str, df: pd.DataFrame, *, what: str, columns: dict[str, str]) -> None:
        df.to_csv(self.root / name, index=False)
        self.files[name] = {"what": what, "rows": len(df), "columns": columns}


def _camera_units(result: Result) -> dict[str, str]:
    cam = result.params.camera
    return {
        "noisy": f"ADU: round(gain*(Poisson(photons)+Normal(0,{cam.read_noise} e-))+offset), "
        f"gain {cam.gain} ADU/e-, offset {cam.offset} ADU, clipped to {cam.bit_depth} bits",
        "clean": "ADU: expected value of the noisy file, offset + gain * photons",
    }


def _acquisition(
    f: _Folder, r: SomaticResult | MsctResult | AxonResult, *, noisy: str, clean: str
) -> dict[str, str]:
    """Write ``noisy.tif`` and ``clean.tif`` (described as ``noisy``, ``clean``); their units."""
    u = _camera_units(r)
    f.array("noisy.tif", r.noisy, axes=r.axes, what=noisy, units=u["noisy"])
    f.array("clean.tif", r.clean, axes=r.axes, what=clean, units=u["clean"])
    return u


def _somatic(f: _Folder, r: SomaticResult) -> dict[str, Any]:
    _acquisition(f, r, noisy="simulated recording", clean="noise-free movie")
    f.array(
        "footprints.tif",
        r.footprints,
        axes="NYX",
        what="spatial footprint of each neuron (N = neuron id - 1), peak 1",
        units="relative brightness",
    )
    n, t = r.dff.shape
    frames = np.arange(t)
    traces = pd.DataFrame(r.dff.T, columns=[f"neuron_{i + 1}" for i in range(n)])
    traces.insert(0, "time_s", frames / r.params.frame_rate)
    traces.insert(0, "frame", frames)
    f.table(
        "traces.csv",
        traces,
        what="ground-truth ΔF/F of each neuron per frame",
        columns={"frame": "frame index", "time_s": "seconds", "neuron_<i>": "ΔF/F"},
    )
    rows = [(i + 1, int(s)) for i, sp in enumerate(r.spikes) for s in sp]
    spikes = pd.DataFrame(rows, columns=["neuron", "frame"])
    spikes["time_s"] = spikes["frame"] / r.params.frame_rate
    f.table(
        "spikes.csv",
        spikes,
        what="one row per spike (several rows for several spikes in one frame)",
        columns={"neuron": "neuron id", "frame": "frame index", "time_s": "seconds"},
    )
    neurons = pd.DataFrame(
        {
            "neuron": np.arange(1, n + 1),
            "y": r.centers[:, 0],
            "x": r.centers[:, 1],
            "brightness_photons": r.brightness,
            "n_spikes": [len(s) for s in r.spikes],
        }
    )
    f.table(
        "neurons.csv",
        neurons,
        what="one row per neuron",
        columns={
            "neuron": "neuron id",
            "y": "centre, pixels",
            "x": "centre, pixels",
            "brightness_photons": "resting cytosol photons per pixel per frame",
            "n_spikes": "count",
        },
    )
    return {"n_neurons": n, "n_spikes": int(sum(len(s) for s in r.spikes))}


def _mscts(f: _Folder, r: MsctResult) -> dict[str, Any]:
    u = _acquisition(f, r, noisy="simulated recording", clean="noise-free movie")
    for name, arr, axes, what, units in (
        ("labels.tif", r.labels, "TYX", "event instance labels (event id, 0 = none)", "label"),
        (
            "dendrites.tif",
            r.dendrites.astype(np.uint8),
            "YX",
            "dendrite mask (1 = dendrite)",
            "mask",
        ),
        (
            "baseline.tif",
            r.baseline,
            "YX",
            "resting movie without events at the first frame (before bleaching)",
            u["clean"],
        ),
    ):
        f.array(name, arr, axes=axes, what=what, units=units)
    f.table(
        "events.csv",
        r.events,
        what="one row per event",
        columns={
            "id": "label value in labels.tif",
            "t, y, x": "centroid weighted by the event's signal (frames, pixels)",
            "t_start, t_end, y_start, y_end, x_start, x_end": "label bounding box, end exclusive",
            "area": "labelled voxels",
            "amplitude": "peak ΔF/F at the event centre",
            "radius": "pixels, where the signal falls to label_fraction of its peak",
            "t_onset, t_peak": "frames",
            "decay_frames": "decay time constant, frames",
            "dendrite": "index of the dendrite under the event centre",
        },
    )
    return {"n_events": len(r.events), "dendrite_pixels": int(r.dendrites.sum())}


def _axons(f: _Folder, r: AxonResult) -> dict[str, Any]:
    _acquisition(f, r, noisy="simulated acquisition", clean="noise-free volume")
    f.array("labels.tif", r.labels, axes="ZYX", what="axon instance labels", units="label")
    f.array(
        "semantic.tif",
        r.semantic,
        axes="ZYX",
        what="semantic classes: 0 background, 1 axon, 2 border (inner ring + touching voxels)",
        units="class",
    )
    rows = [(c.label, k, *pt) for k, c in enumerate(r.centrelines) for pt in np.round(c.points, 3)]
    f.table(
        "centrelines.csv",
        pd.DataFrame(rows, columns=["label", "segment", "z", "y", "x"]),
        what="centreline points, 0.5 voxel apart, per unbranched segment",
        columns={"label": "axon label", "segment": "segment index", "z, y, x": "voxels"},
    )
    lengths = r.lengths()
    axons_df = pd.DataFrame(
        {
            "label": np.arange(1, len(r.radii) + 1),
            "radius": r.radii,
            "length": [lengths.get(i + 1, 0.0) for i in range(len(r.radii))],
            "fret_ratio": r.ratios,
        }
    )
    f.table(
        "axons.csv",
        axons_df,
        what="one row per axon",
        columns={
            "label": "axon label",
            "radius": "voxels",
            "length": "total centreline length, voxels",
            "fret_ratio": "planted acceptor/donor ratio (1 without FRET)",
        },
    )
    return {
        "n_axons": len(r.radii),
        "background_adu": r.background.tolist(),
        "channels": ["donor", "acceptor"] if r.params.fret else ["fluorescence"],
    }


def _pairs(f: _Folder, r: PairResult) -> dict[str, Any]:
    u = _camera_units(r)
    for name, arr, what, units in (
        ("noisy_a.tif", r.noisy_a, "low-SNR acquisition A", u["noisy"]),
        ("noisy_b.tif", r.noisy_b, "low-SNR acquisition B (independent noise)", u["noisy"]),
        ("high_snr.tif", r.high_snr, "high-SNR acquisition", u["noisy"]),
        ("clean.tif", r.clean, "expected value of noisy_a/b", u["clean"]),
        ("clean_high.tif", r.clean_high, "expected value of high_snr", u["clean"]),
    ):
        f.array(name, arr, axes="NYX", what=what, units=units)
    return {"n_images": r.params.n_images}


def save(result: Result, path: str | Path, *, force: bool = False) -> Path:
    """Write a simulation to a new folder with a ``truth.json`` describing every file.

    The folder is written under a temporary name and renamed when complete. An existing empty
    folder is replaced; a non-empty one only with ``force``.

    Parameters
    ----------
    result : SomaticResult, MsctResult, AxonResult or PairResult
        What to write.
    path : str or Path
        The output folder.
    force : bool
        Replace an existing non-empty folder.

    Returns
    -------
    Path
        The folder written.
    """
    from cascope._json import versions
    from cascope.io import atomic_output

    out = Path(path).expanduser()
    replace_empty = out.is_dir() and not any(out.iterdir())
    with atomic_output(out, force=force or replace_empty) as tmp:
        tmp.mkdir()
        folder = _Folder(tmp)
        if isinstance(result, SomaticResult):
            kind, summary = "somatic", _somatic(folder, result)
        elif isinstance(result, MsctResult):
            kind, summary = "mscts", _mscts(folder, result)
        elif isinstance(result, AxonResult):
            kind, summary = "axons", _axons(folder, result)
        else:
            kind, summary = "pairs", _pairs(folder, result)
        meta: dict[str, Any] = {
            "kind": kind,
            "cascope_version": versions(("cascope",))["cascope"],
            "seed": result.params.seed,
            "axes": result.axes,
            "summary": summary,
            "files": folder.files,
            "params": result.params.model_dump(mode="json"),
        }
        if hasattr(result.params, "frame_rate"):
            meta["frame_rate_hz"] = result.params.frame_rate
        if isinstance(result, AxonResult):
            meta["voxel_size_um"] = dict(zip("zyx", result.params.voxel_size, strict=True))
        text = strict_json.dumps(meta, indent=2, ensure_ascii=False)
        (tmp / "truth.json").write_text(text + "\n")
    logger.info("wrote %s simulation to %s", kind, out)
    return out.resolve()
