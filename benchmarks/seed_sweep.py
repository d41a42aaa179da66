"""Scores of the test suite's trained networks over training seeds and CPU kernels.

A seeded training run is reproducible on one machine, but not across CPUs: torch picks its SIMD
kernels (``ATEN_CPU_CAPABILITY``: ``default``, ``avx2``, ``avx512``) from the CPU, and they
round differently, so the same seed follows another trajectory elsewhere. A test that says "the
trained network beats the baseline by X" must hold for any of those trajectories. This script
runs the tests' own training set-ups (same data, sizes, steps) over several training seeds and
each kernel set, each run a subprocess with ``ATEN_CPU_CAPABILITY`` set (``unset``: the CPU's
best), and records min / mean / max of every score and the test threshold chosen from it.

Usage::

    python -m benchmarks.seed_sweep [--seeds 0 1 2] [--caps default avx2 unset] [--jobs 2]
    python -m benchmarks.seed_sweep --one segment --seed 0     # one run, JSON on stdout
    python -m benchmarks.seed_sweep --quick                    # one short run, not saved

Writes ``benchmarks/results/seed_sweep.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    RESULTS,
    child_env,
    module_cmd,
    quick_out,
    run_measured,
    table,
    write_results,
)

# threshold each test asserts on the score (score > threshold); margin below the sweep's minimum
THRESHOLDS: dict[str, dict[str, Any]] = {
    "segment": {
        "score": "axon_f1_gain",
        "test": "tests/segment/test_train.py::test_tiny_model_beats_threshold_on_a_second_volume",
    },
    "events": {
        "score": "f1_gain",
        "test": "tests/events/test_network.py::test_trained_unet_beats_threshold_baseline",
    },
    **{
        f"denoise-{m}": {
            "score": "psnr_gain_db",
            "test": "tests/denoise/test_deep.py::"
            f"test_every_strategy_brings_the_movie_closer_to_ground_truth[{m}]",
        }
        for m in ("deepcad", "n2v", "n2v3d", "n2n", "care")
    },
}


def _segment(seed: int) -> dict[str, float]:
    import tempfile

    import numpy as np

    from cascope.config.segment import SegmenterConfig
    from cascope.segment import (
        class_scores,
        instances_to_semantic,
        label_volume,
        predict_semantic,
        train_segmenter,
    )
    from cascope.simulate import axons

    train, test = axons(seed=1, shape=(16, 64, 64)), axons(seed=2, shape=(16, 64, 64))
    cfg = SegmenterConfig.model_validate(
        {
            "arch": "unet",
            "depth": 2,
            "base": 8,
            "patch": (16, 32, 32),
            "semantic": {"planes": "all"},
            "augment": {"elastic": 0.0},
            "training": {
                "steps": 200,
                "batch_size": 2,
                "lr": 3e-3,
                "checkpoint_every": 1000,
                "seed": seed,
            },
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        model, result = train_segmenter(
            [train.noisy], [train.labels], config=cfg, output=Path(tmp) / "m", device="cpu"
        )
    pred = predict_semantic(model, test.noisy, tile=(16, 32, 32), device="cpu")
    thr_labels = label_volume(test.noisy, method="otsu", min_size=1)
    thr_sem = instances_to_semantic(thr_labels, planes="all")
    net_axon = class_scores(test.labels > 0, pred > 0, n_classes=2).f1[1]
    thr_axon = class_scores(test.labels > 0, thr_labels > 0, n_classes=2).f1[1]
    net_bg = class_scores(test.semantic, pred).f1[0]
    thr_bg = class_scores(test.semantic, thr_sem).f1[0]
    return {
        "axon_f1": float(net_axon),
        "axon_f1_threshold": float(thr_axon),
        "axon_f1_gain": float(net_axon - thr_axon),
        "background_f1_gain": float(net_bg - thr_bg),
        "loss_ratio": float(np.mean(result.losses[-20:]) / np.mean(result.losses[:20])),
    }


def _events(seed: int) -> dict[str, float]:
    import numpy as np

    from cascope.config.events import DetectConfig, EventTrainConfig
    from cascope.config.training import TrainingConfig
    from cascope.events.detect import baseline_scores, label_events, threshold_from_event_f1
    from cascope.events.train import detect_events, train_event_detector
    from cascope.metrics import match_events
    from cascope.simulate import mscts

    sim = {"n_frames": 96, "shape": (48, 48), "event_rate": 30.0, "photons": 10.0}
    train = [mscts(seed=s, **sim) for s in (1, 2)]  # type: ignore[arg-type]
    valid, test = mscts(seed=3, **sim), mscts(seed=4, **sim)  # type: ignore[arg-type]
    cfg = EventTrainConfig(
        window=(16, 32, 32),
        cache=(24, 48, 48),
        model={"depth": 3, "base": 8},
        pu={"pos_weight": 2.0, "unlabeled_ratio": 1.0},
        training=TrainingConfig(steps=300, batch_size=2, val_every=10_000, lr=2e-3, seed=seed),
    )
    model, result = train_event_detector(
        [s.noisy for s in train],
        [s.labels for s in train],
        config=cfg,
        valid=([valid.noisy], [valid.labels]),
        device="cpu",
    )
    found = detect_events(
        test.noisy, model, config=DetectConfig(tile=(16, 48, 48), block=40, halo=16, device="cpu")
    )
    f1_unet = match_events(found, test.events).f1
    k, _ = threshold_from_event_f1(
        baseline_scores(valid.noisy), valid.events, thresholds=np.arange(1.0, 8.0, 0.5)
    )
    _, base = label_events(baseline_scores(test.noisy), threshold=k)
    f1_base = match_events(base, test.events).f1
    return {
        "f1": float(f1_unet),
        "f1_baseline": float(f1_base),
        "f1_gain": float(f1_unet - f1_base),
        "loss_ratio": float(np.mean(result.losses[-20:]) / np.mean(result.losses[:20])),
    }


def _denoise(method: str, seed: int) -> dict[str, float]:
    import numpy as np
    from scipy import ndimage as ndi

    from cascope.config.denoise import DeepDenoiseConfig, DeepPredictConfig
    from cascope.config.training import TrainingConfig
    from cascope.denoise.deep import train_denoiser
    from cascope.metrics import score_denoising

    rng = np.random.default_rng(0)  # tests/denoise/test_deep.py: _scene(0)
    shape = (32, 32, 32)
    clean = ndi.gaussian_filter(rng.normal(size=shape), (3, 3, 3))
    clean = (clean / clean.std() + 10).astype(np.float32)
    noisy = (clean + rng.normal(size=shape)).astype(np.float32)
    second = (clean + rng.normal(size=shape)).astype(np.float32)
    cfg = DeepDenoiseConfig(
        method=method,
        patch=(4, 16, 16),
        depth=2,
        base=4,
        mask_fraction=0.1,
        training=TrainingConfig(steps=60, batch_size=4, lr=5e-3, val_every=20, seed=seed),
    )
    targets = {"n2n": second, "care": clean}.get(method)
    model, _ = train_denoiser(noisy, config=cfg, targets=targets, device="cpu")
    out = model.predict(noisy, config=DeepPredictConfig(tile=(16, 32, 32)), device="cpu")

    gain = score_denoising(out, clean).psnr - score_denoising(noisy, clean).psnr
    return {"psnr_gain_db": gain}


def run_one(name: str, seed: int) -> dict[str, float]:
    if name == "segment":
        return _segment(seed)
    if name == "events":
        return _events(seed)
    return _denoise(name.removeprefix("denoise-"), seed)


def _subprocess(name: str, seed: int, cap: str, threads: int) -> dict[str, Any]:
    env = child_env(threads)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if cap != "unset":
        env["ATEN_CPU_CAPABILITY"] = cap
    cmd = module_cmd("seed_sweep", "--one", name, "--seed", str(seed))
    run = run_measured(cmd, env=env, check=False)
    row: dict[str, Any] = {"set_up": name, "seed": seed, "cap": cap}
    row["seconds"] = round(run.wall_s, 1)
    if run.returncode != 0 or not run.facts:
        row["error"] = run.output.strip().splitlines()[-1:] or ["failed"]
        return row
    row["scores"] = run.facts
    print(f"{name} seed {seed} {cap}: {row['scores']}", file=sys.stderr, flush=True)
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["set_up"] for r in rows):
        got = [r["scores"] for r in rows if r["set_up"] == name and "scores" in r]
        stats = (
            {
                key: {
                    "min": min(g[key] for g in got),
                    "mean": sum(g[key] for g in got) / len(got),
                    "max": max(g[key] for g in got),
                }
                for key in got[0]
            }
            if got
            else {}
        )
        out[name] = {"runs": len(got), "scores": stats, **THRESHOLDS.get(name, {})}
    return out


def write(
    rows: list[dict[str, Any]], args: argparse.Namespace, asserted: dict[str, Any], out: Path
) -> None:
    summary = summarise(rows)
    for name, s in summary.items():
        if name in asserted and s["scores"]:
            s["asserted"] = asserted[name]
            s["sweep_min_minus_asserted"] = s["scores"][s["score"]]["min"] - asserted[name]
    doc = {
        "command": "python -m benchmarks.seed_sweep " + " ".join(sys.argv[1:]),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "seeds": args.seeds,
        "caps": args.caps,
        "summary": summary,
        "runs": rows,
    }
    lines = [
        "# Trained-network test scores over training seeds and CPU kernels",
        "",
        f"`{doc['command']}`: seeds {args.seeds} x ATEN_CPU_CAPABILITY {args.caps}",
        "(`unset`: this CPU's best, AVX512 here), each run a subprocess with one thread",
        f"({args.jobs} at a time). The thread count changes the trajectory too: the segment",
        "set-up with seed 0 and the CPU's kernels scores 0.109 with 2 threads, 0.092 with 1.",
        "Each test asserts score > the threshold below: the sweep's minimum less a margin, still",
        "clearly better than the baseline (the threshold detector; the noisy input).",
        "",
    ]
    cells: list[list[Any]] = []
    for name, s in summary.items():
        if not s["scores"]:
            cells.append([name, "failed", 0, "", "", "", "", ""])
            continue
        st = s["scores"][s["score"]]
        a = s.get("asserted")
        margin = f"{st['min'] - a:.3f}" if a is not None else ""
        cells.append(
            [name, s["score"], s["runs"], f"{st['min']:.3f}", f"{st['mean']:.3f}"]
            + [f"{st['max']:.3f}", a if a is not None else "", margin]
        )
    lines += table(
        ["set-up", "score", "runs", "min", "mean", "max", "test asserts >", "margin"], cells
    )
    lines += ["", "Every score by run:", ""]
    for r in rows:
        scores = r.get("scores") or {"error": r.get("error")}
        text = ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items()
        )
        lines.append(f"- {r['set_up']}, seed {r['seed']}, {r['cap']}: {text} ({r['seconds']} s)")
    write_results("seed_sweep", doc, lines, out=out)


# the thresholds the tests assert (kept in step with the tests by hand)
ASSERTED = {
    "segment": 0.05,
    "events": 0.05,
    **{f"denoise-{m}": 2.0 for m in ("deepcad", "n2v", "n2v3d", "n2n", "care")},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", help="run one set-up and print its scores as JSON")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--caps", nargs="+", default=["default", "avx2", "unset"])
    ap.add_argument("--set-ups", nargs="+", default=list(THRESHOLDS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument(
        "--rewrite", action="store_true", help="rewrite the tables from seed_sweep.json's runs"
    )
    ap.add_argument("--quick", action="store_true", help="One short run, results not kept.")
    args = ap.parse_args(argv)
    out = quick_out(args.quick)
    if args.quick:
        args.set_ups, args.seeds, args.caps, args.jobs = ["denoise-n2v"], [0], ["unset"], 1
    if args.rewrite:
        doc = json.loads((RESULTS / "seed_sweep.json").read_text())
        args.seeds, args.caps = doc["seeds"], doc["caps"]
        sys.argv = ["", *doc["command"].split()[2:]]
        write(doc["runs"], args, ASSERTED, out)
        return 0
    if args.one:
        print(json.dumps(run_one(args.one, args.seed)))
        return 0
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    todo = [(n, s, c) for n in args.set_ups for s in args.seeds for c in args.caps]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda t: _subprocess(*t, threads), todo))
    write(rows, args, ASSERTED, out)
    return 0 if all("scores" in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
