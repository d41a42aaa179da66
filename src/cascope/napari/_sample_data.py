"""Sample data: small simulated recordings with their ground truth as extra layers."""

from __future__ import annotations

from typing import Any

from cascope.napari._layers import META_KEY

LayerData = tuple[Any, dict[str, Any], str]


def _meta(axes: str, **extra: Any) -> dict[str, Any]:
    return {META_KEY: {"axes": axes, **extra}}


def somatic_movie() -> list[LayerData]:
    """Simulate a 100-frame 96×96 two-photon-like movie of somata, with the clean movie."""
    from cascope.simulate import somatic

    sim = somatic(n_frames=100, shape=(96, 96), seed=0)
    rate = sim.params.frame_rate
    meta = _meta("TYX", frame_rate=rate)
    labels = ["t", "y", "x"]
    return [
        (
            sim.clean,
            {"name": "somatic clean", "metadata": meta, "axis_labels": labels, "visible": False},
            "image",
        ),
        (sim.noisy, {"name": "somatic noisy", "metadata": meta, "axis_labels": labels}, "image"),
    ]


def msct_movie() -> list[LayerData]:
    """Simulate a 100-frame 96×96 mSCT movie of dendrites, with the event labels."""
    from cascope.simulate import mscts

    sim = mscts(n_frames=100, shape=(96, 96), seed=0)
    meta = _meta("TYX", frame_rate=sim.params.frame_rate)
    labels = ["t", "y", "x"]
    return [
        (sim.noisy, {"name": "mSCT noisy", "metadata": meta, "axis_labels": labels}, "image"),
        (sim.labels, {"name": "mSCT events", "metadata": meta, "axis_labels": labels}, "labels"),
    ]


def axon_volume() -> list[LayerData]:
    """Simulate a 24×96×96 confocal-like volume of axons, with the instance labels."""
    from cascope.simulate import axons

    sim = axons(shape=(24, 96, 96), seed=0)
    vs = sim.params.voxel_size
    voxel = {"Z": vs[0], "Y": vs[1], "X": vs[2]}
    meta = _meta("ZYX", voxel_size=voxel)
    common = {"metadata": meta, "axis_labels": ["z", "y", "x"], "scale": list(vs)}
    return [
        (sim.noisy, {"name": "axons noisy", **common}, "image"),
        (sim.labels, {"name": "axons labels", **common}, "labels"),
    ]
