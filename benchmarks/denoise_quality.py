"""Denoising quality on simulated somatic movies at two SNR levels, every method side by side.

Scores each method against the clean ground truth: SI-PSNR (and its improvement over the noisy
input), PSNR, SSIM and the mean Pearson correlation of neuron ΔF/F traces with the ground truth
(:func:`cascope.metrics.score_denoising`, the scores of every denoising benchmark).
Deep methods train from scratch on the noisy movie itself at a small CPU budget. The written
result (uint16, rounded) is scored, as a user would get it from ``cascope denoise``.

Usage::

    python -m benchmarks.denoise_quality [--frames 100] [--size 64] [--steps 300] [--quick]

Writes ``benchmarks/results/denoise_quality.{json,md}``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import cascope
from benchmarks._harness import quick_out, score_cells, table, write_results
from cascope.config.denoise import DeepDenoiseConfig, DeepPredictConfig
from cascope.denoise.classical import denoise_array
from cascope.denoise.deep import train_denoiser
from cascope.denoise.stream import cast_output
from cascope.metrics import score_denoising, si_psnr
from cascope.simulate import somatic


def run_classical(method: str, noisy: np.ndarray) -> np.ndarray:
    mode = "3d" if method in ("gaussian", "median") else "2d"
    return denoise_array(noisy, axes="TYX", method=method, mode=mode)


def run_deep(method: str, noisy: np.ndarray, steps: int) -> tuple[np.ndarray, dict]:
    t = 8
    cfg = DeepDenoiseConfig.model_validate(
        {
            "method": method,
            "patch": (t, 48, 48),
            "depth": 3,
            "base": 8,
            "training": {"steps": steps, "batch_size": 4, "lr": 2e-3, "val_every": 100},
        }
    )
    model, res = train_denoiser(noisy, config=cfg, device="cpu")
    out = model.predict(noisy, config=DeepPredictConfig(tile=(16, 64, 64)), device="cpu")
    window = 2 * t if method == "deepcad" else t
    info = {
        "train_seconds": round(res.seconds, 1),
        "steps": res.steps_done,
        "patches_seen": res.steps_done * 4,
        "voxels_per_patch": window * 48 * 48 if method != "n2v" else 48 * 48,
    }
    return out, info


def write(rows: list[dict], meta: dict, args: argparse.Namespace, name: str) -> None:
    meta["movie"]["photons"] = sorted({r["photons"] for r in rows})
    order = {"noisy": 0}
    lines = [
        f"# Denoising quality on simulated somatic movies ({args.frames} x {args.size} x "
        f"{args.size}, uint16)",
        "",
        f"Device: {meta['device']}. torch {torch.__version__}, cascope {cascope.__version__}.",
        f"Deep methods: trained from scratch on the noisy movie, {args.steps} steps x 4 patches "
        "(depth 3, base 8), CPU. Scores are of the written uint16 result (rounded), by "
        "`cascope.metrics.score_denoising` (trace corr: ΔF/F of footprint-weighted traces "
        "against the ground-truth ΔF/F).",
        "The peers run in their own environments and scripts: DeepCAD-RT in "
        "`deepcad_compare.py`, CAREamics in `careamics_compare.py`.",
        "",
        *table(
            ["photons", "method", "SI-PSNR (dB)", "gain (dB)", "PSNR (dB)", "SSIM"]
            + ["trace corr", "time (s)"],
            (
                [
                    f"{r['photons']:g}",
                    r["method"],
                    *score_cells(r, ["si_psnr", "si_psnr_gain", "psnr", "ssim", "trace_corr"]),
                    f"{r['seconds']:.1f}",
                ]
                for r in sorted(rows, key=lambda r: (r["photons"], order.get(r["method"], 1)))
            ),
            align="rlrrrrrr",
        ),
    ]
    write_results(name, {"meta": meta, "rows": rows}, lines, out=args.out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--photons", type=float, nargs="+", default=[4.0, 20.0])
    ap.add_argument("--quick", action="store_true", help="Tiny smoke run, results not kept.")
    ap.add_argument("--out", type=Path, default=None, help="Results folder.")
    ap.add_argument("--methods", nargs="+", help="only these methods (and the noisy baseline)")
    ap.add_argument(
        "--append",
        action="store_true",
        help="keep the rows of an earlier (interrupted) run, replacing those computed again",
    )
    args = ap.parse_args()
    if args.quick:
        args.frames, args.size, args.steps = 24, 48, 20
    torch.set_num_threads(2)
    classical = ["gaussian", "median", "bilateral"] + [
        m for m in ("bm3d", "bm4d") if importlib.util.find_spec(m) is not None
    ]
    deep = ["deepcad", "n2v", "n2v3d"]
    if args.methods:
        classical = [m for m in classical if m in args.methods]
        deep = [m for m in deep if m in args.methods]
    name = "denoise_quality"
    args.out = quick_out(args.quick, args.out)
    rows: list[dict] = []
    if args.append and (args.out / f"{name}.json").exists():
        rows = json.loads((args.out / f"{name}.json").read_text())["rows"]
    meta = {
        "device": f"CPU only ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, shared with other jobs); no GPU was available",
        "cascope": cascope.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "movie": {"frames": args.frames, "size": args.size, "photons": args.photons},
        "deep_budget": {
            "steps": args.steps,
            "batch_size": 4,
            "patch": [8, 48, 48],
            "depth": 3,
            "base": 8,
        },
        "not_run": {
            "DeepCAD-RT (deepcad==1.2.0)": "side by side in benchmarks/deepcad_compare.py",
            "CAREamics N2V (careamics==0.3.5)": "side by side in benchmarks/careamics_compare.py",
        },
    }
    for photons in args.photons:
        sim = somatic(n_frames=args.frames, shape=(args.size, args.size), photons=photons, seed=0)
        noisy = sim.noisy.astype(np.float32)

        def score(
            method: str,
            out: np.ndarray,
            seconds: float,
            extra: dict | None = None,
            *,
            photons: float = photons,
            sim: Any = sim,
            noisy: np.ndarray = noisy,
        ) -> None:
            written = cast_output(out, np.dtype(np.uint16)).astype(np.float32)
            truth = {"footprints": sim.footprints, "dff_true": sim.dff}
            row = {
                "photons": photons,
                "method": method,
                **score_denoising(written, sim.clean, noisy=noisy, **truth).to_dict(),
                "si_psnr_float": si_psnr(out, sim.clean),
                "seconds": round(seconds, 2),
            }
            row.update(extra or {})
            rows[:] = [r for r in rows if (r["photons"], r["method"]) != (photons, method)]
            rows.append(row)
            print(json.dumps(row), flush=True)
            write(rows, meta, args, name)  # after every row: a killed run keeps its results

        score("noisy", noisy, 0.0)
        for m in classical:
            t0 = time.perf_counter()
            out = run_classical(m, noisy)
            score(m, out, time.perf_counter() - t0)
        for m in deep:
            t0 = time.perf_counter()
            out, info = run_deep(m, noisy, args.steps)
            score(m, out, time.perf_counter() - t0, info)


if __name__ == "__main__":
    main()
