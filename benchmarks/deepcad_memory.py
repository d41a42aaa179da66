"""Peak host memory of denoising a long movie, file to file: cascope vs DeepCAD-RT 1.2.0.

Both tools denoise the same uint16 TIFF movies of growing length with an already trained
network of the same size (4 levels, 4 channels at the first level: host memory is set by how a
tool holds the movie, not by the network, and a small network keeps the CPU run short). Each
runs as a command-line program in its own process; the kernel reports the process's peak RSS
through ``wait4`` (:func:`benchmarks._harness.run_measured`). DeepCAD-RT runs with the Python
of its own environment (see ``benchmarks/deepcad_compare.py`` for the set-up) through
``benchmarks/_deepcad_driver.py``.

Usage::

    python -m benchmarks.deepcad_memory [--frames 500 1000 2000 6000] [--size 512]
        [--limit-gib 20] [--quick]

DeepCAD-RT reads the whole movie and keeps float copies of it; a length whose expected peak
(from the shorter movies' bytes per voxel) exceeds ``--limit-gib`` is not run for DeepCAD-RT
and the table says so, with the expected peak. Results:
``benchmarks/results/deepcad_memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._harness import poisson_frames, table, write_movie, write_results
from benchmarks.deepcad_compare import PEER, measured, run_driver

PATCH_T, PATCH_XY = 32, 64


def write_test_movie(path: Path, frames: int, size: int, seed: int) -> None:
    """A uint16 movie (Poisson noise on a smooth background), written a block at a time."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    background = 100.0 + 20.0 * np.sin(6 * yy) * np.cos(4 * xx)
    write_movie(path, (frames, size, size), poisson_frames(background, seed))


def train_models(
    peer: str | None, work: Path, *, fmap: int, steps: int, device: str, threads: int, seed: int
) -> dict[str, Any]:
    """Train both networks briefly on a short movie (their weights do not matter here).

    Both have 4 levels and ``fmap`` channels at the first level; DeepCAD-RT is left out without
    its Python (``peer``).
    """
    data = work / "train_movie"
    data.mkdir()
    write_test_movie(data / "short.tif", 4 * PATCH_T, 128, seed)
    gpu = device == "cuda"
    found: dict[str, Any] = {}
    if peer is not None:
        job = {
            "mode": "train",
            "datasets_path": str(data),
            "fmap": fmap,
            "patch_xy": PATCH_XY,
            "patch_t": PATCH_T,
            "overlap_factor": 0.25,
            "n_epochs": 1,
            "lr": 1e-3,
            "pth_dir": str(work / "deepcad_pth"),
            "onnx_dir": str(work / "deepcad_onnx"),
            "output_dir": str(work / "deepcad_train_results"),
            "train_datasets_size": 8,
            "select_img_num": 10**6,
            "threads": threads,
            "seed": seed,
            "facts": str(work / "deepcad_train.json"),
        }
        found["deepcad"], _, _ = run_driver(peer, job, "deepcad_train", work, threads, gpu=gpu)
    model = work / "cascope.model"
    cmd = [sys.executable, "-m", "cascope", "train", "denoiser", str(data / "short.tif")]
    cmd += ["--method", "deepcad", "-o", str(model), "--steps", str(steps), "--depth", "4"]
    cmd += ["--base", str(fmap), "--patch", str(PATCH_T), str(PATCH_XY), str(PATCH_XY)]
    cmd += ["--device", device]
    found["cascope_train_s"], _ = measured(cmd, work / "cascope_train.log", threads, gpu=gpu)
    found["cascope_model"] = str(model)
    return found


def deepcad_test_job(
    folder: Path, work: Path, trained: dict[str, Any], *, fmap: int, overlap: float, **run: Any
) -> dict[str, Any]:
    """The DeepCAD-RT job that denoises the movie in ``folder`` with the network trained by
    :func:`train_models` (``run``: ``threads`` and ``seed``)."""
    return {
        "mode": "test",
        "datasets_path": str(folder),
        "fmap": fmap,
        "patch_xy": PATCH_XY,
        "patch_t": PATCH_T,
        "test_overlap": overlap,
        "pth_dir": trained["model_dir"],
        "denoise_model": trained["model_name"],
        "output_dir": str(work / f"deepcad_results_{folder.name}"),
        "test_datasize": 10**9,
        "facts": str(work / f"deepcad_test_{folder.name}.json"),
        **run,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    import cascope

    peer = PEER.python(args.peer_python)
    if peer is None:
        raise SystemExit("no DeepCAD-RT Python: python -m benchmarks.deepcad_compare --setup DIR")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cascope-dcmem-") as tmp:
        work = Path(tmp)
        models = train_models(
            peer,
            work,
            fmap=args.fmap,
            steps=8,
            device="cpu",
            threads=args.threads,
            seed=args.seed,
        )
        dc = models["deepcad"]
        per_voxel: float | None = None
        for frames in sorted(args.frames):
            folder = work / f"movie_{frames}"
            folder.mkdir()
            movie = folder / "movie.tif"
            write_test_movie(movie, frames, args.size, args.seed)
            voxels = frames * args.size * args.size
            row: dict[str, Any] = {
                "frames": frames,
                "shape": [frames, args.size, args.size],
                "movie_gb": movie.stat().st_size / 1e9,
            }
            out = work / "cascope_out.tif"
            cmd = [sys.executable, "-m", "cascope", "denoise", str(movie), "-o", str(out)]
            cmd += ["--model", models["cascope_model"], "--device", "cpu", "--dtype", "same"]
            wall, rss = measured(cmd, work / "cascope_denoise.log", args.threads)
            row["cascope"] = {
                "peak_rss_mib": rss,
                "wall_s": wall,
                "mvoxel_per_s": voxels / wall / 1e6,
            }
            out.unlink()
            print(json.dumps(row), flush=True)
            expected = None if per_voxel is None else per_voxel * voxels / 2**30
            if expected is not None and expected > args.limit_gib:
                row["deepcad"] = {"skipped": True, "expected_peak_gib": expected}
            else:
                job = deepcad_test_job(
                    folder,
                    work,
                    dc,
                    fmap=args.fmap,
                    overlap=args.test_overlap,
                    threads=args.threads,
                    seed=args.seed,
                )
                _, wall, rss = run_driver(peer, job, "deepcad_test", work, args.threads)
                row["deepcad"] = {
                    "peak_rss_mib": rss,
                    "wall_s": wall,
                    "mvoxel_per_s": voxels / wall / 1e6,
                }
                per_voxel = max(per_voxel or 0.0, rss * 2**20 / voxels)
                shutil.rmtree(job["output_dir"])
            row["deepcad_bytes_per_voxel"] = per_voxel
            shutil.rmtree(folder)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {
        "benchmark": "deepcad_memory",
        "size": args.size,
        "network": {"levels": 4, "base": args.fmap, "patch_tyx": [PATCH_T, PATCH_XY, PATCH_XY]},
        "deepcad_test_overlap": args.test_overlap,
        "threads": args.threads,
        "limit_gib": args.limit_gib,
        "rows": rows,
        "versions": {
            "cascope": cascope.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "peer": dc.get("versions", {}),
        },
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "gpu": "none"},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Peak host memory, file to file: cascope vs DeepCAD-RT 1.2.0 (CPU)",
        "",
        f"Movies: uint16 TIFF, T x {r['size']} x {r['size']}. Both tools run a trained network "
        f"of the same size (4 levels, {r['network']['base']} channels at the first level, "
        f"patches {' x '.join(map(str, r['network']['patch_tyx']))}) as a command-line program "
        "in its own process (cascope: `cascope denoise --model`, defaults; DeepCAD-RT: its "
        f"`testing_class`, test overlap {r['deepcad_test_overlap']:g}). Peak RSS from `wait4`.",
        "",
    ]
    cells = []
    for row in r["rows"]:
        c, d = row["cascope"], row["deepcad"]
        if d.get("skipped"):
            dc = f"not run: expected {d['expected_peak_gib']:.1f} GiB > {r['limit_gib']:g} GiB"
            ratio, speed = "", ""
        else:
            dc = f"{d['peak_rss_mib']:.0f}"
            ratio = f"{d['peak_rss_mib'] / c['peak_rss_mib']:.1f}x"
            speed = f"{d['mvoxel_per_s']:.2f}"
        cells.append(
            [row["frames"], f"{row['movie_gb']:.2f}", f"{c['peak_rss_mib']:.0f}", dc, ratio]
            + [f"{c['mvoxel_per_s']:.2f}", speed]
        )
    lines += table(
        ["frames", "movie (GB)", "cascope peak RSS (MiB)", "DeepCAD-RT peak RSS (MiB)", "ratio"]
        + ["cascope Mvoxel/s", "DeepCAD-RT Mvoxel/s"],
        cells,
        align="rrrrrrr",
    )
    last = r["rows"][-1]
    bpv = last.get("deepcad_bytes_per_voxel")
    if bpv:
        gib = {n: bpv * n * 512 * 512 / 2**30 for n in (2000, 6000)}
        lines += [
            "",
            f"DeepCAD-RT holds about {bpv:.1f} bytes of host memory per voxel of the movie "
            "(it reads the whole movie, then keeps a float32 copy and two float64 arrays of its "
            f"size); at that rate a 2000 x 512 x 512 movie needs {gib[2000]:.1f} GiB and a "
            f"6000 x 512 x 512 one {gib[6000]:.1f} GiB. cascope reads and writes a block of "
            "frames at a time: its peak does not grow with the length.",
        ]
    lines += ["", *target_verdicts(r)]
    v = r["versions"]
    lines += [
        "",
        f"Versions: cascope {v['cascope']}, torch {v['torch']}, NumPy {v['numpy']}, Python "
        f"{v['python']}; peer: deepcad {v['peer'].get('deepcad', '?')}, NumPy "
        f"{v['peer'].get('numpy', '?')}. Machine: {r['machine']['cpus']} CPUs, "
        f"{r['machine']['platform']}, no GPU (DeepCAD-RT's `.cuda()` calls redirected to the "
        f"CPU); {r['threads']} torch threads. Speeds are comparable only within this run.",
        "",
        f"Command: `{r['command']}`",
        "",
    ]
    return "\n".join(lines)


#: The deep-denoising issue's memory target: peak host RAM for the 2000- and 6000-frame movies.
TARGET_GIB, TARGET_FRAMES = 2.0, (2000, 6000)


def target_verdicts(r: dict[str, Any]) -> list[str]:
    """The memory target, judged on the rows of the target's lengths that this run has."""
    rows = [row for row in r["rows"] if row["frames"] in TARGET_FRAMES and r["size"] == 512]
    if not rows:
        return [f"(No {' or '.join(map(str, TARGET_FRAMES))} x 512 x 512 movie in this run: the "
                "memory target is not judged.)"]  # fmt: skip
    out = [f"Target: peak host RAM at most {TARGET_GIB:g} GB for the 1.05 GB movie (2000 frames) "
           "and a 6000-frame one:"]  # fmt: skip
    for row in rows:
        mib = row["cascope"]["peak_rss_mib"]
        met = mib * 2**20 <= TARGET_GIB * 1e9
        verdict = "met" if met else "NOT met"
        out.append(f"- {row['frames']} frames: cascope {mib:.0f} MiB: {verdict}.")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-python", help="Python of the DeepCAD-RT venv.")
    ap.add_argument("--frames", type=int, nargs="+", default=[500, 1000, 2000, 6000])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--fmap", type=int, default=4, help="channels at the first level (both)")
    ap.add_argument("--test-overlap", type=float, default=0.25)
    ap.add_argument("--limit-gib", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="Tiny smoke run, results not saved.")
    args = ap.parse_args(argv)
    if args.quick:
        args.frames, args.size = [64, 128], 64
    result = measure(args)
    if not args.quick:
        write_results("deepcad_memory", result, markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
