"""A real headless Chromium opens the reports from disk with the network cut off.

Each page records on ``<html>`` every resource that failed to load and every script error, and
says ``data-report="ready"`` once loaded; the test reads them from the DOM Chromium dumps, checks
Chromium's console log, and looks at a screenshot.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from tests.report.helpers import parse_page

from cascope.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)


def open_page(page: Path, profile: Path, *extra: str) -> tuple[dict[str, str], str, str]:
    """Load ``page`` in headless Chromium without network: <html>'s attributes, output, log."""
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        # every request that is not to a file goes to a closed port: no network
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        *extra,
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    attrs: dict[str, str] = {}
    head = re.search(r"<html([^>]*)>", proc.stdout)
    if head:
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', head.group(1)))
    return attrs, proc.stdout, proc.stderr


def assert_clean_load(page: Path, profile: Path) -> None:
    attrs, _, log = open_page(page, profile, "--dump-dom")
    assert attrs.get("data-report") == "ready", attrs
    assert attrs.get("data-failed-loads") == "", attrs["data-failed-loads"]
    assert attrs.get("data-errors") == "", attrs["data-errors"]
    assert int(attrs["data-images"]) == len(parse_page(page).images) > 0
    console = [line for line in log.splitlines() if "CONSOLE" in line or "net::ERR" in line]
    assert console == []


def test_chromium_opens_the_study_report_offline(study_folder: Path, tmp_path: Path) -> None:
    study = Path(shutil.copytree(study_folder, tmp_path / "study"))
    page = build_report(study)
    assert_clean_load(page, tmp_path / "profile")
    # and a recording's own page, with its animated preview
    assert_clean_load(study / "recordings" / "ctrl_a" / "report.html", tmp_path / "profile")
    # the screenshot shows a rendered page: a header, tables and figures, not a blank one
    shot = tmp_path / "study.png"
    open_page(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,1600")
    import imageio.v3 as iio

    pixels = iio.imread(shot)[..., :3].astype(float)
    assert pixels.shape[:2] == (1600, 1280)
    header = pixels[:40].reshape(-1, 3).mean(axis=0)
    assert np.allclose(header, [0x1F, 0x3A, 0x5F], atol=25)  # the dark blue title bar
    body = pixels[100:]
    assert body.std() > 20  # text, tables and figures, not one colour
    unique = np.unique(body.astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(unique) > 200  # figures add many colours


def test_a_broken_page_is_caught_and_the_network_is_off(study_folder: Path, tmp_path: Path) -> None:
    # the same checks catch a missing image, a script error and any request to the internet
    study = Path(shutil.copytree(study_folder, tmp_path / "study"))
    html = build_report(study, recordings="none").read_text()
    broken = study / "broken.html"
    broken.write_text(
        html.replace("report_files/embedding.png", "report_files/gone.png").replace(
            "</main>",
            '</main><img src="https://example.org/a.png"><script>notDefined();</script>',
        )
    )
    attrs, _, log = open_page(broken, tmp_path / "profile", "--dump-dom")
    assert attrs["data-report"] == "ready"
    failed = attrs["data-failed-loads"].split()
    assert "https://example.org/a.png" in failed  # no network: the request failed
    assert any(f.endswith("report_files/gone.png") for f in failed)
    assert "notDefined" in attrs["data-errors"]
    assert "notDefined" in log


def test_the_recordings_table_sorts_by_a_click(study_folder: Path, tmp_path: Path) -> None:
    study = Path(shutil.copytree(study_folder, tmp_path / "study"))
    html = build_report(study, recordings="none").read_text()
    # click the "events" header twice (ascending, then descending), as a reader would
    click = "var th = document.querySelectorAll('#recordings-table th')[5]; th.click(); th.click();"
    clicked = study / "clicked.html"
    clicked.write_text(html.replace("</body>", f"<script>{click}</script></body>"))
    attrs, dom, _ = open_page(clicked, tmp_path / "profile", "--dump-dom")
    assert attrs["data-errors"] == ""
    table = dom.split('id="recordings-table"')[1].split("</table>")[0]
    rows = table.split("<tbody>")[1].split("</tr>")[:-1]
    cells = [re.findall(r"<td([^>]*)>", r)[5] for r in rows]  # the sixth column: events
    keys = [re.search(r'data-v="([^"]*)"', c) for c in cells]
    events = [float(k.group(1)) if k and k.group(1) else None for k in keys]
    known = [e for e in events if e is not None]
    assert known == sorted(known, reverse=True) and len(known) == 6
    assert events[-1] is None  # the failed recording, with no count, sorts last
