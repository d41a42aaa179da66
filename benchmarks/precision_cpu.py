"""bfloat16 against float32 on the CPU: training time, prediction time and quality, side by side.

cascope's networks compute in float32 on the CPU by default (``amp: auto``) and in bfloat16 with
``amp: bf16``, which pays only on a CPU with bfloat16 instructions (AVX512-BF16 or AMX). This
script trains the default temporal network (``deepcad``: depth 4, base 16, about 1 M
parameters) on simulated somatic movies with the ``deepcad_compare.py`` budget (960 patch
pairs of 32 x 64 x 64, batch 2, lr 1e-3) three times in one process: ``amp: off`` (float32,
channels-last: the default), ``amp: bf16`` in the default memory layout (``channels_last:
false``) and ``amp: bf16`` in channels-last (what ``--amp bf16`` does); then it denoises the
whole movie with the same precision and layout and scores it against the clean movie (SI-PSNR,
trace correlation).
All runs use the same seed, so they see the same patches.

Usage::

    python -m benchmarks.precision_cpu [--photons 4 20] [--threads 2] [--quick]

Writes ``benchmarks/results/precision_cpu.{json,md}``. Timings are ratios within this run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import torch

from benchmarks._harness import table, write_results
from cascope.config.denoise import DeepDenoiseConfig, DeepPredictConfig
from cascope.denoise.deep import train_denoiser
from cascope.metrics import score_denoising
from cascope.pipeline import versions
from cascope.simulate import somatic
from cascope.training import cpu_has_native_bf16

#: (amp, channels_last) of the runs; the first is the CPU default every other is compared with
RUNS = (("off", True), ("bf16", False), ("bf16", True))


def run(sim: Any, amp: str, channels_last: bool, args: argparse.Namespace) -> dict[str, Any]:
    steps = args.patches // 2
    cfg = DeepDenoiseConfig.model_validate(
        {
            "method": "deepcad",
            "patch": (args.patch_t, args.patch_xy, args.patch_xy),
            "training": {
                "steps": steps,
                "batch_size": 2,
                "seed": 0,
                "amp": amp,
                "channels_last": channels_last,
                "checkpoint_every": 10**6,
                "val_every": min(100, steps),
            },
        }
    )
    model, result = train_denoiser(sim.noisy, config=cfg, device="cpu")
    t0 = time.perf_counter()
    predict_cfg = DeepPredictConfig(amp=amp, channels_last=channels_last)
    out = model.predict(sim.noisy, config=predict_cfg, device="cpu")
    predict_s = time.perf_counter() - t0
    assert out is not None
    scores = score_denoising(out, sim.clean, footprints=sim.footprints, dff_true=sim.dff)
    return {
        "amp": amp,
        "layout": "channels-last" if channels_last else "default",
        "precision": model.provenance["precision"],
        "float32_steps": model.provenance["float32_steps"],
        "patches": steps * 2,
        "train_s": round(result.seconds, 1),
        "predict_s": round(predict_s, 2),
        "si_psnr": round(scores.si_psnr, 2),
        "trace_corr": round(float(scores.trace_corr), 4),
    }


def markdown(r: dict[str, Any]) -> str:
    m = r["movie"]
    lines = [
        "# bfloat16 against float32 on the CPU (default temporal network)",
        "",
        f"Movies: `cascope.simulate.somatic`, {m['frames']} x {m['size']} x {m['size']}, seed 0. "
        f"Training: `deepcad`, depth 4, base 16, {r['rows'][0]['patches']} patch pairs of "
        f"{r['patch']}, batch 2, lr 1e-3, the same seed in every run; prediction of the whole "
        f"movie (tiles 32 x 128 x 128) in the same precision and layout. {r['threads']} torch "
        f"threads. This CPU computes bfloat16 in hardware: {'yes' if r['native_bf16'] else 'no'}.",
        "",
        *table(
            ["photons", "amp", "layout", "computed in", "train (s)", "denoise (s)"]
            + ["SI-PSNR (dB)", "trace corr", "steps redone in float32"],
            (
                [f"{row['photons']:g}", row["amp"], row["layout"], row["precision"]]
                + [f"{row['train_s']:.1f}", f"{row['predict_s']:.1f}", f"{row['si_psnr']:.2f}"]
                + [f"{row['trace_corr']:.4f}", ", ".join(map(str, row["float32_steps"])) or "none"]
                for row in r["rows"]
            ),
            align="rlllrrrrl",
        ),
        "",
    ]
    for photons in sorted({row["photons"] for row in r["rows"]}):
        off, *others = (row for row in r["rows"] if row["photons"] == photons)
        for bf in others:
            lines.append(
                f"- {photons:g} photons, bfloat16 in the {bf['layout']} layout against float32: "
                f"trains {off['train_s'] / bf['train_s']:.2f}x and denoises "
                f"{off['predict_s'] / bf['predict_s']:.2f}x as fast; SI-PSNR "
                f"{bf['si_psnr'] - off['si_psnr']:+.2f} dB, trace correlation "
                f"{bf['trace_corr'] - off['trace_corr']:+.4f}."
            )
    lines += [
        "",
        f"Versions: cascope {r['versions']['cascope']}, torch {r['versions']['torch']}, NumPy "
        f"{r['versions']['numpy']}, Python {r['versions']['python']}. Machine: "
        f"{r['machine']}; GPU: none.",
        "",
        f"Command: `{r['command']}`",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photons", type=float, nargs="+", default=[4.0, 20.0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--patches", type=int, default=960)
    ap.add_argument("--patch-t", type=int, default=32)
    ap.add_argument("--patch-xy", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="Tiny smoke run, results not saved.")
    args = ap.parse_args(argv)
    if args.quick:
        args.frames, args.size, args.patches, args.patch_t, args.patch_xy = 48, 48, 8, 8, 32
        args.photons = args.photons[:1]
    torch.set_num_threads(args.threads)
    rows = []
    for photons in args.photons:
        sim = somatic(n_frames=args.frames, shape=(args.size, args.size), photons=photons, seed=0)
        for amp, channels_last in RUNS:
            rows.append({"photons": photons, **run(sim, amp, channels_last, args)})
            print(json.dumps(rows[-1]), flush=True)
    r = {
        "benchmark": "precision_cpu",
        "movie": {"frames": args.frames, "size": args.size, "photons": args.photons},
        "patch": f"{args.patch_t} + {args.patch_t} frames x {args.patch_xy} x {args.patch_xy}",
        "threads": args.threads,
        "native_bf16": cpu_has_native_bf16(),
        "rows": rows,
        "versions": versions(),
        "machine": f"{platform.machine()}, {platform.platform()}",
        "command": "python -m benchmarks.precision_cpu",
    }
    md = markdown(r)
    print(md)
    if not args.quick:
        write_results("precision_cpu", r, md)


if __name__ == "__main__":
    main()
