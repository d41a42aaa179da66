"""Event detection on simulated mSCT movies: PU 3D U-Net vs the intensity-threshold baseline.

Reports, at two SNR levels (photons per dendrite pixel), event F1 (centroid distance < 6) of the
U-Net and of the baseline (its z threshold tuned on the same validation movie), the mean per-event
Dice of matched events, the 25 %-labelled comparison (nnPU risk with unlabeled crops vs training
on positive crops only), and CPU detection throughput. Writes
``benchmarks/results/events_detection.{json,md}``.

Usage: ``python benchmarks/events_detection.py [--steps N] [--threads N]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cascope.config.events import DetectConfig, EventTrainConfig
from cascope.config.training import TrainingConfig
from cascope.events import (
    baseline_scores,
    detect_events,
    label_events,
    threshold_from_event_f1,
    train_event_detector,
)
from cascope.metrics import match_events
from cascope.simulate import mscts

RESULTS = Path(__file__).parent / "results"
SIM = {"n_frames": 128, "shape": (64, 64), "event_rate": 25.0}


def _drop_labels(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Keep a random ``fraction`` of the event instances (the rest become unlabeled)."""
    ids = np.unique(labels[labels > 0])
    rng = np.random.default_rng(seed)
    keep = rng.choice(ids, max(1, round(fraction * len(ids))), replace=False)
    return np.where(np.isin(labels, keep), labels, 0)


def _dice(pred_lab: np.ndarray, true_lab: np.ndarray, pairs: np.ndarray, ids: np.ndarray) -> float:
    """Mean Dice of matched events (pairs hold row indices; ``ids`` map true rows to label ids)."""
    scores = []
    for p_row, t_row in pairs:
        a = pred_lab == p_row + 1
        b = true_lab == ids[t_row]
        scores.append(2 * np.logical_and(a, b).sum() / (a.sum() + b.sum()))
    return float(np.mean(scores)) if scores else float("nan")


def _config(steps: int, **pu: Any) -> EventTrainConfig:
    return EventTrainConfig.model_validate(
        {
            "window": (16, 32, 32),
            "cache": (24, 48, 48),
            "model": {"depth": 3, "base": 8},
            "pu": {"pos_weight": 2.0, **pu},
            "training": TrainingConfig(steps=steps, batch_size=2, val_every=10_000, lr=2e-3),
        }
    )


def _evaluate(model: Any, test: Any, cfg: DetectConfig) -> dict[str, float]:
    lab = np.zeros(test.noisy.shape, np.uint32)
    t0 = time.perf_counter()
    found = detect_events(test.noisy, model, config=cfg, labels_out=lab)
    seconds = time.perf_counter() - t0
    m = match_events(found, test.events)
    dice = _dice(lab, test.labels, m.pairs, test.events["id"].to_numpy())
    return {
        "f1": m.f1,
        "precision": m.precision,
        "recall": m.recall,
        "dice": dice,
        "n_pred": len(found),
        "detect_seconds": seconds,
        "voxels_per_s": float(test.noisy.size / seconds),
    }


def run(steps: int) -> dict[str, Any]:
    """Run every comparison and return the results."""
    det = DetectConfig(tile=(16, 64, 64), block=64, halo=16, device="cpu")
    out: dict[str, Any] = {"steps": steps, "simulation": SIM, "snr": []}
    for photons in (10.0, 5.0):
        sim = {**SIM, "photons": photons}
        train = [mscts(seed=s, **sim) for s in (1, 2)]  # type: ignore[arg-type]
        valid, test = mscts(seed=3, **sim), mscts(seed=4, **sim)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        model, res = train_event_detector(
            [s.noisy for s in train],
            [s.labels for s in train],
            config=_config(steps),
            valid=([valid.noisy], [valid.labels]),
            device="cpu",
        )
        train_s = time.perf_counter() - t0
        unet = _evaluate(model, test, det)
        k, _ = threshold_from_event_f1(
            baseline_scores(valid.noisy), valid.events, thresholds=np.arange(1.0, 8.0, 0.25)
        )
        blab, btab = label_events(baseline_scores(test.noisy), threshold=k)
        bm = match_events(btab, test.events)
        base = {
            "f1": bm.f1,
            "precision": bm.precision,
            "recall": bm.recall,
            "k": k,
            "dice": _dice(blab, test.labels, bm.pairs, test.events["id"].to_numpy()),
        }
        row = {
            "photons": photons,
            "n_test_events": len(test.events),
            "train_seconds": train_s,
            "threshold": model.threshold,
            "unet": unet,
            "baseline": base,
        }
        if photons == 10.0:
            partial = [_drop_labels(s.labels, 0.25, seed=i) for i, s in enumerate(train)]
            vpart = _drop_labels(valid.labels, 0.25, seed=9)
            variants = {
                "nnpu_25pct": {"mode": "nnpu", "unlabeled_ratio": 1.0, "label_coverage": 0.25},
                "positives_only_25pct": {"mode": "sampling", "unlabeled_ratio": 0.0},
            }
            row["partial_labels"] = {}
            for name, pu in variants.items():
                m25, _ = train_event_detector(
                    [s.noisy for s in train],
                    partial,
                    config=_config(steps, **pu),
                    valid=([valid.noisy], [vpart]),
                    device="cpu",
                )
                row["partial_labels"][name] = _evaluate(m25, test, det)
        out["snr"].append(row)
        print(json.dumps(row, indent=1, default=float))
    return out


def _markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Event detection on simulated mSCTs (CPU)",
        "",
        f"{r['simulation']['n_frames']} frames × {r['simulation']['shape']}, event rate "
        f"{r['simulation']['event_rate']}; U-Net depth 3, base 8, {r['steps']} steps of 2 crops "
        "16×32×32, trained on 2 movies, thresholds (U-Net and baseline) tuned on a 3rd, scored "
        "on a 4th. F1: centroid distance < 6; Dice: mean over matched events.",
        "",
        "| photons | events | U-Net F1 | U-Net Dice | baseline F1 | baseline Dice | U-Net P/R |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in r["snr"]:
        u, b = s["unet"], s["baseline"]
        lines.append(
            f"| {s['photons']:g} | {s['n_test_events']} | {u['f1']:.3f} | {u['dice']:.3f} | "
            f"{b['f1']:.3f} | {b['dice']:.3f} | {u['precision']:.2f}/{u['recall']:.2f} |"
        )
    for s in r["snr"]:
        if "partial_labels" in s:
            lines += [
                "",
                f"25 % of events labelled (photons {s['photons']:g}):",
                "",
                "| training | F1 | Dice |",
                "|---|---|---|",
            ]
            for name, v in s["partial_labels"].items():
                lines.append(f"| {name} | {v['f1']:.3f} | {v['dice']:.3f} |")
            pl = s["partial_labels"]
            verdict = (
                "beats"
                if pl["nnpu_25pct"]["f1"] > pl["positives_only_25pct"]["f1"]
                else ("does NOT beat")
            )
            lines += [
                "",
                f"nnPU {verdict} positives-only training here (both thresholds were "
                "tuned on a validation movie that is itself only 25 % labelled).",
            ]
    u = r["snr"][0]["unet"]
    lines += [
        "",
        f"CPU detection throughput (file in memory → table, {r['threads']} thread(s)): "
        f"{u['voxels_per_s'] / 1e6:.2f} Mvoxel/s.",
        "",
        f"Machine: {r['machine']}; torch {r['torch']}. Wall time {r['seconds']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Parse arguments, run, write the results."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    r = run(args.steps)
    r.update(
        {
            "seconds": time.perf_counter() - t0,
            "threads": args.threads,
            "machine": f"{platform.processor() or platform.machine()}, no GPU",
            "torch": torch.__version__,
        }
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "events_detection.json").write_text(json.dumps(r, indent=2, default=float))
    (RESULTS / "events_detection.md").write_text(_markdown(r))
    print(_markdown(r))


if __name__ == "__main__":
    main()
