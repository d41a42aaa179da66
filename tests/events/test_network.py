"""PU training of a tiny 3D U-Net with the shared trainer, and detection with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.events.conftest import NETWORK_SIM as SIM
from tests.events.conftest import end_bin_ratios

from cascope.config.events import DetectConfig, EventTrainConfig
from cascope.config.training import TrainingConfig
from cascope.events.detect import baseline_scores, label_events, threshold_from_event_f1
from cascope.events.pu import PUSampler
from cascope.events.train import (
    detect_events,
    load_event_model,
    train_event_detector,
    train_from_msct_h5,
)
from cascope.metrics import match_events
from cascope.simulate import mscts


def _config(steps: int) -> EventTrainConfig:
    return EventTrainConfig(
        window=(16, 32, 32),
        cache=(24, 48, 48),
        model={"depth": 3, "base": 8},
        pu={"pos_weight": 2.0, "unlabeled_ratio": 1.0},
        training=TrainingConfig(steps=steps, batch_size=2, val_every=10_000, lr=2e-3),
    )


def test_pu_sampler_ratios() -> None:
    sim = mscts(seed=5, **SIM)
    item = (sim.noisy.astype(np.float32), sim.labels, sim.dendrites)
    only_pos = PUSampler([item], window=(8, 16, 16), cache=(8, 16, 16), unlabeled_ratio=0, seed=0)
    b = only_pos.sample(16)
    assert b.input.shape == (16, 1, 8, 16, 16)
    # a crop centred on an event always holds event voxels
    assert (b.target.flatten(1).sum(1) > 0).all()
    many_unl = PUSampler([item], window=(8, 16, 16), unlabeled_ratio=8, seed=0)
    frac = (many_unl.sample(64).target.flatten(1).sum(1) > 0).float().mean()
    assert frac < (only_pos.sample(64).target.flatten(1).sum(1) > 0).float().mean()
    complete = PUSampler([item], window=(8, 16, 16), unlabeled_ratio="complete", seed=0)
    assert complete.p_positive == 0.0
    # batches are stratified: with one unlabeled crop per positive, half of every batch of 4 is
    # centred on an event
    half = PUSampler([item], window=(8, 16, 16), cache=(8, 16, 16), unlabeled_ratio=1, seed=0)
    for _ in range(10):
        assert (half.sample(4).target[:2].flatten(1).sum(1) > 0).all()


def _beats_threshold_baseline(model, result, device: str) -> None:
    valid, test = mscts(seed=3, **SIM), mscts(seed=4, **SIM)
    assert np.mean(result.losses[-20:]) < 0.5 * np.mean(result.losses[:20])
    found = detect_events(
        test.noisy, model, config=DetectConfig(tile=(16, 48, 48), block=40, halo=16, device=device)
    )
    f1_unet = match_events(found, test.events).f1
    # the baseline's threshold is tuned on the same validation movie
    k, _ = threshold_from_event_f1(
        baseline_scores(valid.noisy), valid.events, thresholds=np.arange(1.0, 8.0, 0.5)
    )
    _, base = label_events(baseline_scores(test.noisy), threshold=k)
    f1_base = match_events(base, test.events).f1
    # gain 0.10-0.18 over training seeds x CPU kernels (benchmarks/results/seed_sweep.md)
    assert f1_unet > f1_base + 0.05
    assert f1_unet > 0.75


def test_trained_unet_beats_threshold_baseline(trained_event_model) -> None:
    _beats_threshold_baseline(*trained_event_model, "cpu")


@pytest.mark.gpu
def test_trained_unet_beats_threshold_baseline_on_cuda(cuda: str) -> None:
    from tests.events.conftest import train_small_event_model

    _beats_threshold_baseline(*train_small_event_model(cuda), cuda)


def test_train_from_hdf5_layout_and_reload(tmp_path) -> None:
    from cascope.io import MsctStream, read_msct_h5, write_msct_h5
    from cascope.io.msct_h5 import events_from_labels

    def stream(seed: int) -> MsctStream:
        s = mscts(seed=seed, n_frames=32, shape=(32, 32), event_rate=40.0)
        return MsctStream.from_arrays(s.noisy, s.labels, events_from_labels(s.labels))

    h5 = write_msct_h5(
        tmp_path / "train.h5", {"train": {"a": stream(1)}, "valid": {"b": stream(2)}}
    )
    assert set(read_msct_h5(h5)) == {"train", "valid"}
    cfg = EventTrainConfig(
        window=(8, 16, 16),
        cache=(8, 24, 24),
        model={"depth": 2, "base": 4},
        training=TrainingConfig(steps=4, batch_size=2, val_every=2),
    )
    model, result = train_from_msct_h5(h5, config=cfg, output=tmp_path / "model", device="cpu")
    assert result.steps_done == 4 and result.val_losses
    back = load_event_model(tmp_path / "model")
    assert back.threshold == pytest.approx(model.threshold)
    x = torch.randn(1, 1, 8, 16, 16)
    assert torch.allclose(back.network(x), model.network.cpu().eval()(x), atol=1e-5)


def test_training_is_reproducible_whatever_ran_before() -> None:
    sim = mscts(seed=3, n_frames=32, shape=(32, 32), event_rate=40.0)
    cfg = EventTrainConfig(
        window=(8, 16, 16),
        cache=(8, 24, 24),
        model={"depth": 2, "base": 4},
        training=TrainingConfig(steps=3, batch_size=2, val_every=10_000),
    )
    losses = []
    for _ in range(2):
        torch.rand(7)  # other work drawing from the global generator
        _, result = train_event_detector([sim.noisy], [sim.labels], config=cfg, device="cpu")
        losses.append(result.losses)
    assert losses[0] == losses[1]


def test_unet_event_times_have_no_pile_up_at_the_ends_of_the_movie(trained_event_model) -> None:
    # stationary movies (no bleaching): event times (the table's centroid t) must not pile up
    # at the first or last frames, whatever the tiles and the network's padding do there
    model, _ = trained_event_model
    n_frames, times = 96, []
    for seed in range(20, 30):
        # no redrawing of close events (min_separation 0), which would favour the ends
        sim = mscts(seed=seed, **{**SIM, "event_rate": 15.0, "min_separation": (0, 0)})
        cfg = DetectConfig(tile=(16, 48, 48), block=n_frames, halo=16, device="cpu")
        times += list(detect_events(sim.noisy, model, config=cfg)["t"])
    assert len(times) > 150
    first, last = end_bin_ratios(times, n_frames, bins=8)
    assert first < 1.5 and last < 1.5, (first, last)
