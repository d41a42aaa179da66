"""Event detection on a long movie: peak memory does not grow with the movie's length.

1. Writes a long simulated mSCT movie (default 30000 x 128 x 128 uint16, 0.98 GB) block by block
   with :func:`cascope.io.open_writer`: consecutive pieces of ``cascope.simulate.mscts`` with
   different seeds, so the movie is never whole in memory. A short prefix of it (default one
   tenth) is written to a second file.
2. Trains a tiny event model (U-Net depth 2, base 4, a few steps) on a small simulated movie in a
   child process. Memory and speed are measured, not detection quality.
3. Runs ``cascope detect MOVIE --model M -o events.csv`` in child processes, on the prefix and on
   the whole movie, without and with ``--labels-out`` (and with ``--features``), and reads each
   child's peak resident memory from the kernel: ``os.wait4`` (``ru_maxrss``, the child started
   from a small launcher: ``benchmarks._harness.run_measured``) and the child's own
   ``/proc/self/status`` ``VmHWM``.
4. Checks that the label movie written to disk holds exactly the events of the table, and
   reports detection throughput (voxels/s, CPU, one torch thread).

Usage::

    python -m benchmarks.events_long_movie                          # 30000 x 128 x 128
    python -m benchmarks.events_long_movie --quick                  # tiny check, not saved

Writes ``benchmarks/results/events_long_movie.{json,md}``; exits non-zero when a check fails
(peak memory of the whole movie more than ``--growth`` times that of the prefix, or labels and
table disagree). ``--child`` is the child processes' entry point (not for direct use).
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

from benchmarks._harness import (
    child_env,
    module_cmd,
    own_peak_rss,
    run_measured,
    table,
    write_movie,
    write_results,
)


def write_mscts(path: Path, frames: int, shape: tuple[int, int], piece: int, seed: int) -> int:
    """Write ``frames`` frames of simulated mSCTs, ``piece`` per simulation; return events."""
    from cascope.simulate import mscts

    n_events = 0

    def make(start: int, stop: int) -> np.ndarray:
        nonlocal n_events
        sim = mscts(seed=seed + start // piece, n_frames=stop - start, shape=shape)
        n_events += len(sim.events)
        return sim.noisy

    write_movie(path, (frames, *shape), make, block=piece, frame_rate=10.0)
    return n_events


def child(args: argparse.Namespace) -> int:
    """Entry point of the child processes: train the tiny model, or run ``cascope detect``."""
    import torch

    torch.set_num_threads(args.threads)
    if args.child[0] == "train":
        from cascope.config.events import EventModelConfig, EventTrainConfig
        from cascope.config.training import TrainingConfig
        from cascope.events.train import train_event_detector
        from cascope.simulate import mscts

        sim, valid = (mscts(seed=s, n_frames=200, shape=(64, 64)) for s in (10_000, 10_001))
        cfg = EventTrainConfig(
            window=(16, 32, 32),
            cache=(24, 48, 48),
            model=EventModelConfig(depth=args.depth, base=args.base),
            training=TrainingConfig(steps=args.steps, batch_size=2, val_every=10_000),
        )
        # the event-F1 threshold on a validation movie ("auto") gives realistic event counts
        train_event_detector(
            [sim.noisy],
            [sim.labels],
            config=cfg,
            valid=([valid.noisy], [valid.labels]),
            output=args.child[1],
            device="cpu",
        )
    else:
        from cascope.cli import app

        app(args.child, standalone_mode=False)
    print(json.dumps({"vmhwm_bytes": own_peak_rss()}))
    return 0


def run_child(cmd: list[str]) -> dict[str, Any]:
    """Run a child (one thread); its wall and CPU time, peak RSS and the child's own VmHWM."""
    return run_measured(cmd, env=child_env(1)).summary()


def child_cmd(args: argparse.Namespace, *what: str) -> list[str]:
    cmd = ["nice", *module_cmd("events_long_movie", "--threads", str(args.threads))]
    cmd += ["--steps", str(args.steps), "--depth", str(args.depth), "--base", str(args.base)]
    return [*cmd, "--child", *what]


def check_labels(labels_path: Path, table_path: Path, block: int = 1024) -> dict[str, Any]:
    """Read the label movie in blocks: every table event and nothing else, with its area."""
    import pandas as pd

    from cascope.io import read

    lab = read(labels_path)
    events = pd.read_csv(table_path)
    counts = np.zeros(len(events) + 1, np.int64)
    out_of_range = 0
    for s in range(0, lab.shape[0], block):
        part = np.asarray(lab[s : s + block])
        out_of_range += int((part > len(events)).sum())
        counts += np.bincount(part.ravel().astype(np.int64), minlength=len(events) + 1)[
            : len(events) + 1
        ]
    area_ok = bool(np.array_equal(counts[1:], events["area"].to_numpy()))
    return {"events": len(events), "areas_match": area_ok, "ids_out_of_range": out_of_range}


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    shape = (int(args.shape[0]), int(args.shape[1]))
    prefix = max(args.block, args.frames // args.prefix_ratio)
    movies = {"prefix": (work / "prefix.tif", prefix), "whole": (work / "movie.tif", args.frames)}
    sim_events = {}
    t0 = time.perf_counter()
    for name, (path, frames) in movies.items():
        sim_events[name] = write_mscts(path, frames, shape, args.piece, args.seed)
    write_s = time.perf_counter() - t0
    model = work / "model"
    train = run_child(child_cmd(args, "train", str(model)))
    runs: list[dict[str, Any]] = []
    for name, (path, frames) in movies.items():
        for variant in args.variants:
            out = work / f"{name}-{variant}.csv"
            detect = ["detect", str(path), "--model", str(model), "-o", str(out)]
            detect += ["--threshold", str(args.threshold), "--block", str(args.block)]
            detect += ["--device", "cpu", "--force"]
            if variant == "labels":
                detect += ["--labels-out", str(work / f"{name}-labels.tif")]
            if variant == "features":
                detect += ["--features"]
            r = run_child(child_cmd(args, *detect))
            voxels = frames * shape[0] * shape[1]
            r.update(
                movie=name,
                frames=frames,
                variant=variant,
                input_bytes=path.stat().st_size,
                voxels_per_s=voxels / r["wall_s"],
                command="cascope " + " ".join(detect[:1] + [path.name] + detect[2:]),
            )
            if variant == "labels":
                r["labels_bytes"] = (work / f"{name}-labels.tif").stat().st_size
                r["check"] = check_labels(work / f"{name}-labels.tif", out)
                (work / f"{name}-labels.tif").unlink()
            r["events"] = int(sum(1 for _ in out.open()) - 1)
            runs.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "command"}), flush=True)
    growth = {}
    for variant in args.variants:
        short, long = (
            next(r for r in runs if r["movie"] == m and r["variant"] == variant)
            for m in ("prefix", "whole")
        )
        growth[variant] = max(long["peak_rss_bytes"], long["vmhwm_bytes"]) / max(
            short["peak_rss_bytes"], short["vmhwm_bytes"]
        )
    return {
        "shape": [args.frames, *shape],
        "prefix_frames": prefix,
        "simulated_events": sim_events,
        "write_s": write_s,
        "training": train,
        "runs": runs,
        "peak_growth_whole_over_prefix": growth,
        "ok": all(g <= args.growth for g in growth.values())
        and all(
            r["check"]["areas_match"] and not r["check"]["ids_out_of_range"]
            for r in runs
            if "check" in r
        ),
        "settings": {
            "block": args.block,
            "threshold": args.threshold,
            "model": {"depth": args.depth, "base": args.base, "steps": args.steps},
            "threads": args.threads,
            "piece": args.piece,
            "growth_limit": args.growth,
        },
        "command": "python -m benchmarks.events_long_movie " + " ".join(sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "cpu": platform.machine(),
            "cpus": os.cpu_count(),
            "gpu": None,
            "python": platform.python_version(),
            "numpy": _version("numpy"),
            "torch": _version("torch"),
            "zarr": _version("zarr"),
            "cascope": _version("cascope"),
        },
    }


def markdown(r: dict[str, Any]) -> str:
    mib = 2**20
    t, h, w = r["shape"]
    lines = [
        "# Event detection on a long movie: peak memory and throughput (CPU)",
        "",
        f"Reproduce: `{r['command']}` (writes the movies block by block, trains a tiny model, "
        "runs `cascope detect` in child processes whose peak RSS the kernel reports, deletes "
        "the files).",
        "",
        f"Movie: ({t}, {h}, {w}) uint16 TIFF of simulated mSCTs, and its first "
        f"{r['prefix_frames']} frames as the short movie. Model: U-Net depth "
        f"{r['settings']['model']['depth']}, base {r['settings']['model']['base']}, "
        f"{r['settings']['model']['steps']} training steps (memory and speed only, not quality); "
        f"threshold {r['settings']['threshold']} (auto: the model's own, event F1 on a "
        "validation movie), "
        f"blocks of {r['settings']['block']} frames, "
        f"{r['settings']['threads']} torch thread.",
        "",
    ]
    names = {"plain": "table only", "labels": "+ `--labels-out`", "features": "+ `--features`"}
    lines += table(
        ["movie", "frames", "on disk", "run", "events", "peak RSS (wait4)", "peak RSS (VmHWM)"]
        + ["wall", "throughput"],
        (
            [
                x["movie"],
                x["frames"],
                f"{x['input_bytes'] / mib:.0f} MiB",
                names[x["variant"]],
                x["events"],
                f"{x['peak_rss_bytes'] / mib:.0f} MiB",
                f"{x['vmhwm_bytes'] / mib:.0f} MiB",
                f"{x['wall_s']:.0f} s",
                f"{x['voxels_per_s'] / 1e6:.2f} Mvoxel/s",
            ]
            for x in r["runs"]
        ),
        align="lrrlrrrrr",
    )
    growth = ", ".join(f"{names[k]} {v:.2f}" for k, v in r["peak_growth_whole_over_prefix"].items())
    checks = [x["check"] for x in r["runs"] if "check" in x]
    sizes = ", ".join(
        f"{x['movie']} {x['labels_bytes'] / mib:.0f} MiB" for x in r["runs"] if "labels_bytes" in x
    )
    m = r["machine"]
    lines += [
        "",
        f"Peak RSS, whole movie / prefix ({t // r['prefix_frames']}× longer): {growth} "
        f"(limit {r['settings']['growth_limit']}). "
        + (
            "Label movies read back in blocks: every voxel belongs to a table event and each "
            "event's voxel count equals its `area`: "
            + ", ".join(str(c["areas_match"] and not c["ids_out_of_range"]) for c in checks)
            + "."
            if checks
            else ""
        )
        + (
            f" The uint32 label movies written by `--labels-out` ({sizes}) are streamed to disk "
            "through a chunked zarr store beside the output, not held in memory."
            if sizes
            else ""
        ),
        "",
        "Throughput is end to end (process start, model load, preprocessing, prediction, "
        "detection, writing), voxels of the movie per wall-clock second; no GPU on this machine.",
        "",
        f"Machine: {m['platform']}, {m['cpus']} CPUs (shared); Python {m['python']}, numpy "
        f"{m['numpy']}, torch {m['torch']}, zarr {m['zarr']}, cascope {m['cascope']}. "
        f"Overall: {'OK' if r['ok'] else 'FAILED'}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30_000)
    ap.add_argument("--shape", type=int, nargs=2, default=(128, 128))
    ap.add_argument("--prefix-ratio", type=int, default=10, help="whole / prefix length")
    ap.add_argument("--piece", type=int, default=500, help="frames per simulation")
    ap.add_argument("--block", type=int, default=256, help="cascope detect --block")
    ap.add_argument("--threshold", default="auto", help="detect --threshold")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--base", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--growth", type=float, default=1.25, help="allowed peak RSS ratio")
    ap.add_argument(
        "--variants",
        nargs="+",
        default=["plain", "labels", "features"],
        choices=["plain", "labels", "features"],
    )
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: /tmp)")
    ap.add_argument("--no-save", action="store_true", help="do not write results/")
    ap.add_argument("--quick", action="store_true", help="Tiny smoke run, results not saved.")
    ap.add_argument("--child", nargs=argparse.REMAINDER, default=None)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    if args.quick:
        args.frames, args.shape, args.piece, args.block = 200, (32, 32), 100, 64
        args.steps, args.prefix_ratio, args.variants, args.no_save = 2, 2, ["plain"], True
        args.growth = 10.0
    work = Path(tempfile.mkdtemp(prefix="cascope-events-long-", dir=args.workdir))
    try:
        result = measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not args.no_save:
        write_results("events_long_movie", result, markdown(result))
    print(markdown(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
