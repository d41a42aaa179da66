import functools

import numpy as np
import pytest
import torch

from cascope.models import UNet
from cascope.training import (
    PatchSampler,
    Trainer,
    TrainingConfig,
    get_loss,
    supervised_pairing,
    temporal_interleave_pairing,
)


def _setup(movie):
    torch.manual_seed(0)
    model = UNet(1, 1, ndim=3, depth=2, base=4)
    train = PatchSampler(
        [(movie,)],
        (8, 16, 16),
        pairing=temporal_interleave_pairing(),
        augment="stack",
        seed=1,
        regions=[(slice(0, 32),)],
    )
    val = PatchSampler(
        [(movie,)],
        (8, 16, 16),
        pairing=temporal_interleave_pairing(),
        seed=2,
        regions=[(slice(32, 40),)],
    )
    return model, train, val


def test_killed_run_resumes_with_identical_losses(tmp_path, rng, device):
    movie = rng.normal(size=(40, 24, 24)).astype(np.float32)
    cfg = TrainingConfig(steps=10, checkpoint_every=4, val_every=3, batch_size=2)
    loss = get_loss("l1+l2")
    # on the CPU the runs are identical; CUDA adds the gradients of pooling and upsampling in no
    # fixed order, so there they agree to rounding
    tol = {"rtol": 0.0, "atol": 0.0} if device == "cpu" else {"rtol": 1e-3, "atol": 1e-5}
    same = functools.partial(np.testing.assert_allclose, **tol)

    def trainer(folder):
        model, s, v = _setup(movie)
        return Trainer(
            model,
            s,
            loss,
            config=cfg,
            val_sampler=v,
            device=device,
            checkpoint_dir=tmp_path / folder,
        )

    whole = trainer("a").fit()
    killed = trainer("b").fit(stop_at=6)  # last checkpoint: step 4
    assert len(killed.losses) == 6
    resumed_trainer = trainer("b")
    resumed = resumed_trainer.fit(resume=True)

    assert len(resumed.losses) == 10
    same(resumed.losses, whole.losses)
    assert [s for s, _ in resumed.val_losses] == [s for s, _ in whole.val_losses]
    same([v for _, v in resumed.val_losses], [v for _, v in whole.val_losses])
    # steps 5 and 6 were recomputed after the kill and came out the same
    same(killed.losses[4:6], resumed.losses[4:6])
    x = torch.from_numpy(movie[None, None, :8, :16, :16])
    with torch.no_grad():
        out = resumed_trainer.model.cpu().float()(x)
        torch.testing.assert_close(out, whole_model_output(tmp_path / "a", x), **tol)


def whole_model_output(ckpt_dir, x):
    state = torch.load(ckpt_dir / "last.pt", weights_only=True)
    model = UNet(1, 1, ndim=3, depth=2, base=4)
    model.load_state_dict(state["best_model"])
    return model.eval()(x)


def test_training_reduces_the_loss_and_restores_the_best(rng):
    yy, xx = np.mgrid[:32, :32]
    clean = np.sin(xx / 4.0).astype(np.float32) + np.cos(yy / 5.0).astype(np.float32)
    noisy = clean + 0.5 * rng.normal(size=clean.shape).astype(np.float32)
    s = PatchSampler([(noisy, clean)], (16, 16), pairing=supervised_pairing(), seed=0)
    v = PatchSampler([(noisy, clean)], (16, 16), pairing=supervised_pairing(), seed=1)
    torch.manual_seed(0)
    cfg = TrainingConfig(steps=60, lr=3e-3, batch_size=4, val_every=10)
    res = Trainer(
        UNet(1, 1, ndim=2, depth=2, base=8),
        s,
        get_loss("l2"),
        config=cfg,
        val_sampler=v,
        device="cpu",
    ).fit()
    assert np.mean(res.losses[-10:]) < 0.5 * np.mean(res.losses[:5])
    assert res.best_val == min(v for _, v in res.val_losses)


def test_early_stopping_stops(rng):
    x = rng.normal(size=(16, 16)).astype(np.float32)
    s = PatchSampler([(x, x)], (8, 8), pairing=supervised_pairing(), seed=0)
    cfg = TrainingConfig(steps=200, lr=1e-9, val_every=1, patience=2, min_delta=1.0)
    res = Trainer(
        UNet(1, 1, ndim=2, depth=1, base=2),
        s,
        get_loss("l1"),
        config=cfg,
        val_sampler=s,
        device="cpu",
    ).fit()
    assert res.stopped_early and res.steps_done == 3


def test_unknown_config_keys_are_rejected():
    with pytest.raises(ValueError, match="extra"):
        TrainingConfig(step=3)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_warmup_ramps_the_learning_rate_then_follows_the_schedule(rng, schedule):
    x = rng.normal(size=(16, 16)).astype(np.float32)
    s = PatchSampler([(x, x)], (8, 8), pairing=supervised_pairing(), seed=0)
    cfg = TrainingConfig(
        steps=12, lr=1e-3, warmup_steps=4, lr_schedule=schedule, betas=(0.5, 0.99), val_every=100
    )
    used: list[float] = []
    trainer = Trainer(
        UNet(1, 1, ndim=2, depth=1, base=2), s, get_loss("l2"), config=cfg, device="cpu"
    )
    trainer.on_step = lambda step, loss: used.append(trainer.optimizer.param_groups[0]["lr"])
    trainer.fit()
    assert trainer.optimizer.param_groups[0]["betas"] == (0.5, 0.99)
    steps = np.arange(1, 13)
    decay = np.ones(12) if schedule == "constant" else 0.5 * (1 + np.cos(np.pi * (steps - 1) / 12))
    expected = 1e-3 * decay * np.minimum(1.0, steps / 4)
    np.testing.assert_allclose(used, expected, rtol=1e-9)
    assert used[0] < used[1] < used[2] < used[3]


def test_adam_betas_outside_0_1_are_rejected():
    with pytest.raises(ValueError, match="betas must lie in"):
        TrainingConfig(betas=(0.5, 1.0))


def _denoising_setup(rng):
    yy, xx = np.mgrid[:48, :48]
    clean = (np.sin(xx / 4.0) + np.cos(yy / 5.0)).astype(np.float32)
    noisy = clean + 0.5 * rng.normal(size=clean.shape).astype(np.float32)
    torch.manual_seed(0)
    model = UNet(1, 1, ndim=2, depth=2, base=4)
    s = PatchSampler([(noisy, clean)], (16, 16), pairing=supervised_pairing(), seed=0)
    v = PatchSampler([(noisy, clean)], (16, 16), pairing=supervised_pairing(), seed=1)
    return model, s, v


def _run_with_blow_up(
    rng, tmp_path=None, stop_at=None, resume=False, wreck=lambda step: step == 12, **options
):
    """Train with the weights wrecked after the steps ``wreck`` picks (a simulated divergence)."""
    model, s, v = _denoising_setup(rng)
    options = {"divergence": 2.0, "steps": 30, **options}
    cfg = TrainingConfig(val_every=5, lr=3e-3, checkpoint_every=4, **options)
    trainer = Trainer(
        model, s, get_loss("l2"), config=cfg, val_sampler=v, device="cpu", checkpoint_dir=tmp_path
    )
    lrs: list[float] = []  # the learning rate each step ran with

    def on_step(step, loss):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        if wreck(step):
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(50.0)

    trainer.on_step = on_step
    return trainer.fit(resume=resume, stop_at=stop_at), lrs


def test_a_run_that_blows_up_goes_back_to_its_best_state_at_half_the_rate(rng):
    seed = int(rng.integers(1 << 30))
    res, lrs = _run_with_blow_up(np.random.default_rng(seed))
    vals = dict(res.val_losses)
    # the wrecked weights were caught at the first validation after step 12
    assert vals[15] > 2 * vals[10] and res.rollbacks == [15]
    assert lrs[:15] == [3e-3] * 15 and lrs[15:] == [1.5e-3] * 15
    # back on track: the run ends near its best, well below the wrecked loss
    assert vals[30] < 1.5 * vals[10] < vals[15]
    # the same run without the guard spends its remaining steps on the broken network
    free, free_lrs = _run_with_blow_up(
        np.random.default_rng(seed), divergence=None, restore_best=False
    )
    assert free.rollbacks == [] and set(free_lrs) == {3e-3}
    assert dict(free.val_losses)[30] > 2 * vals[30]
    np.testing.assert_array_equal(free.losses[:15], res.losses[:15])


def test_a_blow_up_before_the_first_validation_goes_back_to_the_untrained_network(rng):
    res, lrs = _run_with_blow_up(rng, wreck=lambda step: step == 3)
    vals = dict(res.val_losses)
    # the untrained network was validated first: the wrecked step-5 network compares with it
    assert res.val_losses[0][0] == 0 and vals[5] > 2 * vals[0]
    assert res.rollbacks == [5] and lrs[5:] == [1.5e-3] * 25
    assert res.best_step == 30 and vals[30] < vals[0] < vals[5]


def test_a_run_that_keeps_blowing_up_stops_and_says_what_to_do(rng):
    from cascope.errors import TrainingDiverged
    from cascope.training.trainer import MAX_ROLLBACKS_IN_ROW

    seed = int(rng.integers(1 << 30))
    with pytest.raises(TrainingDiverged, match=f"{MAX_ROLLBACKS_IN_ROW} times.*lower the learn"):
        _run_with_blow_up(np.random.default_rng(seed), wreck=lambda step: True, steps=100)
    # one blow-up at the end of a run: nothing better than the untrained network to give back
    with pytest.raises(TrainingDiverged, match="never came back below the untrained network"):
        _run_with_blow_up(np.random.default_rng(seed), wreck=lambda step: step == 3, steps=5)
    done, _ = _run_with_blow_up(np.random.default_rng(seed), wreck=lambda step: step == 3)
    assert done.rollbacks == [5]  # the same blow-up with steps left to recover is no error


def test_a_non_finite_loss_rolls_back_or_stops_with_a_message(rng):
    seed = int(rng.integers(1 << 30))

    def run(**options):
        model, s, v = _denoising_setup(np.random.default_rng(seed))
        cfg = TrainingConfig(steps=20, val_every=5, lr=3e-3, **{"divergence": 2.0, **options})
        t = Trainer(model, s, get_loss("l2"), config=cfg, val_sampler=v, device="cpu")

        def nan_at_12(step, loss):
            if step == 12:
                with torch.no_grad():
                    next(iter(model.parameters())).fill_(float("nan"))

        t.on_step = nan_at_12
        return t.fit()

    res = run()
    assert res.rollbacks == [13] and not np.isfinite(res.losses[12])
    assert np.all(np.isfinite(res.losses[13:])) and np.isfinite(res.val_losses[-1][1])
    with pytest.raises(FloatingPointError, match="step 13"):
        run(divergence=None)


def test_a_killed_run_resumes_after_a_rollback_with_identical_losses(rng, tmp_path):
    seed = int(rng.integers(1 << 30))
    whole, _ = _run_with_blow_up(np.random.default_rng(seed), tmp_path / "a")
    killed, _ = _run_with_blow_up(np.random.default_rng(seed), tmp_path / "b", stop_at=18)
    assert killed.rollbacks == [15]  # checkpoint of step 16 holds the halved rate
    resumed, lrs = _run_with_blow_up(np.random.default_rng(seed), tmp_path / "b", resume=True)
    assert resumed.rollbacks == whole.rollbacks == [15]
    np.testing.assert_array_equal(resumed.losses, whole.losses)
    assert resumed.val_losses == whole.val_losses
    assert set(lrs) == {1.5e-3}


def test_the_denoisers_roll_back_by_default_other_trainings_do_not():
    from cascope.config.denoise import DeepDenoiseConfig
    from cascope.config.events import EventTrainConfig

    assert DeepDenoiseConfig().training.divergence == 2.0
    # options given in part (CLI, pipeline, napari form) keep the denoisers' guard
    assert DeepDenoiseConfig.model_validate({"training": {"steps": 5}}).training.divergence == 2.0
    assert TrainingConfig().divergence is None
    assert EventTrainConfig().training.divergence is None


def test_mixed_precision_and_memory_format_on_the_cpu(caplog):
    from cascope._device import _fp16_off_cuda, channels_last_format
    from cascope.training import autocast_dtype

    cpu = torch.device("cpu")
    _fp16_off_cuda.cache_clear()  # said once per process: forget an earlier test's
    with caplog.at_level("WARNING", logger="cascope.training.trainer"):
        assert autocast_dtype(cpu, "auto") is None
        assert autocast_dtype(cpu, "bf16") == torch.bfloat16
        assert autocast_dtype(cpu, "off") is None
        assert not caplog.records
        # fp16 has no CPU kernels worth using: float32, and the user is told so, once
        assert autocast_dtype(cpu, "fp16") is None and autocast_dtype(cpu, "fp16") is None
    assert [r.getMessage() for r in caplog.records] == [
        "fp16 is for CUDA only: the CPU computes in float32"
    ]
    net3d, net2d = UNet(1, 1, ndim=3, depth=2, base=4), UNet(1, 1, ndim=2, depth=2, base=4)
    assert channels_last_format(net3d, cpu) == torch.channels_last_3d
    assert channels_last_format(net2d, cpu) == torch.channels_last
    assert channels_last_format(net3d, cpu, wanted=False) is None


@pytest.mark.parametrize(("amp", "channels_last"), [("bf16", True), ("bf16", False), ("off", True)])
def test_training_computes_in_the_layout_asked_for(rng, amp, channels_last):
    model, train, val = _setup(rng.normal(size=(40, 24, 24)).astype(np.float32))
    cfg = TrainingConfig(steps=3, val_every=3, amp=amp, channels_last=channels_last)
    t = Trainer(model, train, get_loss("l1+l2"), config=cfg, val_sampler=val, device="cpu")
    res = t.fit()
    # 3x3x3 weights with several input channels: the two layouts differ
    weights = [m.weight for m in t.model.modules() if isinstance(m, torch.nn.Conv3d)]
    weights = [w for w in weights if w.shape[1] > 1 and w.shape[2:] == (3, 3, 3)]
    assert weights
    for w in weights:
        assert w.is_contiguous(memory_format=torch.channels_last_3d) == channels_last
        assert w.is_contiguous() == (not channels_last)
    assert np.isfinite(res.losses).all() and res.float32_steps == []


class _FaultyInBf16(torch.autograd.Function):
    """Identity whose gradient is NaN for bfloat16 tensors, as a faulty bfloat16 kernel gives."""

    @staticmethod
    def forward(ctx, x):
        ctx.bf16 = x.dtype == torch.bfloat16
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan") if ctx.bf16 else grad


class _NetWithBf16Fault(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv3d(1, 4, 3, padding=1)
        self.b = torch.nn.Conv3d(4, 1, 3, padding=1)

    def forward(self, x):
        return self.b(torch.relu(_FaultyInBf16.apply(self.a(x))))


def test_bf16_faults_on_the_cpu_are_redone_in_float32_then_the_run_stays_there(rng, tmp_path):
    from cascope.training.trainer import BF16_CPU_RETRIES

    movie = rng.normal(size=(40, 24, 24)).astype(np.float32)

    def run(amp, ckpt, **fit):
        _, s, v = _setup(movie)
        torch.manual_seed(0)
        cfg = TrainingConfig(steps=8, val_every=4, checkpoint_every=4, batch_size=2, amp=amp)
        t = Trainer(_NetWithBf16Fault(), s, get_loss("l2"), config=cfg, val_sampler=v,
                    device="cpu", checkpoint_dir=tmp_path / ckpt)  # fmt: skip
        return t, t.fit(**fit)

    plain, ref = run("off", "off")
    assert ref.float32_steps == [] and plain.amp_dtype is None
    t, res = run("bf16", "bf16")
    assert res.float32_steps == list(range(1, BF16_CPU_RETRIES + 1))
    assert t.amp_dtype is None  # the rest of the run in float32
    # each faulty step was computed again in float32, so the run is the float32 run
    np.testing.assert_array_equal(res.losses, ref.losses)
    assert np.all(np.isfinite(res.losses))
    # a resumed run stays in float32 (the checkpoint of step 4 knows about the faults)
    run("bf16", "killed", stop_at=6)
    t, resumed = run("bf16", "killed", resume=True)
    assert t.amp_dtype is None and resumed.float32_steps == res.float32_steps
    np.testing.assert_array_equal(resumed.losses, ref.losses)


def test_a_run_that_never_beats_the_untrained_network_says_so(rng, caplog):
    model, s, v = _denoising_setup(rng)
    cfg = TrainingConfig(steps=5, val_every=5, lr=1e-12, divergence=2.0, min_delta=0.01)
    trainer = Trainer(model, s, get_loss("l2"), config=cfg, val_sampler=v, device="cpu")
    with caplog.at_level("WARNING", logger="cascope.training.trainer"):
        res = trainer.fit()
    assert res.best_step == 0 and "the result is the untrained network" in caplog.text
    trainer = Trainer(
        *_denoising_setup(rng)[:2], get_loss("l2"), config=cfg.model_copy(update={"lr": 3e-3}),
        val_sampler=v, device="cpu",
    )  # fmt: skip
    caplog.clear()
    with caplog.at_level("WARNING", logger="cascope.training.trainer"):
        assert trainer.fit().best_step == 5 and not caplog.text
