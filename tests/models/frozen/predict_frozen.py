"""How each frozen model is run: the prediction its expected output was made with."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def predict(kind: str, folder: Path, x: np.ndarray) -> np.ndarray:
    """Predict ``x`` (8, 16, 16) with the model folder of ``kind``, as cascope's users do."""
    if kind == "deepcad":
        from cascope.config.denoise import DeepPredictConfig
        from cascope.denoise.deep import DeepDenoiser

        cfg = DeepPredictConfig.model_validate({"tile": (8, 16, 16), "block": 8})
        out = DeepDenoiser.load(folder).predict(x, axes="TYX", config=cfg, device="cpu")
        assert out is not None
        return np.asarray(out, np.float32)
    if kind == "events":
        from cascope.events.train import load_event_model, probability

        em = load_event_model(folder)
        return probability(em.network, x, tile=(8, 16, 16), lam=em.als_lam, p=em.als_p)
    from cascope.models import load_model
    from cascope.segment.predict import predict_probabilities

    net, _ = load_model(folder)
    return predict_probabilities(net, x, tile=(8, 16, 16), device="cpu")
