import contextlib

import numpy as np
import pytest
import torch

from cascope.models import UNet, count_parameters, export_onnx, load_model, save_model
from cascope.models.unet import pad_to_multiple


@pytest.mark.parametrize(
    ("ndim", "shape"), [(3, (37, 101, 53)), (3, (1, 3, 2)), (2, (101, 53)), (2, (5, 7))]
)
def test_any_shape_is_predicted_at_its_own_size(ndim, shape):
    net = UNet(1, 2, ndim=ndim, depth=3, base=4).eval()
    with torch.no_grad():
        y = net(torch.zeros(1, 1, *shape))
    assert y.shape == (1, 2, *shape)


def test_default_temporal_model_has_the_deepcad_budget():
    n = count_parameters(UNet(1, 1, ndim=3, depth=4, base=16))
    assert 0.9e6 < n < 1.1e6


def test_pad_to_multiple_round_trips():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(1, 2, 3, 5, 7)
    padded, crop = pad_to_multiple(x, 4)
    assert all(s % 4 == 0 for s in padded.shape[2:])
    assert torch.equal(padded[crop], x)


def test_n2v2_options_build_and_run():
    net = UNet(1, 1, ndim=2, depth=3, base=4, pool="blur", top_skip=False).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 1, 20, 24)).shape == (2, 1, 20, 24)


def test_residual_needs_matching_channels():
    with pytest.raises(ValueError, match="residual"):
        UNet(1, 2, residual=True)


def test_model_folder_round_trip(tmp_path):
    torch.manual_seed(0)
    net = UNet(2, 3, ndim=3, depth=2, base=4, norm="batch").eval()
    save_model(tmp_path / "m", net, extra={"strategy": "care", "patch": (4, 8, 8)})
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert names == ["model.yaml", "weights.safetensors"]
    loaded, cfg = load_model(tmp_path / "m")
    assert cfg["strategy"] == "care" and cfg["patch"] == [4, 8, 8]
    x = torch.randn(1, 2, 6, 10, 12)
    with torch.no_grad():
        assert torch.allclose(net(x), loaded(x))


def test_load_rejects_a_folder_without_config(tmp_path):
    from cascope.errors import InputError

    with pytest.raises(InputError, match="model folder"):
        load_model(tmp_path)


def test_yaml_with_python_tags_is_not_executed(tmp_path):
    from cascope.errors import InputError

    net = UNet(1, 1, ndim=2, depth=2, base=4)
    save_model(tmp_path / "m", net)
    cfg = tmp_path / "m" / "model.yaml"
    cfg.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(InputError, match="YAML"):
        load_model(tmp_path / "m")


def test_onnx_export_is_valid_with_dynamic_axes(tmp_path):
    onnx = pytest.importorskip("onnx")
    net = UNet(1, 1, ndim=2, depth=2, base=4).eval()
    path = export_onnx(net, tmp_path / "m.onnx", example_shape=(1, 1, 16, 16))
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["input"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[2].dim_param  # dynamic batch and sizes


def test_onnx_runtime_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    net = UNet(1, 1, ndim=2, depth=2, base=4).eval()
    path = export_onnx(net, tmp_path / "m.onnx", example_shape=(1, 1, 16, 16))
    sess = ort.InferenceSession(str(path))
    x = np.random.default_rng(0).normal(size=(2, 1, 16, 16)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], ref, atol=1e-4)


def _weight_grads(net, x, bf16):
    net.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = net(x)
    (y.float() ** 2).mean().backward()
    return torch.cat([p.grad.flatten() for p in net.parameters()])


def test_cpu_bf16_training_never_meets_the_faulty_depth():
    from cascope.models.unet import float32_where_bf16_faults

    torch.manual_seed(0)
    net = UNet(1, 1, ndim=3, depth=2, base=4, norm="none")
    # depth 4 -> levels 4 and 2: a level two planes deep, so the pass runs in float32
    x = torch.randn(2, 1, 4, 16, 16)
    torch.testing.assert_close(_weight_grads(net, x, True), _weight_grads(net, x, False))
    # depth 8 -> levels 8 and 4: bfloat16, close to float32 but not equal
    x = torch.randn(2, 1, 8, 16, 16)
    half, full = _weight_grads(net, x, True), _weight_grads(net, x, False)
    assert not torch.equal(half, full) and (half - full).norm() < 0.1 * full.norm()
    # without gradients (prediction) the faulty depth is fine in bfloat16
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        guard = float32_where_bf16_faults(torch.zeros(1, 1, 4, 8, 8), 2)
    assert isinstance(guard, contextlib.nullcontext)
