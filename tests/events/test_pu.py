"""The non-negative PU risk, its class prior and PU-corrected threshold tuning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cascope.events.detect import label_events, threshold_from_event_f1, threshold_from_pr
from cascope.events.pu import PUSampler, bce_loss, nnpu_loss
from cascope.metrics import match_events
from cascope.simulate import mscts


def _partial_truth() -> tuple[torch.Tensor, torch.Tensor]:
    """32 event voxels in a 256-voxel batch, a quarter of them labelled."""
    truth = torch.zeros(1, 1, 4, 8, 8)
    truth[0, 0, :, :4, :2] = 1
    labelled = torch.zeros_like(truth)
    labelled[0, 0, :, :2, 0] = 1  # 8 of the 32
    return truth, labelled


def test_nnpu_reduces_to_bce_with_complete_labels() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 1, 4, 8, 8, generator=g)
    t = (torch.rand(2, 1, 4, 8, 8, generator=g) < 0.1).float()
    assert torch.allclose(nnpu_loss(surrogate="logistic")(z, t, None), bce_loss()(z, t, None))


@pytest.mark.parametrize("surrogate", ["sigmoid", "logistic"])
def test_nnpu_risk_of_perfect_classifier_with_right_prior(surrogate: str) -> None:
    truth, labelled = _partial_truth()
    z = torch.where(truth > 0, 12.0, -12.0)
    prior = 24 / (truth.numel() - 8)  # hidden event voxels among the unlabeled ones
    pu = nnpu_loss(prior=prior, surrogate=surrogate)(z, labelled, None)
    # the PU risk is that of the fully labelled data, ~0 for a confident perfect classifier ...
    assert float(pu) < 1e-4
    # ... while treating unlabeled voxels as negatives charges it for every hidden event
    pn = nnpu_loss(prior=0.0, surrogate=surrogate)(z, labelled, None)
    assert float(pn) > 0.05
    # the per-batch prior from the label coverage is exact here (no crop bias) and agrees
    per_batch = nnpu_loss(label_coverage=0.25, surrogate=surrogate)(z, labelled, None)
    assert torch.allclose(per_batch, pu, atol=1e-6)


def test_nnpu_non_negative_correction() -> None:
    _, labelled = _partial_truth()
    n, n_l = labelled.numel(), 8
    n_u = n - n_l
    # labelled voxels called events, unlabeled ones not, but a prior claiming half of the
    # unlabeled voxels are events like the labelled ones: the unbiased negative risk
    # sum_U l(-) - prior n_u mean_L l(-) goes below zero (impossible for a true risk)
    z = torch.where(labelled > 0, 4.0, -2.0).requires_grad_(True)
    s_l, s_u = torch.sigmoid(torch.tensor(4.0)), torch.sigmoid(torch.tensor(-2.0))
    neg_risk = n_u * s_u - 0.5 * n_u * s_l
    assert float(neg_risk) < 0
    loss = nnpu_loss(prior=0.5, gamma=1.0, surrogate="sigmoid")(z, labelled, None)
    # Kiryo's step: minimise -gamma * negative risk, i.e. raise it back towards zero
    assert torch.allclose(loss, -neg_risk / n)
    assert float(loss.detach()) > 0
    loss.backward()
    assert z.grad is not None
    unl = labelled == 0
    # descent raises the unlabeled logits and lowers the labelled ones
    assert (z.grad[unl] < 0).all() and (z.grad[~unl] > 0).all()
    # with a plausible prior the same outputs are not corrected: the loss is the plain risk
    prior = 0.01
    small = nnpu_loss(prior=prior, pos_weight=1.0, surrogate="sigmoid")(z.detach(), labelled, None)
    plain = (n_l * (1 - s_l) + prior * n_u * (1 - s_l) + n_u * s_u - prior * n_u * s_l) / n
    assert torch.allclose(small, plain)


def test_nnpu_batch_without_labelled_voxels_keeps_the_correction() -> None:
    truth, labelled = _partial_truth()
    loss = nnpu_loss(prior=0.2)
    z = torch.where(truth > 0, 1.0, -1.0)
    loss(z, labelled, None)  # a batch with labelled voxels sets the running mean_L l(-)
    empty = torch.zeros_like(labelled)
    pu = loss(z, empty, None)
    # unlabeled-as-negative risk of the same batch is larger: the hidden events are discounted
    pn = nnpu_loss(prior=0.0)(z, empty, None)
    assert float(pu) < float(pn)


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_class_prior_matches_hidden_event_density(ratio: float) -> None:
    sim = mscts(seed=5, n_frames=128, shape=(64, 64), event_rate=25.0)
    ids = np.unique(sim.labels[sim.labels > 0])
    # the "movie" is the full truth, so each crop shows the hidden events its target misses
    truth = (sim.labels > 0).astype(np.float32)
    kw = {"window": (16, 32, 32), "cache": (24, 48, 48), "unlabeled_ratio": ratio}
    rng = np.random.default_rng(0)
    priors, hidden, per_batch = [], [], []
    for draw in range(8):  # which events are labelled varies; the estimate is right on average
        keep = rng.choice(ids, len(ids) // 4, replace=False)
        partial = np.where(np.isin(sim.labels, keep), sim.labels, 0)
        sampler = PUSampler([(truth, partial, sim.dendrites)], seed=draw, **kw)  # type: ignore[arg-type]
        c = len(keep) / len(ids)
        priors.append(sampler.class_prior(c, n_crops=256))
        rho_l, _ = sampler.label_density(n_crops=256)
        per_batch.append(rho_l * (1 - c) / (c * (1 - rho_l)))
        b = sampler.sample(128)
        hidden.append(float((b.input[b.target == 0] > 0).float().mean()))
    assert 0 < np.mean(hidden) < 0.2
    assert 0.75 < np.mean(priors) / np.mean(hidden) < 1.33
    # counting every labelled voxel (as a per-batch estimate from the label coverage does)
    # overestimates it: crops are centred on labelled events
    assert np.mean(per_batch) > 1.5 * np.mean(hidden)
    # the estimate does not disturb the sampler's own sequence of batches
    untouched = PUSampler([(truth, partial, sim.dendrites)], seed=5, **kw)  # type: ignore[arg-type]
    estimated = PUSampler([(truth, partial, sim.dendrites)], seed=5, **kw)  # type: ignore[arg-type]
    estimated.class_prior(0.25)
    assert torch.equal(untouched.sample(2).input, estimated.sample(2).input)
    assert estimated.class_prior(1.0) == 0.0


def _quarter_labelled_scores(rng: np.random.Generator, event_movie) -> tuple:
    events = [
        {"t0": t0, "y0": y0, "x0": x0, "h": 4, "w": 4, "rise": 1, "tau": 3, "amp": 1, "length": 6}
        for t0, y0, x0 in [(5, 4, 4), (20, 20, 10), (40, 8, 22), (60, 24, 24)]
    ]
    _, labels = event_movie(events=events)
    prob = np.clip((labels > 0) * 0.8 + rng.normal(0, 0.15, labels.shape), 0, 1)
    truth = pd.DataFrame(
        [(e["t0"] + 2.5, e["y0"] + 1.5, e["x0"] + 1.5) for e in events], columns=["t", "y", "x"]
    )
    return prob.astype(np.float32), labels, truth


def test_pu_corrected_thresholds_with_quarter_of_events_labelled(
    rng: np.random.Generator, event_movie
) -> None:
    prob, labels, truth = _quarter_labelled_scores(rng, event_movie)
    part_labels = np.where(labels == 1, 1, 0)  # one event of four labelled
    part = truth.iloc[:1]
    best, curve = threshold_from_event_f1(prob, part, label_coverage=0.25)
    # finding the three unlabeled events is not counted against the detector
    assert curve["f1"].max() == pytest.approx(1.0)
    _, tab = label_events(prob, threshold=best)
    assert match_events(tab, truth).f1 == 1.0
    # plain F1 on the partial labels calls them false positives and prefers a threshold that
    # loses events
    naive_best, naive = threshold_from_event_f1(prob, part)
    assert naive["f1"].max() <= 0.5
    _, tab = label_events(prob, threshold=naive_best)
    assert match_events(tab, truth).f1 < 1.0
    thr = threshold_from_pr(prob, part_labels, label_coverage=0.25)
    assert 0.3 < thr < 0.75
    with pytest.raises(ValueError):
        threshold_from_pr(prob, part_labels, label_coverage=0.0)
