"""``cascope simulate {somatic,mscts,axons,pairs}``: write simulated recordings with ground truth.

Options left out keep the defaults of the parameter models in ``cascope.config.simulate``; a YAML
``--config`` file sets any parameter, and explicit options override it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from cascope.cli._apps import simulate_app, with_options

_OUT = typer.Option(..., "--out", "-o", help="Output folder (must not exist, or be empty).")
_SEED = typer.Option(None, "--seed", help="Seed of the random generator (default 0).")
_FORCE = typer.Option(False, "--force", help="Replace an existing non-empty output folder.")
_CONFIG = typer.Option(None, "--config", help="YAML file with any simulation parameters.")
_PHOTONS = typer.Option(None, "--photons", help="Brightness in photons per pixel (sets the SNR).")
#: Options of every simulation, before and after its own.
_FIRST = {"out": (Path, _OUT), "seed": (int | None, _SEED)}
_LAST = {
    "gain": (
        float | None,
        typer.Option(None, "--gain", help="Camera gain, ADU per photo-electron."),
    ),
    "read_noise": (
        float | None,
        typer.Option(None, "--read-noise", help="Read noise, photo-electrons (std)."),
    ),
    "offset": (float | None, typer.Option(None, "--offset", help="Camera offset, ADU.")),
    "config": (Path | None, _CONFIG),
    "force": (bool, _FORCE),
}


def _run(
    kind: str,
    out: Path,
    force: bool,
    config: Path | None,
    camera: dict[str, Any],
    options: dict[str, Any],
) -> None:
    import yaml
    from rich.console import Console

    from cascope import simulate
    from cascope.errors import InputError

    base: dict[str, Any] = {}
    if config is not None:
        try:
            loaded = yaml.safe_load(config.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise InputError(f"cannot read the parameters: {err}", config) from err
        if not isinstance(loaded, dict):
            raise InputError("expected a mapping of parameter names to values", config)
        base = loaded
    overrides = {k: v for k, v in options.items() if v is not None}
    cam = {k: v for k, v in camera.items() if v is not None}
    if cam:
        overrides["camera"] = {**base.get("camera", {}), **cam}
    func = getattr(simulate, kind)
    console = Console(stderr=True)
    with console.status(f"simulating {kind} ..."):
        result = func(**{**base, **overrides})
    with console.status(f"writing {out} ..."):
        folder = simulate.save(result, out, force=force)
    console.print(f"wrote [bold]{kind}[/] simulation to {folder} (see truth.json)", highlight=False)


def simulation(parameters: Callable[..., dict[str, Any]]) -> Callable[..., None]:
    """Make the ``simulate`` command that writes the simulation ``parameters`` describes.

    ``parameters`` is named after the simulator (``cascope.simulate.somatic``, ...) and turns its
    own options into the simulator's parameters; the command adds ``--out`` and ``--seed``
    before them and the camera options, ``--config`` and ``--force`` after them.
    """

    def run(
        *,
        out: Path,
        seed: int | None = None,
        gain: float | None = None,
        read_noise: float | None = None,
        offset: float | None = None,
        config: Path | None = None,
        force: bool = False,
        **options: Any,
    ) -> None:
        camera = {"gain": gain, "read_noise": read_noise, "offset": offset}
        simulated = {"seed": seed, **parameters(**options)}
        _run(parameters.__name__, out, force, config, camera, simulated)

    return with_options(parameters, run, _LAST, first=_FIRST)  # type: ignore[no-any-return]


def somatic(
    frames: int | None = typer.Option(None, "--frames", help="Number of frames T."),
    shape: tuple[int, int] | None = typer.Option(None, "--shape", help="Frame size Y X."),
    neurons: int | None = typer.Option(None, "--neurons", help="Number of neurons."),
    photons: float | None = _PHOTONS,
    frame_rate: float | None = typer.Option(None, "--frame-rate", help="Frame rate, Hz."),
    spike_rate: float | None = typer.Option(None, "--spike-rate", help="Mean rate, Hz."),
) -> dict[str, Any]:
    """Two-photon-like movie of neurons: noisy/clean movies, footprints, ΔF/F, spikes."""
    return {
        "n_frames": frames,
        "shape": shape,
        "n_neurons": neurons,
        "photons": photons,
        "frame_rate": frame_rate,
        "spike_rate": spike_rate,
    }


def mscts(
    frames: int | None = typer.Option(None, "--frames", help="Number of frames T."),
    shape: tuple[int, int] | None = typer.Option(None, "--shape", help="Frame size Y X."),
    photons: float | None = _PHOTONS,
    event_rate: float | None = typer.Option(
        None, "--event-rate", help="Events per frame per 10,000 dendrite pixels."
    ),
    amplitude: tuple[float, float] | None = typer.Option(
        None, "--amplitude", help="Range of event peak ΔF/F, MIN MAX."
    ),
    bleaching: float | None = typer.Option(
        None, "--bleaching", help="Fraction of fluorescence lost by the last frame."
    ),
) -> dict[str, Any]:
    """Dendrites with miniature synaptic calcium transients: labels and event table."""
    return {
        "n_frames": frames,
        "shape": shape,
        "photons": photons,
        "event_rate": event_rate,
        "amplitude": amplitude,
        "bleaching": bleaching,
    }


def axons(
    shape: tuple[int, int, int] | None = typer.Option(None, "--shape", help="Volume size Z Y X."),
    density: str | None = typer.Option(None, "--density", help="sparse or dense."),
    n_axons: int | None = typer.Option(None, "--axons", help="Number of axons."),
    fret: bool = typer.Option(False, "--fret", help="Donor and acceptor channels (CZYX)."),
    straight: float | None = typer.Option(
        None, "--straight", help="Render one straight tube of this length (voxels) instead."
    ),
    photons: float | None = _PHOTONS,
) -> dict[str, Any]:
    """Confocal-like axon volume: instance and semantic labels, centrelines, FRET ratios."""
    return {
        "shape": shape,
        "density": density,
        "n_axons": n_axons,
        "fret": fret or None,
        "mode": "straight" if straight is not None else None,
        "tube_length": straight,
        "photons": photons,
    }


def pairs(
    images: int | None = typer.Option(None, "--images", help="Number of scenes."),
    shape: tuple[int, int] | None = typer.Option(None, "--shape", help="Image size Y X."),
    scene: str | None = typer.Option(None, "--scene", help="somatic or dendrites."),
    photons_low: float | None = typer.Option(None, "--photons-low", help="Low-SNR photons."),
    photons_high: float | None = typer.Option(None, "--photons-high", help="High-SNR photons."),
) -> dict[str, Any]:
    """Low-SNR pairs (Noise2Noise) and high-SNR targets (CARE) of the same scenes."""
    return {
        "n_images": images,
        "shape": shape,
        "scene": scene,
        "photons_low": photons_low,
        "photons_high": photons_high,
    }


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` commands to the ``simulate`` group."""
    del app  # the commands belong to the simulate group, already attached to the app
    for parameters in (somatic, mscts, axons, pairs):
        simulate_app.command(parameters.__name__)(simulation(parameters))
