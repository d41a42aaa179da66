"""cascope temporal N2N side by side with DeepCAD-RT 1.2.0, same movie, same training budget.

DeepCAD-RT is a peer, never a dependency: it lives in its own virtual
environment (under the git-ignored ``benchmarks/.peer-venv/``) and runs
in its own process (``benchmarks/_deepcad_driver.py`` with that
environment's Python). Set it up once (torch's CPU build from the local wheel)::

    P=benchmarks/.peer-venv/deepcad
    python3 -m venv $P
    $P/bin/pip install torch==2.13.0
    echo "torch==2.13.0" > $P/constraints.txt
    $P/bin/pip install -c $P/constraints.txt \\
        "setuptools<81" deepcad==1.2.0 "numpy<2" onnx onnxscript

or ``python -m benchmarks.deepcad_compare --setup $P``. Why each pin:
``setuptools<81`` (deepcad imports ``pkg_resources`` through gdown), ``numpy<2`` (DeepCAD-RT's
test step subtracts a float64 mean from a float32 movie; under NumPy 2's promotion rules the
patches become float64 and its network refuses them: "Input type (double) and bias type (float)
should be the same"), ``onnx onnxscript`` (DeepCAD-RT exports an ONNX model after every epoch).
DeepCAD-RT 1.2.0 calls ``.cuda()`` unconditionally; on a machine without a GPU the driver
redirects those calls to the CPU and otherwise runs DeepCAD-RT's own training and testing
classes unchanged (see the driver's docstring).

Then::

    python -m benchmarks.deepcad_compare [--frames 300] [--size 128] [--photons 4 20]
        [--patch-t 32] [--patch-xy 64] [--epochs 4] [--train-size 240] [--device cpu|cuda]
        [--quick]

``--device cuda`` runs both tools on the GPU (DeepCAD-RT's own ``.cuda()`` calls, cascope's
``--device cuda``) and writes ``deepcad_compare_cuda.{json,md}``: the issue's training-time
target is set on a GPU.

On each simulated somatic movie (``cascope.simulate.somatic``, uint16 TIFF) DeepCAD-RT trains
with its demo settings (fmap 16, lr 5e-5, Adam betas 0.5/0.999, batch 1, training patch overlap
0.25, test overlap 0.6) for ``--epochs`` epochs of its own patch list; it is also run with
cascope's learning rate (1e-3) so a gap is not just a learning-rate choice. cascope
(``cascope train denoiser --method deepcad``, its defaults: depth 4, base 16, batch 2, lr 1e-3)
sees the same number of training patches of the same shape (``patch_t`` frames of input and
``patch_t`` of target, ``patch_xy`` square), and once more with a fraction of them
(``--fast-fraction``; by default the fraction it trains in 1/5 of DeepCAD-RT's quickest
training time, from the pace of its same-budget run), then ``cascope denoise --model``
writes its default (float32) file, a uint16 file (``--dtype same``) and, for the full
budget, a file with test-time augmentation (``--tta``). Both run as command-line programs in
their own processes with the same number of torch threads; each process's peak RSS comes from
``wait4`` (:func:`benchmarks._harness.run_measured`).

Scores against the clean movie (:func:`cascope.metrics.score_denoising`): SI-PSNR of the
**written file** and of the float result, PSNR, SSIM and the mean trace correlation (ΔF/F
extracted with the known footprints vs the ground-truth ΔF/F). Results:
``benchmarks/results/deepcad_compare.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._harness import (
    BENCH,
    Peer,
    child_env,
    gpu_name,
    run_measured,
    score_cells,
    table,
    write_results,
)

DRIVER = BENCH / "_deepcad_driver.py"
PEER = Peer(
    "deepcad",
    "CASCOPE_DEEPCAD_PYTHON",
    ("setuptools<81", "deepcad==1.2.0", "numpy<2", "onnx", "onnxscript"),
)


def measured(cmd: list[str], log: Path, threads: int, *, gpu: bool = False) -> tuple[float, float]:
    """Run ``cmd`` (output to ``log``); its wall seconds and peak RSS in MiB (``run_measured``).

    The process sees the GPU only with ``gpu``, so a CPU run stays on the CPU on any machine.
    """
    run = run_measured(cmd, env=child_env(threads, gpu=gpu, PYTHONWARNINGS="ignore"), log_file=log)
    return run.wall_s, run.peak_rss_mib


def run_driver(
    peer: str, job: dict[str, Any], name: str, work: Path, threads: int, *, gpu: bool = False
) -> tuple[dict[str, Any], float, float]:
    """Run one DeepCAD-RT job with the driver; return its facts, wall seconds, peak RSS (MiB)."""
    path = work / f"{name}_job.json"
    path.write_text(json.dumps(job))
    log = work / f"{name}.log"
    wall, rss = measured([peer, str(DRIVER), str(path)], log, threads, gpu=gpu)
    return json.loads(Path(job["facts"]).read_text()), wall, rss


def scores(out: np.ndarray, sim: Any, noisy: np.ndarray) -> dict[str, float]:
    from cascope.metrics import score_denoising

    truth = {"footprints": sim.footprints, "dff_true": sim.dff}
    return score_denoising(out, sim.clean, noisy=noisy, **truth).to_dict()


def run_deepcad(
    peer: str,
    movie_dir: Path,
    work: Path,
    args: argparse.Namespace,
    lr: float,
    sim: Any,
    noisy: np.ndarray,
) -> dict[str, Any]:
    """Train and test DeepCAD-RT in its own processes; return its row."""
    import tifffile

    tag = f"lr{lr:g}"
    common = {
        "datasets_path": str(movie_dir),
        "fmap": 16,
        "patch_xy": args.patch_xy,
        "patch_t": args.patch_t,
        "threads": args.threads,
        "seed": args.seed,
        "output_dir": str(work / f"deepcad_{tag}_results"),
    }
    train_job = {
        **common,
        "mode": "train",
        "overlap_factor": 0.25,
        "n_epochs": args.epochs,
        "lr": lr,
        "pth_dir": str(work / f"deepcad_{tag}_pth"),
        "onnx_dir": str(work / f"deepcad_{tag}_onnx"),
        "train_datasets_size": args.train_size,
        "select_img_num": 10**6,
        "facts": str(work / f"deepcad_{tag}_train.json"),
    }
    gpu = args.device == "cuda"
    tf, train_wall, train_rss = run_driver(
        peer, train_job, f"deepcad_{tag}_train", work, args.threads, gpu=gpu
    )
    test_job = {
        **common,
        "mode": "test",
        "test_overlap": 0.6,
        "pth_dir": tf["model_dir"],
        "denoise_model": tf["model_name"],
        "test_datasize": 10**6,
        "float_output": str(work / f"deepcad_{tag}_float.npy"),
        "facts": str(work / f"deepcad_{tag}_test.json"),
    }
    sf, test_wall, test_rss = run_driver(
        peer, test_job, f"deepcad_{tag}_test", work, args.threads, gpu=gpu
    )
    written = tifffile.imread(sf["written"])
    of_float = scores(np.load(test_job["float_output"]), sim, noisy)
    row = {
        "method": f"DeepCAD-RT 1.2.0 (lr {lr:g})",
        "peer": True,
        "lr": lr,
        **scores(written.astype(np.float32), sim, noisy),
        "si_psnr_float": of_float["si_psnr"],
        "trace_corr_float": of_float["trace_corr"],
        "written_dtype": str(written.dtype),
        "parameters": tf["parameters"],
        "patches_seen": tf["patches_seen"],
        "train_s": tf["train_s"],
        "train_process_s": train_wall,
        "train_peak_rss_mib": train_rss,
        "denoise_s": sf["test_s"],
        "denoise_process_s": test_wall,
        "denoise_peak_rss_mib": test_rss,
        "cpu_redirect": sf["cpu_redirect"],
        "versions": sf["versions"],
    }
    row["si_psnr_uint16"] = row["si_psnr"]  # its uint16 file is the file it writes
    return row


def run_cascope(
    movie: Path,
    work: Path,
    args: argparse.Namespace,
    patches: int,
    tag: str,
    sim: Any,
    noisy: np.ndarray,
    *,
    tta: bool = False,
) -> list[dict[str, Any]]:
    """``cascope train denoiser`` then ``cascope denoise --model``, each in its own process.

    The model writes its default file (float32), the input's type (``--dtype same``, uint16)
    and, with ``tta``, a file with test-time augmentation (``--tta``: a row of its own).
    """
    import tifffile

    from cascope.denoise.deep import DeepDenoiser
    from cascope.models import count_parameters

    exe = [sys.executable, "-m", "cascope"]
    slug = "".join(c if c.isalnum() else "_" for c in tag)
    model = work / f"cascope_{slug}.model"
    steps = max(1, round(patches / args.batch))
    train_cmd = [
        *exe, "train", "denoiser", str(movie), "--method", "deepcad", "-o", str(model),
        "--steps", str(steps), "--patch", str(args.patch_t), str(args.patch_xy),
        str(args.patch_xy), "--batch-size", str(args.batch), "--device", args.device,
        "--seed", str(args.seed), "--checkpoint-every", str(10**6),
    ]  # fmt: skip
    gpu = args.device == "cuda"
    train_wall, train_rss = measured(train_cmd, work / f"{slug}_train.log", args.threads, gpu=gpu)

    def denoise(name: str, *options: str) -> tuple[np.ndarray, float, float]:
        out = work / f"cascope_{slug}_{name}.tif"
        cmd = [*exe, "denoise", str(movie), "-o", str(out), "--model", str(model), *options]
        cmd += ["--device", args.device]
        wall, rss = measured(cmd, work / f"{slug}_{name}.log", args.threads, gpu=gpu)
        return tifffile.imread(out), wall, rss

    as_uint16, _, _ = denoise("uint16", "--dtype", "same")
    of_uint16 = scores(as_uint16.astype(np.float32), sim, noisy)
    trained = DeepDenoiser.load(model)
    common = {
        "peer": False,
        "parameters": count_parameters(trained.model),
        "precision": trained.provenance.get("precision", "float32"),
        "patches_seen": steps * args.batch,
        "train_s": train_wall,
        "train_process_s": train_wall,
        "train_peak_rss_mib": train_rss,
    }
    rows = []
    for name, options in (("default", ()), ("tta", ("--tta",)))[: 2 if tta else 1]:
        written, den_wall, den_rss = denoise(name, *options)
        of_written = scores(written, sim, noisy)
        rows.append(
            {
                "method": f"cascope deepcad ({tag}{', --tta' if options else ''})",
                **common,
                **of_written,
                "si_psnr_float": of_written["si_psnr"],
                "trace_corr_float": of_written["trace_corr"],
                "si_psnr_uint16": None if options else of_uint16["si_psnr"],
                "trace_corr_uint16": None if options else of_uint16["trace_corr"],
                "written_dtype": str(written.dtype),
                "denoise_s": den_wall,
                "denoise_process_s": den_wall,
                "denoise_peak_rss_mib": den_rss,
            }
        )
    return rows


def compare(args: argparse.Namespace) -> dict[str, Any]:
    import tifffile
    import torch

    import cascope
    from cascope.simulate import somatic

    peer = PEER.python(args.peer_python)
    if peer is None:
        raise SystemExit("no DeepCAD-RT Python: run with --setup DIR first, or --peer-python")
    rows: list[dict[str, Any]] = []
    for photons in args.photons:
        sim = somatic(
            n_frames=args.frames, shape=(args.size, args.size), photons=photons, seed=args.seed
        )
        with tempfile.TemporaryDirectory(prefix="cascope-deepcad-") as tmp:
            work = Path(tmp)
            movie_dir = work / "movie"
            movie_dir.mkdir()
            movie = movie_dir / f"somatic_{photons:g}.tif"
            tifffile.imwrite(movie, sim.noisy)
            noisy = sim.noisy.astype(np.float32)
            at: list[dict[str, Any]] = [
                {"method": "noisy", **scores(noisy, sim, noisy)},
                {
                    "method": "ceiling: the clean movie rounded to integers",
                    **scores(np.round(sim.clean), sim, noisy),
                },
            ]
            for lr in args.deepcad_lr:
                at.append(run_deepcad(peer, movie_dir, work, args, lr, sim, noisy))
                print(json.dumps(at[-1]), flush=True)
            budget = int(at[2]["patches_seen"])
            fraction = args.fast_fraction
            for tag in ("same budget", "fast"):
                if tag == "fast":
                    if fraction is None:  # 1/5 of DeepCAD-RT's time at cascope's measured pace
                        quickest = min(float(r["train_s"]) for r in at if r.get("peer"))
                        fraction = min(1.0, quickest / 5 / float(at[-1]["train_s"]))
                    tag = f"{fraction:.2f} budget"
                patches = max(args.batch, round(budget * (fraction if tag != "same budget" else 1)))
                new = run_cascope(
                    movie, work, args, patches, tag, sim, noisy, tta=tag == "same budget"
                )
                at += new
                for row in new:
                    print(json.dumps(row), flush=True)
        for r in at:
            r["photons"] = photons
        rows += at
    peer_versions: dict[str, Any] = next((r["versions"] for r in rows if "versions" in r), {})
    return {
        "benchmark": "deepcad_compare",
        "movie": {
            "simulator": "cascope.simulate.somatic",
            "frames": args.frames,
            "size": [args.size, args.size],
            "photons": args.photons,
            "seed": args.seed,
            "dtype": "uint16",
        },
        "budget": {
            "patch_t": args.patch_t,
            "patch_xy": args.patch_xy,
            "deepcad_epochs": args.epochs,
            "deepcad_train_datasets_size": args.train_size,
            "cascope_batch": args.batch,
        },
        "threads": args.threads,
        "device": args.device,
        "rows": rows,
        "versions": {
            "cascope": cascope.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "peer": peer_versions,
        },
        "peer_python": peer,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "gpu": gpu_name()
            if args.device == "cuda"
            else "none (DeepCAD-RT's .cuda() calls redirected to the CPU)",
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def verdicts(r: dict[str, Any]) -> list[str]:
    """The issue's quality and training-time targets, judged on this run."""
    lines = []
    for photons in r["movie"]["photons"]:
        at = [c for c in r["rows"] if c["photons"] == photons]
        peers = [c for c in at if c.get("peer")]
        if not peers:
            continue
        same = next(c for c in at if c["method"] == "cascope deepcad (same budget)")
        tta = next((c for c in at if c["method"] == "cascope deepcad (same budget, --tta)"), None)
        fast = next(c for c in at if c["method"].endswith(" budget)") and c is not same)
        for peer in peers:
            gap = same["si_psnr"] - peer["si_psnr_float"]
            gap16 = same["si_psnr_uint16"] - peer["si_psnr_float"]
            extra = ""
            if tta is not None:
                extra = f", with --tta {tta['si_psnr'] - peer['si_psnr_float']:+.2f} dB"
            lines.append(
                f"- {photons:g} photons vs {peer['method']} (float result "
                f"{peer['si_psnr_float']:.2f} dB): cascope's written file (float32, the default) "
                f"{gap:+.2f} dB{extra} (its uint16 file, `--dtype same`, {gap16:+.2f} dB); "
                f"target +1 dB: {'met' if gap >= 1 else 'not met'}. Trace correlation "
                f"{same['trace_corr']:.3f} vs {peer['trace_corr_float']:.3f}: "
                f"{'met' if same['trace_corr'] >= peer['trace_corr_float'] else 'not met'}."
            )
        for peer in peers:
            ratio = peer["train_s"] / fast["train_s"]
            reached = fast["si_psnr"] >= peer["si_psnr_float"]
            lines.append(
                f"- {photons:g} photons, training time vs {peer['method']}: cascope with "
                f"{fast['patches_seen']} patches trained in {fast['train_s']:.0f} s vs "
                f"{peer['train_s']:.0f} s ({ratio:.1f}x less) and reached "
                f"{fast['si_psnr']:.2f} dB ({'at least' if reached else 'below'} its "
                f"{peer['si_psnr_float']:.2f}): {'met' if reached and ratio >= 5 else 'not met'}."
            )
    return lines


def markdown(r: dict[str, Any]) -> str:
    m, b = r["movie"], r["budget"]
    pv = r["versions"].get("peer") or {}
    where = "GPU" if r.get("device") == "cuda" else "CPU"
    lines = [
        f"# cascope temporal N2N vs DeepCAD-RT 1.2.0 at the same training budget ({where})",
        "",
        f"Movies: `cascope.simulate.somatic`, {m['frames']} x {m['size'][0]} x {m['size'][1]} "
        f"uint16, photons per pixel {', '.join(f'{x:g}' for x in m['photons'])} (seed "
        f"{m['seed']}). Patches: {b['patch_t']} input frames + {b['patch_t']} target frames x "
        f"{b['patch_xy']} x {b['patch_xy']}. DeepCAD-RT: its demo settings (fmap 16, Adam betas "
        f"0.5/0.999, batch 1, patch overlap 0.25, test overlap 0.6), {b['deepcad_epochs']} epochs "
        f"of its patch list (`train_datasets_size` {b['deepcad_train_datasets_size']}), at its "
        "demo learning rate 5e-5 and at cascope's 1e-3. cascope: `cascope train denoiser --method "
        f"deepcad` defaults (depth 4, base 16, lr 1e-3) with batch {b['cascope_batch']}, the same "
        "number of patches, and the fraction of them it trains in 1/5 of DeepCAD-RT's time (the "
        "issue's training-time target); then "
        "`cascope denoise --model` writes the file (and once more with `--tta`). "
        f"{r['threads']} torch threads for every process. cascope trained in "
        f"{_precisions(r)} (its default on the {where}); DeepCAD-RT computes in float32.",
        "",
        *table(
            ["photons", "method", "parameters", "patches", "written file", "SI-PSNR written (dB)"]
            + ["SI-PSNR float (dB)", "SI-PSNR uint16 file (dB)", "gain (dB)", "PSNR (dB)"]
            + ["SSIM", "trace corr", "train (s)", "denoise (s)", "denoise peak RSS (MiB)"],
            (
                [
                    f"{row['photons']:g}",
                    row["method"],
                    row.get("parameters", ""),
                    row.get("patches_seen", ""),
                    row.get("written_dtype", ""),
                    f"{row['si_psnr']:.2f}",
                    _num(row.get("si_psnr_float"), 2),
                    _num(row.get("si_psnr_uint16"), 2),
                    *score_cells(row, ["si_psnr_gain", "psnr", "ssim", "trace_corr"]),
                    _num(row.get("train_s")),
                    _num(row.get("denoise_process_s")),
                    _num(row.get("denoise_peak_rss_mib"), 0),
                ]
                for row in r["rows"]
            ),
            align="rlrrlrrrrrrrrrr",
        ),
    ]
    lines += [
        "",
        "Targets of the deep-denoising issue that this run can judge (timings are ratios within "
        f"this {where} run"
        + ("; the issue's GPU targets need a GPU):" if where == "CPU" else "):"),
        *verdicts(r),
        "",
        "Written file: what each tool writes by default — DeepCAD-RT a uint16 TIFF (by "
        "truncation: its float result minus the file is in [0, 1) everywhere), cascope a float32 "
        "file. SI-PSNR float: DeepCAD-RT's float result before its cast; cascope's written file. "
        "SI-PSNR uint16 file: cascope's `--dtype same` file (rounded), DeepCAD-RT's written file. "
        "Gain, PSNR, SSIM and trace correlation are of the written files. Rounding the clean "
        "movie itself to integers caps the SI-PSNR of any uint16 file (see `ceiling`). The "
        "`--tta` row uses the same model (mean of the 8 T/Y/X flips of every tile).",
        "",
        "Train time: DeepCAD-RT's `training_class.run()` (patch listing, the training loop, a "
        "checkpoint and an ONNX export per epoch); cascope: the whole `cascope train denoiser` "
        "process (start-up, validation on a held-out tenth of the movie every 100 steps, model "
        "folder). Denoise: the whole process, file to file, for both.",
        "",
        f"Versions: cascope {r['versions']['cascope']}, torch {r['versions']['torch']}, NumPy "
        f"{r['versions']['numpy']}, Python {r['versions']['python']}; peer environment: deepcad "
        f"{pv.get('deepcad', '?')}, torch {pv.get('torch', '?')}, NumPy {pv.get('numpy', '?')}.",
        f"Machine: {r['machine']['cpus']} CPUs{' shared with other jobs' * (where == 'CPU')}, "
        f"{r['machine']['platform']}; GPU: {r['machine']['gpu']}.",
        "",
        f"Command: `{r['command']}`",
        "",
    ]
    return "\n".join(lines)


def _precisions(r: dict[str, Any]) -> str:
    found = sorted({str(c["precision"]) for c in r["rows"] if c.get("precision")})
    return " and ".join(found) or "float32"


def _num(x: float | None, digits: int = 1) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-python", help="Python of the DeepCAD-RT venv.")
    ap.add_argument("--setup", type=Path, help="Create the DeepCAD-RT venv here and exit.")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--photons", type=float, nargs="+", default=[4.0, 20.0])
    ap.add_argument("--patch-t", type=int, default=32, help="input frames per patch")
    ap.add_argument("--patch-xy", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=4, help="DeepCAD-RT epochs")
    ap.add_argument("--train-size", type=int, default=240, help="DeepCAD-RT patches per epoch")
    ap.add_argument("--deepcad-lr", type=float, nargs="+", default=[5e-5, 1e-3])
    ap.add_argument("--batch", type=int, default=2, help="cascope patches per step")
    ap.add_argument(
        "--fast-fraction",
        type=float,
        default=None,
        help="cascope's second run sees this fraction of DeepCAD-RT's patches; default: the "
        "fraction its same-budget run would train in 1/5 of DeepCAD-RT's quickest training time "
        "(the issue asks for DeepCAD-RT's quality in at most 1/5 of its time, start-up included)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="Where both tools train and denoise; cuda writes deepcad_compare_cuda.{json,md}.",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="Tiny smoke run, results not saved.")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    if args.setup:
        PEER.setup(args.setup)
        return 0
    if args.quick:
        args.frames, args.size, args.photons = 80, 64, [4.0]
        args.patch_t, args.patch_xy, args.epochs, args.train_size = 16, 32, 1, 20
        args.no_save = True
    result = compare(args)
    if not args.no_save:
        stem = "deepcad_compare" + ("_cuda" if args.device == "cuda" else "")
        write_results(stem, result, markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
