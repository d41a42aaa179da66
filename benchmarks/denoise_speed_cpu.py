"""CPU speed and memory of deep denoising: network throughput and file-to-file streaming.

1. Network alone: voxels/s of the forward pass on one (32, 128, 128) tile for the default
   temporal model (depth 4, base 16, about 1 M parameters, DeepCAD-RT's budget) and a small one.
2. End to end: ``cascope denoise MOVIE.tif -o OUT.tif --model M --device cpu --block B`` in a
   subprocess on a uint16 movie written to disk in blocks; its peak resident memory is read from
   the kernel (``os.wait4`` high-water mark, ``benchmarks._harness.run_measured``) and compared
   with the movie's size in float32 and with the resident memory of merely importing torch and
   cascope (the fixed cost).

Usage::

    python -m benchmarks.denoise_speed_cpu [--frames 1200] [--size 256] [--quick]

Writes ``benchmarks/results/denoise_speed_cpu.{json,md}``. No GPU numbers: none was available.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

import cascope
from benchmarks._harness import (
    child_env,
    quick_out,
    run_measured,
    table,
    write_movie,
    write_results,
)
from cascope.config.denoise import DeepDenoiseConfig
from cascope.denoise.deep import DeepDenoiser, build_network
from cascope.models import count_parameters


def network_throughput(depth: int, base: int, tile=(32, 128, 128), reps: int = 3) -> dict:
    cfg = DeepDenoiseConfig.model_validate({"depth": depth, "base": base})
    net = build_network(cfg).eval()
    x = torch.randn(1, 1, *tile)
    with torch.inference_mode():
        net(x)
        t0 = time.perf_counter()
        for _ in range(reps):
            net(x)
        dt = (time.perf_counter() - t0) / reps
    return {
        "depth": depth,
        "base": base,
        "parameters": count_parameters(net),
        "tile": list(tile),
        "seconds_per_tile": round(dt, 3),
        "mvoxel_per_s": round(np.prod(tile) / dt / 1e6, 3),
    }


def write_test_movie(path: Path, frames: int, size: int, block: int = 64) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    base = 200 + 50 * np.sin(xx / 9.0) * np.cos(yy / 13.0)

    def make(start: int, stop: int) -> np.ndarray:
        t = np.arange(start, stop)[:, None, None]
        return rng.poisson(base[None] * (1 + 0.2 * np.sin(t / 15.0)))

    write_movie(path, (frames, size, size), make, block=block)


def peak_rss(cmd: list[str]) -> tuple[int, float, int]:
    """Run ``cmd`` in a fresh process; its exit code, wall seconds and peak RSS (bytes)."""
    run = run_measured(cmd, env=child_env(2), check=False)
    if run.returncode != 0:
        sys.stderr.write(run.output)
    return run.returncode, run.wall_s, run.peak_rss_bytes


def run_e2e(frames: int, size: int, block: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        movie = d / "movie.tif"
        write_test_movie(movie, frames, size)
        torch.manual_seed(0)
        cfg = DeepDenoiseConfig.model_validate({"depth": 3, "base": 8})
        model = DeepDenoiser(build_network(cfg).eval(), cfg, (200.0, 50.0), (200.0, 50.0))
        model.save(d / "model")
        imports = "import torch, cascope.denoise.deep, cascope.cli"
        baseline = peak_rss([sys.executable, "-c", imports])
        cmd = [
            sys.executable,
            "-m",
            "cascope",
            "denoise",
            str(movie),
            "-o",
            str(d / "out.tif"),
            "--model",
            str(d / "model"),
            "--device",
            "cpu",
            "--block",
            str(block),
            "--dtype",
            "float32",
        ]
        rc, wall, rss = peak_rss(cmd)
        out_ok = rc == 0 and tifffile.TiffFile(d / "out.tif").series[0].shape == (
            frames,
            size,
            size,
        )
    voxels = frames * size * size
    return {
        "movie": [frames, size, size],
        "movie_uint16_mb": round(voxels * 2 / 2**20, 1),
        "movie_float32_mb": round(voxels * 4 / 2**20, 1),
        "block_frames": block,
        "model": "depth 3, base 8 (random weights: speed only)",
        "exit_code": rc,
        "output_complete": bool(out_ok),
        "wall_seconds": round(wall, 1),
        "mvoxel_per_s_end_to_end": round(voxels / wall / 1e6, 3),
        "peak_rss_mb": round(rss / 2**20, 1),
        "import_baseline_rss_mb": round(baseline[2] / 2**20, 1),
        "peak_rss_above_baseline_mb": round((rss - baseline[2]) / 2**20, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=480)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--block", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="Tiny smoke run, results not kept.")
    ap.add_argument("--out", type=Path, default=None, help="Results folder.")
    args = ap.parse_args()
    if args.quick:
        args.frames, args.size = 64, 64
    torch.set_num_threads(2)
    nets = [network_throughput(4, 16), network_throughput(3, 8)]
    for n in nets:
        print(json.dumps(n), flush=True)
    runs = [run_e2e(frames, args.size, args.block) for frames in (args.frames // 4, args.frames)]
    for e2e in runs:
        print(json.dumps(e2e), flush=True)
    meta = {
        "device": f"CPU only ({platform.processor() or platform.machine()}, 2 torch threads, "
        "machine shared with other jobs); no GPU was available, so no GPU or roofline numbers",
        "cascope": cascope.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "not_run": {"CAREamics N2V-3D CPU comparison": "not installed in this run"},
    }
    lines = [
        "# Deep denoising speed and memory on CPU",
        "",
        f"Device: {meta['device']}. torch {torch.__version__}, cascope {cascope.__version__}.",
        "",
        "## Network alone (one 32 x 128 x 128 tile, float32)",
        "",
        *table(
            ["depth", "base", "parameters", "s / tile", "Mvoxel/s"],
            (
                [n["depth"], n["base"], f"{n['parameters']:,}", n["seconds_per_tile"]]
                + [n["mvoxel_per_s"]]
                for n in nets
            ),
            align="rrrrr",
        ),
        "",
        "## End to end, file to file (`cascope denoise --model`, streamed)",
        "",
        *table(
            ["movie (T, Y, X)", "uint16 MB", "float32 MB", "block", "wall s", "Mvoxel/s"]
            + ["peak RSS MB", "import baseline MB", "above baseline MB"],
            (
                [tuple(e["movie"]), e["movie_uint16_mb"], e["movie_float32_mb"]]
                + [e["block_frames"], e["wall_seconds"], e["mvoxel_per_s_end_to_end"]]
                + [e["peak_rss_mb"], e["import_baseline_rss_mb"], e["peak_rss_above_baseline_mb"]]
                for e in runs
            ),
            align="lrrrrrrrr",
        ),
        "",
        "Peak memory does not grow with the movie's length (blocks of frames are streamed);",
        "the network throughput on a shared 2-core CPU is the bottleneck.",
    ]
    doc = {"meta": meta, "network": nets, "end_to_end": runs}
    write_results("denoise_speed_cpu", doc, lines, out=quick_out(args.quick, args.out))


if __name__ == "__main__":
    main()
