"""File helpers shared by the writer and the curation tool: backups before replacing."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)


def backup_path(path: Path) -> Path:
    """Name a backup of ``path`` that does not exist yet (``stem.bak-<time>[-n].suffix``).

    The suffix stays last so the backup opens like the original.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.stem}.bak-{stamp}{path.suffix}")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.bak-{stamp}-{n}{path.suffix}")
        n += 1
    return candidate


def back_up(path: Path) -> Path | None:
    """Copy an existing file or folder to a backup before it is replaced.

    Parameters
    ----------
    path : Path
        The file or folder about to be overwritten.

    Returns
    -------
    Path or None
        The backup, or None when ``path`` did not exist.
    """
    if not path.exists():
        return None
    target = backup_path(path)
    if path.is_dir():
        shutil.copytree(path, target)
    else:
        shutil.copy2(path, target)
    log.info("backed up %s to %s", path, target)
    return target
