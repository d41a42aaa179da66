"""A denoiser's response curve: one function in NumPy and torch, kept by the model folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from tests.models import _tiny

from cascope.config.denoise import DeepPredictConfig
from cascope.denoise.model import DeepDenoiser
from cascope.errors import InputError
from cascope.models.response import Curve, apply_ramps

CURVE = Curve(knots=(0.0, 1.0, 3.0), values=(0.0, 2.0, 3.0), slopes=(0.5, 0.25))


def test_curve_is_the_same_function_in_numpy_and_torch():
    # Arrange: points below, between and above the knots, the knots themselves included
    x = np.array([-2.0, 0.0, 0.25, 1.0, 2.0, 3.0, 7.0])
    # Act
    with_numpy = CURVE(x)
    with_torch = apply_ramps(torch.from_numpy(x), *CURVE.ramps()).numpy()
    # Assert: straight lines between the knots, the end slopes beyond them
    np.testing.assert_allclose(with_numpy, [-1.0, 0.0, 0.5, 2.0, 2.5, 3.0, 4.0])
    np.testing.assert_allclose(with_torch, with_numpy, atol=1e-12)


def test_curve_composes_with_affine_maps():
    x = np.linspace(-5, 10, 31)
    np.testing.assert_allclose(CURVE.affine(2.0, 1.0)(x), CURVE(2.0 * x + 1.0), atol=1e-12)
    np.testing.assert_allclose(CURVE.then_affine(3.0, -1.0)(x), 3.0 * CURVE(x) - 1.0, atol=1e-12)


@pytest.mark.parametrize(
    "doc",
    [
        {"knots": [0, 1], "values": [1, 0], "slopes": [1, 1]},  # decreasing
        {"knots": [1, 0], "values": [0, 1], "slopes": [1, 1]},  # knots out of order
        {"knots": [0, 1], "values": [0, 1], "slopes": [1, -1]},  # a falling end
        {"knots": [0, 1], "values": [0, float("nan")], "slopes": [1, 1]},
        {"knots": [0], "values": [0], "slopes": [1, 1]},
        {"knots": [0, 1], "values": [0, 1]},
    ],
)
def test_a_broken_curve_is_refused(doc):
    with pytest.raises(ValueError):
        Curve.from_dict(doc)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _tiny.make_model("deepcad-curve", tmp_path_factory.mktemp("curve") / "model")


def test_model_folder_keeps_the_curve_and_prediction_applies_it(folder):
    # Arrange
    den = DeepDenoiser.load(folder)
    assert den.output_curve is not None
    held = _tiny.movie(3, (8, 24, 24))
    cfg = {"tile": (8, 24, 24), "block": 8}
    # Act: prediction on the host, blended on the device (CPU here), and without the curve
    host = den.predict(held, config=DeepPredictConfig.model_validate(cfg), device="cpu")
    device = den.predict(
        held, config=DeepPredictConfig.model_validate({**cfg, "blend_on": "device"}), device="cpu"
    )
    curve, den.output_curve = den.output_curve, None
    plain = den.predict(held, config=DeepPredictConfig.model_validate(cfg), device="cpu")
    # Assert: the curve is applied after the output normalisation, the same on both paths
    assert host is not None and device is not None and plain is not None
    np.testing.assert_allclose(host, curve(plain), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(device, host, rtol=1e-5, atol=1e-3)
    assert float(np.abs(host - plain).min()) > 0.1  # the curve is not the identity here


def test_a_broken_curve_in_model_yaml_is_one_line_naming_the_key(folder, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    doc = yaml.safe_load((bad / "model.yaml").read_text())
    doc["output_curve"]["values"] = list(reversed(doc["output_curve"]["values"]))
    (bad / "model.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match="output_curve: a response curve must increase"):
        DeepDenoiser.load(bad)
