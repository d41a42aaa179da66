"""One entry point for either kind of folder: :func:`build_report`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from cascope.errors import InputError


def build_report(
    folder: str | Path,
    *,
    recordings: Literal["missing", "all", "none"] = "missing",
    raw: str | Path | None = None,
    reference: str | Path | None = None,
) -> Path:
    """Write ``report.html`` into a ``cascope run`` folder or a ``cascope study`` folder.

    Parameters
    ----------
    folder : str or Path
        A run folder (``summary.json``) or a study folder (``study.json``).
    recordings : {"missing", "all", "none"}
        Study only: which recordings get their own page built (those without one, every one,
        none).
    raw : str or Path, optional
        Run only: the recording, if it has moved since the run.
    reference : str or Path, optional
        Run only: a clean movie for the denoising gain.

    Returns
    -------
    Path
        The written ``report.html``.
    """
    from cascope.report.run import build_run_report
    from cascope.report.study import build_study_report

    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InputError("is not a folder (give a `cascope run` or `cascope study` output)", path)
    if (path / "study.json").is_file():
        if raw is not None or reference is not None:
            raise InputError("--raw and --reference apply to a run folder, not a study", path)
        return build_study_report(path, recordings=recordings)
    if (path / "summary.json").is_file():
        return build_run_report(path, raw=raw, reference=reference)
    raise InputError(
        "holds neither study.json nor summary.json: give a folder written by `cascope run` or "
        "`cascope study`",
        path,
    )
