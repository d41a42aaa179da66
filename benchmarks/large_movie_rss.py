"""Peak memory of ``cascope denoise`` on a movie larger than 4 GB (generated on the fly).

Writes a uint16 BigTIFF of ``frames x size x size`` pixels in blocks (never whole in memory),
runs ``python -m cascope denoise INPUT -o OUTPUT --method gaussian`` on it in a subprocess,
and reads that process's peak resident set size from the kernel (``os.wait4`` rusage, the
high-water mark, so no polling can miss a spike: ``benchmarks._harness.run_measured``). Results
go to ``benchmarks/results/`` as JSON and markdown; the script exits non-zero when the peak
exceeds the limit.

Usage::

    python -m benchmarks.large_movie_rss                      # 8200 x 512 x 512 = 4.3 GB
    python -m benchmarks.large_movie_rss --quick              # 256 x 256 x 256, not saved
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

from benchmarks._harness import run_measured, table, write_movie, write_results


def write_test_movie(path: Path, frames: int, size: int, *, seed: int = 0) -> None:
    """Write a noisy uint16 movie block by block (a BigTIFF when large)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = (1000 + 400 * np.sin(yy / 17.0) * np.cos(xx / 23.0)).astype(np.int32)
    # 64 distinct noise frames, reused with a per-frame shift: cheap and never constant
    noise = rng.integers(-60, 61, (64, size, size), dtype=np.int32)

    def make(start: int, stop: int) -> np.ndarray:
        return np.stack(
            [base + np.roll(noise[t % 64], t // 64, axis=1) + (t % 13) for t in range(start, stop)]
        )

    write_movie(path, (frames, size, size), make)


def run_denoise(inp: Path, out: Path, *, method: str, block: int) -> dict[str, Any]:
    """Run the CLI in a child process; return its peak RSS (bytes), wall time and exit code."""
    cmd = [sys.executable, "-m", "cascope", "denoise", str(inp), "-o", str(out)]
    cmd += ["--method", method, "--block", str(block), "--dtype", "same"]
    run = run_measured(cmd, check=False)
    return {
        "command": " ".join(cmd),
        "returncode": run.returncode,
        "peak_rss_bytes": run.peak_rss_bytes,
        "wall_s": run.wall_s,
        "user_s": run.user_s,
        "system_s": run.system_s,
        "stderr_tail": run.output[-2000:],
    }


def check_output(inp: Path, out: Path, frames: int) -> dict[str, Any]:
    """Confirm the output is complete: same shape and dtype, and a few frames are smoothed."""
    import tifffile

    with tifffile.TiffFile(inp) as a, tifffile.TiffFile(out) as b:
        sa, sb = a.series[0], b.series[0]
        picks = [0, frames // 2, frames - 1]
        fa = [sa.asarray(key=i).astype(np.float64) for i in picks]
        fb = [sb.asarray(key=i).astype(np.float64) for i in picks]
    return {
        "output_shape": list(sb.shape),
        "output_dtype": str(sb.dtype),
        "same_shape": list(sa.shape) == list(sb.shape),
        "noise_std_in": float(np.mean([np.std(np.diff(f, axis=1)) for f in fa])),
        "noise_std_out": float(np.mean([np.std(np.diff(f, axis=1)) for f in fb])),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=8200, help="Frames T (default 8200: 4.3 GB).")
    p.add_argument("--size", type=int, default=512, help="Frame size Y = X.")
    p.add_argument("--block", type=int, default=64, help="Frames per block for cascope.")
    p.add_argument("--method", default="gaussian")
    p.add_argument("--limit-gb", type=float, default=1.0, help="Fail above this peak RSS.")
    p.add_argument("--workdir", type=Path, default=None, help="Where the big files go.")
    p.add_argument("--keep", action="store_true", help="Keep the big files.")
    p.add_argument("--no-save", action="store_true", help="Do not write benchmarks/results.")
    p.add_argument("--quick", action="store_true", help="Tiny smoke run, results not saved.")
    args = p.parse_args(argv)
    if args.quick:
        args.frames, args.size, args.no_save = 256, 256, True

    work = Path(tempfile.mkdtemp(prefix="cascope-rss-", dir=args.workdir))
    inp, out = work / "movie.tif", work / "denoised.tif"
    try:
        t0 = time.perf_counter()
        write_test_movie(inp, args.frames, args.size)
        gen_s = time.perf_counter() - t0
        run = run_denoise(inp, out, method=args.method, block=args.block)
        result: dict[str, Any] = {
            "benchmark": "large_movie_rss",
            "shape": [args.frames, args.size, args.size],
            "dtype": "uint16",
            "pixels": args.frames * args.size * args.size,
            "input_bytes": inp.stat().st_size,
            "method": args.method,
            "block": args.block,
            "generate_s": gen_s,
            **run,
            "peak_rss_mib": run["peak_rss_bytes"] / 2**20,
            "limit_bytes": int(args.limit_gb * 2**30),
            "mpix_per_s": args.frames * args.size * args.size / run["wall_s"] / 1e6,
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "numpy": np.__version__,
            },
        }
        if run["returncode"] == 0:
            result.update(check_output(inp, out, args.frames))
        result["passed"] = run["returncode"] == 0 and run["peak_rss_bytes"] < result["limit_bytes"]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v for k, v in result.items() if k != "stderr_tail"}, indent=2))
    if not args.no_save:
        write_results("large_movie_rss", result, _markdown(result))
    if not result["passed"]:
        print(f"FAILED: {result.get('stderr_tail', '')}", file=sys.stderr)
    return 0 if result["passed"] else 1


def _markdown(r: dict[str, Any]) -> str:
    gb = r["input_bytes"] / 1e9
    lines = [
        "# Peak memory of `cascope denoise` on a movie larger than 4 GB",
        "",
        "Reproduce: `python -m benchmarks.large_movie_rss` (generates the movie, runs the CLI in "
        "a subprocess, reads its peak RSS from `wait4`, deletes the files).",
        "",
        *table(
            ["input", "shape (T, Y, X)", "method", "block", "peak RSS", "limit", "wall time"]
            + ["throughput", "passed"],
            [
                [
                    f"{gb:.2f} GB uint16 BigTIFF",
                    tuple(r["shape"]),
                    r["method"],
                    r["block"],
                    f"{r['peak_rss_mib']:.0f} MiB",
                    f"{r['limit_bytes'] / 2**30:.1f} GiB",
                    f"{r['wall_s']:.0f} s",
                    f"{r['mpix_per_s']:.1f} Mpixel/s",
                    r["passed"],
                ]
            ],
        ),
        "",
        f"Machine: {r['machine']['cpus']} CPUs, {r['machine']['platform']}, "
        f"Python {r['machine']['python']}, NumPy {r['machine']['numpy']}. "
        f"Command: `{r['command']}`.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
