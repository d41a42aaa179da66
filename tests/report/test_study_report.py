"""The report of a study folder: every recording, every compared feature, the failures."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from tests.report.helpers import FEATURES, RECORDINGS, decode_all, parse_page
from typer.testing import CliRunner

from cascope.cli import app
from cascope.errors import InputError
from cascope.report import build_report


@pytest.fixture
def study(study_folder: Path, tmp_path: Path) -> Path:
    """A copy of the study for one test to change."""
    return Path(shutil.copytree(study_folder, tmp_path / "study"))


def test_study_report_shows_every_recording_feature_and_failure(study: Path) -> None:
    # one recording has no page yet: the study report builds it
    (study / "recordings" / "drug_a" / "report.html").unlink()
    result = CliRunner().invoke(app, ["report", str(study)])
    assert result.exit_code == 0, result.output
    page = parse_page(study / "report.html")
    text = " ".join(page.text)
    assert page.external == []
    decode_all(study, page.images)
    # every recording is in the table and links to its own page, which exists
    html = (study / "report.html").read_text()
    for rid, condition, subject, *_ in RECORDINGS:
        row = html.split(f">{rid}</a>")[1].split("</tr>")[0]
        assert f"<td>{condition}</td>" in row and f"<td>{subject}</td>" in row
        assert f"recordings/{rid}/report.html" in page.links
        sub = study / "recordings" / rid / "report.html"
        assert sub.is_file()
        decode_all(sub.parent, parse_page(sub).images)
    # the failed recording is listed with its error
    assert "drug_broken" in text and "missing.tif: does not exist" in text
    assert "recordings/drug_broken/report.html" not in page.links
    # every compared feature has its row and its figure with the test and n
    stats = pd.read_csv(study / "comparison" / "statistics.csv")
    assert list(stats["feature"]) == list(FEATURES)
    for _, row in stats.iterrows():
        assert row["feature"] in text
        assert f"report_files/feature_{row['feature']}.png" in page.images
        assert row["test"] in text
    # the embedding coloured by condition, and the provenance
    assert "report_files/embedding.png" in page.images
    for word in ("Provenance", "local", "tcp://127.0.0.1:0", "Pipeline configuration"):
        assert word in text
    # the table sorts (an inline script, numbers carry their sort key)
    assert 'class="sortable"' in html and "data-v=" in html


def test_the_drug_effect_is_in_the_report(study: Path) -> None:
    build_report(study, recordings="none")
    stats = pd.read_csv(study / "comparison" / "statistics.csv").set_index("feature")
    # the simulated drug doubles the event amplitude: peak ΔF/F differs, and the page says so
    assert stats.loc["dff_peak", "significant"]
    html = (study / "report.html").read_text()
    row = html.split("<td>dff_peak</td>")[1].split("</tr>")[0]
    assert "badge ok" in row  # the corrected p-value marked significant


def test_paired_fields_show_new_silenced_and_recurrent_events(study: Path) -> None:
    from cascope.events.compare import event_types

    page_path = build_report(study, recordings="none")
    page = parse_page(page_path)
    assert "report_files/event_types.png" in page.images
    decode_all(study, ["report_files/event_types.png"])
    html = page_path.read_text()
    events = pd.read_parquet(study / "events.parquet")
    for subject, first, second in (
        ("s1", "ctrl_a", "drug_a"),
        ("s2", "ctrl_b", "drug_b"),
        ("s3", "ctrl_c", "drug_c"),
    ):
        before = events[events["recording"] == first]
        after = events[events["recording"] == second]
        tb, ta = event_types(before, after)
        title = f"{subject}_field1: {first} → {second}"
        row = html.split(f"<td>{title}</td>")[1].split("</tr>")[0]
        counts = [int(float(v)) for v in re.findall(r'data-v="([0-9.]+)"', row)]
        expected = [(ta == "new").sum(), (tb == "silenced").sum(), (ta == "recurrent").sum()]
        assert counts == expected and sum(counts) > 0


def test_a_recording_id_with_spaces_and_hashes_links_to_its_page(study: Path) -> None:
    from urllib.parse import unquote

    doc = json.loads((study / "study.json").read_text())
    odd = "ctrl a #1"
    (study / "recordings" / "ctrl_a").rename(study / "recordings" / odd)
    doc["recordings"][0].update(id=odd, folder=f"recordings/{odd}")
    (study / "study.json").write_text(json.dumps(doc))
    page = parse_page(build_report(study, recordings="none"))
    links = [link for link in page.links if link.startswith("recordings/ctrl%20a")]
    assert links == ["recordings/ctrl%20a%20%231/report.html"]
    assert (study / unquote(links[0])).is_file()


def test_a_study_of_only_failures_still_builds(study: Path) -> None:
    doc = json.loads((study / "study.json").read_text())
    for rec in doc["recordings"]:
        rec.update(status="failed", error=f"{rec['id']}: worker lost")
    (study / "study.json").write_text(json.dumps(doc))
    shutil.rmtree(study / "comparison")
    shutil.rmtree(study / "recordings")
    page_path = build_report(study)
    text = " ".join(parse_page(page_path).text)
    for rec in doc["recordings"]:
        assert f"{rec['id']}: worker lost" in text
    assert "No comparison" in text


def test_not_a_study_is_refused_before_writing(tmp_path: Path) -> None:
    (tmp_path / "study.json").write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="not a cascope study"):
        build_report(tmp_path)
    assert not (tmp_path / "report.html").exists()
    assert not (tmp_path / "report_files").exists()
