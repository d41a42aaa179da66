"""What a worker does for one recording, and the content key that lets a re-run skip it.

A recording is run by :func:`cascope.pipeline.run_pipeline` into a hidden temporary folder
beside ``recordings/<id>``; the content key is written into it, and only then is it renamed into
place, so a study folder never holds a partial recording. A worker killed part-way leaves its
temporary behind; the next worker to take the recording removes it under the recording's lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cascope.study.manifest import Recording

#: File in each recording folder holding its content key.
KEY_FILE = "study_key.json"


@dataclass(frozen=True)
class ModelPayload:
    """A model folder's files, read once by the client and sent once to every worker.

    Attributes
    ----------
    name : str
        The folder's name.
    digest : str
        SHA-256 over every file's relative path and bytes.
    files : dict of str to bytes
        Relative path to contents.
    """

    name: str
    digest: str
    files: dict[str, bytes]


def pack_model(folder: str | Path) -> ModelPayload:
    """Read a model folder (or file) into a :class:`ModelPayload`."""
    from cascope.errors import InputError

    root = Path(folder)
    if not root.exists():
        raise InputError("does not exist (a model named in the pipeline config)", root)
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    h = hashlib.sha256()
    files: dict[str, bytes] = {}
    for p in paths:
        rel = p.name if root.is_file() else p.relative_to(root).as_posix()
        data = p.read_bytes()
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
        files[rel] = data
    return ModelPayload(root.name, h.hexdigest(), files)


def unpack_model(payload: ModelPayload) -> Path:
    """Write a payload once per machine into a local cache; return the model's path there."""
    cache = Path(tempfile.gettempdir()) / "cascope-models" / payload.digest
    target = cache / payload.name
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".unpack-"))
    single = list(payload.files) == [payload.name]
    for rel, data in payload.files.items():
        dest = tmp / payload.name / rel if not single else tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    try:
        os.replace(tmp / payload.name, target)
    except OSError:  # another worker of this machine was first
        if not target.exists():
            raise
    shutil.rmtree(tmp, ignore_errors=True)
    return target


def input_identity(path: Path) -> dict[str, Any]:
    """Size and modification time of a recording file (every file of a folder store)."""
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
        return {
            "path": str(path),
            "files": len(files),
            "bytes": sum(p.stat().st_size for p in files),
            "mtime_ns": max((p.stat().st_mtime_ns for p in files), default=0),
        }
    if path.exists():
        st = path.stat()
        return {"path": str(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    return {"path": str(path), "missing": True}


def recording_config(
    rec: Recording, config: dict[str, Any], models: dict[str, Path] | None = None
) -> Any:
    """Return the pipeline configuration of one recording: the study's, on its file."""
    from cascope.config.pipeline import PipelineConfig

    doc = json.loads(json.dumps(config))
    doc["input"] = str(rec.path)
    if rec.axes is not None:
        doc["axes"] = rec.axes
    if rec.frame_rate is not None:
        doc["frame_rate"] = rec.frame_rate
    for step, path in (models or {}).items():
        if doc.get(step) is not None:
            doc[step]["model"] = str(path)
    return PipelineConfig.model_validate(doc)


def content_key(
    rec: Recording, config: dict[str, Any], model_digests: dict[str, str], version: str
) -> str:
    """SHA-256 of the input file's identity, the recording's configuration and the version.

    Model folders count by their contents (``model_digests``), not by where they are.
    """
    doc = json.loads(json.dumps(config))
    doc.pop("input", None)
    for step, digest in model_digests.items():
        if doc.get(step) is not None:
            doc[step]["model"] = digest
    if rec.axes is not None:
        doc["axes"] = rec.axes
    if rec.frame_rate is not None:
        doc["frame_rate"] = rec.frame_rate
    blob = json.dumps(
        {"input": input_identity(rec.path), "config": doc, "cascope": version},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def folder_key(folder: Path) -> str | None:
    """Return the content key recorded in a complete recording folder (None: none)."""
    try:
        return str(json.loads((folder / KEY_FILE).read_text())["key"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def one_line(err: BaseException) -> str:
    """Return an exception as one line of text."""
    text = " ".join(str(err).split())
    return text if text else type(err).__name__


def _remove_temporaries(final: Path) -> None:
    """Remove every temporary of ``final`` (the caller holds its lock: none is in use)."""
    pattern = re.compile(rf"^\.\.?{re.escape(final.name)}\.\d+-")
    for entry in final.parent.iterdir():
        if pattern.match(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def process_recording(
    rec: Recording,
    config: dict[str, Any],
    study_dir: str,
    key: str,
    models: dict[str, ModelPayload] | None = None,
) -> dict[str, Any]:
    """Run the pipeline on one recording into ``study_dir/recordings/<id>`` (on a worker).

    A problem with the recording itself (an unreadable file, wrong axes) is returned as a
    failure with its one-line message; any other error is raised, so Dask runs the task again
    (``retries``) or elsewhere (a lost worker).

    Returns
    -------
    dict
        ``id, status ("done" | "failed"), error, seconds, n_events, worker``.
    """
    from pydantic import ValidationError

    from cascope.errors import CascopeError
    from cascope.io import output_lock, replace_output, temp_path
    from cascope.pipeline import run_pipeline

    start = time.perf_counter()
    final = Path(study_dir) / "recordings" / rec.id
    out: dict[str, Any] = {
        "id": rec.id,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "status": "done",
        "error": None,
        "n_events": None,
    }
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        local = {step: unpack_model(p) for step, p in (models or {}).items()}
        cfg = recording_config(rec, config, local)
        with output_lock(final):
            _remove_temporaries(final)
            if folder_key(final) == key:  # completed meanwhile (a task run twice)
                out["status"] = "skipped"
            else:
                tmp = temp_path(final, "part")
                try:
                    result = run_pipeline(cfg, tmp, name=rec.id)
                    (tmp / KEY_FILE).write_text(json.dumps({"key": key}) + "\n")
                    if final.exists():
                        replace_output(tmp, final)
                    else:
                        os.replace(tmp, final)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
                out["n_events"] = result.summary.get("events", {}).get("n_events")
    except (CascopeError, ValidationError, OSError) as err:
        out.update(status="failed", error=one_line(err))
    out["seconds"] = time.perf_counter() - start
    return out
