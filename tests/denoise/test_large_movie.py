"""Peak memory of ``cascope denoise`` on a long movie (the benchmark script, smaller size)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "large_movie_rss.py"


@pytest.mark.slow
def test_peak_rss_is_bounded_by_the_block_not_the_movie(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("large_movie_rss", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # a 1.6 GB input under a 1 GiB limit: the movie cannot be held whole
    args = ["--frames", "3000", "--size", "512", "--workdir", str(tmp_path), "--no-save"]
    code = bench.main([*args, "--limit-gb", "1.0"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0, result
    assert result["peak_rss_bytes"] < 2**30 < result["input_bytes"]
    assert result["same_shape"] and result["noise_std_out"] < result["noise_std_in"]
    assert list(tmp_path.iterdir()) == []
