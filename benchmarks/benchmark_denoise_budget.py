"""Wall time and peak memory of ``cascope benchmark denoise`` with its default budget.

Simulates a 60 x 512 x 512 uint16 somatic movie (the size of a Neurofinder test movie), runs
``cascope benchmark denoise MOVIE --json ...`` with default options in a child process and
records its wall time, its peak resident memory (``ru_maxrss`` of the child) and the table it
wrote. Extra arguments after ``--`` go to the command (e.g. ``-- --network-seconds 0``).

Usage::

    python benchmarks/benchmark_denoise_budget.py [--frames 60] [--size 512] [-- OPTIONS]

Writes ``benchmarks/results/benchmark_denoise_budget.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

import cascope
from cascope.simulate import somatic

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--photons", type=float, default=2.0)
    ap.add_argument("--name", default="benchmark_denoise_budget")
    ap.add_argument("extra", nargs="*", help="options passed on to the command (after --)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        movie = Path(tmp) / "movie.tif"
        sim = somatic(
            n_frames=args.frames, shape=(args.size, args.size), photons=args.photons, seed=0
        )
        tifffile.imwrite(movie, sim.noisy)
        del sim
        table = Path(tmp) / "rank.json"
        cmd = [sys.executable, "-m", "cascope", "benchmark", "denoise", str(movie)]
        cmd += ["--device", "cpu", "--json", str(table), *args.extra]
        env = {**os.environ, "COLUMNS": "120"}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_kib, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        rows = json.loads(table.read_text()) if table.exists() else []
    result = {
        "command": "cascope benchmark denoise MOVIE --device cpu " + " ".join(args.extra),
        "movie": {"frames": args.frames, "size": args.size, "dtype": "uint16"},
        "exit_code": proc.returncode,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "rows": rows,
        "stdout": proc.stdout[-4000:],
        "stderr_tail": proc.stderr[-2000:],
        "device": f"CPU only ({platform.machine()}, {os.cpu_count()} cores, shared with others)",
        "cascope": cascope.__version__,
        "numpy": np.__version__,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    lines = [
        f"# `cascope benchmark denoise` on a {args.frames} x {args.size} x {args.size} movie",
        "",
        f"Command: `{result['command']}` (default budget unless options are shown). "
        f"{result['device']}; cascope {cascope.__version__}.",
        "",
        f"- exit code **{proc.returncode}**, wall time **{wall:.0f} s**, CPU time **{cpu:.0f} s** "
        f"(user + system), peak resident memory **{peak_kib / 1024:.0f} MiB** (the child "
        "process: `ru_maxrss`, `ru_utime + ru_stime`).",
        "- The wall time includes waiting for a CPU shared with other jobs (the CPU time does "
        "not); each network trains for at most `--network-seconds` (60) of wall time.",
        "",
        "| rank | method | score | steps | seconds |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        score = r.get("si_psnr", r.get("heldout_mse"))
        steps = f"{r['steps']}/{r['steps_planned']}" if "steps" in r else ""
        lines.append(
            f"| {r['rank']} | {r['method']} | {score:.4g} | {steps} | {r['seconds']:.1f} |"
        )
    lines += ["", "Score: mean squared error against the held-out odd frames (lower is better)."]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    keys = ("exit_code", "wall_seconds", "cpu_seconds", "peak_rss_mib")
    print(json.dumps({k: result[k] for k in keys}))


if __name__ == "__main__":
    main()
