"""Does temporal Noise2Noise (deepcad) keep the mean? Bias at 0.5 to 50 photons per pixel.

Poisson–Gaussian somatic movies (offset near 0) are simulated so that the clean movie holds a
given mean number of photons per pixel. Each training loss (and a variance-stabilised variant)
trains deepcad on the noisy movie itself; the output is compared with the clean ground truth:

- ``bias``: ``(mean(denoised) - mean(clean)) / (mean(clean) - offset)``, over the whole movie and
  inside the neurons' footprints (pixels above half a footprint's peak), in per cent;
- the same for the noisy input itself (the floor a finite movie sets on this measurement);
- SI-PSNR against the clean movie.

Variants: ``l2`` (the default loss), ``l1+l2`` (the former default), and ``vst+l1+l2``: the
generalised Anscombe transform with the simulator's exact camera parameters, training with l1+l2
in the stabilised domain, and the closed-form unbiased inverse (:mod:`cascope.preprocess.vst`).
Each is scored three ways:

- the network's own output;
- ``+ mean correction``: shifted by one constant so that it keeps the noisy movie's mean (the
  former default);
- ``+ intensity calibration`` (the default, ``DeepDenoiseConfig.mean_correction``): for deepcad
  the response curve measured on the interleaved frames, whose noise is independent, with the
  offset (:mod:`cascope.denoise.calibration`), as ``cascope denoise`` applies it.

Usage::

    python -m benchmarks.denoise_bias [--photons 0.5 1 5 50] [--steps 300] [--variants l2 l1+l2]
    python -m benchmarks.denoise_bias --quick     # a tiny run that checks the script works

Writes ``benchmarks/results/denoise_bias.{json,md}`` (after every row, so a stopped run keeps
what it measured; ``--append`` adds to an earlier run).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import cascope
from benchmarks._harness import quick_out, table, write_results
from cascope.config.denoise import DeepDenoiseConfig, DeepPredictConfig
from cascope.config.simulate import CameraParams
from cascope.denoise.deep import train_denoiser
from cascope.metrics import score_denoising
from cascope.preprocess.vst import generalized_anscombe, inverse_generalized_anscombe
from cascope.simulate import somatic

#: Offset near 0 (a few read-noise deviations above it, so nothing is clipped at 0 ADU).
CAMERA = CameraParams(gain=1.0, read_noise=0.5, offset=5.0)


def simulate(photons: float, frames: int, size: int, seed: int) -> tuple:
    """Somatic movie whose clean mean is ``photons`` photons per pixel above the offset."""
    common = {"n_frames": frames, "shape": (size, size), "seed": seed, "background": 0.0}
    probe = somatic(photons=10.0, camera=CAMERA, **common)
    per_unit = (float(probe.clean.mean()) - CAMERA.offset) / CAMERA.gain / 10.0
    return somatic(photons=photons / per_unit, camera=CAMERA, **common)


def relative_bias(out: np.ndarray, clean: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Per cent of the clean signal above the offset."""
    if mask is not None:
        out, clean = out[:, mask], clean[:, mask]
    c = float(clean.mean(dtype=np.float64))
    return 100.0 * (float(out.mean(dtype=np.float64)) - c) / (c - CAMERA.offset)


def run(
    variant: str, noisy: np.ndarray, args: argparse.Namespace, seed: int
) -> dict[str, np.ndarray]:
    """Train deepcad with one loss (optionally in the stabilised domain) and denoise.

    Returns the output with the mean correction (the default) and without it (the corrected
    output plus the constant the correction took off).
    """
    vst = variant.startswith("vst+")
    loss = variant.removeprefix("vst+")
    cam = {"gain": CAMERA.gain, "read_noise": CAMERA.read_noise * CAMERA.gain}
    data = generalized_anscombe(noisy, offset=CAMERA.offset, **cam) if vst else noisy
    cfg = DeepDenoiseConfig.model_validate(
        {
            "method": "deepcad",
            "loss": loss,
            "patch": (8, args.patch, args.patch),
            "depth": 3,
            "base": 8,
            "training": {"steps": args.steps, "batch_size": 4, "val_every": 50, "seed": seed},
        }
    )
    model, _ = train_denoiser(data, config=cfg, device="cpu")
    out = model.predict(data, config=DeepPredictConfig(), device="cpu")  # as `denoise` does
    assert out is not None
    if model.output_curve is not None:  # the calibration is a response curve: predict without
        model.output_curve = None
        raw = np.asarray(model.predict(data, config=DeepPredictConfig(), device="cpu"), np.float64)
    else:  # an affine calibration, folded into the output normalisation: undo it
        scale = float(model.provenance.get("intensity_scale", 1.0))
        shift = float(model.provenance.get("intensity_shift", 0.0))
        raw = (np.asarray(out, np.float64) - shift) / scale  # the network's own output
    offset_only = raw - raw.mean() + float(np.mean(data, dtype=np.float64))
    outs = {
        f"{variant} + intensity calibration": out,
        f"{variant} + mean correction": offset_only,
        variant: raw,
    }
    if vst:
        back = {"offset": CAMERA.offset, **cam}
        outs = {k: inverse_generalized_anscombe(v, **back) for k, v in outs.items()}
    return {k: np.asarray(v, np.float32) for k, v in outs.items()}


def write(rows: list[dict], meta: dict, name: str, out: Path) -> None:
    m = meta["movie"]
    lines = [
        f"# Mean bias of deepcad on simulated Poisson–Gaussian movies ({m['frames']} x "
        f"{m['size']} x {m['size']}, offset {CAMERA.offset:g} ADU)",
        "",
        f"Device: {meta['device']}. torch {torch.__version__}, cascope {cascope.__version__}.",
        f"deepcad trained from scratch on each noisy movie: {meta['budget']['steps']} steps x 4 "
        f"patches (8 x {meta['budget']['patch'][1]} x {meta['budget']['patch'][2]} frame pairs, "
        "depth 3, base 8), CPU. Camera: gain "
        f"{CAMERA.gain:g} ADU/e-, read noise {CAMERA.read_noise:g} e-. Bias = (mean(denoised) - "
        "mean(clean)) / (mean(clean) - offset), in per cent; 'footprints' = pixels above half "
        "of a neuron's peak; 'noisy' rows give the input's own deviation (the measurement floor).",
        "",
    ]
    order = {
        "noisy": 0,
        "l1+l2": 1,
        "l1+l2 + mean correction": 2,
        "l1+l2 + intensity calibration": 3,
        "l2": 4,
        "l2 + mean correction": 5,
        "l2 + intensity calibration": 6,
    }
    ordered = sorted(rows, key=lambda r: (r["photons"], r["seed"], order.get(r["variant"], 9)))
    lines += table(
        [
            "photons/pixel",
            "variant",
            "seed",
            "bias all (%)",
            "bias footprints (%)",
            "SI-PSNR (dB)",
            "time (s)",
        ],
        (
            [
                f"{r['photons']:g}",
                r["variant"],
                r["seed"],
                f"{r['bias_all_pct']:+.2f}",
                f"{r['bias_footprints_pct']:+.2f}",
                f"{r['si_psnr']:.2f}",
                f"{r['seconds']:.0f}",
            ]
            for r in ordered
        ),
        align="rlrrrrr",
    )
    if meta.get("parts"):
        lines += ["", f"Joined from runs side by side (`--merge`): {', '.join(meta['parts'])}."]
    write_results(name, {"meta": meta, "rows": rows}, lines, out=out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photons", type=float, nargs="+", default=[0.5, 1.0, 5.0, 50.0])
    ap.add_argument("--variants", nargs="+", default=["l2"])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--patch", type=int, default=48, help="patch Y and X (T is 8)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--append", action="store_true", help="keep the rows of an earlier run")
    ap.add_argument("--name", default="denoise_bias")
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="PART",
        help="only join the rows of earlier runs (results/PART.json, e.g. one per photon count "
        "run side by side) into results/NAME.{json,md}",
    )
    ap.add_argument("--quick", action="store_true", help="a tiny run into a scratch folder")
    ap.add_argument("--out", type=Path, help="results folder (default benchmarks/results)")
    args = ap.parse_args()
    if args.quick:
        args.photons, args.seeds, args.frames, args.size = [1.0], [0], 16, 32
        args.steps, args.patch = 10, 16
    out = quick_out(args.quick, args.out)
    if args.merge:
        parts = [json.loads((out / f"{p}.json").read_text()) for p in args.merge]
        seen: dict[tuple, dict] = {}
        for part in parts:  # each part scores the noisy movie too: keep one row per key
            for r in part["rows"]:
                seen[(r["photons"], r["seed"], r["variant"])] = r
        merged = list(seen.values())
        write(merged, {**parts[0]["meta"], "parts": args.merge}, args.name, out)
        return
    torch.set_num_threads(args.threads)
    rows: list[dict] = []
    if args.append and (out / f"{args.name}.json").exists():
        rows = json.loads((out / f"{args.name}.json").read_text())["rows"]
    meta = {
        "device": f"CPU only ({platform.machine()}, {torch.get_num_threads()} torch threads, "
        "shared with other jobs)",
        "cascope": cascope.__version__,
        "torch": torch.__version__,
        "movie": {"frames": args.frames, "size": args.size, "camera": CAMERA.model_dump()},
        "budget": {
            "steps": args.steps,
            "batch_size": 4,
            "patch": [8, args.patch, args.patch],
            "depth": 3,
        },
    }
    for seed in args.seeds:
        for photons in args.photons:
            sim = simulate(photons, args.frames, args.size, seed)
            noisy = sim.noisy.astype(np.float32)
            mask = (sim.footprints > 0.5 * sim.footprints.max(axis=(1, 2), keepdims=True)).any(0)

            def score(variant: str, result: np.ndarray, seconds: float, **kw: object) -> None:
                row = {
                    "photons": kw["photons"],
                    "seed": kw["seed"],
                    "variant": variant,
                    "bias_all_pct": relative_bias(result, kw["clean"]),  # type: ignore[arg-type]
                    "bias_footprints_pct": relative_bias(
                        result,
                        kw["clean"],  # type: ignore[arg-type]
                        kw["mask"],  # type: ignore[arg-type]
                    ),
                    "si_psnr": score_denoising(result, kw["clean"]).si_psnr,
                    "negative_below_offset_pct": 100.0 * float(np.mean(result < CAMERA.offset)),
                    "seconds": round(seconds, 1),
                }
                key = (row["photons"], row["seed"], variant)
                rows[:] = [r for r in rows if (r["photons"], r["seed"], r["variant"]) != key]
                rows.append(row)
                print(json.dumps(row), flush=True)
                write(rows, meta, args.name, out)

            ctx = {"photons": photons, "seed": seed, "clean": sim.clean, "mask": mask}
            score("noisy", noisy, 0.0, **ctx)
            for variant in args.variants:
                t0 = time.perf_counter()
                outs = run(variant, noisy, args, seed)
                for name, denoised in outs.items():
                    score(name, denoised, time.perf_counter() - t0, **ctx)


if __name__ == "__main__":
    main()
