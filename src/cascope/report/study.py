"""The report of a ``cascope study`` folder: every recording, the comparison, the provenance.

The folder is the study contract: ``study.json`` (recordings with condition, subject, status,
error, seconds, events; totals; config; versions; cluster), ``recordings/<id>/`` (what
``cascope run`` writes), ``events.parquet`` / ``events.csv`` (every event with ``recording`` and
``condition``) and ``comparison/`` (what :func:`cascope.report.comparison.compare_report` writes).
The page has a sortable table of the recordings linking to each one's own page, the failed
recordings with their errors, a violin/box plot per compared feature with its test, corrected
p-value, effect size and n, the clustering embedding by condition, maps of new, silenced and
recurrent events where one field (manifest column ``field``) was recorded in both of two
conditions, and the provenance. It stays
light for large studies: the page itself holds one figure per feature and no movie.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
import pandas as pd

from cascope.errors import CascopeError, InputError
from cascope.report import _html as h
from cascope.report import figures
from cascope.report.run import FILES, build_run_report, qc_section, read_run, write_page

log = logging.getLogger(__name__)

#: Most events drawn in the embedding.
MAX_POINTS = 20_000
#: Most pairs drawn (a large study lists the rest in the table only).
MAX_PAIRS = 24


def read_study(folder: str | Path) -> dict[str, Any]:
    """Read and check ``study.json``.

    Raises
    ------
    InputError
        The file is missing, not JSON, or not a cascope study.
    """
    path = Path(folder).expanduser().resolve() / "study.json"
    try:
        study = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise InputError("does not exist (is this a `cascope study` folder?)", path) from err
    except ValueError as err:
        raise InputError(f"is not valid JSON ({err})", path) from err
    if not isinstance(study, dict) or study.get("format") != "cascope-study":
        raise InputError('is not a cascope study (expected "format": "cascope-study")', path)
    if not isinstance(study.get("recordings"), list):
        raise InputError("has no list of recordings", path)
    return study


def _status_badge(status: str) -> str:
    kind = {"done": "ok", "failed": "bad", "skipped": "warn"}.get(status, "")
    return h.badge(status, kind)


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _recording_rows(
    folder: Path, study: dict[str, Any], build: Literal["missing", "all", "none"]
) -> tuple[list[dict[str, Any]], list[str]]:
    """One dict per recording with what the table shows; recording pages built on the way."""
    rows, problems = [], []
    for rec in study["recordings"]:
        rid = str(rec.get("id", "?"))
        sub = folder / str(rec.get("folder") or f"recordings/{rid}")
        row: dict[str, Any] = {
            "id": rid,
            "condition": rec.get("condition"),
            "subject": rec.get("subject"),
            "status": str(rec.get("status") or "unknown"),
            "error": rec.get("error"),
            "seconds": _number(rec.get("seconds")),
            "n_events": rec.get("n_events"),
            "flags": None,
            "per_minute": None,
            "density": None,
            "link": None,
        }
        if row["status"] == "done" and (sub / "summary.json").is_file():
            try:
                raw = rec.get("path")
                info = read_run(sub, raw=raw if raw and Path(raw).exists() else None)
            except CascopeError as err:
                problems.append(f"{rid}: {err}")
            else:
                row["flags"] = list((info.qc or {}).get("flags") or []) if info.qc else None
                row["per_minute"] = info.numbers["per_minute"]
                row["density"] = info.numbers["per_minute_per_100um2"]
                if row["n_events"] is None:
                    row["n_events"] = info.numbers["n_events"]
                if row["seconds"] is None:
                    row["seconds"] = _number(info.summary.get("seconds"))
                page = sub / "report.html"
                if build == "all" or (build == "missing" and not page.is_file()):
                    try:
                        build_run_report(sub, raw=info.raw_path)
                    except Exception as err:  # one recording's page must not stop the study's
                        log.warning("report: no page for recording %s (%s)", rid, err)
                        problems.append(f"{rid}: its page could not be built ({err})")
                if page.is_file():
                    # a URL: an id may hold spaces or '#'
                    row["link"] = quote(Path(os.path.relpath(page, folder)).as_posix())
        rows.append(row)
    return rows, problems


def _table(rows: list[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        name = h.esc(r["id"])
        link = f'<a href="{h.esc(r["link"])}">{name}</a>' if r["link"] else name
        flags = r["flags"]
        if flags is None:
            flag_html, flag_key = "—", ""
        elif flags:
            flag_html = "".join(h.badge(f.replace("_", " "), "warn") for f in flags)
            flag_key = " ".join(flags)
        else:
            flag_html, flag_key = h.badge("none", "ok"), "(none)"
        n_events = r["n_events"]
        body.append(
            [
                h.cell(r["id"], raw_html=link),
                h.cell(r["condition"]),
                h.cell(r["subject"]),
                h.cell(r["status"], raw_html=_status_badge(r["status"])),
                f'<td data-v="{h.esc(flag_key)}">{flag_html}</td>',
                h.cell(int(n_events) if n_events is not None else None),
                h.cell(r["per_minute"]),
                h.cell(r["density"]),
                h.cell(r["seconds"]),
            ]
        )
    header = [
        "recording",
        "condition",
        "subject",
        "status",
        "QC flags",
        "events",
        "events / min",
        "events / min / 100 µm²",
        "run time (s)",
    ]
    return h.table(header, body, sortable=True, scroll=len(rows) > 25, table_id="recordings-table")


def _failed(rows: list[dict[str, Any]]) -> str:
    bad = [r for r in rows if r["status"] == "failed"]
    if not bad:
        return ""
    items = "".join(
        f"<li><b>{h.esc(r['id'])}</b> ({h.esc(r['condition'] or 'no condition')}): "
        f'<span class="error">{h.esc(r["error"] or "no error recorded")}</span></li>'
        for r in bad
    )
    return f"<p>{len(bad)} recording(s) failed; the comparison left them out.</p><ul>{items}</ul>"


def _events_table(folder: Path) -> pd.DataFrame | None:
    for name in ("events.parquet", "events.csv"):
        path = folder / name
        if path.is_file():
            try:
                return pd.read_parquet(path) if name.endswith("parquet") else pd.read_csv(path)
            except Exception as err:  # an unreadable table only loses the violins
                log.warning("report: cannot read %s (%s)", path, err)
    return None


def _stat_title(row: pd.Series, groups: list[str]) -> str:
    p_adj = _number(row.get("p_adjusted"))
    effect = _number(row.get("effect_size"))
    ns = ", ".join(
        f"{g}: {int(row[f'n_{g}'])}"
        for g in groups
        if f"n_{g}" in row and _number(row[f"n_{g}"]) is not None
    )
    parts = [
        str(row.get("test", "")),
        f"p(corr.) = {h.fmt(p_adj)}" + (" *" if bool(row.get("significant")) else ""),
        f"{row.get('effect_measure', 'effect')} = {h.fmt(effect)}",
    ]
    return "; ".join(parts) + (f"\nn = {ns}" if ns else "")


def _comparison(folder: Path, files: Path) -> str:
    comp = folder / "comparison"
    stats_path = comp / "statistics.csv"
    if not stats_path.is_file():
        return '<p class="note">No comparison in this study (comparison/statistics.csv).</p>'
    stats = pd.read_csv(stats_path)
    summary: dict[str, Any] = {}
    if (comp / "summary.json").is_file():
        try:
            summary = json.loads((comp / "summary.json").read_text())
        except ValueError:
            summary = {}
    by = str(summary.get("by", "condition"))
    groups = [str(g) for g in summary.get("conditions", [])] or sorted(
        c[2:] for c in stats.columns if c.startswith("n_")
    )
    unit = summary.get("unit")
    body = f"<p>Conditions compared by <b>{h.esc(by)}</b>: {h.esc(', '.join(groups))}"
    if unit:
        body += f"; statistical unit: <b>{h.esc(unit)}</b>"
    body += f"; correction: {h.esc(summary.get('correction', stats.get('correction', ['?'])[0]))}."
    body += "</p>"
    rows = []
    for _, r in stats.iterrows():
        sig = bool(r.get("significant"))
        rows.append(
            [
                h.cell(r["feature"]),
                h.cell(r.get("test")),
                *(h.cell(_plain_int(r.get(f"n_{g}"))) for g in groups),
                h.cell(_number(r.get("statistic"))),
                h.cell(_number(r.get("p"))),
                h.cell(
                    _number(r.get("p_adjusted")),
                    raw_html=h.badge(h.fmt(_number(r.get("p_adjusted"))), "ok" if sig else ""),
                ),
                h.cell(_number(r.get("effect_size"))),
                h.cell(r.get("effect_measure")),
            ]
        )
    header = [
        "feature",
        "test",
        *(f"n {g}" for g in groups),
        "statistic",
        "p",
        "p corrected",
        "effect size",
        "measure",
    ]
    body += h.table(header, rows, sortable=True, table_id="statistics-table")
    events = _events_table(folder)
    grid = []
    for _, r in stats.iterrows():
        feature = str(r["feature"])
        title = _stat_title(r, groups)
        name = f"feature_{_safe(feature)}.png"
        if events is not None and feature in events.columns and by in events.columns:
            values, medians = _feature_groups(events, feature, by)
            figures.feature_by_condition(
                values, files / name, feature=feature, unit_medians=medians, title=title
            )
            grid.append(h.image(f"{FILES}/{name}", h.esc(feature), alt=feature))
        elif (comp / f"feature_{feature}.png").is_file():
            grid.append(
                h.image(
                    quote(f"comparison/feature_{feature}.png"),
                    f"{h.esc(feature)}: {h.esc(title)}",
                    alt=feature,
                )
            )
    if grid:
        body += "<h3>Features by condition</h3>"
        body += (
            '<p class="note">Violin and box: every event; dots: each recording\'s median. '
            "Titles: the test, the p-value corrected across features, the effect size and "
            "n (per the statistical unit).</p>"
        )
        body += f'<div class="grid">{"".join(grid)}</div>'
    if (comp / "clusters.csv").is_file():
        clusters = pd.read_csv(comp / "clusters.csv")
        if {"pc1", "pc2"} <= set(clusters.columns) and len(clusters):
            drawn = ""
            if len(clusters) > MAX_POINTS:  # a light figure: a random sample of the events
                drawn = f" ({MAX_POINTS:,} of {len(clusters):,} events drawn at random)"
                clusters = clusters.sample(MAX_POINTS, random_state=0)
            figures.embedding(
                clusters,
                files / "embedding.png",
                by=by if by in clusters.columns else clusters.columns[0],
            )
            k = summary.get("best_k")
            body += "<h3>Clustering</h3>" + h.image(
                f"{FILES}/embedding.png",
                "events in the first two principal components of the standardised features"
                + (f"; KMeans chose k = {int(k)} by silhouette" if k else "")
                + drawn,
            )
    if (comp / "posthoc.csv").is_file() and (comp / "posthoc.csv").stat().st_size > 1:
        try:
            post = pd.read_csv(comp / "posthoc.csv")
        except pd.errors.EmptyDataError:
            post = pd.DataFrame()
        if len(post):
            prow = [[h.cell(_plain_scalar(v)) for v in rec] for rec in post.itertuples(index=False)]
            body += (
                "<details><summary>Pairwise post-hoc tests</summary>"
                + h.table(list(post.columns), prow, sortable=True)
                + "</details>"
            )
    return body


def _pairs(
    folder: Path, study: dict[str, Any], events: pd.DataFrame | None
) -> list[tuple[str, pd.DataFrame, pd.DataFrame, tuple[int, int]]]:
    """Pair the recordings of one field (manifest column ``field``) in the two conditions."""
    done = [r for r in study["recordings"] if r.get("status") == "done" and r.get("field")]
    conditions = sorted({str(r.get("condition")) for r in done if r.get("condition") is not None})
    if len(conditions) != 2:
        return []
    by_field: dict[str, dict[str, dict[str, Any]]] = {}
    for r in done:
        by_field.setdefault(str(r["field"]), {})[str(r.get("condition"))] = r
    pairs = []
    for field_name, recs in sorted(by_field.items()):
        if set(recs) != set(conditions):
            continue
        tables, shape = [], None
        for c in conditions:
            rid = str(recs[c]["id"])
            sub = folder / str(recs[c].get("folder") or f"recordings/{rid}")
            if events is not None and "recording" in events.columns:
                table = events[events["recording"].astype(str) == rid]
            elif (sub / "events.csv").is_file():
                table = pd.read_csv(sub / "events.csv")
            else:
                break
            tables.append(table)
            summary_path = sub / "summary.json"
            if shape is None and summary_path.is_file():
                dims = json.loads(summary_path.read_text()).get("shape") or []
                shape = (int(dims[-2]), int(dims[-1])) if len(dims) >= 2 else None
        if len(tables) == 2:
            if shape is None:
                both = pd.concat(tables)
                shape = (int(both["y"].max()) + 1, int(both["x"].max()) + 1)
            title = f"{field_name}: {recs[conditions[0]]['id']} → {recs[conditions[1]]['id']}"
            pairs.append((title, tables[0], tables[1], shape))
    return pairs


def _paired_section(folder: Path, study: dict[str, Any], files: Path) -> str:
    pairs = _pairs(folder, study, _events_table(folder))
    if not pairs:
        return ""
    _, counts = figures.event_type_maps(pairs[:MAX_PAIRS], files / "event_types.png")
    if len(pairs) > MAX_PAIRS:
        from cascope.events.compare import event_types

        rest = []
        for title, before, after, _ in pairs[MAX_PAIRS:]:
            tb, ta = event_types(before, after)
            rest.append(
                {
                    "pair": title,
                    "new": int((ta == "new").sum()),
                    "silenced": int((tb == "silenced").sum()),
                    "recurrent": int((ta == "recurrent").sum()),
                }
            )
        counts = pd.concat([counts, pd.DataFrame(rest)], ignore_index=True)
    rows = [
        [
            h.cell(r["pair"]),
            h.cell(int(r["new"])),
            h.cell(int(r["silenced"])),
            h.cell(int(r["recurrent"])),
        ]
        for _, r in counts.iterrows()
    ]
    first, second = sorted(
        {
            str(r.get("condition"))
            for r in study["recordings"]
            if r.get("status") == "done" and r.get("field")
        }
    )
    note = (
        f'<p class="note">Recordings of one field (manifest column <code>field</code>) in '
        f"{h.esc(first)} and then {h.esc(second)}: an event of the second within 6 pixels of "
        "one of the first recurs; others are new; events of the first with none near them "
        "in the second are silenced.</p>"
    )
    shown = "" if len(pairs) <= MAX_PAIRS else f" (the first {MAX_PAIRS} drawn)"
    return (
        note
        + h.image(f"{FILES}/event_types.png", f"{len(pairs)} paired fields{shown}")
        + h.table(
            ["pair", "new", "silenced", "recurrent"], rows, sortable=True, scroll=len(rows) > 25
        )
    )


def _plain_int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _plain_scalar(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _feature_groups(
    events: pd.DataFrame, feature: str, by: str
) -> tuple[dict[str, np.ndarray[Any, Any]], dict[str, np.ndarray[Any, Any]]]:
    values, medians = {}, {}
    data = events.assign(_v=pd.to_numeric(events[feature], errors="coerce")).dropna(subset=["_v"])
    for g, part in data.groupby(data[by].astype(str), sort=True):
        values[str(g)] = part["_v"].to_numpy(np.float64)
        if "recording" in part.columns:
            medians[str(g)] = part.groupby("recording")["_v"].median().to_numpy(np.float64)
    return values, medians


def _provenance(study: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    import yaml

    body = ""
    seconds = [r["seconds"] for r in rows if r["seconds"] is not None]
    totals = study.get("totals") or {}
    timing = [("study wall time (s)", _number(totals.get("seconds")))]
    if seconds:
        timing += [
            ("recordings timed", len(seconds)),
            ("median per recording (s)", float(np.median(seconds))),
            ("slowest recording (s)", float(np.max(seconds))),
            ("sum over recordings (s)", float(np.sum(seconds))),
        ]
    body += "<h3>Timings</h3>" + h.key_values(timing)
    cluster = study.get("cluster") or {}
    if cluster:
        body += "<h3>Cluster</h3>" + h.key_values(
            (str(k), v if isinstance(v, (int, float, str)) else json.dumps(v))
            for k, v in cluster.items()
        )
    versions = study.get("versions") or {}
    machine = study.get("machine")
    if versions or machine:
        pairs = sorted(versions.items()) + ([("machine", json.dumps(machine))] if machine else [])
        body += "<h3>Software and machine</h3>" + h.key_values(pairs)
    body += "<h3>Study</h3>" + h.key_values(
        [("manifest", study.get("manifest")), ("created", study.get("created"))]
    )
    if study.get("config"):
        text = yaml.safe_dump(study["config"], sort_keys=False)
        body += f"<h3>Pipeline configuration</h3><pre>{h.esc(text)}</pre>"
    return body


def _overview(study: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "failed", "skipped")}
    conditions = sorted({str(r["condition"]) for r in rows if r["condition"] is not None})
    subjects = {str(r["subject"]) for r in rows if r["subject"] is not None}
    n_events = sum(int(r["n_events"]) for r in rows if r["n_events"] is not None)
    items = [
        (str(len(rows)), "recordings"),
        (str(counts["done"]), "done"),
        (str(counts["failed"]), "failed"),
        (str(counts["skipped"]), "skipped"),
        (str(len(conditions)), "conditions"),
        (str(len(subjects)), "subjects"),
        (h.fmt(n_events), "events"),
    ]
    by_condition = []
    for c in conditions:
        sel = [r for r in rows if str(r["condition"]) == c and r["status"] == "done"]
        rates = [r["per_minute"] for r in sel if r["per_minute"] is not None]
        by_condition.append(
            [
                h.cell(c),
                h.cell(len(sel)),
                h.cell(sum(int(r["n_events"] or 0) for r in sel)),
                h.cell(float(np.median(rates)) if rates else None),
            ]
        )
    table = (
        h.table(["condition", "recordings done", "events", "median events / min"], by_condition)
        if by_condition
        else ""
    )
    return h.cards(items) + (f"<h3>By condition</h3>{table}" if table else "")


def build_study_page(
    folder: Path, files: Path, *, recordings: Literal["missing", "all", "none"] = "missing"
) -> str:
    """Write the study's figures into ``files`` (building recording pages) and return the page."""
    study = read_study(folder)
    rows, problems = _recording_rows(folder, study, recordings)
    table = _table(rows)
    if problems:
        table += '<p class="note">' + "<br>".join(h.esc(p) for p in problems) + "</p>"
    qc_note = ""
    if rows and all(r["flags"] is None for r in rows):
        qc_note = qc_section(None)
    sub = " · ".join(
        [
            f"{len(rows)} recordings",
            f"created {h.esc(study.get('created', '?'))}",
            "report made " + time.strftime("%Y-%m-%d %H:%M"),
        ]
    )
    sections = [
        ("overview", "Overview", _overview(study, rows)),
        ("recordings", "Recordings", table + qc_note),
        ("failed", "Failed recordings", _failed(rows)),
        ("comparison", "Comparison between conditions", _comparison(folder, files)),
        ("paired", "New, silenced and recurrent events", _paired_section(folder, study, files)),
        ("provenance", "Provenance", _provenance(study, rows)),
    ]
    return h.page(f"cascope study: {folder.name}", sub, sections)


def build_study_report(
    folder: str | Path, *, recordings: Literal["missing", "all", "none"] = "missing"
) -> Path:
    """Write ``report.html`` and ``report_files/`` into a ``cascope study`` folder.

    Parameters
    ----------
    folder : str or Path
        The study folder (``study.json``, ``recordings/``, ``comparison/``).
    recordings : {"missing", "all", "none"}
        Which finished recordings get their own page built first: those without one (default),
        every one, or none.

    Returns
    -------
    Path
        The study's ``report.html``.
    """
    from cascope.io import atomic_output

    path = Path(folder).expanduser().resolve()
    read_study(path)  # a clear error before anything is written
    html = ""
    with atomic_output(path / FILES, force=True) as tmp:
        tmp.mkdir()
        html = build_study_page(path, tmp, recordings=recordings)
    return write_page(path / "report.html", html)
