"""Round trip instance -> semantic -> instance on the real curated axon labels (and on simulated
volumes), with the ceiling that the labels themselves allow and where the round trip loses.

The curated labels are not connected objects (a label can be made of many disconnected pieces),
and no class map can tell which pieces belong together; so the F1 of the labels' own 26-connected
pieces against the labels is the ceiling of any conversion, reported beside the round trip.

Updates the round-trip part of ``segmentation.json`` (the network rows are left as they are) and
rewrites ``segmentation.md`` from it (:func:`write_markdown`, which ``segmentation.py`` uses too).
CPU only, about a minute on a shared 2-core machine. Needs the real curated labels.

Usage: python -m benchmarks.segmentation_roundtrip [--out benchmarks/results] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from benchmarks._harness import ROOT, quick_out, table, write_results
from cascope.metrics import match_instances
from cascope.segment import instances_to_semantic, semantic_to_instances
from cascope.simulate import axons

REAL_GT = ROOT.parent / "shared/data/real/axons_intensive_gt_instances_zyx.tif"
MIN_SIZES = (100, 1000)  # 1000 is the reference pipeline's "keep >= 1000 voxels"
SIM_SEEDS = (201, 202)
SIM_SHAPE = (24, 96, 96)


def _at_least(labels: NDArray[np.integer], n: int) -> NDArray[np.integer]:
    return np.where(np.bincount(labels.ravel())[labels] >= n, labels, 0)


def _purity(pred: NDArray[np.integer], truth: NDArray[np.integer]) -> float:
    """Fraction of foreground voxels in the majority true label of their predicted instance."""
    fg = truth > 0
    pairs, counts = np.unique(np.stack([pred[fg], truth[fg]]), axis=1, return_counts=True)
    best = np.zeros(int(pred.max()) + 1, np.int64)
    np.maximum.at(best, pairs[0], counts)
    return float(best.sum() / fg.sum())


def _losses(
    gt: NDArray[np.integer], pieces: NDArray[np.integer], back: NDArray[np.integer], min_size: int
) -> dict[str, int]:
    """Where the round trip loses at IoU 0.5: unmatched labels and unmatched recovered objects."""
    m = match_instances(back, gt)
    fg = gt > 0
    matched_true = set(m.pairs[:, 1].tolist())
    matched_pred = set(m.pairs[:, 0].tolist())
    label_size = np.bincount(gt.ravel())
    best_piece = np.zeros_like(label_size)
    ids, inverse = np.unique(pieces[fg], return_inverse=True)
    piece_label = np.zeros(len(ids), np.int64)
    piece_label[inverse] = gt[fg]
    np.maximum.at(best_piece, piece_label, np.bincount(inverse))
    labels = np.flatnonzero(label_size)[1:]
    missed = [int(lab) for lab in labels if lab not in matched_true]
    tiny = sum(label_size[lab] < min_size for lab in missed)
    split = sum(
        label_size[lab] >= min_size and best_piece[lab] * 2 < label_size[lab] for lab in missed
    )
    # an unmatched recovered object inside one label is a fragment, else it mixes labels
    codes, inter = np.unique(np.stack([back[fg], gt[fg]]), axis=1, return_counts=True)
    order = np.lexsort((inter, codes[0]))  # per recovered object, its largest overlap last
    last = np.r_[codes[0][order][1:] != codes[0][order][:-1], True]
    share = np.zeros(int(back.max()) + 1)
    major = np.zeros(int(back.max()) + 1, np.int64)
    share[codes[0][order][last]] = inter[order][last]
    major[codes[0][order][last]] = codes[1][order][last]
    size = np.bincount(back.ravel())
    extra = [int(p) for p in np.flatnonzero(size)[1:] if p not in matched_pred]
    fragments = [p for p in extra if share[p] >= 0.9 * size[p]]
    largest = int(np.argmax(label_size[1:]) + 1)
    merged = 0
    for lab in missed:
        if label_size[lab] >= min_size:
            best = np.bincount(back[gt == lab], minlength=2)
            merged += int(major[int(np.argmax(best[1:]) + 1)] != lab)
    return {
        "labels_missed": len(missed),
        "labels_missed_smaller_than_min_size": int(tiny),
        "labels_missed_without_a_piece_of_half": int(split),
        "labels_missed_merged_into_another_label": merged,
        "recovered_unmatched": len(extra),
        "recovered_unmatched_inside_one_label": len(fragments),
        "recovered_unmatched_inside_the_largest_label": int(
            sum(major[p] == largest for p in fragments)
        ),
    }


def run_real(path: Path = REAL_GT) -> tuple[list[dict], dict]:
    """Round trip on the curated labels for both ring modes and both minimum sizes."""
    import cc3d
    import tifffile

    gt = tifffile.imread(path)
    pieces = cc3d.connected_components(gt, connectivity=26)
    label_size = np.bincount(gt.ravel())
    largest = int(np.argmax(label_size[1:]) + 1)
    big = np.bincount(pieces[gt == largest])
    facts = {
        "shape": list(gt.shape),
        "labels": int(np.count_nonzero(label_size[1:])),
        "pieces_26": int(pieces.max()),
        "pieces_26_ge100": int(np.count_nonzero(np.bincount(pieces.ravel())[1:] >= 100)),
        "largest_label": largest,
        "largest_label_share_of_foreground": round(float(label_size[largest] / (gt > 0).sum()), 3),
        "largest_label_pieces_ge100": int(np.count_nonzero(big >= 100)),
    }
    rows = []
    for planes in ("yz", "all"):
        t0 = time.perf_counter()
        sem = instances_to_semantic(gt, planes=planes)
        t1 = time.perf_counter()
        back = semantic_to_instances(sem, planes=planes)
        t2 = time.perf_counter()
        for min_size in MIN_SIZES:
            kept = _at_least(back, min_size)
            ref = _at_least(pieces, min_size)
            rows.append(
                {
                    "planes": planes,
                    "border": 1,
                    "min_size": min_size,
                    "gt_labels": facts["labels"],
                    "gt_pieces": int(len(np.unique(ref)) - 1),
                    "recovered": int(len(np.unique(kept)) - 1),
                    "f1_vs_labels": round(match_instances(kept, gt).f1, 3),
                    "ceiling_pieces_vs_labels": round(match_instances(ref, gt).f1, 3),
                    "f1_vs_connected_pieces": round(match_instances(kept, ref).f1, 3),
                    "purity": round(_purity(back, gt), 3),
                    "foreground_kept": bool(((back > 0) == (gt > 0)).all()),
                    "seconds_to_semantic": round(t1 - t0, 1),
                    "seconds_to_instances": round(t2 - t1, 1),
                    **_losses(gt, pieces, kept, min_size),
                }
            )
            print(rows[-1], flush=True)
    return rows, facts


def run_simulated() -> list[dict]:
    """Round trip of simulated ground truth: the test seeds, default and dense, planes all."""
    import cc3d

    rows = []
    for density, seed in itertools.product(("default", "dense"), SIM_SEEDS):
        sim = (
            axons(seed=seed, shape=SIM_SHAPE)
            if density == "default"
            else axons(seed=seed, shape=SIM_SHAPE, density="dense")
        )
        sem = instances_to_semantic(sim.labels, planes="all")
        back = semantic_to_instances(sem, planes="all")
        pieces = cc3d.connected_components(sim.labels, connectivity=26)
        rows.append(
            {
                "seed": seed,
                "density": density,
                "labels": int(sim.labels.max()),
                "recovered": int(back.max()),
                "f1_vs_labels": round(match_instances(back, sim.labels).f1, 3),
                "ceiling_pieces_vs_labels": round(match_instances(pieces, sim.labels).f1, 3),
                "purity": round(_purity(back, sim.labels), 3),
            }
        )
        print(rows[-1], flush=True)
    return rows


def round_trip_notes(
    rows: list[dict], facts: dict, sim: list[dict], *, alone: bool = False
) -> list[str]:
    """Notes for the markdown, written from the numbers (``alone``: this script ran by itself,
    so the network rows were scored by an earlier run)."""
    yz = {r["min_size"]: r for r in rows if r["planes"] == "yz"}
    r1, r2 = yz[MIN_SIZES[0]], yz[MIN_SIZES[1]]
    sim_f1 = ", ".join(
        f"{r['f1_vs_labels']:.3f} (ceiling {r['ceiling_pieces_vs_labels']}, purity {r['purity']})"
        for r in sim
    )
    return [
        f"The 0.95 target is not reachable on these labels: their {facts['labels']} labels form "
        f"{facts['pieces_26']} 26-connected pieces ({facts['pieces_26_ge100']} of >= 100 voxels), "
        "and no class map can say which disconnected pieces belong together. The pieces' own F1 "
        f"against the labels (the ceiling column) is {r1['ceiling_pieces_vs_labels']} keeping "
        f"objects >= {MIN_SIZES[0]} voxels and {r2['ceiling_pieces_vs_labels']} keeping >= "
        f"{MIN_SIZES[1]}; the round trip reaches {r1['f1_vs_labels']} and {r2['f1_vs_labels']} "
        "(previous implementation: 0.225 at >= 100 voxels, 0.464 at >= 1000).",
        f"Label {facts['largest_label']} alone holds "
        f"{facts['largest_label_share_of_foreground']:.0%} of the foreground in "
        f"{facts['largest_label_pieces_ge100']} pieces of >= 100 voxels (partly one-slice sheets "
        f"lying on other labels). At >= {MIN_SIZES[0]} voxels (yz): {r1['labels_missed']} labels "
        f"unmatched ({r1['labels_missed_smaller_than_min_size']} smaller than {MIN_SIZES[0]} "
        f"voxels, {r1['labels_missed_merged_into_another_label']} merged into a touching label "
        "where their contact leaves no evidence, the rest split); "
        f"{r1['recovered_unmatched']} recovered objects unmatched, "
        f"{r1['recovered_unmatched_inside_one_label']} of them lying >= 90 % inside one label "
        f"(pieces of split labels; {r1['recovered_unmatched_inside_the_largest_label']} in label "
        f"{facts['largest_label']}).",
        "`semantic_to_instances` now keeps each foreground piece whole unless contact evidence "
        "(a border voxel whose whole ring is foreground) separates it: regions flooded from the "
        "axon-class cores are merged, largest contact first, unless a merge would leave an "
        "evidence voxel with no other region in reach. Thin objects whose core breaks come back "
        "whole; thin objects touching with no evidence (crossing axons, both all border there) "
        f"come back merged (purity {r1['purity']} here).",
        "Simulated test volumes (ground-truth round trip, planes all; the default density, then "
        f"dense): instance F1 {sim_f1}. Dense volumes are where thin axons cross; there the "
        "previous implementation scored 0.408 and 0.429 with purity 0.985 and 0.986 (it split "
        "instead of merging).",
        *(
            [
                "The network rows' instance F1 above comes from an earlier run of "
                "`benchmarks/segmentation.py`; rerun it to score them with this code."
            ]
            if alone
            else []
        ),
        "Times: `semantic_to_instances` takes "
        f"{r1['seconds_to_instances'] / max(r1['seconds_to_semantic'], 0.1):.1f}x the time of "
        "`instances_to_semantic` on the full volume (see the JSON for seconds on a shared CPU).",
    ]


def write_markdown(doc: dict, out: Path) -> None:
    """Write ``segmentation.json`` and render ``segmentation.md`` from it (networks, round trip).

    Both scripts write these two files: ``segmentation.py`` all of it, this one its own part.
    """
    nets = doc.get("networks", [])
    steps = doc.get("steps") or next((r["steps"] for r in nets if "steps" in r), "?")
    lines = [
        "# Segmentation benchmark",
        "",
        f"Simulated axon volumes {tuple(doc.get('shape', ()))}, train seeds "
        f"{tuple(doc.get('train_seeds', ()))}, test seeds "
        f"{tuple(doc.get('test_seeds', ()))}; {steps} steps per network on a shared "
        "2-core CPU, no GPU; networks trained from scratch (no pretrained VGG16 weights "
        f"offline). Total wall time {doc.get('total_seconds', '?')} s "
        "(`python -m benchmarks.segmentation`).",
        "",
        *table(
            ["method", "params", "train s", "F1 bg", "F1 axon", "F1 border"]
            + ["recall bg/axon/border", "mean IoU", "instance F1", "clDice"],
            (
                [r["method"], f"{r['parameters']:,}", r["train_seconds"]]
                + [f"{r['f1_background']:.3f}", f"{r['f1_axon']:.3f}", f"{r['f1_border']:.3f}"]
                + [
                    f"{r['recall_background']:.2f}/{r['recall_axon']:.2f}/{r['recall_border']:.2f}",
                    f"{r['mean_iou']:.3f}",
                    f"{r['instance_f1']:.3f}",
                    f"{r['cldice']:.3f}",
                ]
                for r in nets
            ),
        ),
    ]
    lines += ["", "## Notes (networks)", ""] + [f"- {n}" for n in doc.get("notes_networks", [])]
    trip = doc.get("round_trip_real", [])
    if trip and "min_size" in trip[0]:
        shape = "x".join(map(str, doc["round_trip_real_labels"]["shape"]))
        lines += [
            "",
            f"## Round trip instance -> semantic -> instance (real curated labels, {shape})",
            "",
            "`python -m benchmarks.segmentation_roundtrip`; border 1; instance F1 at IoU 0.5 "
            "(`cascope.metrics.match_instances`); objects smaller than the minimum size dropped "
            "from both the recovered instances and the connected pieces.",
            "",
            *table(
                ["planes", "min size", "GT labels", "GT pieces", "recovered", "F1 vs labels"]
                + ["ceiling: pieces vs labels", "F1 vs pieces", "purity"],
                (
                    [r["planes"], r["min_size"], r["gt_labels"], r["gt_pieces"], r["recovered"]]
                    + [r["f1_vs_labels"], r["ceiling_pieces_vs_labels"]]
                    + [r["f1_vs_connected_pieces"], r["purity"]]
                    for r in trip
                ),
            ),
        ]
    sim = doc.get("round_trip_simulated", [])
    if sim:
        lines += [
            "",
            "Simulated test volumes, ground truth round trip (planes all):",
            "",
            *table(
                ["seed", "density", "labels", "recovered", "F1 vs labels"]
                + ["ceiling: pieces vs labels", "purity"],
                (
                    [r["seed"], r.get("density", "default"), r["labels"], r["recovered"]]
                    + [r["f1_vs_labels"], r["ceiling_pieces_vs_labels"], r["purity"]]
                    for r in sim
                ),
            ),
        ]
    if doc.get("notes_round_trip"):
        lines += ["", "## Notes (round trip)", ""]
        lines += [f"- {n}" for n in doc["notes_round_trip"]]
    write_results("segmentation", doc, lines, out=out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="Simulated volumes only, not kept.")
    args = parser.parse_args()
    args.out = quick_out(args.quick, args.out)
    if args.quick:
        sim = run_simulated()
        write_markdown({"benchmark": "segmentation", "round_trip_simulated": sim}, args.out)
        return
    if not REAL_GT.is_file():
        raise SystemExit(f"real curated labels not found at {REAL_GT}")
    rows, facts = run_real()
    sim = run_simulated()
    out = args.out / "segmentation.json"
    doc = json.loads(out.read_text()) if out.is_file() else {"benchmark": "segmentation"}
    doc["round_trip_real"] = rows
    doc["round_trip_real_labels"] = facts
    doc["round_trip_simulated"] = sim
    doc["notes_round_trip"] = round_trip_notes(rows, facts, sim, alone=True)
    write_markdown(doc, args.out)


if __name__ == "__main__":
    main()
