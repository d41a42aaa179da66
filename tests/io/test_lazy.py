from __future__ import annotations

import numpy as np
import pytest

from cascope.io._lazy import Calibrated, FrameSequence, Indexed, MappedFile

KEYS = [
    (),
    Ellipsis,
    3,
    -1,
    slice(2, 9),
    slice(None, None, -2),
    (slice(1, 10, 3), 2),
    (Ellipsis, 4),
    (5, slice(1, 4), slice(None, None, 2)),
    (slice(0, 0),),
    (slice(None), 0, 0),
]


@pytest.fixture
def stack(rng, tmp_path):
    arr = rng.integers(0, 60000, (12, 6, 7), dtype=np.uint16)
    path = tmp_path / "raw.bin"
    path.write_bytes(b"HEAD" + arr.astype(">u2").tobytes())
    return arr, path


@pytest.mark.parametrize("key", KEYS, ids=str)
def test_mapped_file_matches_numpy(stack, key):
    arr, path = stack
    lazy = MappedFile(path, 4, arr.shape, ">u2", chunk_bytes=3 * 6 * 7 * 2)  # 3 frames per map
    np.testing.assert_array_equal(lazy[key], arr[key])
    np.testing.assert_array_equal(lazy.memmap()[key], arr[key])


@pytest.mark.parametrize("key", KEYS, ids=str)
def test_indexed_and_calibrated_match_numpy(stack, key):
    arr, _ = stack
    big = arr[:, None, :, :, None]
    view = Indexed(big, (slice(None), 0, slice(None), slice(None), 0))
    np.testing.assert_array_equal(view[key], arr[key])
    cal = Calibrated(arr, offset=-32768, scale=1.0, dtype=np.int32)
    np.testing.assert_array_equal(cal[key], arr[key].astype(np.int32) - 32768)


@pytest.mark.parametrize("key", KEYS, ids=str)
def test_frame_sequence_matches_numpy(stack, key):
    arr, _ = stack
    reads = []

    def read(i):
        reads.append(i)
        return arr[i]

    seq = FrameSequence(list(range(len(arr))), arr.shape[1:], arr.dtype, read)
    np.testing.assert_array_equal(seq[key], arr[key])
    expected = np.arange(len(arr))[key[0] if isinstance(key, tuple) and key else key]
    if isinstance(key, tuple) and not key:
        expected = np.arange(len(arr))
    assert sorted(reads) == sorted(np.atleast_1d(expected).tolist())  # only indexed frames read
