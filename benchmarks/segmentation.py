"""Segmentation benchmark: 3-class U-Net vs VGG16-encoder U-Net on simulated axon volumes, and the
instance -> semantic -> instance round trip on the real curated labels.

Train on some simulated seeds, test on others; report per-class precision/recall/F1, the
row-normalised confusion diagonal, mean IoU, instance F1 and clDice, with training time and
parameter count. Sized for a shared 2-core CPU (about 10 minutes in all with the defaults).

Usage: python benchmarks/segmentation.py [--steps N] [--out benchmarks/results]
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
from cascope.config.segment import SegmenterConfig
from cascope.metrics import cldice
from cascope.models import count_parameters
from cascope.segment import (
    class_scores,
    instance_scores,
    instances_to_semantic,
    label_volume,
    predict_semantic,
    semantic_to_instances,
    train_segmenter,
)
from cascope.simulate import axons

TRAIN_SEEDS = (101, 102, 103)
TEST_SEEDS = (201, 202)
SHAPE = (24, 96, 96)
REAL_GT = (
    Path(__file__).resolve().parents[2] / "shared/data/real/axons_intensive_gt_instances_zyx.tif"
)


def _scores(sims, sems, insts) -> dict[str, float]:
    truth = np.concatenate([s.semantic.ravel() for s in sims])
    pred = np.concatenate([p.ravel() for p in sems])
    cs = class_scores(truth, pred)
    out = cs.as_dict()
    out.update(
        {
            f"confusion_diag_{n}": float(v)
            for n, v in zip(
                ("background", "axon", "border"), np.diag(cs.normalized_confusion), strict=True
            )
        }
    )
    out["instance_f1"] = float(
        np.mean([instance_scores(s.labels, i).f1 for s, i in zip(sims, insts, strict=True)])
    )
    out["cldice"] = float(
        np.mean([cldice(s.labels > 0, p > 0) for s, p in zip(sims, sems, strict=True)])
    )
    return out


def run_networks(steps: int) -> list[dict]:
    train = [axons(seed=s, shape=SHAPE) for s in TRAIN_SEEDS]
    test = [axons(seed=s, shape=SHAPE) for s in TEST_SEEDS]
    rows = []
    thr_insts = [label_volume(s.noisy, min_size=20) for s in test]
    thr_sems = [instances_to_semantic(i, planes="all") for i in thr_insts]
    rows.append(
        {
            "method": "otsu threshold + components",
            "parameters": 0,
            "train_seconds": 0.0,
            **_scores(test, thr_sems, thr_insts),
        }
    )
    archs = {
        "unet": {"arch": "unet", "depth": 3, "base": 16},
        "vgg16-unet": {"arch": "vgg16-unet", "width": 0.25, "blocks": 4},
    }
    for name, arch in archs.items():
        cfg = SegmenterConfig.model_validate(
            {
                **arch,
                "patch": (16, 48, 48),
                "semantic": {"planes": "all"},
                "augment": {"elastic": 0.0},
                "training": {"steps": steps, "batch_size": 2, "lr": 2e-3, "lr_schedule": "cosine"},
            }
        )
        t0 = time.perf_counter()
        model, result = train_segmenter(
            [s.noisy for s in train], [s.labels for s in train], config=cfg, device="cpu"
        )
        seconds = time.perf_counter() - t0
        sems = [predict_semantic(model, s.noisy, tile=(16, 48, 48)) for s in test]
        insts = [semantic_to_instances(p, min_size=20) for p in sems]
        rows.append(
            {
                "method": name,
                "parameters": count_parameters(model),
                "train_seconds": round(seconds, 1),
                "steps": steps,
                **_scores(test, sems, insts),
            }
        )
        print(name, rows[-1], flush=True)
    return rows


def run_round_trip() -> list[dict]:
    import cc3d
    import tifffile

    if not REAL_GT.is_file():
        return []
    gt = tifffile.imread(REAL_GT)
    pieces = cc3d.connected_components(gt, connectivity=26)
    rows = []
    for planes in ("yz", "all"):
        t0 = time.perf_counter()
        sem = instances_to_semantic(gt, planes=planes)
        back = semantic_to_instances(sem, min_size=100)
        s_lab = instance_scores(gt, back)
        s_piece = instance_scores(pieces * (np.bincount(pieces.ravel())[pieces] >= 100), back)
        rows.append(
            {
                "planes": planes,
                "border": 1,
                "gt_labels": int(len(np.unique(gt)) - 1),
                "gt_pieces_ge100": int(s_piece.tp + s_piece.fn),
                "recovered": int(back.max()),
                "f1_vs_labels": round(s_lab.f1, 3),
                "f1_vs_connected_pieces": round(s_piece.f1, 3),
                "foreground_kept": bool(((back > 0) == (gt > 0)).mean() > 0.999),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    nets = run_networks(args.steps)
    trip = run_round_trip()
    doc = {
        "benchmark": "segmentation",
        "cascope": cascope.__version__ if hasattr(cascope, "__version__") else "dev",
        "torch": torch.__version__,
        "device": f"CPU ({platform.processor() or platform.machine()}), 2 threads, shared",
        "train_seeds": TRAIN_SEEDS,
        "test_seeds": TEST_SEEDS,
        "shape": SHAPE,
        "networks": nets,
        "round_trip_real": trip,
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "segmentation.json").write_text(json.dumps(doc, indent=2))
    lines = [
        "# Segmentation benchmark",
        "",
        f"Simulated axon volumes {SHAPE}, train seeds {TRAIN_SEEDS}, test seeds {TEST_SEEDS}; "
        f"{args.steps} steps per network on a shared 2-core CPU, no GPU; networks trained from "
        "scratch (no pretrained VGG16 weights offline). Total wall time "
        f"{doc['total_seconds']} s.",
        "",
        "| method | params | train s | F1 bg | F1 axon | F1 border | recall bg/axon/border "
        "| mean IoU | instance F1 | clDice |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in nets:
        lines.append(
            f"| {r['method']} | {r['parameters']:,} | {r['train_seconds']} | "
            f"{r['f1_background']:.3f} | "
            f"{r['f1_axon']:.3f} | {r['f1_border']:.3f} | {r['recall_background']:.2f}/"
            f"{r['recall_axon']:.2f}/{r['recall_border']:.2f} | {r['mean_iou']:.3f} | "
            f"{r['instance_f1']:.3f} | {r['cldice']:.3f} |"
        )
    if trip:
        lines += [
            "",
            "## Round trip instance -> semantic -> instance (real curated labels, 36x1024x1024)",
            "",
            "| planes | GT labels | GT pieces >=100 vox | recovered | F1 vs labels "
            "| F1 vs connected pieces | s |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in trip:
            lines.append(
                f"| {r['planes']} | {r['gt_labels']} | {r['gt_pieces_ge100']} | {r['recovered']} | "
                f"{r['f1_vs_labels']} | {r['f1_vs_connected_pieces']} | {r['seconds']} |"
            )
    (args.out / "segmentation.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
