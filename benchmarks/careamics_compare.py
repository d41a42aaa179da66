"""cascope N2V-3D and temporal N2N side by side with CAREamics N2V, at the same training budget.

CAREamics is a peer, never a dependency: it lives in its own virtual
environment (under the git-ignored ``benchmarks/.peer-venv/``) and runs
in its own process (``benchmarks/_careamics_driver.py`` with that
environment's Python). Set it up once (about 1 GB, torch's CPU build from the local wheel)::

    P=benchmarks/.peer-venv/careamics
    python3 -m venv $P
    $P/bin/pip install torch==2.13.0
    $P/bin/pip install careamics==0.3.5 --no-deps
    echo "torch==2.13.0" > $P/constraints.txt
    $P/bin/pip install -c $P/constraints.txt \\
        "bioimageio-core>=0.9.0,<=0.11.0" "lightning>=2.2,<=2.6.6,!=2.6.2,!=2.6.3" \\
        "matplotlib<=3.11.2" "microssim<=0.0.5" "numpy>=1.21,<=2.4.6" "pillow<=13.0.0" \\
        "psutil<=7.2.2" "pydantic>=2.11,<=2.14.1" "pyyaml<=6.0.3,!=6.0.0" \\
        "scikit-image<=0.26.0" "tifffile<=2026.3.3" "torchmetrics>0.7.0,<1.9.0" \\
        "zarr>=3.0.0,<4.0.0"
    # careamics (and torchmetrics, which it imports) import torchvision, which N2V never
    # calls; no torchvision build matches torch 2.13 here, so a stub package stands in:
    python -m benchmarks.careamics_compare --setup-stub $P

or all of the above in one go:
``python -m benchmarks.careamics_compare --setup $P``.
The dependency pins are careamics 0.3.5's own ``Requires-Dist`` (torch and torchvision left out).

Then::

    python -m benchmarks.careamics_compare [--peer-python $P/bin/python]
        [--frames 200] [--size 128] [--photons 4 20] [--steps 200] [--quick]

(the peer's Python may also come from ``CASCOPE_CAREAMICS_PYTHON``). On each simulated somatic
movie (``cascope.simulate.somatic``) every method trains from scratch on the noisy movie with the
same budget: ``steps`` optimiser steps of ``batch`` patches of ``patch`` (T, Y, X) voxels, on the
CPU with one torch thread; then predicts the whole movie with the same tiles and overlap. The
networks are of the same size (about 62 k parameters): CAREamics' U-Net with depth 2 and 8 initial
channels (its smallest width; default 32) with batch norm (its default), cascope's with depth 3
and base 8; cascope also runs a
smaller network (depth 2, base 4: ``n2v3d:2x4``) to show the speed it offers at the quality
reached. Scores are of the float predictions against the clean movie
(:func:`cascope.metrics.score_denoising`): SI-PSNR (and its gain over the noisy movie), PSNR,
SSIM. Prediction is timed three times; the throughput ratio uses the
fastest call. Results: ``benchmarks/results/careamics_compare.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._harness import (
    BENCH,
    Peer,
    child_env,
    run_measured,
    score_cells,
    table,
    write_results,
)

DRIVER = BENCH / "_careamics_driver.py"

#: careamics 0.3.5's requirements, torch (pinned by the constraints file) and torchvision left out
PEER_DEPS = [
    "bioimageio-core>=0.9.0,<=0.11.0",
    "lightning>=2.2,<=2.6.6,!=2.6.2,!=2.6.3",
    "matplotlib<=3.11.2",
    "microssim<=0.0.5",
    "numpy>=1.21,<=2.4.6",
    "pillow<=13.0.0",
    "psutil<=7.2.2",
    "pydantic>=2.11,<=2.14.1",
    "pyyaml<=6.0.3,!=6.0.0",
    "scikit-image<=0.26.0",
    "tifffile<=2026.3.3",
    "torchmetrics>0.7.0,<1.9.0",
    "zarr>=3.0.0,<4.0.0",
]
PEER = Peer(
    "careamics", "CASCOPE_CAREAMICS_PYTHON", tuple(PEER_DEPS), no_deps=("careamics==0.3.5",)
)

_STUB = """\
def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)

    def unavailable(*args, **kwargs):
        raise NotImplementedError(f"{__name__}.{name}: torchvision is a stub in this venv")

    return unavailable
"""


def write_stub(venv: Path) -> Path:
    """Write a stub ``torchvision`` package into a venv's site-packages; return its folder."""
    site = next((venv / "lib").glob("python3*/site-packages"))
    root = site / "torchvision"
    for sub in ("", "transforms", "models"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    head = '"""Stub: careamics imports torchvision, N2V never uses it."""\n__version__ = "0+stub"\n'
    (root / "__init__.py").write_text(head + "\n\n" + _STUB)
    for module in ("transforms/__init__.py", "transforms/functional.py", "models/__init__.py"):
        (root / module).write_text(_STUB)
    return root


def setup_peer(venv: Path) -> None:
    """Create the CAREamics environment (the commands in this module's docstring)."""
    PEER.setup(venv)
    print("+ stub torchvision:", write_stub(venv), flush=True)


def scores(out: np.ndarray, clean: np.ndarray, noisy: np.ndarray) -> dict[str, float]:
    from cascope.metrics import score_denoising

    return score_denoising(out, clean, noisy=noisy).to_dict()


def parse_method(spec: str) -> tuple[str, int, int]:
    """``"n2v3d"`` or ``"n2v3d:2x4"`` (U-Net depth x base width; default 3 x 8)."""
    method, _, net = spec.partition(":")
    depth, _, base = (net or "3x8").partition("x")
    return method, int(depth), int(base)


def run_cascope(
    spec: str, noisy: np.ndarray, args: argparse.Namespace
) -> tuple[np.ndarray, dict[str, Any]]:
    """Train cascope on the noisy movie, predict it twice; return the prediction and facts."""
    from cascope.config.denoise import DeepDenoiseConfig, DeepPredictConfig
    from cascope.denoise.deep import train_denoiser
    from cascope.models import count_parameters

    method, depth, base = parse_method(spec)
    t, y, x = args.patch
    # deepcad reads a window of 2 t frames (even frames in, odd frames as target): the same
    # voxels per patch as the blind-spot methods' t-frame windows
    patch = (t // 2, y, x) if method == "deepcad" else (t, y, x)
    cfg = DeepDenoiseConfig.model_validate(
        {
            "method": method,
            "patch": patch,
            "depth": depth,
            "base": base,
            "val_fraction": 0.0,
            "training": {
                "steps": args.steps,
                "batch_size": args.batch,
                "lr": args.lr,
                "val_every": 10**6,
                "seed": args.seed,
            },
        }
    )
    model, result = train_denoiser(noisy, config=cfg, device="cpu")
    pcfg = DeepPredictConfig(tile=tuple(args.tile), overlap=args.overlap, batch_size=1)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = model.predict(noisy, config=pcfg, device="cpu")
        times.append(time.perf_counter() - t0)
    assert out is not None
    return out, {
        "train_s": result.seconds,
        "predict_first_s": times[0],
        "predict_s": min(times),
        "steps_done": result.steps_done,
        "patches_seen": result.steps_done * args.batch,
        "voxels_per_patch": int(np.prod(cfg.patch)) * (2 if method == "deepcad" else 1),
        "parameters": count_parameters(model.model),
        "network": f"cascope U-Net, depth {depth}, base {base}, no normalisation layers",
    }


def run_careamics(
    peer: str, noisy: np.ndarray, args: argparse.Namespace, work: Path, *, three_d: bool
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Run the driver in the peer's environment; return its prediction (None on failure)."""
    tag = "3d" if three_d else "2d"
    inp, out, facts = work / "noisy.npy", work / f"careamics_{tag}.npy", work / f"facts_{tag}.json"
    np.save(inp, noisy.astype(np.float32))
    t, y, x = args.patch
    job = {
        "input": str(inp),
        "output": str(out),
        "facts": str(facts),
        "work_dir": str(work / f"careamics_{tag}"),
        "threads": args.threads,
        "seed": args.seed,
        "three_d": three_d,
        "patch": [t, y, x],
        "batch_size": args.batch,
        "steps": args.steps,
        "val_patches": 4,
        "depth": 2,
        "base": 8,
        "lr": args.lr,
        "tile": list(args.tile),
        "tile_overlap": [round(args.overlap * n) for n in args.tile],
        "predict_batch_size": 1,
    }
    job_path = work / f"job_{tag}.json"
    job_path.write_text(json.dumps(job))
    cmd = [peer, str(DRIVER), str(job_path)]
    run = run_measured(cmd, env=child_env(args.threads, PYTHONWARNINGS="ignore"), check=False)
    if run.returncode != 0:
        return None, {
            "failed": True,
            "command": " ".join(cmd),
            "returncode": run.returncode,
            "error_tail": run.output,
            "wall_s": run.wall_s,
        }
    info = json.loads(facts.read_text())
    info["process_wall_s"] = run.wall_s
    info["network"] = "CAREamics UNet, depth 2, 8 initial channels, batch norm"
    return np.load(out), info


def compare(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    import cascope
    from cascope.simulate import somatic

    torch.set_num_threads(args.threads)
    peer = PEER.python(args.peer_python)
    rows: list[dict[str, Any]] = []
    peer_versions: dict[str, Any] = {}
    failures: list[dict[str, Any]] = []
    for photons in args.photons:
        sim = somatic(
            n_frames=args.frames, shape=(args.size, args.size), photons=photons, seed=args.seed
        )
        noisy = sim.noisy.astype(np.float32)
        clean = sim.clean
        voxels = int(noisy.size)
        rows.append({"photons": photons, "method": "noisy", **scores(noisy, clean, noisy)})
        for method in args.methods:
            if method == "careamics":
                if peer is None:
                    failures.append({"error": "no peer Python (see --setup)"})
                    continue
                with tempfile.TemporaryDirectory(prefix="cascope-careamics-") as tmp:
                    out, info = run_careamics(peer, noisy, args, Path(tmp), three_d=not args.two_d)
                name = f"careamics n2v{'' if args.two_d else '3d'}"
                if out is None:
                    failures.append({"photons": photons, "method": name, **info})
                    print(json.dumps(failures[-1], indent=2), file=sys.stderr)
                    continue
                peer_versions = info.pop("versions", peer_versions)
            else:
                out, info = run_cascope(method, noisy, args)
                name = f"cascope {method.replace(':', ' ')}"
            row = {
                "photons": photons,
                "method": name,
                **scores(out, clean, noisy),
                **info,
                "predict_mvoxel_per_s": voxels / info["predict_s"] / 1e6,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    for r in rows:
        ref = next(
            (
                c
                for c in rows
                if c["photons"] == r["photons"] and c["method"].startswith("careamics")
            ),
            None,
        )
        if ref is not None and "predict_s" in r:
            r["throughput_vs_careamics"] = ref["predict_s"] / r["predict_s"]
            r["si_psnr_vs_careamics_db"] = r["si_psnr"] - ref["si_psnr"]
    return {
        "benchmark": "careamics_compare",
        "movie": {
            "simulator": "cascope.simulate.somatic",
            "frames": args.frames,
            "size": [args.size, args.size],
            "photons": args.photons,
            "seed": args.seed,
        },
        "budget": {
            "steps": args.steps,
            "batch_size": args.batch,
            "patch_tyx": list(args.patch),
            "patches": args.steps * args.batch,
            "lr": args.lr,
        },
        "predict": {"tile": list(args.tile), "overlap": args.overlap, "batch_size": 1},
        "threads": args.threads,
        "rows": rows,
        "failures": failures,
        "versions": {
            "cascope": cascope.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "peer": peer_versions,
        },
        "peer_python": peer,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def markdown(r: dict[str, Any]) -> str:
    m, b, p = r["movie"], r["budget"], r["predict"]
    pv = r["versions"].get("peer") or {}
    lines = [
        "# cascope vs CAREamics N2V at the same training budget (CPU)",
        "",
        f"Movies: `cascope.simulate.somatic`, {m['frames']} x {m['size'][0]} x {m['size'][1]}, "
        f"photons per pixel {', '.join(f'{x:g}' for x in m['photons'])} (seed {m['seed']}). "
        f"Budget for every method: {b['steps']} steps x {b['batch_size']} patches of "
        f"{' x '.join(map(str, b['patch_tyx']))} (T, Y, X) voxels, Adam lr {b['lr']}, trained "
        f"from scratch on the noisy movie. Prediction: tiles {' x '.join(map(str, p['tile']))}, "
        f"overlap {p['overlap']:g} of a tile, batch 1; {r['threads']} torch thread(s) for both.",
        "",
        *table(
            ["photons", "method", "parameters", "SI-PSNR (dB)", "gain (dB)", "PSNR (dB)", "SSIM"]
            + ["train (s)", "predict (s)", "predict Mvoxel/s", "throughput vs CAREamics"],
            (
                [
                    f"{row['photons']:g}",
                    row["method"],
                    row.get("parameters", ""),
                    *score_cells(row, ["si_psnr", "si_psnr_gain", "psnr", "ssim"]),
                    _num(row.get("train_s")),
                    _num(row.get("predict_s")),
                    _num(row.get("predict_mvoxel_per_s"), 3),
                    _ratio(row.get("throughput_vs_careamics")),
                ]
                for row in r["rows"]
            ),
            align="rlrrrrrrrrr",
        ),
    ]
    lines += [
        "",
        "Networks: cascope `n2v3d` / `deepcad` = U-Net depth 3, base 8; `2x4` = depth 2, base 4; "
        "CAREamics = its UNet, depth 2, 8 initial channels, batch norm.",
        "",
        "Target: at least 3x CAREamics N2V-3D prediction throughput at equal or better quality "
        "(here: SI-PSNR, PSNR and SSIM all at least CAREamics').",
    ]
    for photons in r["movie"]["photons"]:
        at = [c for c in r["rows"] if c["photons"] == photons and "throughput_vs_careamics" in c]
        ref = next((c for c in at if c["method"].startswith("careamics")), None)
        if ref is None:
            continue
        fit = [
            c
            for c in at
            if c["method"].startswith("cascope")
            and all(c[k] >= ref[k] for k in ("si_psnr", "psnr", "ssim"))
        ]
        if fit:
            best = max(fit, key=lambda c: c["throughput_vs_careamics"])
            verdict = "met" if best["throughput_vs_careamics"] >= 3 else "not met"
            lines.append(
                f"- {photons:g} photons: fastest cascope network at equal or better quality: "
                f"{best['method']} (SI-PSNR {best['si_psnr_vs_careamics_db']:+.2f} dB), "
                f"{best['throughput_vs_careamics']:.2f}x: {verdict}."
            )
        else:
            lines.append(f"- {photons:g} photons: no cascope network reached CAREamics' quality.")
    lines += [
        "",
        "Prediction time is the fastest of three calls on the in-memory movie (CAREamics' first "
        "call also restores its checkpoint through Lightning); both include tiling "
        "and blending. Training time is the optimiser loop (CAREamics: Lightning `fit`, with "
        "its validation on 4 held-out patches each epoch).",
        "",
    ]
    for f in r["failures"]:
        lines += [
            f"**CAREamics failed** (photons {f.get('photons')}): `{f.get('command')}` exited "
            f"{f.get('returncode')}:",
            "",
            "```",
            textwrap.shorten(str(f.get("error_tail", f.get("error"))), 1500),
            "```",
            "",
        ]
    v = r["versions"]
    lines += [
        f"Versions: cascope {v['cascope']}, torch {v['torch']}, NumPy {v['numpy']}, Python "
        f"{v['python']}; peer environment: careamics {pv.get('careamics', '?')}, torch "
        f"{pv.get('torch', '?')}, lightning {pv.get('lightning', '?')} (torchvision: a stub, "
        "see the script's docstring).",
        f"Machine: {r['machine']['cpus']} CPUs shared with other jobs, {r['machine']['platform']}; "
        "no GPU. Timings are comparable only within this run.",
        "",
        f"Command: `{r['command']}`",
        "",
    ]
    return "\n".join(lines)


def _num(x: float | None, digits: int = 1) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _ratio(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}x"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-python", help="Python of the CAREamics venv.")
    ap.add_argument("--setup", type=Path, help="Create the CAREamics venv here and exit.")
    ap.add_argument("--setup-stub", type=Path, help="Only write the torchvision stub, exit.")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--photons", type=float, nargs="+", default=[4.0, 20.0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--patch", type=int, nargs=3, default=(16, 32, 32), help="T Y X")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--tile", type=int, nargs=3, default=(32, 64, 64), help="T Y X")
    ap.add_argument("--overlap", type=float, default=0.25)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--methods",
        nargs="+",
        default=["n2v3d", "n2v3d:2x4", "deepcad", "deepcad:2x4", "careamics"],
        help="careamics, or a cascope method with an optional network size: n2v3d:2x4 is "
        "depth 2, base 4 (default 3x8, the size of CAREamics' network).",
    )
    ap.add_argument("--two-d", action="store_true", help="CAREamics N2V 2D instead of 3D.")
    ap.add_argument("--quick", action="store_true", help="Tiny smoke run, results not saved.")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    if args.setup:
        setup_peer(args.setup)
        return 0
    if args.setup_stub:
        print(write_stub(args.setup_stub))
        return 0
    if args.quick:
        args.frames, args.size, args.steps, args.photons = 48, 64, 4, [4.0]
        args.no_save = True
    result = compare(args)
    if not args.no_save:
        write_results("careamics_compare", result, markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
