"""The progress bar of long work: drawn on a terminal, absent in logs and pipes."""

import logging

import numpy as np
import pytest
import torch

from cascope.denoise import denoise_movie
from cascope.models import UNet
from cascope.tiling import ArrayWriter, predict_streamed
from cascope.training import PatchSampler, Trainer, TrainingConfig, get_loss, supervised_pairing


def _filter(progress: bool) -> np.ndarray:
    data = np.random.default_rng(0).poisson(50, (12, 16, 16)).astype(np.uint16)
    out = denoise_movie(data, "gaussian", axes="TYX", block=4, progress=progress)
    assert out is not None
    return out


def _predict(progress: bool) -> np.ndarray:
    x = np.arange(10 * 8 * 8, dtype=np.float32).reshape(10, 8, 8)
    out = np.zeros_like(x)
    predict_streamed(
        lambda b: -b, x, ArrayWriter(out), tile=(4, 8, 8), block=3, halo=1, progress=progress
    )
    return out


def _train(progress: bool) -> list[float]:
    rng = np.random.default_rng(0)
    noisy = rng.normal(size=(32, 32)).astype(np.float32)
    s = PatchSampler([(noisy, noisy)], (16, 16), pairing=supervised_pairing(), seed=0)
    torch.manual_seed(0)
    cfg = TrainingConfig(steps=4, batch_size=2, val_every=2)
    net = UNet(1, 1, ndim=2, depth=1, base=2)
    trainer = Trainer(net, s, get_loss("l2"), config=cfg, val_sampler=s, device="cpu")
    return trainer.fit(progress=progress).losses


WORK = [
    ("gaussian", "12/12", _filter),
    ("predicting", "10/10", _predict),
    ("training", "4/4", _train),
]


@pytest.mark.parametrize(("label", "count", "work"), WORK)
def test_a_bar_on_a_terminal_and_none_in_a_pipe(capsys, monkeypatch, label, count, work):
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    quiet = work(True)  # pytest's captured stderr is not a terminal
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # as a terminal would be
    shown = work(True)
    err = capsys.readouterr().err
    assert label in err and count in err
    np.testing.assert_array_equal(np.asarray(shown), np.asarray(quiet))  # the bar changes nothing
    work(False)
    assert capsys.readouterr().err == ""


def test_training_logs_each_validation(caplog):
    with caplog.at_level(logging.INFO, logger="cascope.training.trainer"):
        losses = _train(False)
    lines = [r.getMessage() for r in caplog.records if "validation loss" in r.getMessage()]
    assert [line.split(":")[0] for line in lines] == ["step 2/4", "step 4/4"]
    assert f"loss {losses[1]:.4g}," in lines[0]
