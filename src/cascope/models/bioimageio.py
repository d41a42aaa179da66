"""Export a cascope model folder as a bioimage.io 0.5 package (or a bare ONNX / TorchScript file).

The package's ``rdf.yaml`` is built with ``bioimageio.spec``; the weights travel as a
``pytorch_state_dict`` (with the network's own source as the architecture) and as
``torchscript``. Test tensors are produced by the model itself, and the package is tested with
``bioimageio.core`` before it is written: a package that fails its test is never written.

What each kind of model declares:

============  ================  ==========================================  ==================
model          input axes        preprocessing                               postprocessing
============  ================  ==========================================  ==================
denoise 3D     b, c, time|z,y,x  fixed_zero_mean_unit_variance (cascope's)   scale_linear (back
denoise 2D     b, c, y, x        fixed_zero_mean_unit_variance               to input units)
events         b, c, time, y, x  none: input is cascope's ALS-normalised     sigmoid
                                 movie (not expressible; documented)
segmentation   b, c, z, y, x     scale_range, percentiles 1 / 99.8           softmax (3 classes)
============  ================  ==========================================  ==================
"""

from __future__ import annotations

import logging
import re
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from cascope.errors import CascopeError, InputError
from cascope.models._package_docs import CITATIONS, description, documentation, write_cover
from cascope.models.package import require_bioimageio

log = logging.getLogger(__name__)

ExportFormat = Literal["bioimageio", "onnx", "torchscript"]
EXPORT_FORMATS: tuple[str, ...] = ("bioimageio", "onnx", "torchscript")

#: bioimage.io's default ``eps`` of ``fixed_zero_mean_unit_variance``: ``(x - mean) / (std + eps)``.
ZMUV_EPS = 1e-6
#: bioimage.io's default ``eps`` of ``scale_range``: ``(x - lo) / (hi - lo + eps)``.
RANGE_EPS = 1e-6


@dataclass
class ExportPlan:
    """What a model folder becomes in a package: network, axes, processing, documentation.

    Attributes
    ----------
    task : str
        ``"denoise"``, ``"events"`` or ``"segmentation"``.
    method : str
        The training strategy (``deepcad``, ``n2v``, ``n2v3d``, ``n2n``, ``care``, ``nnpu``,
        ``segmenter``).
    network : Module
        The network (evaluation mode, CPU).
    doc : dict
        The model folder's ``model.yaml``.
    axes : str
        Spatial axes the network sees, e.g. ``"TYX"``, ``"ZYX"`` or ``"YX"``.
    preprocess, postprocess : list of dict
        bioimage.io processing steps, as ``{"id": ..., "kwargs": {...}}``.
    output_names : list of str
        One name per output channel.
    cite : list of str
        Keys of :data:`cascope.models._package_docs.CITATIONS`.
    input_note : str
        What the input must be, for the documentation.
    """

    task: str
    method: str
    network: nn.Module
    doc: dict[str, Any]
    axes: str
    preprocess: list[dict[str, Any]]
    postprocess: list[dict[str, Any]]
    output_names: list[str]
    cite: list[str]
    input_note: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def multiple(self) -> int:
        """Every spatial size the network takes must be a multiple of this."""
        return int(getattr(self.network, "multiple", 1))

    def reference(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Predict a whole ``(1, 1, *spatial)`` input as cascope does, processing included.

        This is what the package must reproduce: the same normalisation and output transform
        as cascope's prediction, computed here with NumPy on top of the network.
        """
        y = _apply(self.preprocess, x)
        with torch.inference_mode():
            z = self.network(torch.from_numpy(y)).numpy()
        return _apply(self.postprocess, z)


def plan_export(model_dir: str | Path) -> ExportPlan:
    """Read a model folder and decide how it is packaged.

    Parameters
    ----------
    model_dir : str or Path
        A folder written by ``cascope train`` (denoiser, events or segmenter).

    Returns
    -------
    ExportPlan
    """
    from cascope.models.checkpoint import load_model

    folder = Path(model_dir)
    network, doc = load_model(folder)
    task = doc.get("task")
    if task == "denoise":
        return _plan_denoise(folder, network, doc)
    if task == "events":
        ev = doc.get("events") or {}
        cfg = (doc.get("training") or {}).get("config") or {}
        mode = (cfg.get("pu") or {}).get("mode", "nnpu")
        return ExportPlan(
            task="events",
            method="nnpu" if mode == "nnpu" else "bce",
            network=network,
            doc=doc,
            axes="TYX",
            preprocess=[],
            postprocess=[{"id": "sigmoid", "kwargs": {}}],
            output_names=["event_probability"],
            cite=["unet", "unet3d", *(["nnpu"] if mode == "nnpu" else [])],
            input_note=(
                "the movie after cascope's event preprocessing: each frame minus the "
                "asymmetric-least-squares baseline of the mean foreground trace "
                f"(lambda={ev.get('als_lam')}, p={ev.get('als_p')}), divided by the "
                "movie's baseline level. bioimage.io cannot express this time-varying baseline, "
                "so it is not in the package's preprocessing: `cascope detect --model` applies "
                "it; elsewhere, apply it before running the package."
            ),
            extra={"threshold": ev.get("threshold")},
        )
    if task == "segmentation":
        norm = doc.get("normalization") or {}
        low, high = float(norm.get("low", 1.0)), float(norm.get("high", 99.8))
        seg = doc.get("segmenter") or {}
        arch = (doc.get("architecture") or {}).get("name")
        return ExportPlan(
            task="segmentation",
            method=str(seg.get("arch", arch)),
            network=network,
            doc=doc,
            axes="ZYX",
            preprocess=[
                {
                    "id": "scale_range",
                    "kwargs": {
                        "axes": ["z", "y", "x"],
                        "min_percentile": low,
                        "max_percentile": high,
                    },
                }
            ],
            postprocess=[{"id": "softmax", "kwargs": {"axis": "channel"}}],
            output_names=[str(c) for c in doc.get("classes") or ["background", "axon", "border"]],
            cite=["unet", "unet3d", *(["vgg"] if arch == "vgg16-unet" else [])],
            input_note=(
                f"a raw (Z, Y, X) stack; it is scaled so that its {low:g}th percentile maps to 0 "
                f"and its {high:g}th to 1 (per stack, as cascope does)."
            ),
        )
    raise InputError(f"task {task!r} cannot be exported (denoise, events, segmentation)", folder)


def _plan_denoise(folder: Path, network: nn.Module, doc: dict[str, Any]) -> ExportPlan:
    from pydantic import ValidationError

    from cascope.config.denoise import DeepDenoiseConfig
    from cascope.models.checkpoint import CONFIG, check_curve, check_normalization
    from cascope.models.response import WithResponse

    try:
        cfg = DeepDenoiseConfig.model_validate(doc.get("denoise"))
    except ValidationError as err:
        raise InputError(f"denoise: {err.errors()[0]['msg']}", folder / CONFIG) from err
    norm = doc.get("normalization") or {}
    in_mean, in_std = check_normalization(norm.get("input"), "normalization.input", folder)
    out_mean, out_std = check_normalization(norm.get("output"), "normalization.output", folder)
    curve = check_curve(doc.get("output_curve"), "output_curve", folder)
    curve_note = ""
    if curve is not None:
        # the package's network carries the response curve, written for its normalised output
        # so that the scale_linear step still restores the input's units
        normalised = curve.affine(out_std, out_mean).then_affine(1 / out_std, -out_mean / out_std)
        wrapped = WithResponse(dict(getattr(network, "hparams", {})), **normalised.to_dict())
        wrapped.network.load_state_dict(network.state_dict())
        network = wrapped.eval()
        curve_note = (
            f" The network's output passes through its intensity response curve "
            f"({len(curve.knots)} knots, measured after training) before that."
        )
    ndim = cfg.network_ndim
    axes = str(doc.get("axes", "TYX")) if ndim == 3 else "YX"
    cite = {
        "deepcad": ["deepcad", "n2n"],
        "n2v": ["n2v"],
        "n2v3d": ["n2v"],
        "n2n": ["n2n"],
        "care": ["care"],
    }[cfg.method]
    if cfg.n2v2 and cfg.method in ("n2v", "n2v3d"):
        cite.append("n2v2")
    return ExportPlan(
        task="denoise",
        method=cfg.method,
        network=network,
        doc=doc,
        axes=axes,
        # (x - mean) / (std + eps) with std - eps written: exactly cascope's (x - mean) / std
        preprocess=[
            {
                "id": "fixed_zero_mean_unit_variance",
                "kwargs": {"mean": in_mean, "std": _zmuv_std(in_std)},
            }
        ],
        postprocess=[{"id": "scale_linear", "kwargs": {"gain": out_std, "offset": out_mean}}],
        output_names=["denoised"],
        cite=[*cite, "unet", *(["unet3d"] if ndim == 3 else [])],
        input_note=(
            f"a raw recording in the units it was trained on; it is normalised with the training "
            f"data's mean {in_mean:.6g} and standard deviation {in_std:.6g}, and the output is "
            f"restored to the input's units (x {out_std:.6g} + {out_mean:.6g}).{curve_note}"
        ),
    )


def _zmuv_std(std: float) -> float:
    return float(std - ZMUV_EPS) if std > 2 * ZMUV_EPS else float(std)


def _apply(steps: Sequence[Mapping[str, Any]], x: NDArray[Any]) -> NDArray[np.float32]:
    """Apply the processing steps of an :class:`ExportPlan` in NumPy (``(B, C, *spatial)``)."""
    out = np.asarray(x, np.float32)
    for step in steps:
        kw = step["kwargs"]
        if step["id"] == "fixed_zero_mean_unit_variance":
            out = (out - np.float32(kw["mean"])) / np.float32(kw["std"] + ZMUV_EPS)
        elif step["id"] == "scale_linear":
            out = out * np.float32(kw["gain"]) + np.float32(kw["offset"])
        elif step["id"] == "scale_range":
            lo, hi = np.percentile(out, [kw["min_percentile"], kw["max_percentile"]])
            out = (out - np.float32(lo)) / np.float32(hi - lo + RANGE_EPS)
        elif step["id"] == "sigmoid":
            out = np.asarray(1.0 / (1.0 + np.exp(-out)), np.float32)
        elif step["id"] == "softmax":
            e = np.exp(out - out.max(axis=1, keepdims=True))
            out = e / e.sum(axis=1, keepdims=True)
        else:  # pragma: no cover - plans only hold the steps above
            raise ValueError(f"unknown step {step['id']}")
    return np.asarray(out, np.float32)


# --------------------------------------------------------------------------- network files


class _Core(nn.Module):
    """A network without its pad-to-multiple wrapper, for tracing (sizes are multiples)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.residual = bool(getattr(network, "residual", False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the network's core on an input whose sizes are multiples already."""
        core: Any = self.network._forward_core
        y: torch.Tensor = core(x)
        return y + x if self.residual else y


def architecture_source(network: nn.Module) -> str:
    """Python source defining the network's class, standalone (imports torch only).

    The U-Net module is self-contained; the VGG16-encoder U-Net's module (or the response
    curve's, for a denoiser that has one) is appended to it without its import of the former.
    """
    import inspect

    from cascope.models import response, unet, vgg_unet

    parts = [inspect.getsource(unet)]
    if type(network).__name__ == "VGGUNet":
        parts.append(inspect.getsource(vgg_unet))
    if type(network).__name__ == "WithResponse":
        parts.append(inspect.getsource(response))
    body = "\n\n".join(parts)
    body = re.sub(r"^from __future__ import annotations\n", "", body, flags=re.M)
    body = re.sub(r"^from cascope\.[^\n]*\n", "", body, flags=re.M)
    header = (
        '"""cascope network architecture (standalone copy for bioimage.io packages)."""\n\n'
        "from __future__ import annotations\n\n"
    )
    return header + body


def trace_network(network: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """TorchScript of the network's core, traced on ``example`` (sizes multiples of its step)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(_Core(network).eval(), example, check_trace=False)
    return traced


def export_file(
    model_dir: str | Path,
    output: str | Path,
    *,
    fmt: ExportFormat,
    force: bool = False,
) -> Path:
    """Export the network of a model folder as a bare ``.onnx`` or TorchScript ``.pt`` file.

    The file holds the network only (its input is the normalised data, as the model folder's
    ``model.yaml`` describes); spatial sizes must be multiples of ``2 ** (depth - 1)``.
    """
    from cascope.io import atomic_output

    plan = plan_export(model_dir)
    example = torch.zeros((1, 1, *([plan.multiple * 2] * len(plan.axes))))
    if fmt == "onnx":
        from cascope.models.checkpoint import export_onnx

        return export_onnx(
            _Core(plan.network), output, example_shape=tuple(example.shape), force=force
        )
    with atomic_output(output, inputs=[model_dir], force=force) as tmp:
        trace_network(plan.network, example).save(str(tmp))
    return Path(output)


# --------------------------------------------------------------------------- the package


def export_bioimageio(
    model_dir: str | Path,
    output: str | Path,
    *,
    sample: Any = None,
    authors: Sequence[str] = ("cascope user",),
    name: str | None = None,
    onnx: bool = False,
    force: bool = False,
) -> Path:
    """Write a tested bioimage.io 0.5 package (zip) of a cascope model folder.

    Parameters
    ----------
    model_dir : str or Path
        A model folder (denoiser, event detector or segmenter).
    output : str or Path
        The ``.zip`` to write.
    sample : array-like, optional
        Data to cut the test input from (``(T|Z, Y, X)`` or ``(Y, X)``, in the units the model
        takes); by default a small synthetic recording matching the model's input statistics.
    authors : sequence of str
        Names for the package's ``authors``.
    name : str, optional
        The package's name (default from the task and method).
    onnx : bool
        Add ONNX weights too (needs the ``onnx`` extra).
    force : bool
        Replace an existing output.

    Returns
    -------
    Path
        The package written.

    Raises
    ------
    CascopeError
        When the package fails ``bioimageio.core``'s test (nothing is written).
    """
    from cascope.io import atomic_output, check_output

    out = Path(output)
    if out.suffix != ".zip":
        raise CascopeError(f"{out}: a bioimage.io package is a .zip (use -o NAME.zip)")
    check_output(out, inputs=[model_dir], force=force)
    plan = plan_export(model_dir)
    require_bioimageio()
    with tempfile.TemporaryDirectory(prefix="cascope-export-") as work:
        root = Path(work)
        descr = _build_description(plan, root, sample=sample, authors=authors, name=name, onnx=onnx)
        check_package(descr)
        from bioimageio.spec import save_bioimageio_package

        with atomic_output(out, inputs=[model_dir], force=force) as tmp:
            save_bioimageio_package(descr, output_path=tmp)
    log.info("wrote %s", out)
    return out


def check_package(descr: Any) -> None:
    """Run ``bioimageio.core``'s ``test_model``; raise one line naming the first failure."""
    from bioimageio.core import test_model

    summary = test_model(descr)
    if summary.status == "passed":
        return
    problems = []
    for detail in summary.details:
        for err in detail.errors:
            problems.append(f"{detail.name}: {' '.join(str(err.msg).split())[:300]}")
    first = problems[0] if problems else summary.status
    raise CascopeError(f"the package fails bioimage.io's test, so it was not written: {first}")




def _test_input(plan: ExportPlan, sample: Any) -> NDArray[np.float32]:
    """Cut a ``(1, 1, *spatial)`` test input from ``sample``, else make synthetic data."""
    m = plan.multiple
    want = [max(m, -(-16 // m) * m)] + [max(m, -(-48 // m) * m)] * 2
    want = want[-len(plan.axes) :]
    if sample is not None:
        arr = np.asarray(sample, np.float32)
        if arr.ndim == 3 and len(plan.axes) == 2:
            arr = arr[arr.shape[0] // 2]
        if arr.ndim != len(plan.axes):
            raise InputError(f"--sample needs {len(plan.axes)} axes ({plan.axes}), got {arr.ndim}")
        size = [min(w, s // m * m) for w, s in zip(want, arr.shape, strict=True)]
        if min(size) < m:
            raise InputError(f"--sample is smaller than the network's smallest input ({m})")
        start = [(s - w) // 2 for s, w in zip(arr.shape, size, strict=True)]
        crop = arr[tuple(slice(a, a + w) for a, w in zip(start, size, strict=True))]
        return np.ascontiguousarray(crop[None, None])
    return _synthetic(plan, want)[None, None]


def _synthetic(plan: ExportPlan, shape: Sequence[int]) -> NDArray[np.float32]:
    """Bright blobs on a background with noise, scaled to what the model takes."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    spikes = (rng.random(shape) < 0.004).astype(np.float32)
    blobs = ndimage.gaussian_filter(spikes, 2.0)
    blobs /= max(float(blobs.max()), 1e-6)
    noisy = blobs + 0.15 * rng.standard_normal(shape).astype(np.float32)
    if plan.task == "denoise":
        mean, std = (plan.doc.get("normalization") or {}).get("input", {}).values()
        noisy = float(mean) + float(std) * (noisy - noisy.mean()) / noisy.std()
    elif plan.task == "segmentation":
        noisy = 100.0 + 400.0 * np.clip(noisy, 0, None)
    return np.asarray(noisy, np.float32)


def _build_description(
    plan: ExportPlan,
    root: Path,
    *,
    sample: Any,
    authors: Sequence[str],
    name: str | None,
    onnx: bool,
) -> Any:
    """Write the package's files to ``root`` and build its ``ModelDescr``."""
    import bioimageio.spec.model.v0_5 as s
    from bioimageio.spec import ValidationContext

    import cascope

    x = _test_input(plan, sample)
    y = plan.reference(x)
    if not np.isfinite(y).all():
        raise CascopeError("the model's output on the test input is not finite")
    np.save(root / "test_input.npy", x)
    np.save(root / "test_output.npy", y)
    state = {k: v.detach().cpu().contiguous() for k, v in plan.network.state_dict().items()}
    torch.save(state, root / "weights.pt")
    arch_name = type(plan.network).__name__
    (root / "architecture.py").write_text(architecture_source(plan.network))
    traced = trace_network(plan.network, torch.from_numpy(_apply(plan.preprocess, x)))
    traced.save(str(root / "weights_torchscript.pt"))
    traced_diff = _check_traced(plan, traced, x)
    write_cover(x, y, root / "cover.png")
    hparams = dict(getattr(plan.network, "hparams", {}))

    torch_version = s.Version(torch.__version__.split("+")[0])
    in_id, out_id = s.TensorId("input"), s.TensorId("output")
    step = plan.multiple
    in_axes: list[Any] = [s.BatchAxis(), s.ChannelAxis(channel_names=[s.Identifier("raw")])]
    out_axes: list[Any] = [
        s.BatchAxis(),
        s.ChannelAxis(channel_names=[s.Identifier(n) for n in plan.output_names]),
    ]
    for a in plan.axes.lower():
        size = s.ParameterizedSize(min=step, step=step)
        ref = s.SizeReference(tensor_id=in_id, axis_id=s.AxisId("time" if a == "t" else a))
        if a == "t":
            in_axes.append(s.TimeInputAxis(id=s.AxisId("time"), size=size))
            out_axes.append(s.TimeOutputAxis(id=s.AxisId("time"), size=ref))
        else:
            in_axes.append(s.SpaceInputAxis(id=s.AxisId(a), size=size))
            out_axes.append(s.SpaceOutputAxis(id=s.AxisId(a), size=ref))
    weights: dict[str, Any] = {
        "pytorch_state_dict": s.PytorchStateDictWeightsDescr(
            source=root / "weights.pt",
            architecture=s.ArchitectureFromFileDescr(
                source=root / "architecture.py",
                callable=s.Identifier(arch_name),
                kwargs=hparams,
            ),
            pytorch_version=torch_version,
        ),
        "torchscript": s.TorchscriptWeightsDescr(
            source=root / "weights_torchscript.pt",
            pytorch_version=torch_version,
            parent="pytorch_state_dict",
        ),
    }
    if onnx:
        from cascope.models.checkpoint import export_onnx

        export_onnx(_Core(plan.network), root / "weights.onnx", example_shape=tuple(x.shape))
        weights["onnx"] = s.OnnxWeightsDescr(
            source=root / "weights.onnx", opset_version=17, parent="pytorch_state_dict"
        )
    scale = float(np.abs(y).max()) or 1.0
    (root / "README.md").write_text(documentation(plan, x, y, traced_diff))
    title = name or f"cascope {plan.task} {plan.method} {plan.axes}"
    with ValidationContext(perform_io_checks=True, root=root):
        descr = s.ModelDescr(
            name=title,
            description=description(plan),
            authors=[s.Author(name=a) for a in authors],
            cite=[s.CiteEntry(text=CITATIONS[k][0], doi=s.Doi(CITATIONS[k][1])) for k in plan.cite],
            license=s.LicenseId("BSD-3-Clause"),
            documentation=s.FileDescr(source=root / "README.md"),
            covers=[s.FileDescr(source=root / "cover.png")],
            tags=["cascope", "calcium-imaging", plan.task, plan.method, f"{len(plan.axes)}d"],
            version=s.Version(str(cascope.__version__)),
            inputs=[
                s.InputTensorDescr(
                    id=in_id,
                    axes=in_axes,
                    test_tensor=s.FileDescr(source=root / "test_input.npy"),
                    preprocessing=[_proc(s, p) for p in plan.preprocess],
                )
            ],
            outputs=[
                s.OutputTensorDescr(
                    id=out_id,
                    axes=out_axes,
                    test_tensor=s.FileDescr(source=root / "test_output.npy"),
                    postprocessing=[_proc(s, p) for p in plan.postprocess],
                )
            ],
            weights=s.WeightsDescr(**weights),
            config={  # type: ignore[arg-type]
                "bioimageio": {
                    "reproducibility_tolerance": [
                        {"relative_tolerance": 1e-4, "absolute_tolerance": 1e-5 * scale}
                    ]
                },
                "cascope": _cascope_config(plan),
            },
        )
    return descr


def _proc(s: Any, step: Mapping[str, Any]) -> Any:
    """Build the bioimage.io processing description of a plan step."""
    kw = dict(step["kwargs"])
    if step["id"] == "fixed_zero_mean_unit_variance":
        return s.FixedZeroMeanUnitVarianceDescr(
            kwargs=s.FixedZeroMeanUnitVarianceKwargs(mean=kw["mean"], std=kw["std"])
        )
    if step["id"] == "scale_linear":
        return s.ScaleLinearDescr(kwargs=s.ScaleLinearKwargs(gain=kw["gain"], offset=kw["offset"]))
    if step["id"] == "scale_range":
        return s.ScaleRangeDescr(
            kwargs=s.ScaleRangeKwargs(
                axes=[s.AxisId(a) for a in kw["axes"]],
                min_percentile=kw["min_percentile"],
                max_percentile=kw["max_percentile"],
            )
        )
    if step["id"] == "sigmoid":
        return s.SigmoidDescr()
    if step["id"] == "softmax":
        return s.SoftmaxDescr(kwargs=s.SoftmaxKwargs(axis=s.AxisId(kw["axis"])))
    raise ValueError(f"unknown step {step['id']}")  # pragma: no cover


def _check_traced(plan: ExportPlan, traced: Any, x: NDArray[np.float32]) -> float:
    """Refuse a TorchScript that differs from the network at the test size or a larger one.

    Returns the largest difference between the two on the test input.
    """
    worst = 0.0
    for extra in (0, plan.multiple):
        pad = [(0, 0), (0, 0)] + [(0, extra)] * len(plan.axes)
        xi = torch.from_numpy(_apply(plan.preprocess, np.pad(x, pad, mode="reflect")))
        with torch.inference_mode():
            a, b = plan.network(xi), traced(xi)
        if a.shape != b.shape or not torch.allclose(a, b, rtol=1e-4, atol=1e-5):
            raise CascopeError("the TorchScript export does not reproduce the network")
        worst = max(worst, float((a - b).abs().max()))
    return worst


def _cascope_config(plan: ExportPlan) -> dict[str, Any]:
    from cascope.models.checkpoint import _plain

    return _plain(
        {
            "task": plan.task,
            "method": plan.method,
            "axes": plan.axes,
            "model_yaml": plan.doc,
            **plan.extra,
        }
    )
