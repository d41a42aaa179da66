from __future__ import annotations

import resource

import numpy as np
import pytest
import tifffile

from cascope import io


@pytest.mark.slow
def test_movie_over_4gb_streamed_and_read_lazily(tmp_path):
    shape = (8200, 512, 512)  # 4.3 GB of uint16
    out = tmp_path / "big.tif"
    with io.open_writer(out, shape, np.uint16, axes="TYX", frame_rate=30.0) as w:
        for start in range(0, shape[0], 200):
            n = min(200, shape[0] - start)
            block = np.broadcast_to(
                np.arange(start, start + n, dtype=np.uint16)[:, None, None], (n, *shape[1:])
            )
            w.write(block, start)
    with tifffile.TiffFile(out) as tf:
        assert tf.is_bigtiff and tf.is_ome
    m = io.read(out)
    assert m.shape == shape and m.frame_rate == pytest.approx(30.0)
    for owned, _, block in m.iter_blocks(256):
        assert block[:, 100, 100].tolist() == list(range(owned.start, owned.stop))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mb < 1024
