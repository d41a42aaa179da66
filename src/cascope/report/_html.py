"""The HTML of the reports: one self-contained page, its style and its two small scripts.

Nothing here reaches the network: the style and the scripts are inline, every image is a
relative path into the page's own ``report_files/`` folder. The first script (in ``<head>``)
records every resource that fails to load and every script error on ``<html>``
(``data-failed-loads``, ``data-errors``) and sets ``data-report="ready"`` (and the time it
took, ``data-load-ms``) once the page has loaded, so a headless browser can check a report;
the second makes tables with the ``sortable`` class sort by a click on a column header.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

_STYLE = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --accent: #2f6fb0;
        --ok: #2f855a; --warn: #b7791f; --bad: #c53030; --bg: #f7f9fb; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0; background: var(--bg); }
header { background: #1f3a5f; color: #fff; padding: 18px 32px 14px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header .sub { color: #c8d6e5; font-size: 13px; }
header a { color: #fff; }
main { padding: 8px 32px 40px; max-width: 1280px; }
nav.toc { font-size: 13px; margin: 12px 0 4px; color: var(--muted); }
nav.toc a { margin-right: 14px; color: var(--accent); text-decoration: none; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px;
          padding: 14px 20px 16px; margin: 16px 0; }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 14px; margin: 14px 0 6px; }
p.note { color: var(--muted); font-size: 12.5px; margin: 6px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 14px 0 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 16px;
        min-width: 150px; }
.card .v { font-size: 22px; font-weight: 600; }
.card .k { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left;
         vertical-align: top; }
th { background: #eef2f6; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \\2195"; color: #9aa5b1; font-size: 11px; }
table.sortable th.asc::after { content: " \\2191"; color: var(--ink); }
table.sortable th.desc::after { content: " \\2193"; color: var(--ink); }
.scroll { max-height: 640px; overflow: auto; border: 1px solid var(--line); }
.scroll th { position: sticky; top: 0; }
.badge { display: inline-block; border-radius: 9px; padding: 0 8px; font-size: 12px;
         margin: 1px 2px 1px 0; background: #e4e7eb; white-space: nowrap; }
.badge.ok { background: #c6f6d5; color: #22543d; }
.badge.warn { background: #feebc8; color: #7b341e; }
.badge.bad { background: #fed7d7; color: #742a2a; }
figure { margin: 8px 0 12px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
figure img.pixelated { image-rendering: pixelated; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; }
.row { display: flex; flex-wrap: wrap; gap: 8px 28px; align-items: flex-start; }
.row > figure { margin: 8px 0; flex: 0 1 auto; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 14px; }
.grid figure { margin: 0; }
pre { background: #f0f4f8; padding: 8px 12px; overflow: auto; font-size: 12px; max-height: 360px; }
details summary { cursor: pointer; color: var(--accent); }
.error { color: var(--bad); font-family: ui-monospace, monospace; font-size: 12.5px; }
"""

# Runs first: records failed resource loads (capture phase sees <img>/<video> errors) and
# script errors, and marks the page ready once everything has loaded.
_WATCH = """
(function () {
  var root = document.documentElement, failed = [], errors = [];
  window.addEventListener('error', function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) { failed.push(t.src || t.href); }
    else { errors.push(String(e.message || e)); }
    root.setAttribute('data-failed-loads', failed.join(' '));
    root.setAttribute('data-errors', errors.join(' | '));
  }, true);
  window.addEventListener('load', function () {
    var imgs = document.images;
    for (var i = 0; i < imgs.length; i++) {
      if (!imgs[i].complete || imgs[i].naturalWidth === 0) {
        if (failed.indexOf(imgs[i].src) < 0) { failed.push(imgs[i].src); }
      }
    }
    root.setAttribute('data-failed-loads', failed.join(' '));
    root.setAttribute('data-errors', errors.join(' | '));
    root.setAttribute('data-images', String(imgs.length));
    root.setAttribute('data-load-ms', String(Math.round(performance.now())));
    root.setAttribute('data-report', 'ready');
  });
})();
"""

# Click a header to sort by that column; a second click reverses. Cells sort by their
# data-v attribute when present (numbers; empty for a missing value), else by their text.
_SORT = """
(function () {
  function key(cell) {
    var v = cell.getAttribute('data-v');
    if (v === null) { v = cell.textContent.trim(); }
    var n = parseFloat(v);
    return (v !== '' && !isNaN(n) && isFinite(v)) ? [0, n] : [v === '' ? 2 : 1, v.toLowerCase()];
  }
  function cmp(a, b) {
    if (a[0] !== b[0]) { return a[0] - b[0]; }
    return a[1] < b[1] ? -1 : (a[1] > b[1] ? 1 : 0);
  }
  var tables = document.querySelectorAll('table.sortable');
  Array.prototype.forEach.call(tables, function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener('click', function () {
        var asc = !th.classList.contains('asc');
        Array.prototype.forEach.call(heads, function (h) { h.classList.remove('asc', 'desc'); });
        th.classList.add(asc ? 'asc' : 'desc');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var k1 = key(r1.cells[col]), k2 = key(r2.cells[col]);
          // missing values stay last in either direction
          if ((k1[0] === 2) !== (k2[0] === 2)) { return k1[0] === 2 ? 1 : -1; }
          var c = cmp(k1, k2);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
"""


def esc(value: Any) -> str:
    """HTML-escape ``value`` as text."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    """Format a number as a person reads it (3 significant digits); ``—`` for none."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        if float(value).is_integer() and abs(value) < 1e6:
            return f"{int(value):,}"
        return f"{value:.{digits}g}"
    return str(value)


def badge(text: str, kind: str = "") -> str:
    """Return a small coloured label (``kind``: ``ok``, ``warn``, ``bad`` or plain)."""
    return f'<span class="badge {esc(kind)}">{esc(text)}</span>'


def cell(value: Any, *, raw_html: str | None = None) -> str:
    """Return a ``<td>``: numbers right-aligned with a sort key, text escaped (or ``raw_html``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        key = f"{number!r}" if math.isfinite(number) else ""
        return f'<td class="num" data-v="{key}">{raw_html or esc(fmt(value))}</td>'
    missing = ' data-v=""' if value is None else ""
    return f"<td{missing}>{raw_html if raw_html is not None else esc(fmt(value))}</td>"


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    sortable: bool = False,
    scroll: bool = False,
    table_id: str | None = None,
) -> str:
    """Return an HTML table; each row is a sequence of ``<td>`` strings (:func:`cell`)."""
    attrs = ' class="sortable"' if sortable else ""
    if table_id:
        attrs += f' id="{esc(table_id)}"'
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "\n".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    out = f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"
    return f'<div class="scroll">{out}</div>' if scroll else out


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    """Return a two-column table of names and values."""
    rows = (f"<tr><th>{esc(k)}</th>{cell(v)}</tr>" for k, v in pairs)
    return f"<table><tbody>{''.join(rows)}</tbody></table>"


def image(
    src: str, caption: str = "", *, alt: str = "", width: int | None = None, pixelated: bool = False
) -> str:
    """Return a figure with a relative image path and a caption (HTML, escaped by the caller)."""
    cls = ' class="pixelated"' if pixelated else ""
    size = f' width="{int(width)}"' if width else ""
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return (
        f'<figure><img src="{esc(src)}" alt="{esc(alt or caption)}"{size}{cls} loading="eager">'
        f"{cap}</figure>"
    )


def cards(items: Iterable[tuple[str, str]]) -> str:
    """Big numbers with a label each: ``(value, label)``."""
    inner = "".join(
        f'<div class="card"><div class="v">{esc(v)}</div><div class="k">{esc(k)}</div></div>'
        for v, k in items
    )
    return f'<div class="cards">{inner}</div>'


def section(anchor: str, title: str, body: str) -> str:
    """Return a titled block of the page with an anchor for the table of contents."""
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """Return the whole page; ``sections`` are ``(anchor, title, body html)``, empty ones left out.

    The page is complete in itself apart from the images it names (relative paths).
    """
    kept = [(a, t, b) for a, t, b in sections if b]
    toc = " ".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in kept)
    body = "\n".join(section(a, t, b) for a, t, b in kept)
    return f"""<!DOCTYPE html>
<html lang="en" data-report="loading">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="cascope">
<title>{esc(title)}</title>
<script>{_WATCH}</script>
<style>{_STYLE}</style>
</head>
<body>
<header><h1>{esc(title)}</h1><div class="sub">{subtitle}</div></header>
<main>
<nav class="toc">{toc}</nav>
{body}
</main>
<script>{_SORT}</script>
</body>
</html>
"""
