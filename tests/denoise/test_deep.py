import itertools

import numpy as np
import pytest
from scipy import ndimage as ndi

from cascope.config.denoise import DeepDenoiseConfig, DeepPredictConfig
from cascope.config.training import TrainingConfig
from cascope.denoise.deep import DeepDenoiser, denoise_deep, train_denoiser
from cascope.errors import InputError


def _scene(seed, shape=(32, 32, 32), noise=1.0):
    """Spatially smooth, temporally correlated signal with two independent noisy recordings."""
    rng = np.random.default_rng(seed)
    clean = ndi.gaussian_filter(rng.normal(size=shape), (3, 3, 3))
    clean = (clean / clean.std() + 10).astype(np.float32)
    a = (clean + noise * rng.normal(size=shape)).astype(np.float32)
    b = (clean + noise * rng.normal(size=shape)).astype(np.float32)
    return clean, a, b


# the gain over the noisy input a 60-step network must reach: the sweep over training seeds and
# CPU kernels (benchmarks/seed_sweep.py) measured 2.9-8.4 dB, so 2 dB holds for any trajectory
GAIN_DB = 2.0


def _psnr(x, ref):
    return 10 * np.log10(np.ptp(ref) ** 2 / np.mean((x - ref) ** 2))


def _config(method, steps=60, **training):
    return DeepDenoiseConfig(
        method=method,
        patch=(4, 16, 16),
        depth=2,
        base=4,
        mask_fraction=0.1,
        training=TrainingConfig(steps=steps, batch_size=4, lr=5e-3, val_every=20, **training),
    )


@pytest.mark.parametrize("method", ["deepcad", "n2v", "n2v3d", "n2n", "care"])
def test_every_strategy_brings_the_movie_closer_to_ground_truth(method, device):
    clean, noisy, second = _scene(0)
    targets = {"n2n": second, "care": clean}.get(method)
    model, result = train_denoiser(noisy, config=_config(method), targets=targets, device=device)
    out = model.predict(noisy, config=DeepPredictConfig(tile=(16, 32, 32)), device=device)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert _psnr(out, clean) > _psnr(noisy, clean) + GAIN_DB
    assert result.steps_done == 60 and result.val_losses
    # output in the input's units: normalisation was inverted
    assert abs(float(out.mean()) - float(clean.mean())) < 0.5


def test_saved_model_predicts_the_same_and_records_normalisation(tmp_path):
    clean, noisy, _ = _scene(1)
    model, _ = train_denoiser(noisy, config=_config("n2v", steps=5), device="cpu")
    model.save(tmp_path / "m")
    loaded = DeepDenoiser.load(tmp_path / "m")
    assert loaded.input_norm == pytest.approx(model.input_norm)
    assert loaded.config.method == "n2v" and loaded.provenance["steps"] == 5
    a = model.predict(noisy[:4], device="cpu")
    b = denoise_deep(noisy[:4], model=tmp_path / "m", device="cpu")
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_integer_output_is_rounded_not_truncated():
    clean, noisy, _ = _scene(2)
    counts = np.clip(np.rint(noisy * 10), 0, None).astype(np.uint16)
    model, _ = train_denoiser(counts, config=_config("n2v", steps=3), device="cpu")
    as_float = model.predict(counts, device="cpu")
    as_int = model.predict(counts, config=DeepPredictConfig(dtype="same"), device="cpu")
    assert as_int.dtype == np.uint16
    np.testing.assert_array_equal(as_int, np.clip(np.rint(as_float), 0, 65535))


def test_streamed_blocks_match_one_block(device):
    _, noisy, _ = _scene(3)
    model, _ = train_denoiser(noisy, config=_config("deepcad", steps=3), device=device)
    one = model.predict(noisy, config=DeepPredictConfig(tile=(8, 32, 32), block=64), device=device)
    many = model.predict(noisy, config=DeepPredictConfig(tile=(8, 32, 32), block=5), device=device)
    assert np.abs(one - many).max() < 0.1 * noisy.std()


@pytest.mark.parametrize(("method", "axes"), [("deepcad", (0, 1, 2)), ("n2v", (1, 2))])
def test_tta_averages_the_flips_so_flipping_the_input_flips_the_output(method, axes):
    clean, noisy, _ = _scene(4)
    model, _ = train_denoiser(noisy, config=_config(method), device="cpu")
    # the flips are averaged in the network's output; a response curve (a monotone map after
    # the average, measured by the intensity calibration) would bend the mean of the flips
    model.output_curve = None
    whole = (32, 32, 32)  # one tile: the flips of the tile are the flips of the movie
    plain = DeepPredictConfig(tile=whole, overlap=0)
    tta = plain.model_copy(update={"tta": True})
    out = model.predict(noisy, config=tta, device="cpu")
    for flip in [(a,) for a in axes]:
        again = np.flip(model.predict(np.flip(noisy, flip).copy(), config=tta, device="cpu"), flip)
        np.testing.assert_allclose(again, out, atol=1e-4)
    # the mean over all flips of the plain prediction, computed by hand
    combos = [c for r in range(len(axes) + 1) for c in itertools.combinations(axes, r)]
    by_hand = np.mean(
        [
            np.flip(model.predict(np.flip(noisy, f).copy(), config=plain, device="cpu"), f)
            for f in combos
        ],
        axis=0,
    )
    np.testing.assert_allclose(out, by_hand, atol=1e-4)
    single = model.predict(noisy, config=plain, device="cpu")
    assert np.abs(single - out).max() > 1e-3  # the network alone is not flip-invariant
    assert _psnr(out, clean) > _psnr(noisy, clean) + GAIN_DB


@pytest.mark.gpu
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_cuda_training_in_reduced_precision_denoises_and_records_it(cuda, amp):
    clean, noisy, _ = _scene(0)
    model, result = train_denoiser(noisy, config=_config("deepcad", amp=amp), device=cuda)
    assert np.isfinite(result.losses).all() and result.float32_steps == []
    assert model.provenance["precision"] == {"bf16": "bfloat16", "fp16": "float16"}[amp]
    out = model.predict(noisy, config=DeepPredictConfig(tile=(16, 32, 32), amp=amp), device=cuda)
    assert _psnr(out, clean) > _psnr(noisy, clean) + GAIN_DB


@pytest.mark.gpu
def test_cuda_compiled_network_trains_and_predicts_as_the_eager_one(cuda):
    clean, noisy, _ = _scene(0)
    model, result = train_denoiser(noisy, config=_config("deepcad", compile=True), device=cuda)
    assert np.isfinite(result.losses).all()
    eager = DeepPredictConfig(tile=(16, 32, 32))
    compiled = eager.model_copy(update={"compile": True})
    a = model.predict(noisy, config=eager, device=cuda)
    b = model.predict(noisy, config=compiled, device=cuda)
    # both in bfloat16: they differ by rounding only
    assert np.abs(a - b).max() < 1e-2 * np.abs(a).max()
    assert _psnr(b, clean) > _psnr(noisy, clean) + GAIN_DB


def test_paired_methods_need_targets_and_matching_shapes():
    _, noisy, second = _scene(4)
    with pytest.raises(InputError, match="targets"):
        train_denoiser(noisy, config=_config("care"), device="cpu")
    with pytest.raises(InputError, match="shape"):
        train_denoiser(noisy, config=_config("n2n"), targets=second[:-1], device="cpu")
    with pytest.raises(InputError, match="takes no targets"):
        train_denoiser(noisy, config=_config("n2v"), targets=second, device="cpu")


def test_deepcad_refuses_a_volume():
    _, noisy, _ = _scene(5)
    with pytest.raises(InputError, match="T axis"):
        train_denoiser(noisy, config=_config("deepcad"), axes="ZYX", device="cpu")


def test_cli_train_kill_resume_and_denoise(tmp_path, caplog):
    tifffile = pytest.importorskip("tifffile")
    from typer.testing import CliRunner

    from cascope.cli import app

    clean, noisy, _ = _scene(6)
    src = tmp_path / "noisy.tif"
    tifffile.imwrite(src, noisy)
    args = [
        "train",
        "denoiser",
        str(src),
        "--method",
        "n2v3d",
        "--steps",
        "8",
        "--patch",
        "4",
        "16",
        "16",
        "--depth",
        "2",
        "--base",
        "4",
        "--checkpoint-every",
        "4",
        "--device",
        "cpu",
    ]
    runner = CliRunner()
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    # the run checkpointed its last step; --resume from it has nothing left to do
    ckpt = tmp_path / "a.ckpt" / "last.pt"
    import torch

    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 8 and len(state["losses"]) == 8
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "a"), "--resume", "--force"])
    assert res.exit_code == 0, res.output
    assert "for 8 steps" in " ".join(res.output.split())
    # a finished run goes on with more steps, from its checkpoint, as the message says
    assert "a.ckpt continues it with --resume" in " ".join(res.output.split())
    more = [*args[:6], "12", *args[7:], "-o", str(tmp_path / "a"), "--resume", "--force"]
    with caplog.at_level("WARNING", logger="cascope.training.trainer"):
        res = runner.invoke(app, more)
    assert res.exit_code == 0 and "for 12 steps" in " ".join(res.output.split()), res.output
    assert "differ" not in caplog.text  # only the step count (and with it val_every) changed
    longer = torch.load(ckpt, weights_only=True)
    assert longer["step"] == 12 and longer["losses"][:8] == state["losses"]
    out = tmp_path / "out.tif"
    res = runner.invoke(
        app,
        [
            "denoise",
            str(src),
            "-o",
            str(out),
            "--model",
            str(tmp_path / "a"),
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    written = tifffile.imread(out)
    assert written.shape == noisy.shape and written.dtype == np.float32
    # reading and writing one block after the other gives the same file as in the background
    in_blocks = {}
    for name, extra in (("b.tif", []), ("s.tif", ["--serial-io"])):
        cmd = ["denoise", str(src), "-o", str(tmp_path / name), "--model", str(tmp_path / "a")]
        res = runner.invoke(app, [*cmd, *extra, "--block", "7", "--device", "cpu"])
        assert res.exit_code == 0, res.output
        in_blocks[name] = tifffile.imread(tmp_path / name)
    np.testing.assert_array_equal(in_blocks["s.tif"], in_blocks["b.tif"])
    res = runner.invoke(
        app,
        ["denoise", str(src), "-o", str(tmp_path / "tta.tif"), "--model", str(tmp_path / "a")]
        + ["--tta", "--device", "cpu"],
    )
    assert res.exit_code == 0, res.output
    model = DeepDenoiser.load(tmp_path / "a")
    assert (model.config.training.lr, model.config.training.grad_clip) == (1e-3, None)
    expected = model.predict(noisy, config=DeepPredictConfig(tta=True, block=64), device="cpu")
    np.testing.assert_allclose(tifffile.imread(tmp_path / "tta.tif"), expected, atol=1e-4)
    assert np.abs(expected - written).max() > 1e-3
    # tiles and batches of the user's choice (a GPU wants larger ones) reach the prediction
    tiled = ["--tile", "8", "16", "16", "--batch-size", "3", "--compile", "--blend-on", "device"]
    res = runner.invoke(
        app,
        ["denoise", str(src), "-o", str(tmp_path / "t.tif"), "--model", str(tmp_path / "a")]
        + [*tiled, "--device", "cpu"],
    )
    assert res.exit_code == 0, res.output
    cfg = DeepPredictConfig(tile=(8, 16, 16), batch_size=3, block=64, blend_on="device")
    expected = model.predict(noisy, config=cfg, device="cpu")
    np.testing.assert_allclose(tifffile.imread(tmp_path / "t.tif"), expected, atol=1e-5)
    assert np.abs(expected - written).max() > 1e-3  # the tile changed what the network saw
    for extra in (["--tta"], tiled):
        res = runner.invoke(app, ["denoise", str(src), "-o", str(tmp_path / "g.tif"), *extra])
        assert res.exit_code != 0 and "for networks only" in str(res.exception)
        assert extra[0] in str(res.exception) and not (tmp_path / "g.tif").exists()


def test_cli_amp_sets_the_precision_of_training_and_prediction(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    from typer.testing import CliRunner

    from cascope.cli import app

    _, noisy, _ = _scene(7)
    src = tmp_path / "noisy.tif"
    tifffile.imwrite(src, noisy)
    train = ["train", "denoiser", str(src), "--method", "deepcad", "--steps", "3", "--patch"]
    train += ["8", "16", "16", "--depth", "2", "--base", "4", "--device", "cpu"]
    runner = CliRunner()
    for amp, precision in (("off", "float32"), ("bf16", "bfloat16")):
        res = runner.invoke(app, [*train, "--amp", amp, "-o", str(tmp_path / amp)])
        assert res.exit_code == 0, res.output
        assert DeepDenoiser.load(tmp_path / amp).provenance["precision"] == precision
    outs = {}
    for amp in ("off", "bf16"):
        outs[amp] = tmp_path / f"{amp}.tif"
        res = runner.invoke(
            app,
            ["denoise", str(src), "-o", str(outs[amp]), "--model", str(tmp_path / "off")]
            + ["--amp", amp, "--device", "cpu"],
        )
        assert res.exit_code == 0, res.output
    full, half = tifffile.imread(outs["off"]), tifffile.imread(outs["bf16"])
    assert not np.array_equal(full, half) and np.abs(full - half).max() < 2e-3 * np.abs(full).max()
    res = runner.invoke(app, [*train, "--amp", "fp8", "-o", str(tmp_path / "bad")])
    assert "training.amp" in str(res.exception) and not (tmp_path / "bad").exists()


def test_training_options_given_in_part_keep_the_denoising_defaults():
    from cascope.config.denoise import DENOISE_TRAINING

    cfg = DeepDenoiseConfig.model_validate({"method": "n2v", "training": {"lr": 5e-4}})
    assert cfg.training.lr == 5e-4
    assert cfg.training.divergence == DENOISE_TRAINING["divergence"] != TrainingConfig().divergence
    assert cfg.training.steps == DENOISE_TRAINING["steps"]
    assert cfg.training.batch_size == DENOISE_TRAINING["batch_size"]
    assert DeepDenoiseConfig().training == DeepDenoiseConfig(training={}).training
    explicit = TrainingConfig(steps=3)  # a whole TrainingConfig is taken as it is
    assert DeepDenoiseConfig(training=explicit).training == explicit
