import numpy as np
import pytest
import torch

from cascope.config.segment import SegmenterConfig
from cascope.models import VGGUNet, count_parameters, load_model
from cascope.segment import (
    as_semantic,
    class_scores,
    dice_focal_loss,
    gap_weights,
    instances_to_semantic,
    label_volume,
    predict_semantic,
    segment_volume,
    train_segmenter,
)
from cascope.simulate import axons


@pytest.fixture(scope="module")
def volumes():
    return axons(seed=1, shape=(16, 64, 64)), axons(seed=2, shape=(16, 64, 64))


def test_dice_focal_prefers_the_right_classes():
    target = torch.randint(0, 3, (2, 1, 4, 8, 8)).float()
    good = torch.nn.functional.one_hot(target[:, 0].long(), 3).movedim(-1, 1).float() * 10
    bad = torch.roll(good, 1, dims=1)
    loss = dice_focal_loss((0.2, 1.0, 2.0))
    assert loss(good, target, None) < 0.05 < loss(bad, target, None)


def test_label_kind_told_apart():
    inst = np.zeros((4, 10, 10), np.int32)
    inst[1:3, 2:8, 1:4] = 3
    inst[1:3, 2:8, 5:9] = 7
    sem = as_semantic(inst)
    np.testing.assert_array_equal(sem, instances_to_semantic(inst))
    np.testing.assert_array_equal(as_semantic(sem), sem)
    np.testing.assert_array_equal(
        as_semantic(inst > 0, kind="instance"), instances_to_semantic(inst > 0)
    )


def test_gap_weights_stress_the_background_between_close_instances():
    # Arrange: two ribbons 2 voxels apart, a third 6 voxels below the second
    lab = np.zeros((1, 40, 30), np.int32)
    lab[0, 2:8, 2:28] = 1
    lab[0, 10:16, 2:28] = 2
    lab[0, 22:28, 2:28] = 3
    # Act
    w = gap_weights(lab, weight=10, sigma=5)
    # Assert: the narrow gap weighs most, the wide gap less, the far side of a ribbon and every
    # labelled voxel 1; no weight means all ones
    narrow, wide = w[0, 8:10, 15], w[0, 16:22, 15]
    assert narrow.min() > wide.max() > 1
    assert w[0, 36:, 15].max() == 1 and (w[lab > 0] == 1).all()
    assert (gap_weights(lab, weight=0) == 1).all()


def test_tiny_model_beats_threshold_on_a_second_volume(volumes, tmp_path, device):
    train, test = volumes
    cfg = SegmenterConfig.model_validate(
        {
            "arch": "unet",
            "depth": 2,
            "base": 8,
            "patch": (16, 32, 32),
            "semantic": {"planes": "all"},
            "augment": {"elastic": 0.0},
            "training": {"steps": 200, "batch_size": 2, "lr": 3e-3, "checkpoint_every": 1000},
        }
    )
    model, result = train_segmenter(
        [train.noisy], [train.labels], config=cfg, output=tmp_path / "model", device=device
    )
    assert np.mean(result.losses[-20:]) < np.mean(result.losses[:20])
    pred = predict_semantic(model, test.noisy, tile=(16, 32, 32), device=device)
    thr_labels = label_volume(test.noisy, method="otsu", min_size=1)
    thr_sem = instances_to_semantic(thr_labels, planes="all")
    # axons (axon + border classes) against background: the network's PSF-aware boundary beats
    # the threshold's. The gain depends on the training trajectory, which differs between CPUs
    # (SIMD kernels) and thread counts: 0.092-0.262 over seeds x ATEN_CPU_CAPABILITY
    # (benchmarks/results/seed_sweep.md), so the margin is set below that
    net_axon = class_scores(test.labels > 0, pred > 0, n_classes=2).f1[1]
    thr_axon = class_scores(test.labels > 0, thr_labels > 0, n_classes=2).f1[1]
    assert net_axon > thr_axon + 0.05
    assert class_scores(test.semantic, pred).f1[0] > class_scores(test.semantic, thr_sem).f1[0]
    # the saved folder reproduces the prediction and gives instances
    loaded, doc = load_model(tmp_path / "model")
    assert doc["task"] == "segmentation"
    inst, sem = segment_volume(tmp_path / "model", test.noisy, tile=(16, 32, 32), device=device)
    np.testing.assert_array_equal(sem, pred)
    assert inst.max() >= 1


def test_cli_train_and_segment(volumes, tmp_path):
    from typer.testing import CliRunner

    from cascope.cli import app
    from cascope.io import write

    train, test = volumes
    write(tmp_path / "img.tif", train.noisy, axes="ZYX")
    write(tmp_path / "lab.tif", train.labels, axes="ZYX")
    write(tmp_path / "test.tif", test.noisy, axes="ZYX")
    runner = CliRunner()
    args = [
        "train",
        "segmenter",
        str(tmp_path / "img.tif"),
        "--labels",
        str(tmp_path / "lab.tif"),
        "--arch",
        "vgg16-unet",
        "-o",
        str(tmp_path / "m"),
        "--steps",
        "3",
        "--patch",
        "8",
        "32",
        "32",
        "--device",
        "cpu",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [
            "segment",
            str(tmp_path / "test.tif"),
            "--model",
            str(tmp_path / "m"),
            "-o",
            str(tmp_path / "inst.tif"),
            "--semantic-out",
            str(tmp_path / "sem.tif"),
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    import tifffile

    sem = tifffile.imread(tmp_path / "sem.tif")
    assert sem.shape == test.noisy.shape and sem.max() <= 2


def test_vgg16_unet_full_width_matches_vgg16_conv_stack():
    net = VGGUNet(1, 3)
    convs = [m for m in net.encoders.modules() if isinstance(m, torch.nn.Conv3d)]
    assert [c.out_channels for c in convs] == [64] * 2 + [128] * 2 + [256] * 3 + [512] * 6
    small = VGGUNet(1, 3, width=1 / 16, blocks=3)
    assert small(torch.zeros(1, 1, 7, 13, 10)).shape == (1, 3, 7, 13, 10)
    assert count_parameters(small) < count_parameters(net) / 100


def test_same_seed_same_model(volumes):
    train, _ = volumes
    cfg = SegmenterConfig.model_validate(
        {
            "depth": 2,
            "base": 4,
            "patch": (8, 16, 16),
            "augment": {"elastic": 0.0},
            "training": {"steps": 3, "batch_size": 1, "checkpoint_every": 1000},
        }
    )

    def weights():
        model, result = train_segmenter([train.noisy], [train.labels], config=cfg, device="cpu")
        torch.manual_seed(12345)  # what ran before must not matter: draw between the runs
        return [p.detach().clone() for p in model.parameters()], result.losses

    (w1, l1), (w2, l2) = weights(), weights()
    assert l1 == l2
    assert all(torch.equal(a, b) for a, b in zip(w1, w2, strict=True))


def test_a_nan_plane_is_refused_not_segmented_as_background(volumes):
    from cascope.errors import InputError
    from cascope.segment import preprocess_volume

    vol = volumes[0].noisy.astype(np.float32)
    vol[5, 10, 10] = np.nan  # would make the percentiles, and every probability, NaN
    net = VGGUNet(1, 3, width=1 / 16, blocks=3)
    for call in (
        lambda: predict_semantic(net, vol, tile=(16, 32, 32)),
        lambda: preprocess_volume(vol),
    ):
        with pytest.raises(InputError, match=r"in Z 5$"):
            call()
