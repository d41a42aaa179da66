"""Tiny trained model folders of every kind, made in seconds (for the export tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: (name, task, options): every kind of model cascope trains.
KINDS = ("deepcad", "n2v", "n2v3d", "n2n", "care", "events", "segmenter")


def movie(seed: int, shape: tuple[int, int, int] = (24, 40, 40)) -> np.ndarray:
    """A noisy movie of blurred bright spots (float32, offset ~100)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    spots = ndimage.gaussian_filter((rng.random(shape) < 0.01).astype(np.float32), 1.5)
    spots /= spots.max()
    return (100 + 200 * spots + 5 * rng.standard_normal(shape)).astype(np.float32)


def make_model(kind: str, folder: Path) -> Path:
    """Train a tiny model of ``kind`` for a few steps and save it to ``folder``."""
    training = {"steps": 3, "batch_size": 1, "val_every": 3, "amp": "off", "seed": 0}
    if kind in ("deepcad", "deepcad-curve", "n2v", "n2v3d", "n2n", "care"):
        from cascope.config.denoise import DeepDenoiseConfig
        from cascope.denoise.deep import train_denoiser

        cfg = DeepDenoiseConfig.model_validate(
            {
                "method": kind.removesuffix("-curve"),
                "patch": (4, 16, 16),
                "depth": 2,
                "base": 2,
                "val_fraction": 0,
                "training": training,
            }
        )
        targets = None
        if kind == "n2n":
            targets = movie(1)
        elif kind == "care":
            targets = movie(0) * 0.5 + 60
        den, _ = train_denoiser(movie(0), config=cfg, targets=targets, device="cpu")
        if kind == "deepcad-curve":  # a response curve, as a longer training measures one
            from cascope.models.response import Curve

            mean, std = den.output_norm
            knots = tuple(mean + std * k for k in (-1.0, 0.0, 0.5, 1.5))
            values = tuple(mean + std * v for v in (-0.9, 0.0, 0.3, 0.8))
            den.output_curve = Curve(knots, values, slopes=(0.9, 0.4))
        return den.save(folder)
    if kind == "events":
        from cascope.config.events import EventTrainConfig
        from cascope.events.train import train_event_detector

        mov = movie(0)
        lab = (mov > 200).astype(np.uint8)
        cfg = EventTrainConfig.model_validate(
            {
                "window": (8, 16, 16),
                "cache": (8, 16, 16),
                "model": {"depth": 2, "base": 2},
                "training": training,
                "threshold_method": "fixed",
            }
        )
        train_event_detector([mov], [lab], config=cfg, output=folder, device="cpu")
        return folder
    from cascope.config.segment import SegmenterConfig
    from cascope.segment.train import train_segmenter

    vol = movie(0, (16, 32, 32))
    lab = (vol > 200).astype(np.uint8)
    cfg = SegmenterConfig.model_validate(
        {
            "depth": 2,
            "base": 2,
            "patch": (8, 16, 16),
            "augment": {"enabled": False},
            "training": training,
        }
    )
    train_segmenter([vol], [lab], config=cfg, output=folder, device="cpu")
    return folder
