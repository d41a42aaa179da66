"""Models as files: a folder with ``weights.safetensors`` and ``model.yaml``, loaded without code.

The YAML holds the architecture (a registered builder name and its keyword arguments) and any
other sections the caller adds (strategy, patch, normalisation, training provenance). Loading
parses YAML with ``yaml.safe_load`` and reads tensors with safetensors, so a model folder can never
execute code. State dicts saved by the trainer are read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import logging
import math
import pickle
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import BaseModel, ConfigDict, StrictInt, ValidationError
from torch import nn

from cascope.errors import InputError
from cascope.io import atomic_output
from cascope.models.response import Curve
from cascope.models.unet import UNet

log = logging.getLogger(__name__)

WEIGHTS = "weights.safetensors"
CONFIG = "model.yaml"
FORMAT_VERSION = 1
MAX_PARAMETERS = 2_000_000_000

_ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"unet": UNet}


def register_architecture(name: str, builder: Callable[..., nn.Module]) -> None:
    """Make an architecture loadable by name from a model folder.

    Parameters
    ----------
    name : str
        The name written to ``model.yaml`` (``architecture.name``).
    builder : callable
        Called with the keyword arguments of ``architecture.params``; must return the module.
        The module should expose those arguments as a ``hparams`` dict so it can be saved.
    """
    _ARCHITECTURES[name] = builder


def build_model(name: str, params: Mapping[str, Any]) -> nn.Module:
    """Build a registered architecture from its name and keyword arguments."""
    if name not in _ARCHITECTURES:
        raise InputError(f"unknown architecture {name!r}; known: {sorted(_ARCHITECTURES)}")
    return _ARCHITECTURES[name](**dict(params))


def architecture_name(model: nn.Module) -> str:
    """Return the registered name of a model's class."""
    for name, builder in _ARCHITECTURES.items():
        if isinstance(builder, type) and type(model) is builder:
            return name
    raise ValueError(f"{type(model).__name__} is not a registered architecture")


def save_model(
    path: str | Path,
    model: nn.Module,
    *,
    extra: Mapping[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write a model folder (atomically).

    Parameters
    ----------
    path : str or Path
        The folder to create.
    model : Module
        A registered architecture with a ``hparams`` dict attribute.
    extra : mapping, optional
        Further YAML sections (plain data only: numbers, strings, lists, dicts).
    force : bool
        Replace an existing folder.

    Returns
    -------
    Path
        The folder written.
    """
    from safetensors.torch import save_file

    hparams = getattr(model, "hparams", None)
    if not isinstance(hparams, dict):
        raise ValueError("the model must expose its constructor arguments as a `hparams` dict")
    doc: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "architecture": {"name": architecture_name(model), "params": dict(hparams)},
    }
    for key, value in (extra or {}).items():
        if key in doc:
            raise ValueError(f"section {key!r} is reserved")
        doc[key] = value
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_output(path, force=force) as tmp:
        tmp.mkdir(parents=True)
        save_file(state, str(tmp / WEIGHTS))
        (tmp / CONFIG).write_text(yaml.safe_dump(_plain(doc), sort_keys=False))
    return Path(path)


def load_model(
    path: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Read a model folder written by :func:`save_model`.

    Parameters
    ----------
    path : str or Path
        The model folder, or a bioimage.io package (``.zip`` / ``rdf.yaml``) exported by
        cascope (see :func:`cascope.models.package.load_package_model`).
    device : str or torch.device
        Where to put the weights.

    Returns
    -------
    model : Module
        The network in evaluation mode.
    config : dict
        The parsed ``model.yaml``.
    """
    from safetensors.torch import load_file

    from cascope.models.package import is_package

    folder = Path(path)
    if is_package(folder):  # a bioimage.io package (.zip or rdf.yaml) cascope exported
        from cascope.models.package import load_package_model

        return load_package_model(folder, device=device)
    cfg_path, w_path = folder / CONFIG, folder / WEIGHTS
    if not folder.is_dir() or not cfg_path.is_file():
        raise InputError(f"not a model folder (no {CONFIG})", folder)
    doc = read_model_yaml(cfg_path)
    arch = doc["architecture"]
    try:
        with torch.device("meta"):  # sizes first, without memory: a huge network is refused
            size = sum(p.numel() for p in build_model(arch["name"], arch["params"]).parameters())
        if size > MAX_PARAMETERS:
            raise ValueError(f"{size:.3g} parameters is more than any cascope network")
        model = build_model(arch["name"], arch["params"])
    except InputError as err:
        raise InputError(f"architecture.name: {err.problem}", cfg_path) from err
    except (TypeError, ValueError, RuntimeError, OverflowError, MemoryError) as err:
        detail = " ".join(str(err).split())[:200]
        problem = f"architecture.params: cannot build the network: {detail}"
        raise InputError(problem, cfg_path) from err
    if w_path.is_file():
        source = w_path
    elif (folder / "weights.pt").is_file():
        source = folder / "weights.pt"
    else:
        raise InputError(f"no {WEIGHTS} in the model folder", folder)
    try:
        if source == w_path:
            state = load_file(str(w_path), device="cpu")
        else:
            state = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused an object: never suggest more
        raise InputError(
            "holds objects other than tensors; cascope does not load it (it could run code)",
            source,
        ) from err
    except Exception as err:  # truncated or corrupt: safetensors and torch raise their own types
        detail = " ".join(str(err).split())[:200]
        raise InputError(f"cannot be read (corrupt or truncated?): {detail}", source) from err
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise InputError("holds no state dict of named tensors", source)
    _check_state(model, state, source)
    model.load_state_dict(state)
    return model.to(device).eval(), doc


class _Architecture(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    params: dict[str, Any] = {}


class _ModelFile(BaseModel):
    """The sections of ``model.yaml`` that :func:`load_model` reads; task sections are free."""

    model_config = ConfigDict(extra="forbid")
    format_version: StrictInt
    architecture: _Architecture
    task: str | None = None
    strategy: str | None = None
    axes: str | None = None
    normalization: dict[str, Any] | None = None
    output_curve: dict[str, Any] | None = None
    denoise: dict[str, Any] | None = None
    events: dict[str, Any] | None = None
    segmenter: dict[str, Any] | None = None
    classes: list[str] | None = None
    patch: list[StrictInt] | None = None
    training: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None


def read_model_yaml(path: Path) -> dict[str, Any]:
    """Parse and check a ``model.yaml``; any problem is one :class:`InputError` naming the key."""
    try:
        doc = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(f"is not UTF-8 text (byte {err.start})", path) from err
    except yaml.YAMLError as err:
        detail = " ".join(str(err).split())[:200]
        raise InputError(f"is not valid YAML: {detail}", path) from err
    if not isinstance(doc, dict):
        raise InputError(f"is not a mapping of sections (got {type(doc).__name__})", path)
    version = doc.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise InputError(
            f"written by a newer cascope (format {version}; this one reads up to "
            f"{FORMAT_VERSION}): upgrade cascope",
            path,
        )
    try:
        checked = _ModelFile.model_validate(doc)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        got = repr(first.get("input"))[:60] if first["type"] != "missing" else ""
        more = f" (and {err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
        suffix = f" (got {got})" if got else ""
        raise InputError(f"{key}: {first['msg']}{suffix}{more}", path) from err
    if checked.format_version < 1:
        raise InputError(f"format_version: unknown format {checked.format_version}", path)
    doc["architecture"] = checked.architecture.model_dump()
    return doc


def _check_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: Path) -> None:
    """Refuse weights that do not fit the network, or that are not finite, in one line."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        example = (missing or unexpected or shapes)[0]
        raise InputError(
            f"the weights do not fit the network described in {CONFIG} (missing "
            f"{len(missing)} keys, unexpected {len(unexpected)}, {len(shapes)} shape "
            f"mismatches, e.g. {example!r})",
            source,
        )
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise InputError(f"weight {key!r} holds NaN or infinite values", source)


def check_normalization(value: Any, key: str, path: Path) -> tuple[float, float]:
    """Read a ``{mean, std}`` section: finite numbers, std above zero (else one line)."""
    if not isinstance(value, Mapping) or set(value) != {"mean", "std"}:
        raise InputError(f"{key}: needs exactly 'mean' and 'std' (got {value!r:.60})", path)
    out = []
    for name in ("mean", "std"):
        v = value[name]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InputError(f"{key}.{name}: needs a finite number (got {v!r:.60})", path)
        out.append(float(v))
    if out[1] <= 0:
        raise InputError(f"{key}.std: must be above 0 (got {out[1]})", path)
    return out[0], out[1]


def check_curve(value: Any, key: str, path: Path) -> Curve | None:
    """Read an optional response-curve section (:class:`~cascope.models.response.Curve`)."""
    if value is None:
        return None
    try:
        return Curve.from_dict(value)
    except ValueError as err:
        raise InputError(f"{key}: {err}", path) from err


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    example_shape: tuple[int, ...],
    opset: int = 17,
    force: bool = False,
) -> Path:
    """Export a network to ONNX with dynamic batch and spatial sizes.

    Parameters
    ----------
    model : Module
        The network (moved to CPU and put in evaluation mode for the export).
    path : str or Path
        The ``.onnx`` file to write.
    example_shape : tuple of int
        A valid input shape ``(B, C, *spatial)`` used to trace the graph; pick spatial sizes that
        are multiples of ``2 ** (depth - 1)`` so no padding branch is traced.
    opset : int
        ONNX opset version.
    force : bool
        Replace an existing file.

    Returns
    -------
    Path
        The file written.
    """
    model = model.to("cpu").eval()
    example = torch.zeros(example_shape)
    names = ["b", "c"] + [f"s{i}" for i in range(len(example_shape) - 2)]
    dynamic = {0: "batch"} | {i: names[i] for i in range(2, len(example_shape))}
    with atomic_output(path, force=force) as tmp, warnings.catch_warnings():
        # the pad-to-multiple branch is a Python condition; it is traced for the example's
        # sizes, which the docstring asks to be multiples already
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": dynamic, "output": dynamic},
            opset_version=opset,
            dynamo=False,
        )
    return Path(path)


def _plain(value: Any) -> Any:
    """Convert tuples and NumPy scalars so ``yaml.safe_dump`` accepts the document."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, Path | str):
        return str(value)  # str subclasses (e.g. torch's version) are not plain YAML
    return value
