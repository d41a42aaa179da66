"""Denoise → detect: event F1 of the threshold detector on raw vs denoised low-SNR mSCT movies.

Simulated mSCT movies at low photon counts (resting dendrite brightness in photons per pixel per
frame, ``--photons``). Each movie is given to the intensity-threshold detector of ``cascope run``
as it is (``raw``) and after each denoiser the pipeline offers: ``gaussian`` and ``median`` with
the defaults of ``cascope run --denoise``, and ``deepcad`` self-trained on the movie itself with a
short budget (``--deepcad-steps`` steps of a small 3D U-Net: patch 16 x 32 x 32, depth 2, base 8;
the run's default network is far larger and trains 1000 steps). Events are matched to the ground
truth by centroid distance < 6 (frames and pixels, :func:`cascope.metrics.match_events`).

Two thresholds per input: the run's default z-score (4) and the z-score that maximises event F1 on
a validation movie prepared the same way (a different seed), which removes the effect of the
denoiser changing the noise scale. F1 is the mean over ``--movies`` test movies.

The event U-Net is left out: it would need one training per input kind to be fair (a network
trained on raw movies sees denoised ones as out of distribution), beyond the budget of this
benchmark on a shared CPU.

Usage: ``python -m benchmarks.denoise_detect [--photons 2 6] [--movies 2] [--deepcad-steps 40]
[--quick]``.
Writes ``benchmarks/results/denoise_detect.{json,md}``.
"""

from __future__ import annotations

import argparse
import logging
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._harness import quick_out, table, write_results
from cascope.config.denoise import DeepDenoiseConfig
from cascope.config.denoise_classical import ClassicalDenoiseConfig
from cascope.denoise.deep import denoise_deep
from cascope.denoise.stream import denoise_file
from cascope.events.detect import baseline_scores, label_events, threshold_from_event_f1
from cascope.io import read, write
from cascope.metrics import match_events
from cascope.simulate import mscts

INPUTS = ("raw", "gaussian", "median", "deepcad")
SIM: dict[str, Any] = {"n_frames": 64, "shape": (48, 48), "event_rate": 30.0}
DEFAULT_K = 4.0
K_GRID = np.arange(1.0, 8.01, 0.5)


def _denoised(kind: str, noisy: np.ndarray, folder: Path, steps: int) -> np.ndarray:
    if kind == "raw":
        return noisy.astype(np.float32)
    if kind == "deepcad":
        cfg = DeepDenoiseConfig.model_validate(
            {
                "method": "deepcad",
                "patch": (16, 32, 32),
                "depth": 2,
                "base": 8,
                "training": {"steps": steps, "val_every": 10_000},
            }
        )
        out = denoise_deep(noisy, method="deepcad", train=cfg, axes="TYX", device="cpu")
        assert out is not None
        return np.asarray(out, np.float32)
    src, dst = folder / "in.tif", folder / f"{kind}.tif"
    if not src.exists():
        write(src, noisy, axes="TYX")
    denoise_file(src, dst, config=ClassicalDenoiseConfig(method=kind), axes="TYX")  # type: ignore[arg-type]
    return np.asarray(read(dst).to_numpy(), np.float32)


def _f1(scores: np.ndarray, truth: Any, k: float) -> dict[str, float]:
    _, table = label_events(scores, threshold=k)
    m = match_events(table, truth, max_distance=6.0)
    return {"f1": m.f1, "precision": m.precision, "recall": m.recall, "n_pred": len(table)}


def run_level(photons: float, n_movies: int, steps: int) -> dict[str, Any]:
    """Every input kind at one photon level: tuned and default-threshold F1."""
    valid = mscts(seed=100, photons=photons, **SIM)
    tests = [mscts(seed=200 + i, photons=photons, **SIM) for i in range(n_movies)]
    out: dict[str, Any] = {"photons": photons, "n_true_events": [len(s.events) for s in tests]}
    for kind in INPUTS:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            v_scores = baseline_scores(_denoised(kind, valid.noisy, folder / "v", steps))
            k_best, _ = threshold_from_event_f1(v_scores, valid.events, thresholds=K_GRID)
            rows = []
            for i, sim in enumerate(tests):
                (folder / str(i)).mkdir()
                scores = baseline_scores(_denoised(kind, sim.noisy, folder / str(i), steps))
                rows.append(
                    {
                        "tuned": _f1(scores, sim.events, k_best),
                        "default": _f1(scores, sim.events, DEFAULT_K),
                    }
                )
        out[kind] = {
            "k_tuned": k_best,
            "f1_tuned": float(np.mean([r["tuned"]["f1"] for r in rows])),
            "f1_default": float(np.mean([r["default"]["f1"] for r in rows])),
            "recall_tuned": float(np.mean([r["tuned"]["recall"] for r in rows])),
            "precision_tuned": float(np.mean([r["tuned"]["precision"] for r in rows])),
            "per_movie": rows,
            "seconds": time.perf_counter() - t0,
        }
        logging.info(
            "%g photons, %s: F1 %.3f (k=%.1f), %.3f (k=4)",
            photons,
            kind,
            out[kind]["f1_tuned"],
            k_best,
            out[kind]["f1_default"],
        )
    return out


def _markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# Denoise → detect: event F1 of the threshold detector, raw vs denoised",
        "",
        f"`python -m benchmarks.denoise_detect` — {doc['movies']} test movies per level "
        f"({SIM['n_frames']} frames, {SIM['shape'][0]}×{SIM['shape'][1]} px, simulated mSCTs), "
        f"deepcad {doc['deepcad_steps']} steps (small network), CPU `{doc['machine']}`.",
        "",
        "F1 tuned: z threshold chosen on a validation movie prepared the same way; F1 at k=4: "
        "the default of `cascope run`. Mean over the test movies.",
        "",
        *table(
            ["photons/px", "input", "F1 tuned (k)", "precision", "recall", "F1 at k=4"],
            (
                [
                    f"{level['photons']:g}",
                    kind,
                    f"{level[kind]['f1_tuned']:.3f} ({level[kind]['k_tuned']:.1f})",
                    f"{level[kind]['precision_tuned']:.3f}",
                    f"{level[kind]['recall_tuned']:.3f}",
                    f"{level[kind]['f1_default']:.3f}",
                ]
                for level in doc["levels"]
                for kind in INPUTS
            ),
            align="rlrrrr",
        ),
        "",
        doc["conclusion"],
        "",
    ]
    return "\n".join(lines)


def _conclusion(levels: list[dict[str, Any]]) -> str:
    parts = []
    for level in levels:
        raw = level["raw"]
        best = max(INPUTS, key=lambda k: level[k]["f1_tuned"])
        best_default = max(INPUTS, key=lambda k: level[k]["f1_default"])
        parts.append(
            f"at {level['photons']:g} photons/px, with a tuned threshold the best input is {best} "
            f"(F1 {level[best]['f1_tuned']:.3f} vs raw {raw['f1_tuned']:.3f}); at the default "
            f"threshold {best_default} (F1 {level[best_default]['f1_default']:.3f} vs raw "
            f"{raw['f1_default']:.3f})"
        )
    return "Conclusion: " + "; ".join(parts) + "."


def main() -> None:
    """Run every level and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photons", type=float, nargs="+", default=[2.0, 6.0])
    parser.add_argument("--movies", type=int, default=2)
    parser.add_argument("--deepcad-steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="Tiny smoke run, results not kept.")
    parser.add_argument("--out", type=Path, default=None, help="Results folder.")
    args = parser.parse_args()
    if args.quick:
        args.photons, args.movies, args.deepcad_steps = [6.0], 1, 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("cascope", "cascope.training"):
        logging.getLogger(name).setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    levels = [run_level(p, args.movies, args.deepcad_steps) for p in args.photons]
    doc = {
        "movies": args.movies,
        "deepcad_steps": args.deepcad_steps,
        "simulation": SIM,
        "machine": platform.processor() or platform.machine(),
        "seconds": time.perf_counter() - t0,
        "levels": levels,
    }
    doc["conclusion"] = _conclusion(levels)
    write_results("denoise_detect", doc, _markdown(doc), out=quick_out(args.quick, args.out))
    logging.info("%s", doc["conclusion"])


if __name__ == "__main__":
    main()
