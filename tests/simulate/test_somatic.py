import numpy as np
import pytest

from cascope.errors import InputError
from cascope.simulate import SomaticParams, somatic
from cascope.simulate._common import indicator_response


@pytest.fixture(scope="module")
def sim():
    return somatic(seed=7, n_frames=400, shape=(96, 96), spike_rate=1.0)


def test_same_seed_identical_different_seed_differs():
    a = somatic(seed=1, n_frames=30, shape=(48, 48))
    b = somatic(SomaticParams(seed=1, n_frames=30, shape=(48, 48)))
    c = somatic(seed=2, n_frames=30, shape=(48, 48))
    np.testing.assert_array_equal(a.noisy, b.noisy)
    np.testing.assert_array_equal(a.clean, b.clean)
    np.testing.assert_array_equal(a.dff, b.dff)
    assert not np.array_equal(a.noisy, c.noisy)
    assert not np.array_equal(a.footprints.sum(0), c.footprints.sum(0))


def test_shapes_dtypes_and_axes(sim):
    n = len(sim.centers)
    assert n > 10
    assert sim.noisy.shape == sim.clean.shape == (400, 96, 96)
    assert sim.noisy.dtype == np.uint16 and sim.clean.dtype == np.float32
    assert sim.footprints.shape == (n, 96, 96) and sim.dff.shape == (n, 400)
    assert len(sim.spikes) == n and sim.axes == "TYX" and sim.frame_rate == 30.0
    np.testing.assert_allclose(sim.footprints.max(axis=(1, 2)), 1.0)


def test_footprints_are_rings_with_dim_nucleus(sim):
    centre_vals = []
    for (cy, cx), fp in zip(sim.centers, sim.footprints, strict=True):
        centre_vals.append(fp[int(round(cy)), int(round(cx))])
    assert np.median(centre_vals) < 0.7


def test_indicator_kernel_rise_and_decay():
    spikes = np.zeros(200)
    spikes[10] = 1
    rise, decay = 1.5, 12.0  # 50 ms, 400 ms at 30 Hz
    k = indicator_response(spikes, rise_frames=rise, decay_frames=decay)
    assert k.max() == pytest.approx(1.0)
    assert np.all(k[:10] == 0)
    peak = int(np.argmax(k))
    assert 10 <= peak <= 15
    tail = k[peak + 20 : peak + 60]
    np.testing.assert_allclose(tail[1:] / tail[:-1], np.exp(-1 / decay), rtol=1e-3)


def test_dff_is_spikes_through_the_kernel(sim):
    p = sim.params
    rise, decay = p.rise_time * p.frame_rate, p.decay_time * p.frame_rate
    n = np.arange(200) + 0.5
    kernel = np.exp(-n / decay) - np.exp(-n / rise)
    kernel /= kernel.max()
    for i, spk in enumerate(sim.spikes):
        counts = np.bincount(spk, minlength=p.n_frames).astype(float)
        expected = np.convolve(counts, kernel)[: p.n_frames]
        if counts.sum() == 0:
            assert np.all(sim.dff[i] == 0)
            continue
        amp = sim.dff[i].max() / expected.max()
        assert 0.7 * p.spike_dff <= amp <= 1.3 * p.spike_dff
        np.testing.assert_allclose(sim.dff[i], amp * expected, atol=1e-4 * amp * expected.max())


def test_clean_movie_carries_the_traces(sim):
    # an independent extraction: footprint-weighted mean over the pixels each cell dominates
    cam = sim.params.camera
    photons = (sim.clean - cam.offset) / cam.gain
    owner = np.argmax(sim.footprints, axis=0)
    corrs = []
    for i, fp in enumerate(sim.footprints):
        if len(sim.spikes[i]) < 2:
            continue
        w = fp * (owner == i) * (fp > 0.5)
        trace = np.tensordot(photons, w, axes=([1, 2], [0, 1]))
        corrs.append(np.corrcoef(trace, sim.dff[i])[0, 1])
    assert len(corrs) >= 5
    assert np.median(corrs) > 0.9


def test_photons_set_the_snr():
    lo = somatic(seed=0, n_frames=50, shape=(48, 48), photons=3.0)
    hi = somatic(seed=0, n_frames=50, shape=(48, 48), photons=60.0)

    def rel_noise(s):
        signal = s.clean - s.params.camera.offset
        return np.std(s.noisy - s.clean) / signal.mean()

    assert rel_noise(hi) < rel_noise(lo) / 3


def test_bleaching_lowers_the_last_frames():
    s = somatic(seed=0, n_frames=100, shape=(48, 48), bleaching=0.5)
    off = s.params.camera.offset
    ratio = (s.clean[-1].mean() - off) / (s.clean[0].mean() - off)
    assert 0.4 < ratio < 0.6


def test_invalid_parameters_raise_input_error():
    with pytest.raises(InputError, match="rise_time"):
        somatic(rise_time=1.0, decay_time=0.5)
    with pytest.raises(InputError, match="n_frames"):
        somatic(n_frames=0)
    with pytest.raises(InputError, match="typo"):
        somatic(typo=1)
