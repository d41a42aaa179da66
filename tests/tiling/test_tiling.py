import threading

import numpy as np
import pytest
import torch

from cascope.io import open_writer
from cascope.models import UNet
from cascope.tiling import (
    ArrayWriter,
    blend_weights,
    cover,
    predict_streamed,
    predict_streamed_on_device,
    predict_tiled,
    predict_tiled_tensor,
    tile_starts,
    torch_predictor,
)


@pytest.mark.parametrize(
    ("size", "tile", "overlap"), [(10, 4, 1), (101, 32, 8), (5, 8, 2), (33, 32, 0)]
)
def test_tiles_cover_with_the_requested_overlap(size, tile, overlap):
    starts = tile_starts(size, tile, overlap)
    t = min(tile, size)
    assert starts[0] == 0 and starts[-1] + t == size
    gaps = np.diff(starts)
    assert (t - gaps >= min(overlap, t - 1)).all()


def test_cover_counts():
    tiles = cover((10, 20), (4, 8), (1, 2))
    assert len(tiles) == 3 * 3
    hit = np.zeros((10, 20), int)
    for t in tiles:
        hit[t] += 1
    assert hit.min() >= 1


@pytest.mark.parametrize("mode", ["gaussian", "linear", "constant"])
def test_blend_weights_are_positive_and_peak_in_the_middle(mode):
    w = blend_weights((9, 9), mode)
    assert w.min() > 0 and w[4, 4] == w.max() == 1


def test_identity_is_reproduced_exactly_for_any_shape(rng):
    x = rng.normal(size=(37, 101, 53)).astype(np.float32)
    out = predict_tiled(lambda b: b, x, tile=(16, 32, 32), overlap=(4, 8, 8), batch_size=3)
    np.testing.assert_allclose(out, x, rtol=1e-5, atol=1e-5)


@pytest.fixture
def net():
    torch.manual_seed(0)
    model = UNet(1, 1, ndim=3, depth=3, base=4)
    # give the batch-norm layers non-trivial running statistics, as after training
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 1, 8, 16, 16) + 5)
    return model.eval()


def test_tiled_equals_untiled_away_from_borders(net, rng):
    x = (5 + rng.normal(size=(37, 101, 53))).astype(np.float32)
    predict = torch_predictor(net)
    whole = predict(x[None, None])[0, 0]
    tiled = predict_tiled(predict, x, tile=(16, 32, 32), overlap=(8, 16, 16), batch_size=4)
    assert tiled.shape == x.shape
    inner = (slice(6, -6),) * 3
    scale = np.abs(whole).mean()
    assert np.abs(tiled - whole)[inner].max() < 0.02 * scale


def _seam(tiled, whole):
    """Largest deviation of any plane's mean from the untiled prediction (a seam is a plane)."""
    dev = 0.0
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        dev = max(dev, float(np.abs(tiled.mean(axis=others) - whole.mean(axis=others)).max()))
    return dev


def test_no_seam_on_constant_plus_noise(net, rng):
    x = (5 + 0.1 * rng.normal(size=(32, 96, 96))).astype(np.float32)
    predict = torch_predictor(net)
    whole = predict(x[None, None])[0, 0]
    kw = {"tile": (16, 32, 32), "overlap": (4, 8, 8)}
    gaussian = _seam(predict_tiled(predict, x, blend="gaussian", **kw), whole)
    averaged = _seam(predict_tiled(predict, x, blend="constant", **kw), whole)
    # plain averaging of tiles leaves visible planes; Gaussian blending must not
    assert gaussian < 0.2 * averaged
    assert gaussian < 0.01 * np.abs(whole).mean()


def test_streamed_prediction_matches_in_memory(net, rng, tmp_path):
    x = (5 + rng.normal(size=(30, 40, 36))).astype(np.float32)
    predict = torch_predictor(net)
    tile, overlap = (16, 32, 32), (8, 16, 16)
    ref = predict_tiled(predict, x, tile=tile, overlap=overlap)
    np.save(tmp_path / "in.npy", x)
    lazy = np.load(tmp_path / "in.npy", mmap_mode="r")
    out = np.lib.format.open_memmap(tmp_path / "out.npy", "w+", np.float32, x.shape)
    predict_streamed(predict, lazy, ArrayWriter(out), tile=tile, overlap=overlap, block=7, halo=8)
    out.flush()
    inner = (slice(2, -2),) * 3
    assert np.abs(out - ref)[inner].max() < 0.03 * np.abs(ref).mean()


def test_streamed_tiff_output(rng, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    x = rng.normal(size=(11, 9, 10)).astype(np.float32)
    with open_writer(tmp_path / "o.tif", x.shape, np.float32, axes="TYX") as w:
        predict_streamed(lambda b: -b, x, w, tile=(4, 9, 10), block=3, halo=1, background_io=True)
    np.testing.assert_allclose(tifffile.imread(tmp_path / "o.tif"), -x, atol=1e-6)


class _Counted(torch.nn.Module):
    """Negation that counts its calls and signals when the ``n``-th call starts."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.ndim, self.calls, self.reached = 3, 0, threading.Event()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls >= self.n:
            self.reached.set()
        return -x


class _WaitsForNextBlock(ArrayWriter):
    """Writes the first block only once the network has started on the second one."""

    def __init__(self, target, net: _Counted, wait_s: float) -> None:
        super().__init__(target)
        self.net, self.wait_s, self.overlapped = net, wait_s, None

    def write(self, block, start):
        if start == 0:
            self.overlapped = self.net.reached.wait(self.wait_s)
        super().write(block, start)


@pytest.mark.parametrize("on_device", [False, True])
def test_writing_a_block_overlaps_computing_the_next(rng, device, on_device):
    x = rng.normal(size=(12, 16, 16)).astype(np.float32)
    results = {}
    for background_io in (True, False):
        net = _Counted(n=2)  # one network call per block: the 2nd call starts block 2
        predictor = torch_predictor(net, device=device, amp="off", channels_last=False)
        out = np.zeros_like(x)
        # without overlap, the first write would wait forever: give up after a short while
        writer = _WaitsForNextBlock(out, net, wait_s=60 if background_io else 0.5)
        stream = predict_streamed_on_device if on_device else predict_streamed
        stream(
            predictor,
            x,
            writer,
            tile=(4, 16, 16),
            block=4,
            halo=0,
            batch_size=1,
            background_io=background_io,
        )
        assert net.calls == 3
        results[background_io] = (writer.overlapped, out)
    assert results[True][0] is True  # block 1 was written while block 2 was computed
    assert results[False][0] is False  # in order, one after the other
    for _, out in results.values():
        np.testing.assert_allclose(out, -x, rtol=1e-6, atol=1e-6)


class _FailsAt(ArrayWriter):
    def __init__(self, target, start: int) -> None:
        super().__init__(target)
        self.fail_at, self.starts = start, []

    def write(self, block, start):
        self.starts.append(start)
        if start == self.fail_at:
            raise OSError("disk full")
        super().write(block, start)


@pytest.mark.parametrize("background_io", [True, False])
def test_a_failed_write_stops_the_stream_with_its_error(rng, background_io):
    x = rng.normal(size=(20, 8, 8)).astype(np.float32)
    calls = []

    def predict(batch):
        calls.append(1)
        return -batch

    writer = _FailsAt(np.zeros_like(x), start=4)
    with pytest.raises(OSError, match="disk full"):
        predict_streamed(
            predict,
            x,
            writer,
            tile=(4, 8, 8),
            block=4,
            halo=0,
            batch_size=1,
            background_io=background_io,
        )
    assert writer.starts == [0, 4]  # nothing is written after the failure
    assert len(calls) <= 3  # at most one more block was computed before the error surfaced
    assert not [t for t in threading.enumerate() if t.name == "cascope-writer"]


def test_2d_network_predicts_each_frame(rng):
    torch.manual_seed(0)
    net2d = UNet(1, 1, ndim=2, depth=2, base=4).eval()
    x = rng.normal(size=(6, 40, 40)).astype(np.float32)
    tiled = predict_tiled(torch_predictor(net2d, amp="off"), x, tile=(1, 40, 40))
    with torch.no_grad():
        ref = net2d(torch.from_numpy(x[:, None]))[:, 0].numpy()
    np.testing.assert_allclose(tiled, ref, atol=1e-5)


def test_bf16_prediction_is_close_to_float32(rng, device):
    torch.manual_seed(0)
    net = UNet(1, 1, ndim=3, depth=3, base=8).eval()
    x = rng.normal(size=(12, 40, 36)).astype(np.float32)
    full = predict_tiled(torch_predictor(net, device=device, amp="off"), x, tile=(8, 32, 32))
    half = predict_tiled(torch_predictor(net, device=device, amp="bf16"), x, tile=(8, 32, 32))
    assert not np.array_equal(half, full)  # it did compute in bfloat16
    # within half of bfloat16's own rounding (0.4 %): the output layer computes in float32
    assert np.abs(half - full).max() < 2e-3 * np.abs(full).max()


def test_tensor_tiling_on_the_device_equals_numpy_tiling(rng, device):
    torch.manual_seed(0)
    predictor = torch_predictor(UNet(1, 1, ndim=3, depth=2, base=4), device=device, amp="off")
    x = rng.normal(size=(37, 101, 53)).astype(np.float32)
    on_host = predict_tiled(predictor, x, tile=(16, 32, 32), batch_size=3)
    tensor = torch.from_numpy(x)[None].to(predictor.device)
    on_device = predict_tiled_tensor(predictor.tensors, tensor, tile=(16, 32, 32), batch_size=3)
    assert on_device.device == predictor.device and on_device.shape == (1, *x.shape)
    np.testing.assert_allclose(on_device[0].cpu().numpy(), on_host, rtol=1e-6, atol=1e-6)
