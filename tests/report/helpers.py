"""Runs, a study folder (per the study-folder contract) and page checks for the report tests.

Six tiny simulated recordings (two conditions, three subjects) go through ``run_pipeline``; a
study folder is assembled from their run folders, a ``study.json`` with a seventh, failed
recording, the pooled event table and ``comparison/`` from ``compare_report``.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd

from cascope import io, simulate
from cascope.config.pipeline import DenoiseStep, EventsStep, PipelineConfig
from cascope.pipeline import run_pipeline, versions

FRAME_RATE = 20.0
PIXEL_UM = 0.5
#: Compared features (a few: the study's hypotheses, so that three recordings per condition,
#: the statistical unit, can reach significance after the correction).
FEATURES = ("area", "duration_frames", "dff_peak")
#: (id, condition, subject, seed, range of event peak ΔF/F): the drug doubles the amplitude.
RECORDINGS = [
    ("ctrl_a", "control", "s1", 1, (0.3, 0.6)),
    ("ctrl_b", "control", "s2", 2, (0.3, 0.6)),
    ("ctrl_c", "control", "s3", 3, (0.3, 0.6)),
    ("drug_a", "drug", "s1", 4, (0.8, 1.4)),
    ("drug_b", "drug", "s2", 5, (0.8, 1.4)),
    ("drug_c", "drug", "s3", 6, (0.8, 1.4)),
]


def simulated_movie(folder: Path, seed: int, amplitude: tuple[float, float]) -> Path:
    """Write a small simulated mSCT movie that records its frame rate and pixel size.

    Its clean version is written beside it as ``clean.tif``.
    """
    sim = simulate.mscts(
        seed=seed, n_frames=64, shape=(40, 40), event_rate=30.0, amplitude=amplitude
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "movie.tif"
    meta = {"voxel_size": {"Y": PIXEL_UM, "X": PIXEL_UM}, "frame_rate": FRAME_RATE}
    io.write(path, sim.noisy, axes="TYX", **meta)
    io.write(folder / "clean.tif", sim.clean, axes="TYX", **meta)
    return path


def make_run(movie: Path, out: Path) -> Path:
    """Run the pipeline (gaussian denoising, threshold events, features) on a movie."""
    cfg = PipelineConfig(
        input=movie, denoise=DenoiseStep(method="gaussian"), events=EventsStep(threshold=3.0)
    )
    return run_pipeline(cfg, out).out_dir


def assemble_study(folder: Path, runs: dict[str, Path], *, failed: bool = True) -> Path:
    """Write a study folder from finished run folders, as ``cascope study`` lays it out."""
    from cascope.report.comparison import compare_report

    (folder / "recordings").mkdir(parents=True)
    records, tables = [], []
    for rid, condition, subject, _, _ in RECORDINGS:
        if rid not in runs:
            continue
        dest = folder / "recordings" / rid
        shutil.copytree(runs[rid], dest)
        summary = json.loads((dest / "summary.json").read_text())
        table = pd.read_csv(dest / "events.csv")
        tables.append(table.assign(recording=rid, condition=condition, subject=subject))
        records.append(
            {
                "id": rid,
                "path": summary["input"],
                "condition": condition,
                "subject": subject,
                "status": "done",
                "error": None,
                "seconds": summary["seconds"],
                "n_events": len(table),
                "folder": f"recordings/{rid}",
                "field": f"{subject}_field1",  # a manifest column: one field per subject
            }
        )
    if failed:
        records.append(
            {
                "id": "drug_broken",
                "path": str(folder / "missing.tif"),
                "condition": "drug",
                "subject": "s4",
                "status": "failed",
                "seconds": 0.4,
                "n_events": None,
                "error": "missing.tif: does not exist",
                "folder": "recordings/drug_broken",
            }
        )
    events = pd.concat(tables, ignore_index=True)
    events.to_csv(folder / "events.csv", index=False)
    events.to_parquet(folder / "events.parquet", index=False)
    compare_report(
        events,
        folder / "comparison",
        by="condition",
        unit="recording",
        features=FEATURES,
        formats=("png",),
    )
    done = [r for r in records if r["status"] == "done"]
    study = {
        "format": "cascope-study",
        "version": 1,
        "manifest": str(folder / "manifest.csv"),
        "config": json.loads(PipelineConfig(input=Path("x.tif")).model_dump_json()),
        "recordings": records,
        "totals": {
            "recordings": len(records),
            "done": len(done),
            "failed": len(records) - len(done),
            "skipped": 0,
            "seconds": float(sum(r["seconds"] or 0 for r in records)),
        },
        "versions": versions(),
        "cluster": {"kind": "local", "address": "tcp://127.0.0.1:0", "workers": 2},
        "created": "2026-01-01T00:00:00+00:00",
    }
    (folder / "study.json").write_text(json.dumps(study, indent=2))
    return folder


class Page(HTMLParser):
    """What a report page refers to: images, links, scripts, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("src", "href"):
            value = a.get(key) or ""
            if "://" in value or value.startswith("//"):
                self.external.append(value)
        if tag in ("img", "video", "source") and a.get("src"):
            self.images.append(str(a["src"]))
        if tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))
        if tag in ("link", "script") and (a.get("href") or a.get("src")):
            self.external.append(str(a.get("href") or a.get("src")))
        if tag == "table":
            self.tables += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_page(path: Path) -> Page:
    """Parse a report with the standard library's HTML parser."""
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def decode_all(folder: Path, sources: list[str]) -> dict[str, np.ndarray]:
    """Read every referenced image or animation (all frames); each must exist and decode."""
    import imageio.v3 as iio

    out = {}
    for src in sources:
        path = folder / src
        assert path.is_file(), f"{src} is referenced but missing"
        # every frame of an animation (imread reads only the first of a WebP)
        pixels = np.stack(list(iio.imiter(path)))
        if len(pixels) == 1:
            pixels = pixels[0]
        assert pixels.size > 0 and pixels.std() > 0, f"{src} is empty or flat"
        out[src] = pixels
    return out
