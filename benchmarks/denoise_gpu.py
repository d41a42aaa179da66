"""GPU speed and memory of deep denoising, side by side with DeepCAD-RT 1.2.0 on the same GPU.

The deep-denoising issue's GPU targets, measured in one run:

1. **The network alone.** Voxels per second of the default temporal network (``deepcad``:
   depth 4, base 16, about 1 M parameters: DeepCAD-RT's budget) on batches of tiles already on
   the GPU, in float32, bfloat16, bfloat16 with channels-last (with and without cuDNN's
   autotuner), float16 with channels-last, and the best of those compiled with
   ``torch.compile``; then cascope's own batch predictor (``cascope.tiling.torch_predictor``),
   which adds the copies between host and GPU. The FLOPs per voxel are counted by
   ``torch.utils.flop_counter``, the GPU's bfloat16 peak is measured with a dense 8192^3 matrix
   product, and the roofline (peak / FLOPs per voxel) gives the fraction each row reaches.
2. **File to file.** ``cascope denoise MOVIE.tif -o OUT.tif --model M --device cuda --dtype
   same`` on a 2000 x 512 x 512 uint16 movie (1.05 GB, Poisson noise on a smooth background)
   with the defaults (on CUDA each block is normalised, blended and cast on the GPU, and
   blocks are read and written in background threads through pinned memory), with
   ``--blend-on host`` (those steps in NumPy), with ``--serial-io`` (reading, computing and
   writing one after the other), and with larger tiles; DeepCAD-RT's
   ``testing_class`` on the same movie with a network of the same size (fmap 16, patch 32 + 32
   frames x 64 x 64, test overlap 0.6: its demo settings), when its Python is given. Each runs
   as its own process: wall time, peak host RSS (``wait4``) and peak GPU memory and mean GPU
   use (``nvidia-smi``, every 50 ms).
   Both networks are trained briefly first (their weights do not change the speed).

Usage::

    python -m benchmarks.denoise_gpu [--frames 2000] [--size 512] [--peer-python PY]
        [--device cuda] [--quick]

DeepCAD-RT's Python is set up as in ``benchmarks/deepcad_compare.py`` (there with torch's CPU
build; on a GPU machine, a torch with CUDA). Without one, the DeepCAD-RT row is left out.
Writes ``benchmarks/results/denoise_gpu.{json,md}`` (not with ``--quick``, which runs a tiny
version, on the CPU too, to check the script).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._harness import gpu_name, table, write_results
from benchmarks.deepcad_compare import DRIVER, PEER, measured
from benchmarks.deepcad_memory import deepcad_test_job, train_models, write_test_movie
from cascope.config.denoise import DeepDenoiseConfig
from cascope.denoise.deep import build_network
from cascope.models import count_parameters
from cascope.pipeline import versions
from cascope.tiling import TorchPredictor, torch_predictor

#: (name, amp, channels-last, cuDNN autotuner) of the eager network rows
EAGER = (
    ("float32", "off", False, False),
    ("bf16", "bf16", False, False),
    ("bf16, channels-last", "bf16", True, False),
    ("bf16, channels-last, cuDNN autotuner", "bf16", True, True),
    ("fp16, channels-last", "fp16", True, False),
)
TARGETS = {"speedup": 50.0, "gvoxel_per_s": 1.9, "rss_bytes": 2e9}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(call: Callable[[], Any], device: torch.device, min_s: float) -> float:
    """Seconds per call: three warm-up calls (compilation, autotuning), then at least
    ``min_s`` seconds of calls."""
    for _ in range(3):
        call()
    _sync(device)
    n, t0 = 0, time.perf_counter()
    while True:
        call()
        n += 1
        if n >= 3:
            _sync(device)
            if time.perf_counter() - t0 >= min_s:
                return (time.perf_counter() - t0) / n


def flops_per_voxel(net: torch.nn.Module, tile: tuple[int, int, int]) -> float:
    """FLOPs of one forward pass per input voxel (convolutions and products, 2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 1, *tile)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        net.cpu().eval()(x)
    return counter.get_total_flops() / x.numel()


def bf16_peak_tflops(device: torch.device) -> float | None:
    """Measured bfloat16 throughput of a dense 8192^3 matrix product (the roofline's peak)."""
    if device.type != "cuda":
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    seconds = _timed(lambda: a @ b, device, 1.0)
    return 2 * 8192**3 / seconds / 1e12


def network_rows(
    device: torch.device, shapes: list[tuple[tuple[int, int, int], int]], min_s: float
) -> list[dict[str, Any]]:
    """Throughput of the default network on tiles already on ``device``."""
    rows: list[dict[str, Any]] = []

    def measure(name: str, amp: str, cl: bool, tune: bool, compiled: bool, tile, batch) -> None:
        torch.manual_seed(0)
        net = TorchPredictor(
            build_network(DeepDenoiseConfig()),
            device=device,
            amp=amp,
            channels_last=cl,
            compile=compiled,
        )  # the network exactly as cascope's prediction runs it
        x = torch.randn(batch, 1, *tile, device=device)
        if net.format is not None:  # as the tiles arrive: laid out once, not on every call
            x = x.contiguous(memory_format=net.format)
        old = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = tune
        try:
            seconds = _timed(lambda: net.tensors(x), device, min_s)
        finally:
            torch.backends.cudnn.benchmark = old
        voxels = batch * int(np.prod(tile))
        rows.append(
            {
                "variant": name,
                "tile": list(tile),
                "batch": batch,
                "seconds_per_batch": seconds,
                "gvoxel_per_s": voxels / seconds / 1e9,
                "peak_gpu_mib": (
                    torch.cuda.max_memory_allocated(device) / 2**20
                    if device.type == "cuda"
                    else None
                ),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    for name, amp, cl, tune in EAGER:
        if amp == "fp16" and device.type != "cuda":
            continue  # float16 autocast is a CUDA path
        for tile, batch in shapes:
            measure(name, amp, cl, tune, False, tile, batch)
    if device.type == "cuda":  # compile the two reduced precisions at their best eager shape
        for amp in ("bf16", "fp16"):
            best = max((r for r in rows if r["variant"] == f"{amp}, channels-last"),
                       key=lambda r: r["gvoxel_per_s"])  # fmt: skip
            tile, batch = tuple(best["tile"]), best["batch"]
            measure(f"{amp}, channels-last, compiled", amp, True, False, True, tile, batch)
    return rows


def predictor_rows(
    device: torch.device, shapes: list[tuple[tuple[int, int, int], int]], min_s: float
) -> list[dict[str, Any]]:
    """cascope's batch predictor: host arrays in, host arrays out (its defaults on ``device``)."""
    rows = []
    for tile, batch in shapes:
        torch.manual_seed(0)
        predict = torch_predictor(build_network(DeepDenoiseConfig()), device=device)
        x = np.random.default_rng(0).normal(size=(batch, 1, *tile)).astype(np.float32)
        seconds = _timed(lambda: predict(x), device, min_s)  # noqa: B023
        rows.append(
            {
                "variant": "cascope predictor (host copies included)",
                "tile": list(tile),
                "batch": batch,
                "seconds_per_batch": seconds,
                "gvoxel_per_s": x.size / seconds / 1e9,
                "peak_gpu_mib": None,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


@contextlib.contextmanager
def gpu_sampler(path: Path) -> Iterator[dict[str, float | None]]:
    """Sample the GPU's used memory (MiB) and use (%) every 50 ms while the block runs."""
    found: dict[str, float | None] = {"peak_gpu_mib": None, "gpu_busy_percent": None}
    if shutil.which("nvidia-smi") is None:
        yield found
        return
    query = ["nvidia-smi", "--query-gpu=memory.used,utilization.gpu"]
    with path.open("w") as fh:
        proc = subprocess.Popen([*query, "--format=csv,noheader,nounits", "-lms", "50"], stdout=fh)
        try:
            yield found
        finally:
            proc.terminate()
            proc.wait()
    samples = [
        [float(v) for v in line.split(",")]
        for line in path.read_text().splitlines()
        if line.count(",") == 1 and "N/A" not in line
    ]
    if samples:
        found["peak_gpu_mib"] = max(s[0] for s in samples)
        found["gpu_busy_percent"] = float(np.mean([s[1] for s in samples]))


def file_to_file(
    name: str, cmd: list[str], work: Path, args: argparse.Namespace, voxels: int
) -> dict[str, Any]:
    gpu = args.device == "cuda"
    with gpu_sampler(work / f"{name}.smi.csv") as smi:
        wall, rss = measured(cmd, work / f"{name}.log", args.threads, gpu=gpu)
    row = {
        "wall_s": wall,
        "mvoxel_per_s": voxels / wall / 1e6,
        "peak_rss_mib": rss,
        **smi,
    }
    print(json.dumps({"run": name, **row}), flush=True)
    return row


def end_to_end(args: argparse.Namespace, peer: str | None) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cascope-gpu-") as tmp:
        work = Path(tmp)
        models = train_models(
            peer,
            work,
            fmap=16,
            steps=args.train_steps,
            device=args.device,
            threads=args.threads,
            seed=args.seed,
        )
        for frames in sorted(args.frames):
            folder = work / f"movie_{frames}"
            folder.mkdir()
            movie = folder / "movie.tif"
            write_test_movie(movie, frames, args.size, args.seed)
            voxels = frames * args.size * args.size
            common = {"frames": frames, "movie_gb": movie.stat().st_size / 1e9}
            out = work / "out.tif"
            base = [sys.executable, "-m", "cascope", "denoise", str(movie), "-o", str(out)]
            base += ["--model", models["cascope_model"], "--device", args.device]
            base += ["--dtype", "same"]
            for label, options in args.settings:
                name = f"cascope_{frames}_{len(rows)}"
                row = file_to_file(name, [*base, *options], work, args, voxels)
                rows.append({"tool": "cascope", "options": label, **common, **row})
                out.unlink()
            if peer is not None and frames <= args.peer_max_frames:
                dc = models["deepcad"]
                job = deepcad_test_job(
                    folder, work, dc, fmap=16, overlap=0.6, threads=args.threads, seed=args.seed
                )
                job_file = work / f"deepcad_test_{frames}_job.json"
                job_file.write_text(json.dumps(job))
                cmd = [peer, str(DRIVER)]
                cmd.append(str(job_file))
                row = file_to_file(f"deepcad_{frames}", cmd, work, args, voxels)
                facts = json.loads(Path(job["facts"]).read_text())
                rows.append(
                    {
                        "tool": "DeepCAD-RT 1.2.0",
                        "options": "demo settings, test overlap 0.6",
                        **common,
                        **row,
                        "versions": facts["versions"],
                    }
                )
                shutil.rmtree(job["output_dir"])
            shutil.rmtree(folder)
    return {"rows": rows, "cascope_train_s": models["cascope_train_s"]}


def verdicts(r: dict[str, Any]) -> list[str]:
    """The issue's GPU targets, judged on this run."""
    lines = []
    net = [x for x in r["network"] if x["variant"] != "cascope predictor (host copies included)"]
    best = max(net, key=lambda x: x["gvoxel_per_s"])
    lines.append(
        f"- Network throughput of the base-16 model: best {best['gvoxel_per_s']:.3g} Gvoxel/s "
        f"({best['variant']}, tile {' x '.join(map(str, best['tile']))}, batch {best['batch']}"
        + (
            f", {best['gvoxel_per_s'] / r['roofline_gvoxel_per_s']:.1%} of the roofline"
            if r["roofline_gvoxel_per_s"]
            else ""
        )  # fmt: skip
        + f"); target {TARGETS['gvoxel_per_s']:g} Gvoxel/s: "
        + ("met." if best["gvoxel_per_s"] >= TARGETS["gvoxel_per_s"] else "not met.")
    )
    for frames in sorted({x["frames"] for x in r["end_to_end"]}):
        at = [x for x in r["end_to_end"] if x["frames"] == frames]
        ours = min((x for x in at if x["tool"] == "cascope"), key=lambda x: x["wall_s"])
        peer = next((x for x in at if x["tool"] != "cascope"), None)
        rss_ok = max(x["peak_rss_mib"] for x in at if x["tool"] == "cascope") * 2**20
        lines.append(
            f"- {frames} frames ({ours['movie_gb']:.2f} GB), file to file: cascope "
            f"{ours['wall_s']:.1f} s at best ({ours['options']})"
            + (
                f" vs DeepCAD-RT {peer['wall_s']:.1f} s, {peer['wall_s'] / ours['wall_s']:.1f}x "
                f"faster; target {TARGETS['speedup']:g}x: "
                + ("met" if peer["wall_s"] / ours["wall_s"] >= TARGETS["speedup"] else "not met")
                if peer
                else " (DeepCAD-RT not run)"
            )
            + f". cascope's peak host RSS at most {rss_ok / 2**20:.0f} MiB; target 2 GB: "
            + ("met." if rss_ok <= TARGETS["rss_bytes"] else "not met.")
        )
    return lines


def markdown(r: dict[str, Any]) -> str:
    peak = r["bf16_peak_tflops"]
    lines = [
        f"# Deep denoising on the GPU: network throughput and file to file ({r['gpu']})",
        "",
        f"Network: `deepcad` defaults (depth 4, base 16, {r['parameters']} parameters), "
        f"{r['flops_per_voxel'] / 1e3:.1f} kFLOP per input voxel (`torch.utils.flop_counter`). "
        + (
            f"Measured bfloat16 peak (8192^3 matrix product): {peak:.0f} TFLOP/s, so the "
            f"roofline is {r['roofline_gvoxel_per_s']:.2f} Gvoxel/s."
            if peak
            else "No GPU: no peak and no roofline."
        ),
        "",
        *table(
            ["network", "tile", "batch", "ms per batch", "Gvoxel/s", "of the roofline"]
            + ["peak GPU MiB"],
            (
                [
                    x["variant"],
                    " x ".join(map(str, x["tile"])),
                    x["batch"],
                    f"{x['seconds_per_batch'] * 1e3:.2f}",
                    f"{x['gvoxel_per_s']:.3g}",
                    _fraction(x["gvoxel_per_s"], r["roofline_gvoxel_per_s"]),
                    _num(x["peak_gpu_mib"]),
                ]
                for x in r["network"]
            ),
            align="llrrrrr",
        ),
    ]
    lines += [
        "",
        f"File to file: uint16 TIFF movies, T x {r['size']} x {r['size']}, written to a uint16 "
        f"TIFF; each tool in its own process ({r['threads']} CPU threads), start-up included. "
        "cascope: `cascope denoise --model M --device "
        f"{r['device']} --dtype same` plus the options shown; DeepCAD-RT: its `testing_class` "
        "(fmap 16, patch 32 + 32 frames x 64 x 64, test overlap 0.6).",
        "",
        *table(
            ["frames", "movie (GB)", "tool", "options", "wall (s)", "Mvoxel/s"]
            + ["peak host RSS (MiB)", "peak GPU memory (MiB)", "GPU busy (%)"],
            (
                [
                    x["frames"],
                    f"{x['movie_gb']:.2f}",
                    x["tool"],
                    x["options"],
                    f"{x['wall_s']:.1f}",
                    f"{x['mvoxel_per_s']:.1f}",
                    f"{x['peak_rss_mib']:.0f}",
                    _num(x.get("peak_gpu_mib")),
                    _num(x.get("gpu_busy_percent")),
                ]
                for x in r["end_to_end"]
            ),
            align="rrllrrrrr",
        ),
    ]
    v = r["versions"]
    lines += [
        "",
        "Targets of the deep-denoising issue (GPU):",
        *verdicts(r),
        "",
        f"Versions: cascope {v['cascope']}, torch {v['torch']}, NumPy {v['numpy']}, Python "
        f"{v['python']}"
        + (
            "; DeepCAD-RT's environment: "
            + ", ".join(f"{k} {v}" for k, v in r["peer_versions"].items())
            if r.get("peer_versions")
            else ""
        )
        + f". Machine: {r['machine']}.",
        "",
        f"Command: `{r['command']}`",
        "",
    ]
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.0f}"


def _fraction(x: float, of: float | None) -> str:
    return f"{x / of:.1%}" if of else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--frames", type=int, nargs="+", default=[2000])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--peer-python", help="Python of a DeepCAD-RT environment.")
    ap.add_argument(
        "--peer-max-frames", type=int, default=2000, help="Longest movie DeepCAD-RT is given."
    )
    ap.add_argument("--train-steps", type=int, default=50)
    ap.add_argument("--min-seconds", type=float, default=1.0, help="Timing per network row.")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="Tiny run to check the script.")
    args = ap.parse_args(argv)
    shapes = [((32, 128, 128), 2), ((32, 128, 128), 8), ((32, 128, 128), 32),
              ((64, 256, 256), 1), ((64, 256, 256), 4)]  # fmt: skip
    args.settings = [
        ("defaults (tile 32 x 128 x 128, batch 2; blocks blended on the GPU)", []),
        ("defaults, --blend-on host (blocks blended in NumPy)", ["--blend-on", "host"]),
        ("defaults, --serial-io (read, compute, write in turn)", ["--serial-io"]),
        ("tile 64 x 256 x 256, batch 4", ["--tile", "64", "256", "256", "--batch-size", "4"]),
        (
            "tile 64 x 256 x 256, batch 4, --compile",
            ["--tile", "64", "256", "256", "--batch-size", "4", "--compile"],
        ),
    ]
    if args.quick:
        args.frames, args.size, args.train_steps, args.min_seconds = [48], 64, 2, 0.05
        shapes = [((8, 32, 32), 1), ((8, 32, 32), 2)]
        args.settings = [
            ("defaults", []),
            ("--blend-on device", ["--blend-on", "device"]),
            ("--blend-on device --serial-io", ["--blend-on", "device", "--serial-io"]),
            ("tile 8 x 32 x 32", ["--tile", "8", "32", "32"]),
        ]
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    peer = PEER.python(args.peer_python)
    net = build_network(DeepDenoiseConfig())
    per_voxel = flops_per_voxel(net, (32, 128, 128))
    peak = bf16_peak_tflops(device)
    network = network_rows(device, shapes, args.min_seconds)
    network += predictor_rows(device, shapes[:2], args.min_seconds)
    e2e = end_to_end(args, peer)
    r = {
        "benchmark": "denoise_gpu",
        "device": args.device,
        "gpu": gpu_name() if device.type == "cuda" else "no GPU (a check of the script)",
        "parameters": count_parameters(net),
        "flops_per_voxel": per_voxel,
        "bf16_peak_tflops": peak,
        "roofline_gvoxel_per_s": peak * 1e12 / per_voxel / 1e9 if peak else None,
        "network": network,
        "size": args.size,
        "threads": args.threads,
        "end_to_end": e2e["rows"],
        "cascope_train_s": e2e["cascope_train_s"],
        "peer_versions": next((x["versions"] for x in e2e["rows"] if "versions" in x), None),
        "versions": versions(),
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
        "command": " ".join(["python", *sys.argv]),
    }
    md = markdown(r)
    print(md)
    if not args.quick:
        write_results("denoise_gpu", r, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
