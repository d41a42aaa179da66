"""Size and time of the study report for a large (200-recording) simulated study.

1. Runs ``cascope run`` (in process: gaussian denoising, threshold events, features, and the
   run's own report) on one small simulated mSCT movie.
2. Assembles a study folder of ``--recordings`` recordings as ``cascope study`` lays it out,
   cheaply: every recording folder is a copy of that one run (with its report page), and only
   its event table varies: each recording draws its events from the run's (resampled, with
   jittered positions, times and features; the conditions differ in peak ΔF/F and number of
   events). A few recordings are marked failed. ``comparison/`` comes from
   :func:`cascope.events.compare.compare_report` on the pooled table.
3. Times ``cascope report STUDY --recordings none`` (a child process: imports included) and the
   build in this process, measures the page (HTML bytes, ``report_files/`` bytes and files), and
   one recording page's build time (median of 3).
4. Opens the study page in headless Chromium from disk with the network cut off (median of
   ``--repeats`` launches) and reads the page's own load time (navigation start to the load
   event, ``data-load-ms``) and whether every image loaded; a blank page opened the same way is
   the baseline.

Usage::

    python -m benchmarks.report_size                      # 200 recordings
    python -m benchmarks.report_size --quick              # 8 recordings, not saved

Writes ``benchmarks/results/report_size.{json,md}``. Times are wall-clock seconds on the machine
it ran on (no GPU is involved); compare them only with the baseline page of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._harness import table, write_results

CONDITIONS = ("control", "drug_a", "drug_b", "drug_c")


def one_run(work: Path) -> Path:
    """Simulate one movie and run the pipeline on it (its report included)."""
    from cascope import io, simulate
    from cascope.config.pipeline import DenoiseStep, EventsStep, PipelineConfig
    from cascope.pipeline import run_pipeline

    sim = simulate.mscts(seed=0, n_frames=128, shape=(64, 64), event_rate=1.5)
    movie = work / "movie.tif"
    io.write(movie, sim.noisy, axes="TYX", voxel_size={"Y": 0.4, "X": 0.4}, frame_rate=20.0)
    cfg = PipelineConfig(
        input=movie, denoise=DenoiseStep(method="gaussian"), events=EventsStep(threshold=3.0)
    )
    return run_pipeline(cfg, work / "run").out_dir


def assemble(run: Path, study: Path, n: int, n_failed: int, seed: int) -> dict[str, Any]:
    """Write a study folder of ``n`` recordings, copies of ``run`` with varied event tables."""
    from cascope.pipeline import versions
    from cascope.report.comparison import compare_report

    rng = np.random.default_rng(seed)
    base = pd.read_csv(run / "events.csv")
    summary = json.loads((run / "summary.json").read_text())
    (study / "recordings").mkdir(parents=True)
    records, tables = [], []
    failed_at = {int(i) for i in np.linspace(min(7, n - 1), n - 1, n_failed)} if n_failed else set()
    for i in range(n):
        rid = f"rec{i:03d}"
        condition = CONDITIONS[i % len(CONDITIONS)]
        subject = f"mouse{i // len(CONDITIONS) % 25:02d}"
        if i in failed_at:
            records.append(
                {
                    "id": rid,
                    "path": f"/data/{rid}.tif",
                    "condition": condition,
                    "subject": subject,
                    "status": "failed",
                    "seconds": float(rng.uniform(1, 5)),
                    "n_events": None,
                    "folder": f"recordings/{rid}",
                    "error": f"/data/{rid}.tif: is truncated (4096 of 2097152 bytes)",
                }
            )
            continue
        level = CONDITIONS.index(condition)
        k = max(3, int(rng.poisson(len(base) * (1.0 + 0.25 * level))))
        table = base.sample(k, replace=True, random_state=int(rng.integers(2**31))).copy()
        table["id"] = np.arange(1, k + 1)
        for column, spread in (("t", 3.0), ("y", 1.5), ("x", 1.5)):
            table[column] = table[column] + rng.normal(0, spread, k)
        for column in ("dff_peak", "dff_mean", "profile_integral"):
            table[column] = table[column] * (1.0 + 0.15 * level) * rng.lognormal(0, 0.1, k)
        table["area"] = np.maximum(1, table["area"] * rng.lognormal(0, 0.2, k)).round()
        dest = study / "recordings" / rid
        shutil.copytree(run, dest)
        table.to_csv(dest / "events.csv", index=False)
        s = dict(summary, events=dict(summary["events"], n_events=k))
        (dest / "summary.json").write_text(json.dumps(s, indent=2))
        seconds = float(summary["seconds"] * rng.uniform(0.8, 1.3))
        tables.append(table.assign(recording=rid, condition=condition, subject=subject))
        records.append(
            {
                "id": rid,
                "path": str(run / "movie.tif"),
                "condition": condition,
                "subject": subject,
                "status": "done",
                "error": None,
                "seconds": seconds,
                "n_events": k,
                "folder": f"recordings/{rid}",
            }
        )
    events = pd.concat(tables, ignore_index=True)
    events.to_csv(study / "events.csv", index=False)
    events.to_parquet(study / "events.parquet", index=False)
    t0 = time.perf_counter()
    compare_report(events, study / "comparison", by="condition", formats=("png",))
    compare_s = time.perf_counter() - t0
    done = [r for r in records if r["status"] == "done"]
    doc = {
        "format": "cascope-study",
        "version": 1,
        "manifest": str(study / "manifest.csv"),
        "config": {"denoise": {"method": "gaussian"}, "events": {"threshold": 3.0}},
        "recordings": records,
        "totals": {
            "recordings": n,
            "done": len(done),
            "failed": n - len(done),
            "skipped": 0,
            "seconds": float(sum(r["seconds"] for r in records)),
        },
        "versions": versions(),
        "cluster": {"kind": "local", "address": "tcp://127.0.0.1:0", "workers": 2},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (study / "study.json").write_text(json.dumps(doc, indent=2))
    return {"events": len(events), "failed": n - len(done), "compare_s": compare_s}


def folder_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def chromium_open(page: Path, profile: Path) -> dict[str, Any]:
    """Open a page from disk, no network; wall time, the page's own load time, failures."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe is not None
    cmd = [
        exe,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        "--window-size=1280,1600",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - t0
    head = re.search(r"<html([^>]*)>", proc.stdout)
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', head.group(1))) if head else {}
    return {
        "wall_s": wall,
        "load_ms": float(attrs.get("data-load-ms", "nan")),
        "ready": attrs.get("data-report") == "ready",
        "failed_loads": attrs.get("data-failed-loads", "?"),
        "errors": attrs.get("data-errors", "?"),
        "images": int(attrs.get("data-images", 0)),
    }


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from cascope.report import build_report, build_run_report
    from cascope.report._html import page

    t0 = time.perf_counter()
    run = one_run(work)
    run_s = time.perf_counter() - t0
    page_s = []
    for _ in range(3):
        t0 = time.perf_counter()
        build_run_report(run)
        page_s.append(time.perf_counter() - t0)
    run_bytes, run_files = folder_size(run / "report_files")
    run_html = (run / "report.html").stat().st_size
    study = work / "study"
    facts = assemble(run, study, args.recordings, args.failed, args.seed)
    # a user's `cascope report`: a fresh process, imports included
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cascope", "report", str(study), "--recordings", "none"],
        check=True,
        capture_output=True,
    )
    cli_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_report(study, recordings="none")
    build_s = time.perf_counter() - t0
    html_bytes = (study / "report.html").stat().st_size
    files_bytes, n_files = folder_size(study / "report_files")
    blank = work / "blank.html"
    blank.write_text(page("blank", "", [("x", "x", "a page with no images")]))
    opens: dict[str, list[dict[str, Any]]] = {"blank": [], "study": []}
    for _ in range(args.repeats):
        for name, target in (("blank", blank), ("study", study / "report.html")):
            opens[name].append(chromium_open(target, work / "profile"))
    med = {
        name: {key: statistics.median(o[key] for o in runs) for key in ("wall_s", "load_ms")}
        for name, runs in opens.items()
    }
    last = opens["study"][-1]
    return {
        "recordings": args.recordings,
        "failed": facts["failed"],
        "events": facts["events"],
        "one_run_s": run_s,
        "recording_page_s": statistics.median(page_s),
        "recording_page_bytes": run_html + run_bytes,
        "recording_page_files": run_files + 1,
        "compare_report_s": facts["compare_s"],
        "study_cli_s": cli_s,
        "study_build_s": build_s,
        "study_html_bytes": html_bytes,
        "study_files_bytes": files_bytes,
        "study_files": n_files,
        "chromium": med,
        "chromium_all_ready": all(o["ready"] for o in opens["study"]),
        "chromium_failed_loads": last["failed_loads"],
        "chromium_errors": last["errors"],
        "chromium_images": last["images"],
        "repeats": args.repeats,
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs (shared)",
        "python": platform.python_version(),
    }


def markdown(r: dict[str, Any]) -> str:
    kib = 1024.0
    c = r["chromium"]
    ok = r["chromium_all_ready"] and not r["chromium_failed_loads"] and not r["chromium_errors"]
    rows = [
        ["`cascope report STUDY` (new process, imports included)", f"{r['study_cli_s']:.1f} s"],
        ["study page build in process", f"{r['study_build_s']:.1f} s"],
        ["report.html", f"{r['study_html_bytes'] / kib:.0f} KiB"],
        [
            "report_files/",
            f"{r['study_files_bytes'] / kib:.0f} KiB in {r['study_files']} files",
        ],
        ["images on the page", r["chromium_images"]],
        [
            "page load in Chromium (navigation to load event), study",
            f"{c['study']['load_ms']:.0f} ms",
        ],
        ["page load in Chromium, blank page (baseline)", f"{c['blank']['load_ms']:.0f} ms"],
        ["Chromium launch to DOM dump, study", f"{c['study']['wall_s']:.1f} s"],
        ["Chromium launch to DOM dump, blank page (baseline)", f"{c['blank']['wall_s']:.1f} s"],
    ]
    values = "\n".join(table(["", "value"], rows, align="lr"))
    return f"""# Study report of a {r["recordings"]}-recording study: size and time

Reproduce: `python -m benchmarks.report_size --recordings {r["recordings"]}`.

The study is simulated cheaply: one `cascope run` of a 128 × 64 × 64 simulated mSCT movie
(gaussian denoising, threshold events, features; {r["one_run_s"]:.1f} s with its report) is
copied {r["recordings"] - r["failed"]} times, each copy with its own event table drawn from the
run's (resampled with jitter; four conditions differing in peak ΔF/F and event count), and
{r["failed"]} recordings are marked failed. {r["events"]} events in all; `comparison/` from
`compare_report` ({r["compare_report_s"]:.1f} s, not part of the report). The recording pages are
the copies' own (`--recordings none`): building one recording's page takes
{r["recording_page_s"]:.2f} s (median of 3) and weighs {r["recording_page_bytes"] / kib:.0f} KiB in
{r["recording_page_files"]} files.

{values}

Chromium: headless, from disk, network cut off (proxy to a closed port), median of
{r["repeats"]} launches. Every image loaded, no script error: {"yes" if ok else "NO"}.

Machine: {r["machine"]}; Python {r["python"]}. Times are wall-clock on a shared CPU: compare the
study page with the blank page of the same run.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=200)
    ap.add_argument("--failed", type=int, default=4, help="recordings marked failed")
    ap.add_argument("--repeats", type=int, default=3, help="Chromium launches per page")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-save", action="store_true", help="do not write results/")
    ap.add_argument("--quick", action="store_true", help="Tiny smoke run, results not saved.")
    args = ap.parse_args(argv)
    if args.quick:
        args.recordings, args.failed, args.repeats, args.no_save = 8, 1, 1, True
    with tempfile.TemporaryDirectory(prefix="cascope-report-size-") as tmp:
        result = measure(args, Path(tmp))
    print(markdown(result))
    if not args.no_save:
        write_results("report_size", result, markdown(result))
    ok = result["chromium_all_ready"] and not result["chromium_failed_loads"]
    return 0 if ok and not result["chromium_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
