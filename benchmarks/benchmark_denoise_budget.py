"""Wall time and peak memory of ``cascope benchmark denoise`` with its default budget.

Simulates a 60 x 512 x 512 uint16 somatic movie (the size of a Neurofinder test movie), runs
``cascope benchmark denoise MOVIE --json ...`` with default options in a child process and
records its wall time, its peak resident memory (``ru_maxrss`` of the child, started from a
small launcher: ``benchmarks._harness.run_measured``) and the table it wrote. Extra arguments
after ``--`` go to the command (e.g. ``-- --network-seconds 0``).

Usage::

    python -m benchmarks.benchmark_denoise_budget [--frames 60] [--size 512] [-- OPTIONS]

Writes ``benchmarks/results/benchmark_denoise_budget.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile

import cascope
from benchmarks._harness import child_env, quick_out, run_measured, table, write_results
from cascope.simulate import somatic


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--photons", type=float, default=2.0)
    ap.add_argument("--name", default="benchmark_denoise_budget")
    ap.add_argument("--quick", action="store_true", help="Tiny smoke run, results not kept.")
    ap.add_argument("--out", type=Path, default=None, help="Results folder.")
    ap.add_argument("extra", nargs="*", help="options passed on to the command (after --)")
    args = ap.parse_args()
    if args.quick:
        args.frames, args.size = 16, 64
        args.extra = [*args.extra, "--network-seconds", "2", "-m", "gaussian", "-m", "deepcad"]
    with tempfile.TemporaryDirectory() as tmp:
        movie = Path(tmp) / "movie.tif"
        sim = somatic(
            n_frames=args.frames, shape=(args.size, args.size), photons=args.photons, seed=0
        )
        tifffile.imwrite(movie, sim.noisy)
        del sim
        ranked = Path(tmp) / "rank.json"
        cmd = [sys.executable, "-m", "cascope", "benchmark", "denoise", str(movie)]
        cmd += ["--device", "cpu", "--json", str(ranked), *args.extra]
        run = run_measured(cmd, env=child_env(COLUMNS="120"), check=False)
        wall, cpu, peak_kib = run.wall_s, run.cpu_s, run.peak_rss_bytes / 1024
        rows = json.loads(ranked.read_text()) if ranked.exists() else []
    result = {
        "command": "cascope benchmark denoise MOVIE --device cpu " + " ".join(args.extra),
        "movie": {"frames": args.frames, "size": args.size, "dtype": "uint16"},
        "exit_code": run.returncode,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "rows": rows,
        "output_tail": run.output,
        "device": f"CPU only ({platform.machine()}, {os.cpu_count()} cores, shared with others)",
        "cascope": cascope.__version__,
        "numpy": np.__version__,
    }
    lines = [
        f"# `cascope benchmark denoise` on a {args.frames} x {args.size} x {args.size} movie",
        "",
        f"Command: `{result['command']}` (default budget unless options are shown). "
        f"{result['device']}; cascope {cascope.__version__}.",
        "",
        f"- exit code **{run.returncode}**, wall time **{wall:.0f} s**, CPU time **{cpu:.0f} s** "
        f"(user + system), peak resident memory **{peak_kib / 1024:.0f} MiB** (the child "
        "process: `ru_maxrss`, `ru_utime + ru_stime`; `benchmarks._harness.run_measured`).",
        "- The wall time includes waiting for a CPU shared with other jobs (the CPU time does "
        "not); each network trains for at most `--network-seconds` (60) of wall time.",
        "",
        *table(
            ["rank", "method", "score", "steps", "seconds"],
            (
                [
                    r["rank"],
                    r["method"],
                    f"{r.get('si_psnr', r.get('heldout_mse')):.4g}",
                    f"{r['steps']}/{r['steps_planned']}" if "steps" in r else "",
                    f"{r['seconds']:.1f}",
                ]
                for r in rows
            ),
            align="rlrrr",
        ),
        "",
        "Score: mean squared error against the held-out odd frames (lower is better).",
    ]
    write_results(args.name, result, lines, out=quick_out(args.quick, args.out))
    keys = ("exit_code", "wall_seconds", "cpu_seconds", "peak_rss_mib")
    print(json.dumps({k: result[k] for k in keys}))


if __name__ == "__main__":
    main()
