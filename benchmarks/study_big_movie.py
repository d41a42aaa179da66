"""A movie of >= 2 GB (OME-Zarr) denoised over 2 Dask workers equals one process; peak RSS each.

Writes a uint16 OME-Zarr of ``frames x height x width`` pixels block by block (never whole in
memory), then denoises it twice with a 3-D Gaussian filter (blocks need a halo of neighbouring
frames):

* one process: ``python -m cascope denoise IN -o local.ome.zarr`` (streamed blocks);
* over a real ``LocalCluster`` of 2 single-threaded worker processes: the same command with
  ``--scheduler ADDRESS``; each worker reads its time blocks with their halos and writes its own
  chunks of ``dist.ome.zarr``.

The outputs are compared block by block (bitwise). The peak resident set size of each command
comes from the kernel (``os.wait4`` rusage, ``benchmarks._harness.run_measured``); that of each
worker from its own ``getrusage(RUSAGE_SELF)`` after the run (both high-water marks). Results go to
``benchmarks/results/study_big_movie.{json,md}``.

Usage::

    python -m benchmarks.study_big_movie                         # 2048 x 512 x 1024 = 2.1 GB
    python -m benchmarks.study_big_movie --quick                 # tiny check, not saved
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._harness import local_cluster, run_measured, table, write_movie, write_results


def write_test_movie(path: Path, frames: int, height: int, width: int, block: int) -> None:
    """Write a noisy uint16 OME-Zarr block by block, chunked one block per chunk along T."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    base = (1000 + 400 * np.sin(yy / 17.0) * np.cos(xx / 23.0)).astype(np.int32)
    noise = rng.integers(-60, 61, (block, height, width), dtype=np.int32)

    def make(start: int, stop: int) -> np.ndarray:
        shift = start // block
        return base + np.roll(noise[: stop - start], shift, axis=2) + shift % 13

    chunks = (block, min(height, 512), min(width, 512))
    write_movie(path, (frames, height, width), make, block=block, chunks=chunks)


def run(cmd: list[str]) -> dict[str, Any]:
    """Run a command; its wall time and peak RSS (``run_measured``)."""
    got = run_measured(cmd)
    return {"seconds": got.wall_s, "peak_rss_bytes": got.peak_rss_bytes}


def _worker_peak() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    """Run the benchmark and write the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2048)
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--block", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=None, help="Scratch folder (default: a temp).")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--quick", action="store_true", help="Tiny smoke run, results not saved.")
    args = ap.parse_args()
    if args.quick:
        args.frames, args.height, args.width, args.block, args.no_save = 64, 64, 64, 16, True

    import zarr

    scratch = Path(tempfile.mkdtemp(prefix="cascope-bigmovie-", dir=args.dir))
    try:
        src = scratch / "movie.ome.zarr"
        t0 = time.perf_counter()
        write_test_movie(src, args.frames, args.height, args.width, args.block)
        write_s = time.perf_counter() - t0
        nbytes = args.frames * args.height * args.width * 2
        common = ["--method", "gaussian", "--mode", "3d", "--sigma-stack", "1.5"]
        common += ["--block", str(args.block), "--dtype", "same"]
        denoise = [sys.executable, "-m", "cascope", "denoise", str(src)]
        local = run([*denoise, "-o", str(scratch / "local.ome.zarr"), *common])
        with local_cluster(args.workers) as (cluster, client):
            before = client.run(_worker_peak)
            dist = run(
                [*denoise, "-o", str(scratch / "dist.ome.zarr"), *common]
                + ["--scheduler", cluster.scheduler_address]
            )
            after = client.run(_worker_peak)
        a = zarr.open_array(str(scratch / "local.ome.zarr" / "0"), mode="r")
        b = zarr.open_array(str(scratch / "dist.ome.zarr" / "0"), mode="r")
        equal = (
            a.shape == b.shape
            and a.dtype == b.dtype
            and all(
                np.array_equal(a[t : t + args.block], b[t : t + args.block])
                for t in range(0, args.frames, args.block)
            )
        )
        block_bytes = args.block * args.height * args.width * 2
        result = {
            "movie": {
                "shape": [args.frames, args.height, args.width],
                "dtype": "uint16",
                "bytes": nbytes,
                "format": "OME-Zarr",
                "block_frames": args.block,
            },
            "filter": "gaussian 3d, sigma 1 px, sigma_stack 1.5 frames (halo from its reach)",
            "write_seconds": write_s,
            "one_process": local,
            "distributed": {
                **dist,
                "workers": args.workers,
                "worker_peak_rss_bytes": sorted(after.values()),
                "worker_rss_before_bytes": sorted(before.values()),
            },
            "bitwise_equal": bool(equal),
            "block_bytes": block_bytes,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if not args.no_save:
        gb = 1 << 30
        peaks = ", ".join(f"{p / gb:.2f}" for p in result["distributed"]["worker_peak_rss_bytes"])
        lrss, drss = local["peak_rss_bytes"] / gb, dist["peak_rss_bytes"] / gb
        lines = [
            f"# A {nbytes / 1e9:.2f} GB OME-Zarr movie denoised over {args.workers} Dask workers",
            "",
            f"`python -m benchmarks.study_big_movie` — {args.frames} x {args.height} x "
            f"{args.width} uint16,",
            f"{result['filter']}, blocks of {args.block} frames ({block_bytes / 2**20:.0f} MiB "
            "each).",
            f"CPU: {os.cpu_count()} cores (shared machine: times are indicative only).",
            "",
            *table(
                ["run", "wall s", "peak RSS"],
                [
                    [
                        "one process (`cascope denoise`)",
                        f"{local['seconds']:.1f}",
                        f"{lrss:.2f} GiB",
                    ],
                    [
                        "`cascope denoise --scheduler` (client)",
                        f"{dist['seconds']:.1f}",
                        f"{drss:.2f} GiB",
                    ],
                    [f"each of the {args.workers} workers", "", f"{peaks} GiB"],
                ],
            ),
            "",
            f"Bitwise equal to the one-process result: **{equal}**. Peak memory of every process "
            "is bounded",
            f"by a few blocks, not by the {nbytes / gb:.2f} GiB movie.",
        ]
        write_results("study_big_movie", result, lines)


if __name__ == "__main__":
    main()
