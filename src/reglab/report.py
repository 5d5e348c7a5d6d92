"""Figures and claims -> one static HTML page (works from file://, no server)."""

from __future__ import annotations

import csv
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reglab.experiments import POST
from reglab.experiments.base import Claim, Figure, Slider, Table


@dataclass
class SavedSlider:
    """A slider whose panels are written to disk: image paths relative to the page."""

    key: str
    label: str
    values: list[str]
    images: list[str]
    caption: str
    start: int = 0


@dataclass
class SavedTable:
    """A Table with its CSV written beside the page: the path relative to the page."""

    table: Table
    csv: str


@dataclass
class Section:
    """One experiment's part of the report."""

    name: str
    config: dict[str, Any]
    figures: list[tuple[str, str]]  # (relative image path, caption)
    sliders: list[SavedSlider] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cached: bool = False  # re-rendered from a saved result, not trained in this run
    devices: str = ""  # where it trained, e.g. "1 CPU device"
    tables: list[SavedTable] = field(default_factory=list)


# The post's section for each experiment: the report's headings.
TITLES = {
    "augmentation": "§1 Data augmentation: pixel shifts on MNIST (Figure 1)",
    "mlm_masking": "§1 Data augmentation: BERT's masking rates (beyond the post)",
    "weight_decay": "§2 Weight decay: L2 and L1 on noisy two moons (Figures 2-4)",
    "adamw": "§2 Weight decay: Adam + L2 against AdamW (beyond the post)",
    "dropout": "§3 Dropout and Monte-Carlo dropout (Figures 5-6)",
    "label_smoothing": "§4 Label smoothing and calibration (Figures 7-8)",
    "early_stopping": "§5 Early stopping and spectral bias (Figures 9-10)",
    "choices": "What the post leaves unsaid, and what it changes (beyond the post)",
}
_TIMING_WORDS = {
    "compile_s": "compiling",
    "run_s": "training",
    "total_s": "in all",
    "render_s": "figures and claims",
}


def section_title(name: str) -> str:
    """Return the report heading of an experiment: the post's section, in words."""
    return TITLES.get(name, name.replace("_", " "))


def timing_words(timings: dict[str, float]) -> str:
    """Return timings as words: 'compiling 1.2 s, training 3.4 s, ...'."""
    return ", ".join(
        f"{_TIMING_WORDS.get(k, k.removesuffix('_s').replace('_', ' '))} {v:.1f} s"
        for k, v in timings.items()
    )


def save_figure(fig: Figure, directory: Path) -> Path:
    """Write fig as PNG and SVG under directory; return the PNG path."""
    directory.mkdir(parents=True, exist_ok=True)
    png = directory / f"{fig.key}.png"
    fig.figure.savefig(png, dpi=110, bbox_inches="tight")
    fig.figure.savefig(directory / f"{fig.key}.svg", bbox_inches="tight")
    return png


def save_slider(slider: Slider, directory: Path, out_dir: Path) -> SavedSlider:
    """Write one PNG per panel of slider; return it with paths relative to out_dir."""
    directory.mkdir(parents=True, exist_ok=True)
    images = []
    for i, fig in enumerate(slider.figures):
        png = directory / f"{slider.key}_{i:02d}.png"
        fig.savefig(png, dpi=80, bbox_inches="tight")
        images.append(str(png.relative_to(out_dir)))
    return SavedSlider(
        slider.key, slider.label, slider.values, images, slider.caption, slider.start
    )


def save_table(table: Table, directory: Path, out_dir: Path) -> SavedTable:
    """Write table as directory/<key>.csv (cells' values, not their texts)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{table.key}.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(table.columns)
        writer.writerows([_cell_value(c) for c in row] for row in table.rows)
    return SavedTable(table, str(path.relative_to(out_dir)))


def _cell_value(cell: Any) -> Any:
    return cell[0] if isinstance(cell, tuple) else cell


def _table_html(saved: SavedTable) -> str:
    t = saved.table
    head = "".join(
        f'<th><button type="button" data-col="{i}">{html.escape(c)}</button></th>'
        for i, c in enumerate(t.columns)
    )
    rows = []
    for row in t.rows:
        cells = []
        for c in row:
            value, text = c if isinstance(c, tuple) else (c, c)
            if isinstance(value, (int, float)):
                sort = f'data-sort="{float(value)!r}"'
                cells.append(f'<td class="num" {sort}>{_fmt(text)}</td>')
            else:
                cells.append(f"<td>{_fmt(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<figure class="table" id="{html.escape(t.key)}"><div class="table-wrap">'
        f'<table class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        f"<figcaption>{html.escape(t.caption)} Click a column to sort by it. "
        f'<a href="{html.escape(saved.csv)}">CSV</a></figcaption></figure>'
    )


def _slider_html(s: SavedSlider) -> str:
    data = html.escape(json.dumps({"values": s.values, "images": s.images}))
    last = len(s.values) - 1
    return (
        f'<figure class="slider" data-slider="{html.escape(s.key)}"'
        f' data-panels="{data}">'
        f"<label>{html.escape(s.label)}: <output>{html.escape(s.values[s.start])}"
        f'</output><input type="range" min="0" max="{last}" step="1"'
        f' value="{s.start}" aria-label="{html.escape(s.label)}"></label>'
        f'<img src="{html.escape(s.images[s.start])}" alt="{html.escape(s.caption)}">'
        f"<figcaption>{html.escape(s.caption)}</figcaption></figure>"
    )


# Each slider swaps its panel's image and label in place; no server, works from file://
_SLIDER_JS = """
document.querySelectorAll("figure.slider").forEach(function (fig) {
  var panels = JSON.parse(fig.dataset.panels);
  var input = fig.querySelector("input"), out = fig.querySelector("output");
  var img = fig.querySelector("img");
  input.addEventListener("input", function () {
    img.src = panels.images[input.value];
    out.textContent = panels.values[input.value];
  });
});
// Each sortable table sorts by a column on a click (again: the other way round);
// numbers by value (data-sort), words alphabetically.
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th button").forEach(function (button) {
    button.addEventListener("click", function () {
      var col = Number(button.dataset.col), body = table.tBodies[0];
      var down = button.getAttribute("aria-sort") === "ascending";
      table.querySelectorAll("th button").forEach(function (b) {
        b.removeAttribute("aria-sort");
      });
      button.setAttribute("aria-sort", down ? "descending" : "ascending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col], y = b.cells[col], d;
        if (x.dataset.sort !== undefined && y.dataset.sort !== undefined) {
          d = Number(x.dataset.sort) - Number(y.dataset.sort);
        } else {
          d = x.textContent.localeCompare(y.textContent);
        }
        return down ? -d : d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

# the report's style sheet; the sweep report (lab/sweep_report.py) shares it
CSS = """
body { font: 16px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 0 1em 3em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; margin-top: 2em; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.92em; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; margin: 0.8em 0; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.5em; text-align: left;
         vertical-align: top; }
th { background: #f6f6f6; }
td.num { font-family: ui-monospace, monospace; white-space: nowrap; }
tr.pass td.verdict { color: #156d2c; font-weight: 600; }
tr.fail td.verdict { color: #b3261e; font-weight: 600; }
details { margin: 0.6em 0; } code { font-size: 0.9em; }
.summary { background: #f6f8fa; padding: 0.6em 1em; border-radius: 6px; }
.table-wrap { overflow-x: auto; }
table.sortable th button { font: inherit; font-weight: 600; background: none;
  border: none; padding: 0; cursor: pointer; text-align: left; }
table.sortable th button[aria-sort=ascending]::after { content: " \\25B2"; }
table.sortable th button[aria-sort=descending]::after { content: " \\25BC"; }
figure.slider label { display: block; font-weight: 600; }
figure.slider input { width: 100%; max-width: 420px; vertical-align: middle; }
figure.slider output { display: inline-block; min-width: 5em; font-weight: 400; }
.ci, .agree { font-size: 0.85em; color: #555; font-weight: 400; }
p.why { margin: 0.3em 0 0; color: #b3261e; font-size: 0.9em; }
@media (max-width: 640px) {
  table.claims thead { display: none; }
  table.claims tr { display: block; border-bottom: 2px solid #ddd; padding: 0.3em 0; }
  table.claims td { display: block; border: none; padding: 0.15em 0.3em; }
  table.claims td::before { content: attr(data-label) ": "; font-weight: 600; }
}
"""

_QUICK_NOTE = (
    '<p class="quick-note"><strong>A quick run:</strong> epochs are cut to a'
    " fraction of the post's, so the models are not trained to the post's state;"
    " claims that fail here are expected to, and only a full run decides them.</p>"
)


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return html.escape(str(x))


INTERVAL_NOTE = "interval includes the threshold"


def straddles(interval, threshold: float, n_seeds: int) -> bool:
    """Return whether a claim's 95% interval over n_seeds seeds holds its threshold."""
    return bool(interval) and n_seeds > 1 and interval[0] <= threshold <= interval[1]


def verdict(c: Claim) -> str:
    """Return 'pass' or 'FAIL', noting a 95% interval that holds the threshold."""
    word = "pass" if c.passed else "FAIL"
    if straddles(c.interval, c.threshold, len(c.per_seed)):
        return f"{word} ({INTERVAL_NOTE})"
    return word


def failure_reason(c: Claim, quick: bool) -> str:
    """Return why a failing claim fails, in words (empty for a passing one)."""
    if c.passed:
        return ""
    reasons = []
    if quick:
        reasons.append("a quick run (cut epochs): failures here are expected")
    if c.per_seed and 0 < c.holds_in < len(c.per_seed):
        reasons.append(f"seed-sensitive: {c.agreement}")
    if c.why:
        reasons.append(c.why)
    return (
        "; ".join(reasons)
        or "measured against the claim as stated: it does not hold here"
    )


def _claims_table(claims: list[Claim], experiment: str, quick: bool = False) -> str:
    # the post's sections state the post's claims; those beyond it, their papers'
    said_by = "the post says" if experiment in POST else "the claim"
    rows = []
    for c in claims:
        said = verdict(c)
        interval = (
            f'<br><span class="ci">95% CI [{_fmt(c.interval[0])},'
            f" {_fmt(c.interval[1])}]</span>"
            if c.interval and len(c.per_seed) > 1
            else ""
        )
        why = failure_reason(c, quick)
        rows.append(
            f'<tr class="{"pass" if c.passed else "fail"}" data-claim="{c.name}">'
            f'<td data-label="claim"><code>{html.escape(c.name)}</code></td>'
            f'<td data-label="{said_by}">{html.escape(c.statement)}</td>'
            f'<td data-label="measured" class="num">{_fmt(c.measured)}'
            f" {html.escape(c.comparison)} {_fmt(c.threshold)}{interval}</td>"
            f'<td data-label="verdict" class="verdict">{html.escape(said)}'
            + (
                f'<br><span class="agree">{html.escape(c.agreement)}</span>'
                if c.agreement
                else ""
            )  # fmt: skip
            + f'</td><td data-label="what was compared">{html.escape(c.detail)}'
            + (f'<p class="why">why it fails: {html.escape(why)}</p>' if why else "")
            + "</td></tr>"
        )
    return (
        f'<div class="table-wrap"><table class="claims" data-experiment="{experiment}">'
        f"<thead><tr><th>claim</th><th>{said_by}</th><th>measured vs threshold"
        "</th><th>verdict</th><th>what was compared</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def _settings_table(config: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td><code>{_fmt(v)}</code></td></tr>"
        for k, v in config.items()
    )
    return f"<details><summary>settings used</summary><table>{rows}</table></details>"


def write_report(
    out_dir: Path,
    sections: list[Section],
    *,
    title: str,
    versions: dict[str, str],
    total_seconds: float,
    quick: bool = False,
) -> Path:
    """Write out_dir/index.html for the sections; return its path."""
    all_claims = [c for s in sections for c in s.claims]
    n_pass = sum(c.passed for c in all_claims)
    toc = "".join(
        f'<li><a href="#{s.name}">{html.escape(section_title(s.name))}</a></li>'
        for s in sections
    )
    body = []
    for s in sections:
        figs = "".join(
            f'<figure><a href="{html.escape(src)}" title="full size">'
            f'<img src="{html.escape(src)}" alt="{html.escape(cap)}"></a>'
            f"<figcaption>{html.escape(cap)} "
            f'<a href="{html.escape(src)}">PNG</a> · '
            f'<a href="{html.escape(str(Path(src).with_suffix(".svg")))}">SVG</a>'
            "</figcaption></figure>"
            for src, cap in s.figures
        ) + "".join(_slider_html(sl) for sl in s.sliders)
        figs += "".join(_table_html(t) for t in s.tables)
        origin = "re-rendered from the saved result" if s.cached else "trained"
        where = f" on {html.escape(s.devices)}" if s.devices else ""
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in s.notes)
        body.append(
            f'<section id="{s.name}"><h2>{html.escape(section_title(s.name))}</h2>'
            f"<p>{origin}{where}; {html.escape(timing_words(s.timings))}</p>{figs}"
            f"<h3>claims</h3>{_claims_table(s.claims, s.name, quick)}"
            + (f"<ul class='notes'>{notes}</ul>" if notes else "")
            + _settings_table(s.config)
            + "</section>"
        )
    version_text = ", ".join(f"{k} {v}" for k, v in versions.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{CSS}</style></head>
<body><h1>{html.escape(title)}</h1>
<div class="summary"><p><strong id="claims-summary">{n_pass} of {len(all_claims)}
claims pass</strong> · total {total_seconds:.1f} s · {html.escape(version_text)}</p>
{_QUICK_NOTE if quick else ""}
<p>Reproducing <em>Regularization</em> (Anoop Praturu, May 3, 2026), from the
"Notebook of Things I Don't Know About"; each heading names the post's section.</p>
<ul>{toc}</ul></div>
{"".join(body)}
<script type="application/json" id="claims-data">{
        html.escape(json.dumps([c.to_dict() for c in all_claims]), quote=False)
    }</script>
<script>{_SLIDER_JS}</script>
</body></html>
"""
    path = out_dir / "index.html"
    path.write_text(page)
    return path
