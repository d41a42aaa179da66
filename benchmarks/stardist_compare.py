"""cascope's PU 3D U-Net event detector beside StarDist-3D on simulated mSCT movies.

StarDist is a peer, never a dependency: it lives in its own virtual
environment (under the git-ignored ``benchmarks/.peer-venv/``) and runs
in its own process (``benchmarks/_stardist_driver.py`` with that
environment's Python), so TensorFlow never enters cascope's process. Set it up once::

    P=benchmarks/.peer-venv/stardist
    python3 -m venv $P
    $P/bin/pip install stardist tensorflow-cpu

or ``python -m benchmarks.stardist_compare --setup $P``. Then::

    python -m benchmarks.stardist_compare [--peer-python $P/bin/python]
        [--steps 400] [--epochs 4 40] [--steps-per-epoch 100] [--lr 3e-4] [--threads 1]

(the peer's Python may also come from ``CASCOPE_STARDIST_PYTHON``). The movies are those of
``benchmarks/events_detection.py`` at photons 10: ``cascope.simulate.mscts`` with 128 frames of
64×64 pixels, event rate 25; seeds 1 and 2 train, 3 validates, 4 is scored (full labels). Every
method sees the same input, cascope's preprocessing ``(x - b(t)) / F`` of each movie:

* cascope: the PU 3D U-Net of ``events_detection.py`` (depth 3, base 8, ``--steps`` steps of 2
  crops 16×32×32), retrained here; threshold by event F1 on the validation movie.
* threshold baseline: the z-score detector with its ``k`` tuned by event F1 on the validation
  movie.
* StarDist-3D: its ``Config3D`` with ``--rays`` rays, grid ``--grid``, a U-Net of depth 2 and 16
  base filters and 32 channels after it, patches 16×32×32, batch 2, ``--epochs`` (one
  training per value: the U-Net's step count and ten times it) × ``--steps-per-epoch`` steps
  at learning rate ``--lr``, random 90° rotations and flips in (y, x); probability and NMS
  thresholds from its own ``optimize_thresholds`` on the validation movie; instances
  predicted on the test movie.

StarDist's instance labels become an event table with one row per instance (centroid of its
voxels; the same columns as cascope's tables), reported as they are and after cascope's minimum
event size (2 frames, 3 px, 3 px). Scores: event F1 with centroid distance < 6
(``cascope.metrics.match_events``) and mean per-event Dice of matched events, computed as in
``events_detection.py``. Training times are reported as ratios only (one shared CPU, one thread
each). Results: ``benchmarks/results/stardist_compare.{json,md}``.

TensorFlow's CPU training is not bit-reproducible with a fixed seed: two runs of the 4000-step
StarDist training on the same movies gave F1 0.941 / Dice 0.759 and F1 0.892 / Dice 0.769 (the
U-Net's scores repeat exactly).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import events_detection as ed
from benchmarks._harness import BENCH, Peer, child_env, run_measured, table, write_results

DRIVER = BENCH / "_stardist_driver.py"
PEER = Peer("stardist", "CASCOPE_STARDIST_PYTHON", ("stardist", "tensorflow-cpu"), torch=None)
PHOTONS = 10.0


def _instance_table(labels: np.ndarray, min_size: tuple[int, ...] | None = None) -> Any:
    """One event row per instance (``id`` 1..N in table order) and the relabelled movie."""
    from scipy import ndimage

    from cascope.events.detect import TABLE_COLUMNS

    out = np.zeros(labels.shape, np.uint32)
    rows: list[dict[str, Any]] = []
    for lab, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        ext = [sl.stop - sl.start for sl in box]
        if min_size is not None and any(e < m for e, m in zip(ext, min_size, strict=True)):
            continue
        vox = labels[box] == lab
        eid = len(rows) + 1
        out[box][vox] = eid
        tt, yy, xx = np.nonzero(vox)
        rows.append(
            {
                "id": eid,
                "t": box[0].start + tt.mean(),
                "y": box[1].start + yy.mean(),
                "x": box[2].start + xx.mean(),
                "t_start": box[0].start,
                "t_end": box[0].stop,
                "y_start": box[1].start,
                "y_end": box[1].stop,
                "x_start": box[2].start,
                "x_end": box[2].stop,
                "area": int(vox.sum()),
                "score_mean": 1.0,
                "score_max": 1.0,
            }
        )
    return out, pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _score(labels: np.ndarray, test: Any, min_size: tuple[int, ...] | None) -> dict[str, Any]:
    from cascope.metrics import match_events

    lab, table = _instance_table(labels, min_size)
    m = match_events(table, test.events)
    return {
        "f1": m.f1,
        "precision": m.precision,
        "recall": m.recall,
        "dice": ed._dice(lab, test.labels, m.pairs, test.events["id"].to_numpy()),
        "n_pred": len(table),
    }


def _stardist(
    peer: Path,
    inputs: list[np.ndarray],
    movies: list[Any],
    args: argparse.Namespace,
    epochs: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Write the movies, run the driver in the peer's Python, read the test labels back."""
    with tempfile.TemporaryDirectory(prefix="cascope_stardist_") as tmp:
        d = Path(tmp)
        names = []
        for i, (x, sim) in enumerate(zip(inputs, movies, strict=True)):
            np.save(d / f"x{i}.npy", x.astype(np.float32))
            np.save(d / f"y{i}.npy", sim.labels.astype(np.int32))
            names.append((str(d / f"x{i}.npy"), str(d / f"y{i}.npy")))
        job = {
            "train_x": [names[0][0], names[1][0]],
            "train_y": [names[0][1], names[1][1]],
            "valid_x": [names[2][0]],
            "valid_y": [names[2][1]],
            "test_x": names[3][0],
            "output": str(d / "pred.npy"),
            "facts": str(d / "facts.json"),
            "workdir": str(d / "model"),
            "threads": args.threads,
            "seed": 0,
            "rays": args.rays,
            "grid": list(args.grid),
            "depth": 2,
            "base": 16,
            "head": 32,
            "patch": [16, 32, 32],
            "batch_size": 2,
            "epochs": epochs,
            "steps_per_epoch": args.steps_per_epoch,
            "lr": args.lr,
        }
        (d / "job.json").write_text(json.dumps(job))
        env = child_env(
            args.threads,
            gpu=False,
            TF_NUM_INTRAOP_THREADS=str(args.threads),
            TF_NUM_INTEROP_THREADS=str(args.threads),
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        run = run_measured(["nice", str(peer), str(DRIVER), str(d / "job.json")], env=env)
        facts = json.loads((d / "facts.json").read_text())
        facts["process_seconds"] = run.wall_s
        facts["config"] = {
            k: job[k] for k in ("rays", "grid", "depth", "base", "head", "patch", "lr")
        }
        facts["config"].update(
            batch_size=job["batch_size"],
            epochs=job["epochs"],
            steps_per_epoch=job["steps_per_epoch"],
        )
        return np.load(d / "pred.npy"), facts


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train and score the three detectors on the same movies."""
    import torch

    from cascope.events.detect import MIN_SIZE
    from cascope.events.preprocess import preprocess
    from cascope.events.train import train_event_detector

    torch.set_num_threads(args.threads)
    train, valid, test = ed._movies(PHOTONS)
    movies = [*train, valid, test]
    inputs = [preprocess(s.noisy).apply(np.asarray(s.noisy)) for s in movies]

    t0 = time.perf_counter()
    model, _ = train_event_detector(
        [s.noisy for s in train],
        [s.labels for s in train],
        config=ed._config(args.steps),
        valid=([valid.noisy], [valid.labels]),
        device="cpu",
    )
    unet_train_s = time.perf_counter() - t0
    unet = ed._evaluate(model, test, ed.DET)
    unet["threshold"] = model.threshold

    base = ed.baseline(valid, test)

    stars = []
    for epochs in args.epochs:
        pred, facts = _stardist(Path(args.peer_python), inputs, movies, args, epochs)
        facts["steps"] = epochs * args.steps_per_epoch
        facts["train_time_ratio_over_unet"] = facts["train_seconds"] / unet_train_s
        stars.append(
            {
                "raw": _score(pred, test, None),
                "min_size": _score(pred, test, tuple(MIN_SIZE)),
                **facts,
            }
        )
    return {
        "simulation": {**ed.SIM, "photons": PHOTONS},
        "n_test_events": len(test.events),
        "unet": {**unet, "train_seconds": unet_train_s, "steps": args.steps},
        "baseline": base,
        "stardist": stars,
    }


def _markdown(r: dict[str, Any]) -> str:
    u, b = r["unet"], r["baseline"]
    s = r["stardist"][-1]
    c = s["config"]
    rows = [(f"cascope PU 3D U-Net, {u['steps']} steps", u), ("threshold baseline", b)]
    for run in r["stardist"]:
        rows.append((f"StarDist-3D, {run['steps']} steps", run["raw"]))
        rows.append((f"StarDist-3D, {run['steps']} steps, min event size 2×3×3", run["min_size"]))
    lines = [
        "# cascope PU 3D U-Net vs StarDist-3D on simulated mSCTs (CPU)",
        "",
        f"{r['simulation']['n_frames']} frames × {tuple(r['simulation']['shape'])}, event rate "
        f"{r['simulation']['event_rate']}, photons {r['simulation']['photons']:g} (the movies of "
        "`events_detection.py`): trained on 2 movies, thresholds tuned on a 3rd, scored on a 4th "
        f"({r['n_test_events']} events). F1: centroid distance < 6; Dice: mean over matched "
        "events.",
        "",
    ]
    cells = []
    for name, v in rows:
        ratio = next(
            (f"{x['train_time_ratio_over_unet']:.1f}×" for x in r["stardist"] if x["raw"] is v),
            "1.0×" if v is u else "",
        )
        cells.append(
            [name, f"{v['f1']:.3f}", f"{v['dice']:.3f}", f"{v['precision']:.2f}"]
            + [f"{v['recall']:.2f}", v["n_pred"], ratio]
        )
    lines += table(
        ["method", "F1", "Dice", "precision", "recall", "detections", "training time / U-Net's"],
        cells,
    )
    lines += [
        "",
        f"U-Net: depth 3, base 8, {u['steps']} steps of 2 crops 16×32×32, threshold "
        f"{u['threshold']:.2f}. Baseline: z threshold k = {b['k']:g}. StarDist-3D "
        f"{s['stardist']} (csbdeep {s['csbdeep']}, TensorFlow {s['tensorflow']}): {c['rays']} "
        f"rays, grid {tuple(c['grid'])}, anisotropy "
        f"({', '.join(f'{a:.2f}' for a in s['anisotropy'])}), U-Net depth {c['depth']}, base "
        f"{c['base']}, {c['head']} channels after it ({s['parameters']} parameters), "
        f"epochs of {c['steps_per_epoch']} steps of {c['batch_size']} patches "
        f"{'×'.join(map(str, c['patch']))}, lr {c['lr']:g}; "
        "its own threshold optimisation on the validation movie: "
        + "; ".join(
            f"{x['steps']} steps: prob {x['thresholds']['prob']:.3f}, NMS "
            f"{x['thresholds']['nms']:.2f}"
            for x in r["stardist"]
        )
        + ".",
        "",
        "Training times are ratios to the U-Net's (one thread each, shared CPU); StarDist's "
        "threshold optimisation takes another "
        + ", ".join(
            f"{x['threshold_seconds'] / u['train_seconds']:.1f}× ({x['steps']} steps)"
            for x in r["stardist"]
        )
        + " the U-Net's training time.",
        "",
        f"Machine: {r['machine']}; torch {r['torch']}. Command: `{r['command']}`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Parse arguments, run, write the results."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--peer-python", help="Python of the environment StarDist is installed in.")
    ap.add_argument("--setup", type=Path, help="Create the StarDist venv here and exit.")
    ap.add_argument("--steps", type=int, default=400, help="cascope U-Net training steps.")
    ap.add_argument(
        "--epochs",
        type=int,
        nargs="+",
        default=[4, 40],
        help="StarDist epochs, one training per value (4: the U-Net's step count).",
    )
    ap.add_argument("--steps-per-epoch", type=int, default=100)
    ap.add_argument("--lr", type=float, default=3e-4, help="StarDist's learning rate.")
    ap.add_argument("--rays", type=int, default=32)
    ap.add_argument("--grid", type=int, nargs=3, default=(1, 1, 1))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="Tiny smoke run, results not saved.")
    args = ap.parse_args()
    if args.setup:
        PEER.setup(args.setup)
        return
    args.peer_python = PEER.python(args.peer_python)
    if args.peer_python is None:
        raise SystemExit("no StarDist Python: run with --setup DIR first, or --peer-python")
    if args.quick:
        args.steps, args.epochs, args.steps_per_epoch = 2, [1], 2
    import torch

    t0 = time.perf_counter()
    r = run(args)
    r.update(
        {
            "seconds": time.perf_counter() - t0,
            "threads": args.threads,
            "machine": f"{platform.processor() or platform.machine()}, no GPU",
            "torch": torch.__version__,
            "command": " ".join(["python -m benchmarks.stardist_compare", *sys.argv[1:]]),
        }
    )
    if not args.quick:
        write_results("stardist_compare", r, _markdown(r))
    print(_markdown(r))


if __name__ == "__main__":
    main()
