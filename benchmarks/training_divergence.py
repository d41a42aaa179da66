"""Training stability: a denoising run that blows up, with and without the trainer's rollback.

cascope's default temporal network (``deepcad``: depth 4, base 16, about 1 M weights) is trained
on ``cascope simulate somatic`` movies at DeepCAD-RT's batch size (1 patch per step, so twice the
optimiser steps of cascope's default batch of 2 for the same number of patches) and cascope's
learning rate (1e-3), validating every 100 steps. Without normalisation layers such a run can
blow up late (the validation loss jumps by orders of magnitude). Each movie is trained with the
rollback on (``divergence=2``, the denoisers' default: back to the best weights and optimiser
state with the learning rate halved) and, when it fired, again with it off (``divergence=None``;
the best weights are still restored at the end). Until the first rollback the two runs are the
same computation, so when none fires the second run is skipped and the table says so.

Usage::

    python -m benchmarks.training_divergence [--photons 4 20] [--seeds 0 1] [--batch 1]
        [--steps 960] [--lr 1e-3] [--threads 2] [--append] [--name NAME] [--quick]

A learning rate too high for the network blows the run up within the first steps, before any
validation; the trainer then compares with the untrained network, validated before the first
step::

    python -m benchmarks.training_divergence --photons 20 --batch 2 --steps 480 --lr 3e-3 \
        --name training_divergence_lr3e-3

Whether a run diverges depends on its exact trajectory (seed, thread count, library versions);
the table reports what happened in this run. Results:
``benchmarks/results/training_divergence.{json,md}`` (``NAME.{json,md}`` with ``--name``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Any

import numpy as np
import torch

from benchmarks._harness import RESULTS, table, write_results


def train_and_score(movie: Any, args: argparse.Namespace, seed: int, divergence: float | None):
    """Train one network on the noisy movie; score its prediction against the clean one."""
    from cascope.config.denoise import DeepDenoiseConfig, DeepPredictConfig
    from cascope.denoise.deep import train_denoiser
    from cascope.metrics import score_denoising

    cfg = DeepDenoiseConfig.model_validate(
        {
            "method": "deepcad",
            "patch": (args.patch_t, args.patch_xy, args.patch_xy),
            "training": {
                "steps": args.steps,
                "batch_size": args.batch,
                "lr": args.lr,
                "seed": seed,
                "divergence": divergence,
            },
        }
    )
    start = time.perf_counter()
    model, res = train_denoiser(movie.noisy, config=cfg, device="cpu")
    seconds = time.perf_counter() - start
    out = model.predict(movie.noisy, config=DeepPredictConfig(), device="cpu")
    truth = {"footprints": movie.footprints, "dff_true": movie.dff}
    scores = score_denoising(out, movie.clean, **truth)
    return {
        "divergence": divergence,
        "seed": seed,
        "train_s": round(seconds, 1),
        "rollbacks": res.rollbacks,
        "best_step": res.best_step,
        "val_losses": [[s, v] for s, v in res.val_losses],
        "max_train_loss": float(np.nanmax(res.losses)),
        "si_psnr": scores.si_psnr,
        "trace_corr": scores.trace_corr,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every (photons, seed) pair: the rollback on, then off when it fired."""
    from cascope.metrics import si_psnr
    from cascope.simulate import somatic

    torch.set_num_threads(args.threads)
    rows = []
    for photons in args.photons:
        movie = somatic(n_frames=args.frames, shape=(args.size, args.size), photons=photons, seed=0)
        noisy = si_psnr(movie.noisy, movie.clean)
        for seed in args.seeds:
            on = train_and_score(movie, args, seed, 2.0)
            off = train_and_score(movie, args, seed, None) if on["rollbacks"] else None
            rows.append({"photons": photons, "noisy_si_psnr": noisy, "on": on, "off": off})
            print(json.dumps(rows[-1]), flush=True)
    import cascope

    return {
        "command": " ".join(["python", "-m", "benchmarks.training_divergence", *sys.argv[1:]]),
        "rows": rows,
        "settings": {
            k: getattr(args, k)
            for k in ("frames", "size", "patch_t", "patch_xy", "batch", "steps", "lr", "threads")
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cascope": cascope.__version__,
        },
    }


def _val_curve(r: dict[str, Any]) -> str:
    return ", ".join(("untrained: " if s == 0 else "") + f"{v:.3g}" for s, v in r["val_losses"])


def markdown(result: dict[str, Any]) -> str:
    """The results as a table, with the validation curves."""
    s = result["settings"]
    lines = [
        "# Training stability: the rollback of a run that blows up",
        "",
        f"`{result.get('command', 'python -m benchmarks.training_divergence')}` (CPU, "
        f"{s['threads']} torch threads; torch {result['machine']['torch']}). "
        f"`deepcad` network (depth 4, base 16), {s['frames']} x {s['size']} x {s['size']} "
        f"`somatic` movies, patch {s['patch_t']} x {s['patch_xy']} x {s['patch_xy']}, batch "
        f"{s['batch']}, {s['steps']} steps, lr {s['lr']:g}, validation every 100 steps. "
        "SI-PSNR and trace correlation of the prediction against the clean movie.",
        "",
    ]
    cells: list[list[Any]] = []
    curves = []
    for row in result["rows"]:
        for name, r in (("on (default)", row["on"]), ("off", row["off"])):
            if r is None:
                cells.append(
                    [f"{row['photons']:g}", row["on"]["seed"], "off", "—", "—", "—"]
                    + ["same run (no rollback fired)", "", ""]
                )
                continue
            cells.append(
                [f"{row['photons']:g}", r["seed"], name]
                + [", ".join(map(str, r["rollbacks"])) or "—", r["best_step"]]
                + [f"{r['max_train_loss']:.3g}", f"{r['si_psnr']:.2f}", f"{r['trace_corr']:.4f}"]
                + [f"{r['train_s']:.0f}"]
            )
            curves.append(
                f"- {row['photons']:g} photons, seed {r['seed']}, rollback {name}: {_val_curve(r)}"
            )
    lines += table(
        ["photons", "seed", "rollback", "rollbacks at step", "best step", "max training loss"]
        + ["SI-PSNR (dB)", "trace r", "training (s)"],
        cells,
        align="rrllrrrrr",
    )
    lines += ["", f"Noisy movies: SI-PSNR {_noisy(result)}.", "", "Validation losses:", *curves]
    return "\n".join(lines) + "\n"


def _noisy(result: dict[str, Any]) -> str:
    seen = {row["photons"]: row["noisy_si_psnr"] for row in result["rows"]}
    return ", ".join(f"{v:.2f} dB at {p:g} photons" for p, v in seen.items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photons", type=float, nargs="+", default=[4.0, 20.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--patch-t", type=int, default=32)
    ap.add_argument("--patch-xy", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=960)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--append",
        action="store_true",
        help="Add these (photons, seed) rows to the saved results instead of replacing them.",
    )
    ap.add_argument(
        "--name",
        default="training_divergence",
        help="Results file name (without extension) in benchmarks/results/.",
    )
    ap.add_argument("--quick", action="store_true", help="Tiny smoke run, results not saved.")
    args = ap.parse_args(argv)
    if args.quick:
        args.append = False
        args.frames, args.size, args.photons, args.steps = 60, 48, [4.0], 20
        args.patch_t, args.patch_xy = 8, 32
    result = run(args)
    saved = RESULTS / f"{args.name}.json"
    if args.append and saved.is_file():
        earlier = json.loads(saved.read_text())
        if earlier["settings"] != result["settings"]:
            raise SystemExit("--append: the saved results used other settings; rerun them all")
        new = {(r["photons"], r["on"]["seed"]) for r in result["rows"]}
        kept = [r for r in earlier["rows"] if (r["photons"], r["on"]["seed"]) not in new]
        result["rows"] = sorted(
            kept + result["rows"], key=lambda r: (r["photons"], r["on"]["seed"])
        )
    text = markdown(result)
    if not args.quick:
        write_results(args.name, result, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
