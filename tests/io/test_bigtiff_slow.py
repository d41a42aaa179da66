from __future__ import annotations

import subprocess
import sys

import pytest

# Run in a fresh process: ru_maxrss is a process's high-water mark, so measured inside the test
# process it would count whatever the tests before this one allocated.
_BODY = """
import resource, sys
import numpy as np
import tifffile
from cascope import io

out = sys.argv[1]
shape = (8200, 512, 512)  # 4.3 GB of uint16
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
assert m.shape == shape and abs(m.frame_rate - 30.0) < 1e-6
for owned, _, block in m.iter_blocks(256):
    assert block[:, 100, 100].tolist() == list(range(owned.start, owned.stop))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


@pytest.mark.slow
def test_movie_over_4gb_streamed_and_read_lazily(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", _BODY, str(tmp_path / "big.tif")], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    peak_mb = float(run.stdout.split()[-1])
    assert peak_mb < 1024
