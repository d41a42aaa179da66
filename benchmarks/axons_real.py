"""Axon segmentation on the real confocal volume: semi-automatic chain vs U-Net vs VGG16-U-Net.

The real raw volume (17, 1024, 512) and its 47 curated axons are split along Y: the networks
train on ``y < 512`` (32 axons) and every method is scored on ``y >= 512`` (18 axons; the curated
labels cut by the split are relabelled inside each part); ``--fold top`` swaps the parts (train
on the 18, score on the 32). Scores: foreground F1, per-class P/R/F1
(background / axon / border, the classes of :func:`cascope.segment.instances_to_semantic`),
instance F1 at IoU 0.5, clDice, Betti-0 (axon count) error and per-axon length and diameter
error on matched axons (:func:`cascope.morphology.measure_structures`).

For the networks several ways from classes to instances are scored on the same predictions
(with and without flip test-time augmentation), so the default is chosen by measurement.

Sized for a shared 2-core CPU: a few minutes of training per run (``--steps``), one thread per
run. ``--cache DIR`` keeps the predicted probabilities so scoring can be rerun without training.

``--recipes`` compares training recipes (:data:`RECIPES`: the default config, the zero padding of
the capture left out of the loss and the patch centres, the same with equal class weights) and
``--decoders`` limits the decoders scored.

Usage: python -m benchmarks.axons_real [--steps 300] [--seeds 0 1] [--recipes default no-padding]
[--decoders components] [--fold top] [--out benchmarks/results] [--quick]. Needs the shared real
data (``../shared/data/real`` beside the repository).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import tifffile
import torch
from numpy.typing import NDArray

import cascope
from benchmarks._harness import ROOT, quick_out, table, write_results
from cascope.config.segment import SegmenterConfig
from cascope.metrics import cldice
from cascope.models import count_parameters
from cascope.morphology import measure_structures
from cascope.segment import (
    class_scores,
    instance_scores,
    instances_to_semantic,
    predict_probabilities,
    relabel_min_size,
    seed_labels,
    train_segmenter,
)
from cascope.segment.predict import DECODERS, Decoder, decode_instances

log = logging.getLogger("axons_real")

REAL = ROOT.parent / "shared/data/real"
RAW = REAL / "axons_less_intensive_left_raw_zyx.tif"
GT = REAL / "axons_less_intensive_left_gt_instances_zyx.tif"
SPLIT_Y = 512
ARCHS = {
    "unet": {"arch": "unet", "base": 8, "depth": 3},
    "vgg16-unet": {"arch": "vgg16-unet", "width": 0.125, "blocks": 3},
}
PATCH = (16, 48, 48)
#: Training recipes compared (SegmenterConfig fields over the shared settings of recipe_config):
#: the class weights of the default config (background 0.2) with patches anywhere, or the zero
#: padding left out of the loss and of the patch centres, with or without equal class weights;
#: a heavier background weight, equal weights, a border class two voxels thick, and the U-Net
#: paper's weight map on the background between neighbouring axons.
RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    "no-padding": {"exclude_padding": True},
    "no-padding-equal": {"exclude_padding": True, "class_weights": (1.0, 1.0, 1.0)},
    "background-0.5": {"class_weights": (0.5, 1.0, 2.0)},
    "equal": {"class_weights": (1.0, 1.0, 1.0)},
    "border-2": {"semantic": {"border": 2}},
    "gap-10": {"gap_weight": 10.0, "gap_sigma": 5.0},
}
MIN_SIZE = 1000  # smallest instance kept, voxels (the seed chain keeps the same)


def load() -> tuple[NDArray[Any], NDArray[np.int32]]:
    """The raw volume and its curated instance labels."""
    raw = tifffile.imread(RAW)
    gt = tifffile.imread(GT).astype(np.int32)
    return raw, gt


FOLDS = {"bottom": "y >= {y}", "top": "y < {y}"}  # the scored part; the network trains on the other


def split(raw: NDArray[Any], gt: NDArray[np.int32], fold: str = "bottom") -> dict[str, Any]:
    """Training and test parts (the test part is ``fold``), labels relabelled inside each part."""

    def part(sl: slice) -> tuple[NDArray[Any], NDArray[np.int32]]:
        lab = gt[:, sl]
        # a label cut by the split keeps only its piece on this side; renumber 1..N
        return raw[:, sl], relabel_min_size(lab, min_size=1)

    top, bottom = part(slice(0, SPLIT_Y)), part(slice(SPLIT_Y, None))
    if fold not in FOLDS:
        raise ValueError(f"fold must be one of {', '.join(FOLDS)}, got {fold!r}")
    return {"train": top, "test": bottom} if fold == "bottom" else {"train": bottom, "test": top}


def part_name(fold: str) -> str:
    """The part ``fold`` scores, e.g. ``"y >= 512"``."""
    return FOLDS[fold].format(y=SPLIT_Y)


def recipe_config(arch: str, seed: int, steps: int, recipe: str = "default") -> SegmenterConfig:
    """The training configuration of one run of the benchmark."""
    return SegmenterConfig.model_validate(
        {
            **ARCHS[arch],
            **RECIPES[recipe],
            "patch": PATCH,
            "augment": {"elastic": 0.0},
            "training": {
                "steps": steps,
                "batch_size": 2,
                "lr": 2e-3,
                "seed": seed,
                "val_every": steps,
                "val_batches": 2,
                "lr_schedule": "cosine",
            },
        }
    )


def train_one(cfg: SegmenterConfig, image: Any, labels: Any) -> tuple[Any, float]:
    """Train one network (:func:`recipe_config`); returns the model and its training seconds."""
    model, result = train_segmenter([image], [labels], config=cfg, label_kind="instance")
    return model, float(result.seconds)


def per_axon_errors(truth: NDArray[np.int32], pred: NDArray[np.int32]) -> dict[str, float]:
    """Median relative length and diameter error of matched axons (IoU >= 0.5)."""
    s = instance_scores(truth, pred)
    if s.tp == 0:
        return {"length_error": float("nan"), "diameter_error": float("nan"), "matched": 0}
    t_tab, _ = measure_structures(truth)
    p_tab, _ = measure_structures(pred)
    t_tab = t_tab.set_index("label")
    p_tab = p_tab.set_index("label")
    lt = t_tab.loc[s.pairs[:, 0], "length"].to_numpy()
    lp = p_tab.loc[s.pairs[:, 1], "length"].to_numpy()
    dt = t_tab.loc[s.pairs[:, 0], "mean_diameter"].to_numpy()
    dp = p_tab.loc[s.pairs[:, 1], "mean_diameter"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        le = np.abs(lp - lt) / lt
        de = np.abs(dp - dt) / dt
    return {
        "length_error": float(np.nanmedian(le)),
        "diameter_error": float(np.nanmedian(de)),
        "matched": int(s.tp),
    }


def score(
    truth: NDArray[np.int32], inst: NDArray[np.int32], sem: NDArray[Any], **semantic: Any
) -> dict[str, Any]:
    """Every score of one prediction against the test labels.

    ``semantic`` (``border``, ``planes``) gives the classes the prediction was trained on.
    """
    true_sem = instances_to_semantic(truth, **semantic)
    cs = class_scores(true_sem, sem)
    fg_t, fg_p = truth > 0, inst > 0
    inter = float((fg_t & fg_p).sum())
    s = instance_scores(truth, inst)
    n_true, n_pred = int(len(np.unique(truth)) - 1), int(len(np.unique(inst)) - 1)
    out: dict[str, Any] = {
        "foreground_f1": 2 * inter / max(float(fg_t.sum() + fg_p.sum()), 1.0),
        **{k: float(v) for k, v in cs.as_dict().items()},
        "instance_f1": float(s.f1),
        "instance_precision": float(s.precision),
        "instance_recall": float(s.recall),
        "cldice": float(cldice(fg_t, fg_p)),
        "n_true": n_true,
        "n_pred": n_pred,
        "betti0_error": abs(n_pred - n_true) / max(n_true, 1),
    }
    out.update(per_axon_errors(truth, inst))
    return out


def semi_automatic(image: NDArray[Any], truth: NDArray[np.int32]) -> dict[str, Any]:
    """The default seed chain (``cascope label``) on the test part."""
    t0 = time.perf_counter()
    lab, info = seed_labels(image)
    seconds = time.perf_counter() - t0
    sem = instances_to_semantic(lab)
    return {"method": "semi-automatic", "seconds": seconds, "info": info, **score(truth, lab, sem)}


def networks(
    parts: dict[str, Any],
    steps: int,
    seeds: list[int],
    cache: Path | None,
    tta: bool,
    cached_only: bool = False,
    archs: tuple[str, ...] = tuple(ARCHS),
    recipes: tuple[str, ...] = ("default",),
    decoders: tuple[Decoder, ...] = DECODERS,
    fold: str = "bottom",
) -> list[dict[str, Any]]:
    """Train every architecture and recipe on every seed; score every decoder on the test part."""
    train_img, train_lab = parts["train"]
    test_img, test_lab = parts["test"]
    rows = []
    for arch, recipe, seed in itertools.product(archs, recipes, seeds):
        cfg = recipe_config(arch, seed, steps, recipe)
        tag = "" if recipe == "default" else f"_{recipe}"
        where = "" if fold == "bottom" else f"_{fold}"
        key = cache / f"{arch}{tag}_s{seed}_n{steps}_y{SPLIT_Y}{where}.npz" if cache else None
        if key is not None and key.exists():
            z = np.load(key)
            probs = {"plain": z["plain"]}
            if tta and "tta" in z:
                probs["tta"] = z["tta"]
            seconds, params = float(z["seconds"]), int(z["params"])
        elif cached_only:
            continue
        else:
            model, seconds = train_one(cfg, train_img, train_lab)
            params = count_parameters(model)
            probs = {"plain": predict_probabilities(model, test_img, tile=(16, 64, 64))}
            if tta:
                probs["tta"] = predict_probabilities(model, test_img, tile=(16, 64, 64), tta=True)
            if key is not None:
                key.parent.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(key, seconds=seconds, params=params, **probs)
        log.info("%s seed %d: %.0f s training", arch, seed, seconds)
        for which, p in probs.items():
            sem = np.argmax(p, axis=0).astype(np.uint8)
            for decoder in decoders:
                inst = decode_instances(
                    sem,
                    p,
                    method=decoder,
                    min_size=MIN_SIZE,
                    border=cfg.semantic.border,
                    planes=cfg.semantic.planes,
                )
                row = score(test_lab, inst, sem, **cfg.semantic.model_dump())
                row.update(
                    method=arch if recipe == "default" else f"{arch} ({recipe})",
                    recipe=recipe,
                    seed=seed,
                    tta=which == "tta",
                    decoder=decoder,
                    train_seconds=seconds,
                    params=params,
                    steps=steps,
                )
                rows.append(row)
                log.info(
                    "%s s%d %s %s: fg %.3f axon %.3f inst %.3f n %d/%d",
                    arch,
                    seed,
                    which,
                    decoder,
                    row["foreground_f1"],
                    row["f1_axon"],
                    row["instance_f1"],
                    row["n_pred"],
                    row["n_true"],
                )
    return rows


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and spread over seeds per (method, tta, decoder)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r.get("tta"), r.get("decoder")), []).append(r)
    keys = [
        "foreground_f1",
        "precision_background",
        "recall_background",
        "f1_background",
        "precision_axon",
        "recall_axon",
        "f1_axon",
        "precision_border",
        "recall_border",
        "f1_border",
        "instance_f1",
        "cldice",
        "betti0_error",
        "length_error",
        "diameter_error",
        "n_pred",
        "n_true",
    ]
    out = []
    for (method, tta, decoder), rs in groups.items():
        row: dict[str, Any] = {"method": method, "tta": tta, "decoder": decoder, "runs": len(rs)}
        for k in keys:
            vals = np.array([r[k] for r in rs], dtype=float)
            row[k] = float(np.nanmean(vals))
            row[k + "_min"] = float(np.nanmin(vals))
            row[k + "_max"] = float(np.nanmax(vals))
        row["train_seconds"] = float(np.mean([r.get("train_seconds", 0.0) for r in rs]))
        row["seconds"] = float(np.mean([r.get("seconds", 0.0) for r in rs]))
        out.append(row)
    return out


def markdown(result: dict[str, Any]) -> str:
    """The results table and notes."""
    fold = result.get("fold", "bottom")
    lines = [
        "# Axons on the real confocal volume",
        "",
        f"`python -m benchmarks.axons_real {result['command']}`: train on "
        f"{part_name('top' if fold == 'bottom' else 'bottom')} of `{RAW.name}` "
        f"{tuple(result['shape'])}, score on {part_name(fold)} "
        f"({result['n_test_axons']} curated axons there). Shared 2-core CPU, no GPU; "
        f"{result['threads']} torch thread(s); total {result['wall_seconds']:.0f} s. "
        "Mean over seeds (min-max in brackets for instance F1).",
        "",
    ]

    def prf(r: dict[str, Any], c: str) -> str:
        return f"{r['precision_' + c]:.2f}/{r['recall_' + c]:.2f}/{r['f1_' + c]:.3f}"

    lines += table(
        ["method", "TTA", "decoder", "fg F1", "P/R/F1 background", "P/R/F1 axon"]
        + ["P/R/F1 border", "instance F1", "clDice", "count pred/true", "Betti-0 err"]
        + ["length err", "diameter err", "train s"],
        (
            [r["method"], "yes" if r["tta"] else ("no" if r["tta"] is False else "-")]
            + [r["decoder"] or "-", f"{r['foreground_f1']:.3f}", prf(r, "background")]
            + [prf(r, "axon"), prf(r, "border")]
            + [
                f"{r['instance_f1']:.3f} [{r['instance_f1_min']:.2f}-{r['instance_f1_max']:.2f}]",
                f"{r['cldice']:.3f}",
                f"{r['n_pred']:.1f}/{r['n_true']:.0f}",
                f"{r['betti0_error']:.2f}",
                f"{r['length_error']:.2f}",
                f"{r['diameter_error']:.2f}",
                f"{r['train_seconds']:.0f}",
            ]
            for r in result["summary"]
        ),
    )
    lines += ["", "## Notes", ""] + [f"- {n}" for n in result.get("notes", [])]
    return "\n".join(lines) + "\n"


def _colour(labels: NDArray[np.integer]) -> NDArray[np.float64]:
    """Maximum projection over Z, one random colour per instance, black background."""
    proj = labels.max(axis=0)
    rng = np.random.default_rng(7)
    palette = np.vstack([[0.0, 0.0, 0.0], rng.uniform(0.25, 1.0, (int(proj.max()) + 1, 3))])
    return palette[np.where(proj > 0, proj + 1, 0)]


def figure(panels: Mapping[str, NDArray[np.integer]], path: Path) -> None:
    """Curated vs predicted instances side by side (Z maximum projections)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (title, lab) in zip(axes, panels.items(), strict=True):
        ax.imshow(_colour(lab), interpolation="nearest")
        ax.set_title(f"{title} ({len(np.unique(lab)) - 1})", fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    """Run the benchmark and write ``axons_real.json`` / ``.md``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--archs", nargs="+", choices=list(ARCHS), default=list(ARCHS))
    ap.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=["default"])
    ap.add_argument("--decoders", nargs="+", choices=list(DECODERS), default=list(DECODERS))
    ap.add_argument("--no-tta", action="store_true")
    ap.add_argument(
        "--fold", choices=list(FOLDS), default="bottom", help="The scored part (y >= 512: bottom)."
    )
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--cached-only", action="store_true", help="Score only cached runs.")
    ap.add_argument("--reuse", type=Path, default=None, help="Network rows from this JSON.")
    ap.add_argument("--figure", type=Path, default=None, help="Write the picture here (.png).")
    ap.add_argument("--out", type=Path, default=None, help="Results folder.")
    ap.add_argument("--quick", action="store_true", help="Tiny smoke run, results not kept.")
    ap.add_argument("--name", default="axons_real", help="Result file name (no suffix).")
    ap.add_argument("--notes", type=Path, default=None, help="Markdown bullet notes to append.")
    args = ap.parse_args()
    args.out = quick_out(args.quick, args.out)
    if args.quick:
        args.steps, args.seeds, args.archs, args.no_tta = 2, [0], ["unet"], True
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    raw, gt = load()
    parts = split(raw, gt, args.fold)
    test_img, test_lab = parts["test"]
    earlier_seconds = None
    if args.reuse is not None:
        # network rows of an earlier run of this script (same split and steps)
        earlier = json.loads(args.reuse.read_text())
        earlier_seconds = float(earlier["wall_seconds"])
        rows = [r for r in earlier["rows"] if r["method"] != "semi-automatic"]
    else:
        rows = networks(
            parts,
            args.steps,
            args.seeds,
            args.cache,
            not args.no_tta,
            args.cached_only,
            tuple(args.archs),
            tuple(args.recipes),
            tuple(cast(list[Decoder], args.decoders)),
            args.fold,
        )
    rows.insert(0, semi_automatic(test_img, test_lab))
    if args.figure is not None:
        full, _ = seed_labels(raw)
        panels = {"curated axons": gt, "cascope label (defaults)": full}
        if args.cache is not None and args.fold == "bottom":
            key = args.cache / f"unet_s{args.seeds[0]}_n{args.steps}_y{SPLIT_Y}.npz"
            if key.exists():
                p = np.load(key)["plain"]
                sem = np.argmax(p, axis=0).astype(np.uint8)
                pred = decode_instances(sem, p, method="components", min_size=MIN_SIZE)
                panels = {
                    f"curated, y >= {SPLIT_Y}": test_lab,
                    "cascope label (defaults)": full[:, SPLIT_Y:],
                    f"U-Net, {args.steps} CPU steps": pred,
                }
        figure(panels, args.figure)
    log.info("semi-automatic: %s", {k: rows[0][k] for k in ("instance_f1", "foreground_f1")})
    result: dict[str, Any] = {
        "command": f"--steps {args.steps} --seeds {' '.join(map(str, args.seeds))} --archs "
        f"{' '.join(args.archs)}"
        + (f" --recipes {' '.join(args.recipes)}" if args.recipes != ["default"] else "")
        + (f" --decoders {' '.join(args.decoders)}" if args.decoders != list(DECODERS) else "")
        + (" --no-tta" if args.no_tta else "")
        + (f" --fold {args.fold}" if args.fold != "bottom" else ""),
        "shape": list(raw.shape),
        "split_y": SPLIT_Y,
        "fold": args.fold,
        "n_test_axons": int(test_lab.max()),
        "steps": args.steps,
        "seeds": args.seeds,
        "threads": args.threads,
        "patch": list(PATCH),
        "archs": ARCHS,
        "cascope": cascope.__version__,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "rows": rows,
        "summary": summary(rows),
        "wall_seconds": time.perf_counter() - t0 + (earlier_seconds or 0.0),
        "notes": [],
    }
    if args.notes is not None:
        result["notes"] = [
            ln[2:].strip() for ln in args.notes.read_text().splitlines() if ln.startswith("- ")
        ]
    write_results(args.name, result, markdown(result), out=args.out)


if __name__ == "__main__":
    main()
