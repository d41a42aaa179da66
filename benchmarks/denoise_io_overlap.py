"""What reading and writing in background threads saves, file to file, side by side with serial I/O.

``cascope denoise`` reads the next block in one thread and writes the previous one in another
while a network or a filter computes (on CUDA through pinned memory); ``--serial-io`` does the
three one after the other. This script runs both on the same movie, for a network with the
per-voxel work on the host and on the device (``--blend-on host|device``) and for the 3d
Gaussian filter::

    cascope denoise MOVIE.tif -o OUT.tif --dtype same [--model M --device D --blend-on W |
        --method gaussian --mode 3d] [--serial-io]

Overlapping can save at most the time of the reading and writing themselves, which the script
also measures (in this process, from the page cache: the movie was just written, so reading is
decoding, not the disk). On a GPU the default network is fast and the reading and writing are
most of the time. On a CPU the network is deliberately tiny (``deepcad``, depth 1, base 2,
trained for a few steps), to make it as small a part of the time as a CPU allows, and gets one
torch thread (``--threads``); the filter computes in one thread too (SciPy). That leaves the
other cores to reading and writing, as a GPU leaves the host's cores to them. Each setting
runs ``--repeats`` times, all settings interleaved, each as its own process (wall time, and
peak RSS from ``wait4``).

Usage::

    python -m benchmarks.denoise_io_overlap [--frames 1000] [--size 512] [--repeats 3]
        [--device cpu|cuda] [--quick]

Writes ``benchmarks/results/denoise_io_overlap[_cuda].{json,md}`` (not with ``--quick``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._harness import gpu_name, table, write_results
from benchmarks.deepcad_compare import measured
from benchmarks.deepcad_memory import write_test_movie
from cascope.pipeline import versions

#: (name, options of ``cascope denoise``); each runs with and without ``--serial-io``
WORK = (
    ("network, per-voxel work on the host", ["--blend-on", "host"]),
    ("network, per-voxel work on the device", ["--blend-on", "device"]),
    ("gaussian filter, 3d", ["--method", "gaussian", "--mode", "3d"]),
)
IO = ("background", "serial")


def train_tiny(movie: Path, model_dir: Path, steps: int) -> None:
    """A depth-1, base-2 temporal model: its speed, not its quality, matters here."""
    from cascope.config.denoise import DeepDenoiseConfig
    from cascope.denoise.deep import read_recording, train_denoiser

    cfg = DeepDenoiseConfig.model_validate(
        {
            "method": "deepcad",
            "patch": (8, 64, 64),
            "depth": 1,
            "base": 2,
            "val_fraction": 0.0,
            "training": {"steps": steps, "batch_size": 2, "val_every": 10**6},
        }
    )
    model, _ = train_denoiser(read_recording(movie), config=cfg, device="cpu")
    model.save(model_dir)


def stage_times(movie: Path, out: Path, block: int) -> dict[str, float]:
    """Seconds to read the movie block by block, and to write a file of its size and type."""
    from cascope.io import open_writer, read

    data = read(movie)
    n = data.shape[0]
    t0 = time.perf_counter()
    blocks = [np.asarray(data[s : s + block]) for s in range(0, n, block)][:2]
    for s in range(2 * block, n, block):
        np.asarray(data[s : s + block])
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with open_writer(out, tuple(data.shape), data.dtype, axes="TYX") as writer:
        for i, s in enumerate(range(0, n, block)):
            writer.write(blocks[i % 2][: min(block, n - s)], s)
    write_s = time.perf_counter() - t0
    out.unlink()
    return {"read_s": read_s, "write_s": write_s}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    gpu = args.device == "cuda"
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {
        (name, io): [] for name, _ in WORK for io in IO
    }
    with tempfile.TemporaryDirectory(prefix="cascope-io-") as tmp:
        work = Path(tmp)
        movie, out, model = work / "movie.tif", work / "out.tif", work / "model"
        write_test_movie(movie, args.frames, args.size, args.seed)
        train_tiny(movie, model, args.train_steps)
        stages = stage_times(movie, out, args.block)
        print(json.dumps(stages), flush=True)
        base = [sys.executable, "-m", "cascope", "denoise", str(movie), "-o", str(out)]
        base += ["--dtype", "same", "--block", str(args.block)]
        network = ["--model", str(model), "--device", args.device]
        for rep in range(args.repeats):
            for (name, options), io in itertools.product(WORK, IO):
                cmd = [*base, *options] + ([] if "--method" in options else network)
                cmd += ["--serial-io"] if io == "serial" else []
                wall, rss = measured(cmd, work / f"run_{rep}.log", args.threads, gpu=gpu)
                out.unlink()
                runs[(name, io)].append((wall, rss))
                print(json.dumps({"work": name, "io": io, "wall_s": wall}), flush=True)
        movie_bytes = movie.stat().st_size
    rows = [
        {
            "work": name,
            "io": io,
            "wall_s": [w for w, _ in got],
            "median_wall_s": statistics.median(w for w, _ in got),
            "peak_rss_mib": max(r for _, r in got),
        }
        for (name, io), got in runs.items()
    ]
    return {
        "benchmark": "denoise_io_overlap",
        "device": args.device,
        "gpu": gpu_name() if gpu else None,
        "frames": args.frames,
        "size": args.size,
        "movie_bytes": movie_bytes,
        "block": args.block,
        "threads": args.threads,
        "stages": stages,
        "rows": rows,
        "versions": versions(),
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
        "command": " ".join(["python", *sys.argv]),
    }


def markdown(r: dict[str, Any]) -> str:
    med = {(x["work"], x["io"]): x["median_wall_s"] for x in r["rows"]}
    where = r["gpu"] or "CPU"
    lines = [
        f"# Reading and writing in background threads vs one after the other ({where})",
        "",
        f"`cascope denoise` of a {r['frames']} x {r['size']} x {r['size']} uint16 TIFF "
        f"({r['movie_bytes'] / 1e9:.2f} GB) into a uint16 TIFF (`--dtype same`), blocks of "
        f"{r['block']} frames, with and without `--serial-io`. The network is tiny (deepcad, "
        "depth 1, base 2) to make it as small a part of the time as a CPU allows; it gets "
        f"{r['threads']} torch thread(s), and the filter (SciPy) computes in one, which leaves the "
        "other cores to the I/O threads. Each row: the median of "
        f"{len(r['rows'][0]['wall_s'])} runs, all settings interleaved, each its own process.",
        "",
    ]
    cells = []
    for x in r["rows"]:
        ratio = med[(x["work"], "serial")] / med[(x["work"], "background")]
        runs = ", ".join(f"{w:.2f}" for w in x["wall_s"])
        rel = f"{ratio:.2f}x" if x["io"] == "background" else ""
        cells.append(
            [x["work"], x["io"], f"{x['median_wall_s']:.2f}", runs, rel]
            + [f"{x['peak_rss_mib']:.0f}"]
        )
    lines += table(
        ["work", "I/O", "wall (s), median", "runs (s)", "serial / background", "peak RSS (MiB)"],
        cells,
        align="llrrrr",
    )
    s = r["stages"]
    saved = ", ".join(
        f"{med[(name, 'serial')] - med[(name, 'background')]:.2f} s ({name})" for name, _ in WORK
    )
    spread = max(max(x["wall_s"]) - min(x["wall_s"]) for x in r["rows"])
    lines += [
        "",
        f"Stages alone, in one process: reading the movie block by block {s['read_s']:.2f} s, "
        f"writing a file of its size {s['write_s']:.2f} s (from the page cache: decoding and "
        "encoding, not the disk). Overlapping them with the computing can save at most their "
        f"sum, {s['read_s'] + s['write_s']:.2f} s; the medians differ by {saved}, against a "
        f"run-to-run spread of up to {spread:.2f} s.",
        "",
        f"Versions: {', '.join(f'{k} {v}' for k, v in r['versions'].items())}.",
        f"Machine: {r['machine']}.",
        "",
        f"Command: `{r['command']}`",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--block", type=int, default=64, help="frames per block (the CLI default)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the network")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="Tiny run to check the script.")
    args = ap.parse_args(argv)
    if args.quick:
        args.frames, args.size, args.block, args.repeats, args.train_steps = 40, 64, 8, 1, 2
    r = measure(args)
    text = markdown(r)
    print(text)
    if not args.quick:
        name = "denoise_io_overlap" + ("_cuda" if args.device == "cuda" else "")
        write_results(name, r, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
