"""Out-of-core deep denoising: a movie larger than the memory limit, predicted file to file.

1. Writes a uint16 movie (default 6000 x 256 x 512 = 1.57 GB) block by block with
   :func:`cascope.io.open_writer` (never whole in memory): cells whose brightness follows
   calcium-like traces over a smooth background, with Poisson (shot) noise.
2. Trains a tiny temporal model (deepcad, depth 2, base 4, a few steps) on that file in this
   process (one torch thread) and saves it as a model folder. Memory, not quality, is measured.
3. Predicts the file into a new file in a child process with
   :func:`cascope.denoise.deep.denoise_deep_file` (what ``cascope denoise IN -o OUT --model M``
   runs), and reads that process's peak resident set size from the kernel (``os.wait4``
   rusage: the high-water mark, so no spike is missed; ``benchmarks._harness.run_measured``),
   and samples the RSS over time as well, to show it stays flat. The limit (default 1 GiB) must
   lie between the peak and the movie's size: ``peak RSS < limit < movie size``.
4. Checks the output: shape and dtype, frame means along the whole movie, and three blocks
   (first, middle, last) against an in-memory prediction of the same frames with their halo
   (identical tiles, so the values must be equal); PSNR against the known clean movie.

Usage::

    python -m benchmarks.denoise_out_of_core                # 6000 x 256 x 512, 1.57 GB
    python -m benchmarks.denoise_out_of_core --quick        # a tiny check, nothing saved

Writes ``benchmarks/results/denoise_out_of_core.{json,md}`` and exits non-zero when a check
fails. ``--child`` is the child process's entry point (not for direct use).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks._harness import (
    child_env,
    module_cmd,
    own_peak_rss,
    run_measured,
    table,
    write_movie,
    write_results,
)


class Scene:
    """A seeded calcium-like movie whose frames can be made for any range of frames.

    Parameters
    ----------
    shape : (int, int, int)
        (T, Y, X).
    seed : int
        Random seed of cells, traces and noise.
    """

    def __init__(self, shape: tuple[int, int, int], seed: int = 0) -> None:
        self.shape = shape
        self.seed = seed
        n, h, w = shape
        rng = np.random.default_rng(seed)
        k = max(1, h * w // 2000)
        cy, cx = rng.uniform(8, h - 8, k), rng.uniform(8, w - 8, k)
        radius = rng.uniform(3.0, 6.0, k)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        feet = np.empty((k, h * w), np.float32)
        for i in range(k):
            d2 = (yy - cy[i]) ** 2 + (xx - cx[i]) ** 2
            feet[i] = np.exp(-d2 / (2 * radius[i] ** 2)).ravel()
        self.footprints = feet
        # traces: spikes (rate 0.02 per frame) through an exponential decay of 10 frames
        spikes = (rng.random((n, k)) < 0.02).astype(np.float32) * rng.uniform(0.5, 2.0, (n, k))
        kernel = np.exp(-np.arange(60) / 10.0).astype(np.float32)
        self.traces = np.stack(
            [np.convolve(spikes[:, i], kernel)[:n] for i in range(k)], axis=1
        ).astype(np.float32)
        self.brightness = rng.uniform(10, 30, k).astype(np.float32)
        self.background = (8 + 4 * np.sin(yy / 23.0) * np.cos(xx / 31.0)).ravel()
        self.offset = np.float32(100.0)

    def clean(self, start: int, stop: int) -> NDArray[np.float32]:
        """Expected values (ADU) of frames ``start..stop``."""
        amp = self.brightness * (1.0 + self.traces[start:stop])
        photons = self.background + amp @ self.footprints
        return (self.offset + photons).reshape(stop - start, *self.shape[1:])

    def noisy(self, start: int, stop: int) -> NDArray[np.uint16]:
        """Shot-noise frames ``start..stop`` (the same frames for the same range)."""
        rng = np.random.default_rng([self.seed, start, stop])
        photons = self.clean(start, stop) - self.offset
        return (rng.poisson(photons) + self.offset).astype(np.uint16)


def write_scene(path: Path, scene: Scene, *, frames: int | None = None) -> None:
    """Write the scene's noisy movie (or its first frames) block by block (memory: one block)."""
    n = scene.shape[0] if frames is None else frames
    write_movie(path, (n, *scene.shape[1:]), scene.noisy, block=64, frame_rate=30.0)


def train_model(path: Path, model_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train a tiny temporal model on the movie file (read lazily), save it, return facts."""
    from cascope.config.denoise import DeepDenoiseConfig
    from cascope.denoise.deep import read_recording, train_denoiser

    cfg = DeepDenoiseConfig.model_validate(
        {
            "method": "deepcad",
            "patch": (8, 64, 64),
            "depth": args.depth,
            "base": args.base,
            "val_fraction": 0.0,
            "training": {"steps": args.steps, "batch_size": 4, "lr": 2e-3, "val_every": 10**6},
        }
    )
    t0 = time.perf_counter()
    model, result = train_denoiser(read_recording(path), config=cfg, device="cpu")
    model.save(model_dir)
    return {
        "method": "deepcad",
        "depth": args.depth,
        "base": args.base,
        "steps": result.steps_done,
        "final_loss": result.losses[-1] if result.losses else None,
        "train_s": time.perf_counter() - t0,
    }


def predict_config(args: argparse.Namespace) -> Any:
    from cascope.config.denoise import DeepPredictConfig

    return DeepPredictConfig.model_validate(
        {"tile": tuple(args.tile), "overlap": args.overlap, "block": args.block, "dtype": "same"}
    )


def child(args: argparse.Namespace) -> int:
    """Entry point of the child processes: import only, train, or predict file to file."""
    import torch

    torch.set_num_threads(args.threads)
    facts: dict[str, Any] = {}
    if args.child[0] == "train":
        facts = train_model(Path(args.child[1]), Path(args.child[2]), args)
    elif args.child[0] == "predict":
        from cascope.denoise.deep import denoise_deep_file

        inp, out, model = args.child[1:]
        denoise_deep_file(inp, out, model=model, predict=predict_config(args), device="cpu")
    else:
        import cascope.denoise.deep  # noqa: F401  (the fixed cost: torch and cascope)
    print(json.dumps({**facts, "vmhwm_bytes": own_peak_rss()}))
    return 0


def run_child(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a child with :func:`run_measured`; its exit code, peak RSS, RSS samples and report."""
    run = run_measured(cmd, env=env, sample_s=0.5, check=False)
    return {
        **run.summary(),
        "facts": run.facts,
        "rss_samples": run.rss_samples,
        "output_tail": run.output,
    }


def child_cmd(args: argparse.Namespace, *what: str) -> list[str]:
    cmd = module_cmd("denoise_out_of_core", "--child", *what)
    cmd += ["--threads", str(args.threads), "--block", str(args.block), "--steps", str(args.steps)]
    cmd += ["--depth", str(args.depth), "--base", str(args.base)]
    return [*cmd, "--tile", *map(str, args.tile), "--overlap", str(args.overlap)]


def rss_profile(samples: list[tuple[float, int]]) -> dict[str, float]:
    """RSS (MiB) at 10, 25, 50, 75 and 90 % of the run: flat when memory does not grow."""
    if not samples:
        return {}
    rss = np.array([s[1] for s in samples], np.float64) / 2**20
    return {
        f"{q}%": round(float(rss[int(q / 100 * (len(rss) - 1))]), 1) for q in (10, 25, 50, 75, 90)
    }


def check_output(
    inp: Path, out: Path, model_dir: Path, scene: Scene, args: argparse.Namespace
) -> dict[str, Any]:
    """Shape, dtype, frame means, and three blocks against an in-memory prediction."""
    import torch

    from cascope.denoise.deep import DeepDenoiser, read_recording
    from cascope.metrics import psnr

    torch.set_num_threads(args.threads)
    noisy, result = read_recording(inp), read_recording(out)
    n = noisy.shape[0]
    picks = np.unique(np.linspace(0, n - 1, 60).round().astype(int))
    mean_in = np.array([noisy[int(i)].mean() for i in picks])
    mean_out = np.array([result[int(i)].mean() for i in picks])
    model = DeepDenoiser.load(model_dir)
    cfg = predict_config(args)
    halo = cfg.tile[0] // 2  # what the streamed prediction reads around each block
    starts = list(range(0, n, cfg.block))
    blocks: list[dict[str, Any]] = []
    for start in sorted({starts[0], starts[len(starts) // 2], starts[-1]}):
        stop = min(n, start + cfg.block)
        lo, hi = max(0, start - halo), min(n, stop + halo)
        one = cfg.model_copy(update={"block": hi - lo})
        ref = model.predict(noisy[lo:hi], axes="TYX", config=one, device="cpu")
        assert ref is not None
        ref = ref[start - lo : stop - lo].astype(np.int64)
        got = result[start:stop].astype(np.int64)
        clean = scene.clean(start, stop)
        blocks.append(
            {
                "frames": [start, stop],
                "max_abs_diff": int(np.abs(got - ref).max()),
                "equal_fraction": float(np.mean(got == ref)),
                "psnr_noisy_db": psnr(noisy[start:stop], clean),
                "psnr_denoised_db": psnr(got, clean),
            }
        )
    return {
        "output_shape": list(result.shape),
        "output_dtype": str(result.dtype),
        "same_shape": tuple(result.shape) == tuple(noisy.shape),
        "frame_mean_max_rel_diff": float(np.max(np.abs(mean_out - mean_in) / mean_in)),
        "blocks": blocks,
        "blocks_equal": all(b["max_abs_diff"] <= 1 for b in blocks),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import cascope

    shape = (args.frames, args.height, args.width)
    scene = Scene(shape, seed=args.seed)
    work = Path(tempfile.mkdtemp(prefix="cascope-ooc-", dir=args.workdir))
    inp, out, model_dir = work / "movie.tif", work / "denoised.tif", work / "model"
    env = child_env(args.threads)
    try:
        t0 = time.perf_counter()
        write_scene(inp, scene)
        gen_s = time.perf_counter() - t0
        trained = run_child(child_cmd(args, "train", str(inp), str(model_dir), "-"), env)
        if trained["returncode"] != 0:
            raise RuntimeError(f"training failed:\n{trained['output_tail']}")
        training = {k: v for k, v in trained["facts"].items() if k != "vmhwm_bytes"}
        baseline = run_child(child_cmd(args, "import", "-", "-", "-"), env)["vmhwm_bytes"]
        # the same prediction on the movie's first frames only: the peak should not change
        short_n = min(args.frames, args.short_frames)
        short_in, short_out = work / "short.tif", work / "short_denoised.tif"
        write_scene(short_in, scene, frames=short_n)
        short = run_child(
            child_cmd(args, "predict", str(short_in), str(short_out), str(model_dir)), env
        )
        short_in.unlink()
        short_out.unlink(missing_ok=True)
        cmd = child_cmd(args, "predict", str(inp), str(out), str(model_dir))
        run = run_child(cmd, env)
        voxels = int(np.prod(shape))
        limit = int(args.limit_gib * 2**30)
        result: dict[str, Any] = {
            "benchmark": "denoise_out_of_core",
            "shape": list(shape),
            "dtype": "uint16",
            "voxels": voxels,
            "input_bytes": inp.stat().st_size,
            "limit_bytes": limit,
            "generate_s": gen_s,
            "training": training,
            "predict": {
                "block": args.block,
                "tile": list(args.tile),
                "overlap": args.overlap,
                "threads": args.threads,
            },
            "command": " ".join(cmd),
            "cli_equivalent": f"cascope denoise {inp.name} -o {out.name} --model model "
            f"--device cpu --block {args.block} --dtype same",
            "short_movie": {
                "frames": short_n,
                "returncode": short["returncode"],
                "vmhwm_bytes": short["vmhwm_bytes"],
                "peak_rss_bytes": short["peak_rss_bytes"],
            },
            **{k: v for k, v in run.items() if k != "rss_samples"},
            "rss_profile_mib": rss_profile(run["rss_samples"]),
            "rss_sampled_max_bytes": max((s[1] for s in run["rss_samples"]), default=0),
            "import_baseline_bytes": baseline,
            "mvoxel_per_s": voxels / run["wall_s"] / 1e6,
            "versions": {
                "cascope": cascope.__version__,
                "torch": _version("torch"),
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        }
        if run["returncode"] == 0:
            result["checks"] = check_output(inp, out, model_dir, scene, args)
        checks = result.get("checks", {})
        result["passed"] = bool(
            run["returncode"] == 0
            and short["returncode"] == 0
            and max(run["peak_rss_bytes"], run["vmhwm_bytes"]) < limit < result["input_bytes"]
            and checks.get("same_shape")
            and checks.get("output_dtype") == "uint16"
            and checks.get("blocks_equal")
            and checks.get("frame_mean_max_rel_diff", 1.0) < 0.05
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return result


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def markdown(r: dict[str, Any]) -> str:
    gib, mib = 2**30, 2**20
    t, h, w = r["shape"]
    c = r.get("checks", {})
    tr, pr = r["training"], r["predict"]
    peak = max(r["peak_rss_bytes"], r["vmhwm_bytes"])
    sm = r["short_movie"]
    lines = [
        "# Out-of-core deep denoising: a movie larger than the memory limit, file to file",
        "",
        "Reproduce: `python -m benchmarks.denoise_out_of_core` (writes the movie block by block, "
        "trains a tiny model, predicts file to file in a child process whose peak RSS the kernel "
        "reports through `wait4`, checks the output, deletes the files).",
        "",
        *table(
            ["movie (T, Y, X)", "size on disk", "memory limit", "peak RSS (VmHWM)"]
            + ["peak RSS (wait4)", "import-only RSS", "peak < limit < movie", "wall"]
            + ["throughput"],
            [
                [
                    f"({t}, {h}, {w}) uint16 TIFF",
                    f"{r['input_bytes'] / gib:.2f} GiB ({r['input_bytes'] / 1e9:.2f} GB)",
                    f"{r['limit_bytes'] / gib:.2f} GiB",
                    f"{r['vmhwm_bytes'] / mib:.0f} MiB",
                    f"{r['peak_rss_bytes'] / mib:.0f} MiB",
                    f"{r['import_baseline_bytes'] / mib:.0f} MiB",
                    peak < r["limit_bytes"] < r["input_bytes"],
                    f"{r['wall_s']:.0f} s",
                    f"{r['mvoxel_per_s']:.2f} Mvoxel/s",
                ]
            ],
            align="lrrrrrlrr",
        ),
        "",
        "VmHWM is the child's own high-water mark (`/proc/self/status`, read as it ends); the "
        "`wait4` value is the kernel's high-water mark of the same process, started from a small "
        "launcher so that no parent's image is counted (`benchmarks._harness.run_measured`).",
        "",
        f"Model: {tr['method']}, depth {tr['depth']}, base {tr['base']}, trained {tr['steps']} "
        f"steps ({tr['train_s']:.0f} s) on the movie itself. Prediction: block {pr['block']} "
        f"frames, tile {tuple(pr['tile'])}, overlap {pr['overlap']}, {pr['threads']} torch "
        "thread(s), output uint16 (rounded).",
        "",
        f"RSS sampled every 0.5 s (MiB at 10/25/50/75/90 % of the run): {r['rss_profile_mib']}. "
        f"The same prediction of only the first {sm['frames']} frames peaks at "
        f"{sm['vmhwm_bytes'] / mib:.0f} MiB (VmHWM): the peak is set by the block and the tiles, "
        "not by the movie's length.",
        "",
        f"Output: shape {c.get('output_shape')}, dtype {c.get('output_dtype')}; largest relative "
        f"difference of frame means (60 frames along the movie) input vs output "
        f"{c.get('frame_mean_max_rel_diff', float('nan')):.4f}.",
        "",
        "Blocks compared with an in-memory prediction of the same frames and their halo:",
        "",
        *table(
            ["frames", "max abs diff", "equal voxels", "PSNR noisy (dB)", "PSNR denoised (dB)"],
            (
                [
                    f"{b['frames'][0]}..{b['frames'][1] - 1}",
                    b["max_abs_diff"],
                    f"{100 * b['equal_fraction']:.2f} %",
                    f"{b['psnr_noisy_db']:.2f}",
                    f"{b['psnr_denoised_db']:.2f}",
                ]
                for b in c.get("blocks", [])
            ),
            align="lrrrr",
        ),
    ]
    v, m = r["versions"], r["machine"]
    lines += [
        "",
        f"Passed: {r['passed']}. Machine: {m['cpus']} CPUs (shared with other jobs), "
        f"{m['platform']}; Python {v['python']}, torch {v['torch']}, NumPy {v['numpy']}, "
        f"cascope {v['cascope']}. No GPU was used.",
        "",
        f"The child ran `{r['command']}`; a user runs the same with `{r['cli_equivalent']}` "
        "(whose default overlap, 0.25, sends more tiles through the network; what is held in "
        "memory, one block and one batch of tiles, is the same).",
        "",
    ]
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=6000, help="Frames T (default 6000).")
    p.add_argument("--height", type=int, default=256, help="Frame height Y.")
    p.add_argument("--width", type=int, default=512, help="Frame width X.")
    p.add_argument("--limit-gib", type=float, default=1.0, help="Memory limit, GiB.")
    p.add_argument("--block", type=int, default=64, help="Frames per streamed block.")
    p.add_argument("--tile", type=int, nargs=3, default=(32, 128, 128), help="Tile T Y X.")
    p.add_argument("--overlap", type=float, default=0.25, help="Tile overlap (fraction).")
    p.add_argument("--depth", type=int, default=2, help="U-Net depth.")
    p.add_argument("--base", type=int, default=4, help="U-Net base width.")
    p.add_argument("--steps", type=int, default=100, help="Training steps.")
    p.add_argument("--threads", type=int, default=1, help="Torch threads of the child.")
    p.add_argument(
        "--short-frames", type=int, default=256, help="Length of the short reference movie."
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="Where the big files go.")
    p.add_argument("--keep", action="store_true", help="Keep the big files.")
    p.add_argument("--no-save", action="store_true", help="Do not write benchmarks/results.")
    p.add_argument("--quick", action="store_true", help="Tiny smoke run, results not saved.")
    p.add_argument(
        "--child", nargs=4, metavar=("WHAT", "IN", "OUT", "MODEL"), help=argparse.SUPPRESS
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.child:
        return child(args)
    if args.quick:
        args.frames, args.height, args.width, args.steps = 96, 64, 64, 2
        args.short_frames, args.block, args.tile, args.no_save = 32, 16, (16, 32, 32), True
    result = measure(args)
    print(json.dumps({k: v for k, v in result.items() if k != "output_tail"}, indent=2))
    if not args.no_save:
        write_results("denoise_out_of_core", result, markdown(result))
    if not result["passed"]:
        print(result.get("output_tail", ""), file=sys.stderr)
    if args.quick:  # a tiny movie is no larger than the limit: check that it ran
        ok = result["returncode"] == 0 and result.get("checks", {}).get("blocks_equal")
        return 0 if ok else 1
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
