import numpy as np
import pytest

from cascope.segment import choose_stack_denoiser, foreground_density, preprocess_volume
from cascope.simulate import axons


def test_density_rule_picks_bilateral_for_dense_and_bm4d_for_sparse():
    sparse = axons(seed=0, shape=(12, 64, 64), n_axons=1).clean
    dense = axons(seed=0, shape=(12, 64, 64), density="dense", radius=(3.0, 4.0)).clean
    assert foreground_density(sparse) < foreground_density(dense)
    thr = (foreground_density(sparse) + foreground_density(dense)) / 2
    assert choose_stack_denoiser(sparse, threshold=thr) == "bm4d"
    assert choose_stack_denoiser(dense, threshold=thr) == "bilateral"


def test_chain_keeps_dtype_denoises_and_removes_background():
    sim = axons(seed=1, shape=(12, 48, 48))
    before = sim.noisy.copy()
    out, info = preprocess_volume(
        sim.noisy, slice_denoiser="gaussian", stack="bilateral", tophat_radius=(2.0, 8.0, 8.0)
    )
    np.testing.assert_array_equal(sim.noisy, before)
    assert out.dtype == sim.noisy.dtype and out.shape == sim.noisy.shape
    assert info["stack"] == "bilateral"
    # background (offset + flat level) removed, structure kept: bright inside the axons
    inside, outside = out[sim.labels > 0].mean(), out[sim.labels == 0].mean()
    assert outside < 0.1 * (sim.noisy.mean())
    assert inside > 5 * outside
    # closer to the background-free clean volume than the raw data is
    clean = sim.clean - sim.background[0]
    err_out = np.abs(out.astype(float) - clean).mean()
    err_in = np.abs(sim.noisy.astype(float) - sim.background[0] - clean).mean()
    assert err_out < err_in


def test_reference_chain_bm3d_auto_on_real_stack(real_data):
    import tifffile

    pytest.importorskip("bm3d")
    pytest.importorskip("bm4d")
    vol = tifffile.imread(real_data / "rivulet_neuron_small_zyx.tif")[:8, :48, :48]
    out, info = preprocess_volume(vol)
    assert out.dtype == np.uint8 and out.shape == vol.shape
    assert info["slice_denoiser"] == "bm3d" and info["stack"] in ("bm4d", "bilateral")
    assert out.max() > 0


@pytest.mark.realdata
def test_field_density_calls_every_part_of_a_sparse_real_stack_sparse(real_data):
    import tifffile

    from cascope.segment import field_density

    # Arrange: the real sparse axon stack, its halves (lit unevenly), and a simulated dense field
    raw = tifffile.imread(real_data / "axons_less_intensive_left_raw_zyx.tif")
    parts = {"whole": raw, "top": raw[:, :512], "bottom": raw[:, 512:]}
    dense = axons(seed=3, shape=(24, 128, 128), density="dense").noisy
    # Act
    measured = {name: field_density(v) for name, v in parts.items()}
    # Assert: one measure for any crop of the real stack, far below the dense field's; the
    # reference chain therefore takes BM4D (sparse) for it
    assert max(measured.values()) < 0.1, measured
    assert max(measured.values()) - min(measured.values()) < 0.02, measured
    assert field_density(dense) > 0.15
    assert choose_stack_denoiser(parts["top"]) == "bm4d"
    assert choose_stack_denoiser(dense) == "bilateral"
