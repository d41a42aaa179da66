"""``run_study``: every recording of a manifest through the pipeline on a Dask cluster.

Each recording runs on a worker (:func:`cascope.study._task.process_recording`), which writes its
folder ``recordings/<id>`` itself; the client only collects small result records and, at the end,
the event tables. The study step then writes one events table for the whole study, the
comparison of the conditions with the recording (or the subject) as the statistical unit, and
``study.json``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cascope import _json as strict_json
from cascope.errors import CascopeError, InputError
from cascope.study._task import (
    ModelPayload,
    content_key,
    folder_key,
    one_line,
    pack_model,
    process_recording,
)
from cascope.study.manifest import Recording, read_manifest

log = logging.getLogger(__name__)

#: Steps of the pipeline configuration that may name a trained model.
MODEL_STEPS = ("denoise", "events")


@dataclass
class StudyResult:
    """What :func:`run_study` did, as written to ``study.json``."""

    study_dir: Path
    recordings: list[dict[str, Any]]
    totals: dict[str, Any]
    cluster: dict[str, Any] = field(default_factory=dict)
    comparison: dict[str, Any] | None = None
    events: Path | None = None

    @property
    def failed(self) -> list[dict[str, Any]]:
        """The rows of the recordings that failed."""
        return [r for r in self.recordings if r["status"] == "failed"]


def study_config(config: Any = None) -> dict[str, Any]:
    """Return the pipeline configuration of a study as a plain dict (without an input).

    Parameters
    ----------
    config : PipelineConfig, dict, str or Path, optional
        A configuration, its dict, or a ``pipeline.yaml`` (relative paths taken from its folder);
        None: the defaults of ``cascope run``.
    """
    from cascope.config.pipeline import PipelineConfig

    if config is None:
        doc = PipelineConfig(input=Path("recording.tif")).model_dump(mode="json")
    elif isinstance(config, PipelineConfig):
        doc = config.model_dump(mode="json")
    elif isinstance(config, dict):
        doc = PipelineConfig.model_validate({"input": "recording.tif", **config}).model_dump(
            mode="json"
        )
    else:
        path = Path(config)
        if not path.is_file():
            raise InputError("does not exist (the pipeline config; check --config)", path)
        doc = PipelineConfig.from_yaml(path, input=path).model_dump(mode="json")
    doc.pop("input", None)
    return doc


def _version() -> str:
    from cascope import __version__

    return str(__version__)


def _done_row(rec: Recording, folder: Path) -> dict[str, Any]:
    """n_events and seconds of a complete recording folder, from its ``summary.json``."""
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        summary = {}
    return {
        "n_events": summary.get("events", {}).get("n_events"),
        "seconds": summary.get("seconds"),
    }


def _base_row(rec: Recording) -> dict[str, Any]:
    return {
        "id": rec.id,
        "path": str(rec.path),
        "condition": rec.condition,
        "subject": rec.subject,
        "status": None,
        "error": None,
        "seconds": None,
        "n_events": None,
        "folder": f"recordings/{rec.id}",
        **{k: v for k, v in rec.extra.items() if k not in ("id", "path", "status", "folder")},
    }


@contextlib.contextmanager
def _client(client: Any, **where: Any) -> Any:
    if client is not None:
        info = {
            "kind": _kind_of(client),
            "address": str(client.scheduler.address),
            "dashboard": client.dashboard_link,
            "workers": len(client.scheduler_info(n_workers=-1).get("workers", {})),
        }
        yield client, info
        return
    import dask

    from cascope.study.cluster import study_client

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 3}),
        study_client(**where) as pair,
    ):
        yield pair


def _kind_of(client: Any) -> str:
    """``local``, ``jobqueue`` or ``scheduler``: what a client given by the caller runs on."""
    cluster = getattr(client, "cluster", None)
    if cluster is None:
        return "scheduler"
    module = type(cluster).__module__
    if module.startswith("dask_jobqueue"):
        return "jobqueue"
    return "local" if module.startswith("distributed") else "scheduler"


def _previous_cluster(out: Path) -> dict[str, Any]:
    """Return the cluster of the study's last run, for a re-run with nothing to compute."""
    try:
        previous = json.loads((out / "study.json").read_text()).get("cluster")
    except (OSError, ValueError, AttributeError):
        previous = None
    if isinstance(previous, dict) and previous.get("kind"):
        return {**previous, "reused": True}
    return {"kind": "local", "address": None, "workers": 0, "started": False}


def _running(client: Any, pending: dict[str, Any]) -> int:
    try:
        busy = {k for keys in client.processing().values() for k in keys}
    except Exception:  # a progress count is never worth failing the study for
        return 0
    return sum(1 for k in pending if k in busy)


def run_study(
    manifest: str | Path | Sequence[Recording],
    config: Any = None,
    *,
    study_dir: str | Path,
    client: Any = None,
    scheduler: str | None = None,
    cluster: str | Path | None = None,
    workers: int | None = None,
    retries: int = 2,
    compare: bool = True,
    features: Sequence[str] | None = None,
    progress: bool = False,
    on_ready: Any = None,
) -> StudyResult:
    """Run the pipeline on every recording of a study and write the study's tables.

    Parameters
    ----------
    manifest : str, Path or sequence of Recording
        A CSV/YAML manifest, a folder, a glob (:func:`~cascope.study.read_manifest`), or rows.
    config : PipelineConfig, dict, str or Path, optional
        The pipeline configuration (as ``cascope run`` saves it); default that of ``cascope run``.
    study_dir : str or Path
        The study folder; an existing one is resumed: recordings complete for the same input,
        configuration and cascope version are skipped.
    client : distributed.Client, optional
        A client to run on; default: one made from ``scheduler``, ``cluster`` or a local cluster.
    scheduler, cluster, workers
        See :func:`~cascope.study.cluster.study_client`.
    retries : int
        Extra attempts of a recording whose task raised an unexpected error.
    compare : bool
        Compare the conditions (when the manifest has at least two).
    features : sequence of str, optional
        The event features to compare (default: every standard feature). Naming only those a
        study set out to test keeps the multiple-comparison correction to them.
    progress : bool
        One progress bar over the study.
    on_ready : callable, optional
        Called with the cluster description once the client is up (the CLI prints the dashboard).

    Returns
    -------
    StudyResult
    """
    from cascope._progress import progress_bar
    from cascope.io import output_lock
    from cascope.pipeline import versions

    t_start = time.perf_counter()
    recs = list(manifest) if not isinstance(manifest, (str, Path)) else read_manifest(manifest)
    cfg = study_config(config)
    out = Path(study_dir).expanduser().resolve()
    for rec in recs:
        if out == rec.path or out in rec.path.parents:
            raise InputError("the study folder must not contain the recordings", out)
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder (the study folder, -o)", out)
    (out / "recordings").mkdir(parents=True, exist_ok=True)
    version = _version()
    payloads: dict[str, ModelPayload] = {}
    for step in MODEL_STEPS:
        model = (cfg.get(step) or {}).get("model")
        if model:
            payloads[step] = pack_model(model)
    digests = {step: p.digest for step, p in payloads.items()}
    rows = {rec.id: _base_row(rec) for rec in recs}
    keys = {rec.id: content_key(rec, cfg, digests, version) for rec in recs}
    todo = []
    for rec in recs:
        folder = out / "recordings" / rec.id
        if folder_key(folder) == keys[rec.id]:
            rows[rec.id].update(status="skipped", **_done_row(rec, folder))
        else:
            todo.append(rec)
    info: dict[str, Any] = {}
    with output_lock(out / "study.json"):
        if todo:
            with _client(client, scheduler=scheduler, cluster=cluster, workers=workers) as (
                cl,
                info,
            ):
                if on_ready is not None:
                    on_ready(info)
                shipped = (
                    dict(
                        zip(
                            payloads,
                            cl.scatter(list(payloads.values()), broadcast=True),
                            strict=True,
                        )
                    )
                    if payloads
                    else {}
                )
                _run_all(cl, todo, cfg, out, keys, shipped, rows, retries, progress_bar, progress)
        n_skipped = sum(r["status"] == "skipped" for r in rows.values())
        log.info("%d recordings skipped (complete for this input and config)", n_skipped)
        events_path, comparison = _study_step(out, recs, rows, compare=compare, features=features)
        table = list(rows.values())
        totals = {
            "recordings": len(table),
            "done": sum(r["status"] == "done" for r in table),
            "failed": sum(r["status"] == "failed" for r in table),
            "skipped": n_skipped,
            "seconds": time.perf_counter() - t_start,
        }
        doc = {
            "format": "cascope-study",
            "version": 1,
            "manifest": str(manifest) if isinstance(manifest, (str, Path)) else None,
            "config": cfg,
            "recordings": table,
            "totals": totals,
            "versions": versions(),
            "cluster": info or _previous_cluster(out),
            "comparison": comparison,
            "events": None if events_path is None else events_path.name,
            "created": datetime.datetime.now(datetime.UTC).isoformat(),
        }
        tmp = out / f".study.json.{os.getpid()}.tmp"
        tmp.write_text(strict_json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, out / "study.json")
        try:  # the tables are complete; the page is a view of them
            from cascope.report import build_study_report

            build_study_report(out)
        except Exception as err:
            log.warning("%s: no report.html (%s); `cascope report` rebuilds it", out, err)
    return StudyResult(out, table, totals, info, comparison, events_path)


def _run_all(
    client: Any,
    todo: list[Recording],
    cfg: dict[str, Any],
    out: Path,
    keys: dict[str, str],
    models: dict[str, Any],
    rows: dict[str, dict[str, Any]],
    retries: int,
    progress_bar: Any,
    progress: bool,
) -> None:
    """Submit every recording, and fill in its row as it completes."""
    from distributed import as_completed

    futures = {}
    for rec in todo:
        fut = client.submit(
            process_recording,
            rec,
            cfg,
            str(out),
            keys[rec.id],
            models or None,
            key=f"cascope-study-{rec.id}-{keys[rec.id][:12]}",
            retries=retries,
            pure=False,
        )
        futures[fut.key] = (rec, fut)
    total = len(rows)
    finished = total - len(todo)
    counts = {"complete": 0, "failed": 0}
    pending = dict(futures)
    fields = ("complete", "failed", "running")
    with progress_bar(
        "study", total, completed=finished, enabled=progress, fields=fields
    ) as update:
        for fut in as_completed([f for _, f in futures.values()]):
            rec, _ = pending.pop(fut.key)
            try:
                result = fut.result()
            except Exception as err:  # retries spent or the worker lost too often
                result = {"status": "failed", "error": f"{type(err).__name__}: {one_line(err)}"}
            result.pop("id", None)
            if result["status"] == "skipped":
                result.update(_done_row(rec, out / "recordings" / rec.id))
            rows[rec.id].update(result)
            counts["failed" if result["status"] == "failed" else "complete"] += 1
            finished += 1
            if result["status"] == "failed":
                log.info("%s failed: %s", rec.id, result["error"])
            update(finished, running=_running(client, pending), **counts)


def _study_step(
    out: Path,
    recs: list[Recording],
    rows: dict[str, dict[str, Any]],
    *,
    compare: bool,
    features: Sequence[str] | None = None,
) -> tuple[Path | None, dict[str, Any] | None]:
    """Write ``events.parquet``/``events.csv`` and ``comparison/`` from the complete folders."""
    from cascope.events.features import read_table, write_table

    frames = []
    for rec in recs:
        if rows[rec.id]["status"] not in ("done", "skipped"):
            continue
        table_path = out / "recordings" / rec.id / "events.csv"
        if not table_path.is_file():
            continue
        table = read_table(table_path)
        tags = rec.columns()
        for i, (name, value) in enumerate(tags.items()):
            if name in table.columns:
                table = table.drop(columns=name)
            table.insert(i, name, value)
        frames.append(table)
    if not frames:
        return None, None
    events = pd.concat(frames, ignore_index=True)
    for col in ("condition", "subject"):  # text or missing, also when every value is missing
        events[col] = events[col].astype(object).where(events[col].notna(), None)
    for name in ("events.parquet", "events.csv"):
        write_table(events, out / name, force=True)
    if not compare:
        return out / "events.parquet", None
    return out / "events.parquet", _comparison(out, recs, rows, events, features)


def _comparison(
    out: Path,
    recs: list[Recording],
    rows: dict[str, dict[str, Any]],
    events: pd.DataFrame,
    features: Sequence[str] | None = None,
) -> dict[str, Any] | None:
    """Compare conditions with the recording (paired: the subject) as the unit."""
    from cascope.io import replace_output, temp_path
    from cascope.report.comparison import compare_report

    included = [r for r in recs if rows[r.id]["status"] in ("done", "skipped")]
    conditions = {r.condition for r in included if r.condition is not None}
    if len(conditions) < 2:
        return None
    subjects = [r.subject for r in included if r.condition is not None]
    paired = None
    if all(s is not None for s in subjects) and len(conditions) == 2:
        per_subject: dict[Any, set[Any]] = {}
        for r in included:
            per_subject.setdefault(r.subject, set()).add(r.condition)
        if all(len(c) == 2 for c in per_subject.values()):
            paired = "subject"
    table = events[events["condition"].notna()].copy()
    table["condition"] = table["condition"].astype(str)
    final = out / "comparison"
    tmp = temp_path(final, "part")
    try:
        summary = compare_report(
            table, tmp, by="condition", unit="recording", paired_by=paired, features=features
        )
    except CascopeError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        log.warning("no comparison: %s", err)
        return {"error": one_line(err)}
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        replace_output(tmp, final)
    else:
        os.replace(tmp, final)
    return summary
