"""The one training driver: every network comes back as a ModelBundle with its history."""

import numpy as np

from cascope.config.training import TrainingConfig
from cascope.denoise import DeepDenoiser
from cascope.events import EventModel
from cascope.models import UNet, load_model
from cascope.segment import Segmenter
from cascope.training import (
    ModelBundle,
    PatchSampler,
    get_loss,
    supervised_pairing,
    train_model,
)


def test_every_task_bundle_is_a_model_bundle():
    assert all(issubclass(b, ModelBundle) for b in (DeepDenoiser, EventModel, Segmenter))
    assert len({b.task for b in (ModelBundle, DeepDenoiser, EventModel, Segmenter)}) == 4


def test_driver_returns_a_trained_bundle_that_saves_and_loads(tmp_path):
    x = np.random.default_rng(0).normal(size=(32, 32)).astype(np.float32)

    def sampler() -> PatchSampler:
        return PatchSampler([(x, x)], (16, 16), pairing=supervised_pairing(), seed=0)

    def build() -> UNet:
        return UNet(1, 1, ndim=2, depth=2, base=4)

    training = TrainingConfig(steps=4, batch_size=2, val_every=10, amp="off", seed=3)
    bundle = train_model(
        build,
        sampler(),
        get_loss("l2"),
        training=training,
        bundle=ModelBundle,
        output=tmp_path / "m",
        device="cpu",
        config=training,
        normalization={"mean": 0.0, "std": 1.0},
    )
    assert isinstance(bundle, ModelBundle) and not bundle.model.training
    assert bundle.history is not None and len(bundle.history.losses) == 4
    assert bundle.provenance["steps"] == 4 and bundle.provenance["device"] == "cpu"
    assert {"python", "cascope", "torch"} <= set(bundle.provenance)
    assert (tmp_path / "m.ckpt" / "last.pt").is_file()  # checkpoints beside the model folder

    # seeded: the initial weights repeat, so a second run gives the same network
    again = train_model(
        build, sampler(), get_loss("l2"), training=training, bundle=ModelBundle, device="cpu",
        config=None,
    )  # fmt: skip
    assert again.history is not None
    assert again.history.losses[0] == bundle.history.losses[0]

    folder = bundle.save(tmp_path / "m")
    net, doc = load_model(folder)
    assert doc["task"] == "model" and doc["normalization"] == {"mean": 0.0, "std": 1.0}
    assert doc["provenance"]["steps"] == 4
    for a, b in zip(net.state_dict().values(), bundle.model.state_dict().values(), strict=True):
        assert np.array_equal(a.numpy(), b.cpu().numpy())
