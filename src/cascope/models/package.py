"""Run bioimage.io 0.5 packages (``model.zip`` or ``rdf.yaml``) on recordings, tile by tile.

A package is opened with ``bioimageio.spec``, its axes are matched to the recording's, and the
network runs through ``bioimageio.core``'s prediction pipeline on the tiles that cascope's own
tiling (:mod:`cascope.tiling`) cuts, blends and streams. A package whose axes do not fit is
refused with one line that says why.

Statistics that the package computes per sample (``zero_mean_unit_variance``, ``scale_range``
with percentiles) are computed once over the whole recording (evenly spaced planes, as cascope's
own normalisation does) and applied as fixed values on every tile, so the tiles of one recording
share one normalisation instead of each having its own.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from cascope.errors import CascopeError, InputError

log = logging.getLogger(__name__)

#: Files that are bioimage.io packages rather than cascope model folders.
PACKAGE_SUFFIXES = (".zip", ".yaml", ".yml")
#: Weight formats tried in this order: those that run no code from the package come first.
WEIGHT_ORDER = ("onnx", "torchscript", "pytorch_state_dict")
#: Processing that needs statistics of the whole sample (resolved on the whole recording).
SAMPLE_STATS = ("zero_mean_unit_variance", "scale_range", "scale_mean_variance")
_LETTER = {"time": "T", "z": "Z", "y": "Y", "x": "X"}
_AXIS_ID = {v: k for k, v in _LETTER.items()}


def is_package(path: str | Path) -> bool:
    """Whether ``path`` names a bioimage.io package (a file) rather than a model folder."""
    p = Path(path)
    return p.suffix.lower() in PACKAGE_SUFFIXES and not p.is_dir()


@dataclass
class Package:
    """A bioimage.io 0.5 model package whose axes fit a cascope recording.

    Attributes
    ----------
    descr : bioimageio.spec.model.v0_5.ModelDescr
        The package's description.
    source : Path
        The ``.zip`` or ``rdf.yaml``.
    axes : str
        The package's spatial axes in cascope letters (``"YX"``, ``"TYX"`` or ``"ZYX"``).
    sizes : dict
        Per letter, ``(min, step)`` of valid sizes (``step`` 0: that size only).
    out_channels : int
        Channels of the output.
    cascope : dict
        The ``config.cascope`` section of packages cascope wrote (else empty).
    """

    descr: Any
    source: Path
    axes: str
    sizes: dict[str, tuple[int, int]]
    out_channels: int
    cascope: dict[str, Any] = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        """Spatial dimensionality of the network (2 or 3)."""
        return len(self.axes)

    @property
    def preprocessing(self) -> list[str]:
        """Ids of the input's preprocessing steps."""
        return [p.id for p in self.descr.inputs[0].preprocessing if p.id != "ensure_dtype"]

    @property
    def postprocessing(self) -> list[str]:
        """Ids of the output's postprocessing steps."""
        return [p.id for p in self.descr.outputs[0].postprocessing if p.id != "ensure_dtype"]

    def tile(self, wanted: tuple[int, ...]) -> tuple[int, ...]:
        """Return the valid tile nearest ``wanted`` (rounded up, per axis)."""
        return tuple(_valid(w, *self.sizes[a]) for w, a in zip(wanted, self.axes, strict=True))

    def network(
        self,
        *,
        data: Any = None,
        processing: bool = True,
        device: str = "cpu",
    ) -> PackageNetwork:
        """Return the package as an ``nn.Module`` that cascope's tiling can call on ``(B, 1, ...)``.

        Parameters
        ----------
        data : Movie or array-like, optional
            The recording; sample statistics of the preprocessing are computed on it.
        processing : bool
            Run the package's pre- and postprocessing (else the network alone: for callers
            that apply the identical processing themselves).
        device : str
            ``"cpu"`` or ``"cuda"``.
        """
        from bioimageio.core import create_prediction_pipeline

        descr = self.descr
        if processing:
            descr = _fixed_statistics(self, data)
        formats: list[Any] = [
            f for f in WEIGHT_ORDER if getattr(descr.weights, f, None) is not None
        ]
        if not formats:
            raise InputError(
                "holds no weights cascope can run (onnx, torchscript, pytorch)", self.source
            )
        if formats[0] == "pytorch_state_dict":
            log.info("running the package's pytorch_state_dict runs its architecture code")
        pipeline = create_prediction_pipeline(descr, devices=[device], weight_format=formats[0])
        return PackageNetwork(self, pipeline, processing=processing)


class PackageNetwork(nn.Module):
    """A package's prediction pipeline as a module: ``(B, 1, *spatial) -> (B, C, *spatial)``.

    Each call pads the batch to sizes the package accepts (reflect), runs it through
    ``bioimageio.core`` and crops the result back.
    """

    def __init__(self, package: Package, pipeline: Any, *, processing: bool) -> None:
        super().__init__()
        self.package = package
        self.pipeline = pipeline
        self.processing = processing
        self.ndim = package.ndim
        inp, out = package.descr.inputs[0], package.descr.outputs[0]
        self._in_id, self._out_id = inp.id, out.id
        self._in_dims = [str(a.id) for a in inp.axes]
        self._out_dims = [str(a.id) for a in out.axes]
        self._has_batch = "batch" in self._in_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict a float batch ``(B, 1, *spatial)``."""
        arr = x.detach().float().cpu().numpy()
        if self._has_batch:
            out = self._run(arr)
        else:
            out = np.concatenate([self._run(arr[i : i + 1]) for i in range(arr.shape[0])])
        return torch.from_numpy(out).to(x.device)

    def _run(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        from bioimageio.core import Sample, Tensor

        spatial = batch.shape[2:]
        valid = self.package.tile(tuple(int(s) for s in spatial))
        for a, s, v in zip(self.package.axes, spatial, valid, strict=True):
            if v < s:
                raise InputError(
                    f"its input is {v} wide along {_AXIS_ID[a]}, whatever the data: give "
                    f"--tile no larger than {dict(zip(self.package.axes, valid, strict=True))}",
                    self.package.source,
                )
        pad = [(0, 0), (0, 0)] + [(0, v - s) for v, s in zip(valid, spatial, strict=True)]
        mode: Any = (
            "reflect" if all(v - s < s for v, s in zip(valid, spatial, strict=True)) else "edge"
        )
        padded = np.pad(batch, pad, mode=mode) if any(p[1] for p in pad) else batch
        ours = ["batch", "channel", *(_AXIS_ID[a] for a in self.package.axes)]
        order = [ours.index(d) for d in self._in_dims]
        order += [i for i in range(len(ours)) if i not in order]  # size 1: dropped below
        arr = np.transpose(padded, order).reshape(
            [padded.shape[i] for i in order[: len(self._in_dims)]]
        )
        sample = Sample(
            members={self._in_id: Tensor.from_numpy(np.ascontiguousarray(arr), dims=self._in_dims)},
            stat={},
            id="tile",
        )
        result = self.pipeline.predict_sample_without_blocking(
            sample,
            skip_preprocessing=not self.processing,
            skip_postprocessing=not self.processing,
        )
        data = result.members[self._out_id].data
        dims = [str(d) for d in data.dims]
        values = data.values
        for d in ("batch", "channel"):
            if d not in dims:
                values, dims = values[None], [d, *dims]
        values = np.transpose(values, [dims.index(d) for d in ours])
        crop = (slice(None), slice(None), *(slice(0, s) for s in spatial))
        return np.asarray(values[crop], np.float32)


def open_package(path: str | Path, *, axes: str | None = None) -> Package:
    """Open a bioimage.io 0.5 package and check that its axes fit cascope's recordings.

    Parameters
    ----------
    path : str or Path
        ``model.zip`` or ``rdf.yaml``.
    axes : str, optional
        The recording's axes (``"TYX"`` or ``"ZYX"``); a 3D package must have the same
        first axis (time for a movie, z for a stack).

    Returns
    -------
    Package

    Raises
    ------
    InputError
        One line saying why the package cannot run (not 0.5, several tensors, channels,
        axes of another kind or order, an output of another size).
    """
    source = Path(path)
    if not source.is_file():
        raise InputError("no such bioimage.io package (a .zip or rdf.yaml)", source)
    require_bioimageio()
    import bioimageio.spec.model.v0_5 as v05
    from bioimageio.spec import InvalidDescr, load_description

    descr = load_description(source, perform_io_checks=False)
    if isinstance(descr, InvalidDescr):
        errors = [e for d in descr.validation_summary.details for e in d.errors]
        first = " ".join(str(errors[0].msg).split())[:200] if errors else "invalid description"
        raise InputError(f"is not a valid bioimage.io package: {first}", source)
    if not isinstance(descr, v05.ModelDescr):
        version = getattr(descr, "format_version", "?")
        kind = getattr(descr, "type", "?")
        raise InputError(
            f"is a bioimage.io {kind} of format {version}; cascope runs model packages of "
            "format 0.5 (update it with bioimageio.spec's update_format)",
            source,
        )
    if len(descr.inputs) != 1 or len(descr.outputs) != 1:
        raise InputError(
            f"has {len(descr.inputs)} input and {len(descr.outputs)} output tensors; cascope "
            "runs packages with one of each",
            source,
        )
    letters, sizes = _input_axes(descr.inputs[0], source)
    if axes is not None and len(letters) == 3 and letters[0] != axes[0]:
        need = {"T": "a movie (T, Y, X)", "Z": "a stack (Z, Y, X)"}[letters[0]]
        raise InputError(
            f"its input axes {_axes_text(descr.inputs[0])} need {need}, but the input has "
            f"axes {axes}",
            source,
        )
    channels = _output_axes(descr.outputs[0], descr.inputs[0].id, letters, sizes, source)
    for step in descr.outputs[0].postprocessing:
        if step.id in SAMPLE_STATS:
            raise InputError(
                f"its postprocessing {step.id} needs statistics of the whole output, which a "
                "tiled prediction cannot give",
                source,
            )
    extra = (descr.config.model_extra or {}) if descr.config is not None else {}
    cascope_cfg = extra.get("cascope")
    return Package(
        descr=descr,
        source=source,
        axes=letters,
        sizes=sizes,
        out_channels=channels,
        cascope=dict(cascope_cfg) if isinstance(cascope_cfg, dict) else {},
    )


def _axes_text(tensor: Any) -> str:
    return ",".join(str(a.id) for a in tensor.axes)


def _input_axes(tensor: Any, source: Path) -> tuple[str, dict[str, tuple[int, int]]]:
    """Return the input's spatial axes (cascope letters) and valid sizes, or refuse them."""
    import bioimageio.spec.model.v0_5 as v05

    letters = ""
    sizes: dict[str, tuple[int, int]] = {}
    where = f"its input axes {_axes_text(tensor)}"
    for a in tensor.axes:
        kind = a.type
        if kind == "batch":
            continue
        if kind == "channel":
            if a.size != 1:
                raise InputError(f"{where} have {a.size} channels; a recording has one", source)
            continue
        if kind not in ("time", "space") or str(a.id) not in _LETTER:
            raise InputError(f"{where}: cascope does not know axis {a.id!r} ({kind})", source)
        letter = _LETTER[str(a.id)]
        if isinstance(a.size, int):
            sizes[letter] = (a.size, 0)
        elif isinstance(a.size, v05.ParameterizedSize):
            sizes[letter] = (a.size.min, a.size.step)
        else:
            raise InputError(f"{where}: the size of {a.id} depends on another tensor", source)
        letters += letter
    if letters not in ("YX", "TYX", "ZYX"):
        raise InputError(
            f"{where} do not fit: cascope runs (y, x), (time, y, x) or (z, y, x) networks",
            source,
        )
    return letters, sizes


def _output_axes(
    tensor: Any, input_id: Any, letters: str, sizes: dict[str, tuple[int, int]], source: Path
) -> int:
    """Check the output has the input's spatial axes and size; return its channel count."""
    import bioimageio.spec.model.v0_5 as v05

    where = f"its output axes {_axes_text(tensor)}"
    channels = 1
    seen = ""
    for a in tensor.axes:
        if a.type == "batch":
            continue
        if a.type == "channel":
            channels = int(a.size) if isinstance(a.size, int) else len(a.channel_names)
            continue
        if str(a.id) not in _LETTER or _LETTER[str(a.id)] not in letters:
            raise InputError(f"{where}: axis {a.id!r} is not one of the input's", source)
        letter = _LETTER[str(a.id)]
        same = (
            isinstance(a.size, v05.SizeReference)
            and a.size.tensor_id == input_id
            and str(a.size.axis_id) == str(a.id)
            and not a.size.offset
            and getattr(a, "scale", 1.0) == 1.0
        ) or (isinstance(a.size, int) and sizes[letter] == (a.size, 0))
        if not same:
            raise InputError(f"{where}: the output is not the input's size along {a.id}", source)
        seen += letter
    if seen != letters:
        raise InputError(f"{where} lack some of the input's axes {letters}", source)
    return channels


def _valid(n: int, low: int, step: int) -> int:
    """Return the smallest valid size ``>= n`` (``low + k * step``)."""
    if step == 0 or n <= low:
        return low
    return low + -(-(n - low) // step) * step


def _fixed_statistics(package: Package, data: Any) -> Any:
    """Return the description with sample statistics replaced by the recording's."""
    import bioimageio.spec.model.v0_5 as v05

    from cascope.preprocess import meanstd_normalization, percentile_normalization

    inp = package.descr.inputs[0]
    steps = []
    for step in inp.preprocessing:
        if step.id not in SAMPLE_STATS:
            steps.append(step)
            continue
        if data is None:
            raise InputError(
                f"its preprocessing {step.id} needs statistics of the recording", package.source
            )
        kw = step.kwargs
        if step.id == "zero_mean_unit_variance":
            n = meanstd_normalization(data, axes=package_axes(data))
            std = float(n.scale) + float(kw.eps) - 1e-6  # the fixed step adds its own 1e-6
            steps.append(
                v05.FixedZeroMeanUnitVarianceDescr(
                    kwargs=v05.FixedZeroMeanUnitVarianceKwargs(mean=n.offset, std=max(std, 1e-12))
                )
            )
        elif step.id == "scale_range" and (
            kw.reference_tensor is None or kw.reference_tensor == inp.id
        ):
            n = percentile_normalization(
                data, low=kw.min_percentile, high=kw.max_percentile, axes=package_axes(data)
            )
            width = float(n.scale) + float(kw.eps)
            steps.append(
                v05.ScaleLinearDescr(
                    kwargs=v05.ScaleLinearKwargs(gain=1.0 / width, offset=-n.offset / width)
                )
            )
        else:
            raise InputError(
                f"its preprocessing {step.id} refers to another tensor; cascope cannot run it",
                package.source,
            )
    new_input = inp.model_copy(update={"preprocessing": steps})
    return package.descr.model_copy(update={"inputs": [new_input]})


def package_axes(data: Any) -> str | None:
    """Axes of a Movie (``None`` for a bare array)."""
    return getattr(data, "axes", None)


def load_package_model(
    path: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Open a package as :func:`cascope.models.load_model` opens a model folder.

    The network runs without the package's processing, and the returned ``model.yaml``
    document is the one the package was exported from (packages cascope wrote), so cascope
    applies its own normalisation, identical to the package's. A package cascope did not write
    is refused here for events and segmentation: use ``cascope denoise --model`` for denoisers.

    Returns
    -------
    model : Module
        :class:`PackageNetwork`.
    config : dict
        The model folder document.
    """
    source = Path(path)
    package = open_package(source)
    doc = package.cascope.get("model_yaml")
    if not isinstance(doc, dict) or package.cascope.get("task") not in ("events", "segmentation"):
        raise InputError(
            "is not an event or segmentation package written by cascope (`cascope export`); "
            "a denoising package runs with `cascope denoise --model`",
            source,
        )
    if package.cascope["task"] == "events":
        expected = {"pre": [], "post": ["sigmoid"]}
    else:
        expected = {"pre": ["scale_range"], "post": ["softmax"]}
    if package.preprocessing != expected["pre"] or package.postprocessing != expected["post"]:
        raise InputError("its processing is not cascope's for this task", source)
    dev = "cuda" if torch.device(device).type == "cuda" else "cpu"
    return package.network(processing=False, device=dev), dict(doc)


def require_bioimageio() -> None:
    """Refuse, in one line, an environment where ``bioimageio.spec`` cannot build packages."""
    try:
        import bioimageio.core
        import bioimageio.spec
        import pydantic
    except ImportError as err:
        raise CascopeError(
            f"bioimage.io packages need the bioimageio extra ({err.name} is missing): "
            "pip install 'cascope[bioimageio]'"
        ) from None
    if bioimageio_incompatible(bioimageio.spec.__version__, pydantic.VERSION):
        raise CascopeError(
            f"bioimageio.spec {bioimageio.spec.__version__} does not work with pydantic "
            f"{pydantic.VERSION}: pip install 'cascope[bioimageio]' (pins pydantic<2.14)"
        )


def bioimageio_incompatible(spec_version: str, pydantic_version: str) -> bool:
    """Whether this bioimageio.spec fails to serialise descriptions under this pydantic."""

    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", v)[:3])

    return parts(spec_version) < (0, 5, 14) and parts(pydantic_version) >= (2, 14)
