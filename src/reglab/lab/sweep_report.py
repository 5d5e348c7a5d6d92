"""A sweep's report: each chosen metric and claim against each grid axis.

``write_sweep_report`` writes ``index.html`` into the sweep's output folder (static,
works from file://): per grid axis one figure, a panel per chosen metric (``--metric``,
see sweep_metrics.py) and per claim, the seed mean with
its 95% interval as error bars against the axis' values, the other axes' values as
separate series (filled marker: the claim holds there; open: it fails); then a table
per metric (every seed's value) and per claim (verdict, seed agreement). The page
carries a fingerprint of what it shows, so a replayed sweep whose numbers did not
change leaves it (and matplotlib) alone.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
from pathlib import Path
from typing import Any

from reglab.report import CSS

FINGERPRINT = re.compile(r'<meta name="reglab-sweep" content="([0-9a-f]{64})">')


def _label(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def figure_name(axis: str) -> str:
    """Return the file name of an axis' figure (letters, digits, '_' and '-')."""
    return "sweep_" + re.sub(r"[^A-Za-z0-9_-]", "_", axis) + ".png"


def _names(rows: list[dict], kind: str) -> list[str]:
    return list(dict.fromkeys(n for r in rows for n in r.get(kind, {})))


def _entry(r: dict, kind: str, name: str) -> dict | None:
    """Return a point's claim, or its metric drawn as a claim that holds, or None."""
    e = r.get(kind, {}).get(name)
    if e is None or kind == "claims":
        return e
    return {"measured": e["mean"], "interval": e["interval"], "threshold": None,
            "passed": True}  # fmt: skip


def axis_figure(rows: list[dict], axis: str):
    """Return a Figure: a panel per metric and claim, mean +- 95% interval vs axis."""
    from matplotlib.figure import Figure

    names = [("metrics", n) for n in _names(rows, "metrics")]
    names += [("claims", n) for n in _names(rows, "claims")]
    values = list({_label(r["point"][axis]): r["point"][axis] for r in rows}.values())
    numeric = _numeric(values)
    others = [a for a in rows[0]["point"] if a != axis]
    series: dict[str, list[dict]] = {}
    for r in rows:
        key = ", ".join(f"{a}={_label(r['point'][a])}" for a in others)
        series.setdefault(key, []).append(r)
    cols = min(3, len(names))
    n_rows = math.ceil(len(names) / cols)
    width = max(4.0 * cols, 7.0)  # the title needs ~7 in
    fig = Figure(figsize=(width, 3.0 * n_rows + 0.6), layout="constrained")
    axes = fig.subplots(n_rows, cols, squeeze=False).ravel()
    log = numeric and min(values) > 0 and max(values) >= 20 * min(values)
    span = (max(values) - min(values)) if numeric and len(values) > 1 else 1.0

    def at(v: Any, i: int) -> float:  # series i's x for value v, dodged apart
        x = v if numeric else values.index(v)
        dodge = (i - (len(series) - 1) / 2) * 0.015
        return x * (1 + 2 * dodge) if log else x + dodge * span

    for ax, (kind, name) in zip(axes, names, strict=False):
        threshold = None
        for i, (key, members) in enumerate(series.items()):
            for r in members:
                c = _entry(r, kind, name)
                if c is None or not math.isfinite(c["measured"]):
                    continue
                threshold, m = c["threshold"], c["measured"]
                x = at(r["point"][axis], i)
                lo, hi = c["interval"] or (m, m)
                ax.errorbar(  # a claim's interval need not centre on its value
                    x, m, yerr=[[max(m - lo, 0.0)], [max(hi - m, 0.0)]],
                    fmt="o", color=f"C{i}", capsize=3, markersize=5,
                    markerfacecolor=f"C{i}" if c["passed"] else "white",
                )  # fmt: skip
            line = sorted(
                (at(r["point"][axis], i), _entry(r, kind, name)["measured"])
                for r in members
                if name in r.get(kind, {})
            )
            if line:
                ax.plot(*zip(*line, strict=True), color=f"C{i}", linewidth=0.8,
                        label=key or None)  # fmt: skip
        if threshold is not None and math.isfinite(threshold):
            ax.axhline(threshold, color="0.4", linestyle="--", linewidth=0.8)
        ax.set_title(name if kind == "claims" else f"metric {name}", fontsize=9)
        ax.set_xlabel(axis, fontsize=9)
        ax.tick_params(labelsize=8)
        if log:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(values)), [_label(v) for v in values])
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    if others:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center",
                   ncols=min(4, len(series)), fontsize=8)  # fmt: skip
    what = "each metric and claim" if _names(rows, "metrics") else "each claim"
    fig.suptitle(
        f"{what} against {axis}: seed mean, 95% interval (claims: filled holds,"
        " dashed threshold)",
        fontsize=10,
    )
    return fig


def _fingerprint(experiment: str, title: str, rows: list[dict]) -> str:
    shown = [{k: v for k, v in r.items() if k != "trained"} for r in rows]
    body = json.dumps([experiment, title, shown], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def up_to_date(out: Path, experiment: str, title: str, rows: list[dict]) -> bool:
    """Return whether out/index.html already shows these rows, figures and all."""
    try:
        page = (out / "index.html").read_text()
    except OSError:
        return False
    m = FINGERPRINT.search(page)
    axes = list(rows[0]["point"]) if rows else []
    return (
        m is not None
        and m.group(1) == _fingerprint(experiment, title, rows)
        and all((out / figure_name(a)).is_file() for a in axes)
    )


def _cell(c: dict) -> str:
    lo, hi = c["interval"] or (c["measured"], c["measured"])
    return f"{c['measured']:.4g}", f"[{lo:.4g}, {hi:.4g}]"


def _claim_table(name: str, rows: list[dict], axes: list[str]) -> str:
    first = next(r["claims"][name] for r in rows if name in r["claims"])
    head = "".join(f"<th>{html.escape(a)}</th>" for a in axes)
    body = []
    for r in rows:
        c = r["claims"].get(name)
        if c is None:
            continue
        mean, interval = _cell(c)
        verdict = "pass" if c["passed"] else "FAIL"
        body.append(
            f'<tr class="{verdict.lower()}">'
            + "".join(f"<td>{html.escape(_label(r['point'][a]))}</td>" for a in axes)
            + f'<td class="num">{mean}</td><td class="num">{interval}</td>'
            f'<td class="num">{html.escape(c["comparison"])} {c["threshold"]:.4g}</td>'
            f'<td class="verdict">{verdict}</td>'
            f"<td>{html.escape(c['agreement'] or '')}</td></tr>"
        )
    statement = html.escape(first.get("statement", ""))
    return (
        f'<h3 id="claim-{html.escape(name)}"><code>{html.escape(name)}</code></h3>'
        + (f"<p>{statement}</p>" if statement else "")
        + f'<div class="table-wrap"><table class="claims" data-claim="{name}">'
        f"<thead><tr>{head}<th>seed mean</th><th>95% interval</th><th>threshold</th>"
        "<th>verdict</th><th>seeds</th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></div>"
    )


def _metric_table(name: str, rows: list[dict], axes: list[str]) -> str:
    head = "".join(f"<th>{html.escape(a)}</th>" for a in axes)
    body = []
    for r in rows:
        m = r.get("metrics", {}).get(name)
        if m is None:
            continue
        lo, hi = m["interval"]
        seeds = ", ".join(f"{v:.4g}" for v in m["per_seed"])
        body.append(
            "<tr>"
            + "".join(f"<td>{html.escape(_label(r['point'][a]))}</td>" for a in axes)
            + f'<td class="num">{m["mean"]:.4g}</td>'
            f'<td class="num">[{lo:.4g}, {hi:.4g}]</td><td class="num">{seeds}</td>'
            "</tr>"
        )
    return (
        f'<h3 id="metric-{html.escape(name)}"><code>{html.escape(name)}</code></h3>'
        f'<div class="table-wrap"><table class="metrics" data-metric="'
        f'{html.escape(name)}"><thead><tr>{head}<th>seed mean</th><th>95% interval'
        "</th><th>per seed</th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></div>"
    )


def write_sweep_report(
    out: Path, experiment: str, title: str, rows: list[dict]
) -> Path:
    """Write out/index.html and a figure per axis (unless already up to date)."""
    page_path = out / "index.html"
    if not rows or up_to_date(out, experiment, title, rows):
        return page_path
    axes = list(rows[0]["point"])
    figures = []
    metrics = _names(rows, "metrics")
    what = "each chosen metric and claim" if metrics else "each claim"
    for axis in axes:
        fig = axis_figure(rows, axis)
        fig.savefig(out / figure_name(axis), dpi=110)
        figures.append(
            f'<section id="axis-{html.escape(axis)}"><h2>against {html.escape(axis)}'
            f'</h2><figure><a href="{figure_name(axis)}" title="full size">'
            f'<img src="{figure_name(axis)}" alt="{what} against {axis}"></a>'
            f"<figcaption>{what.capitalize()}: seed mean with its 95% interval against"
            f" <code>{html.escape(axis)}</code>"
            + (
                f"; one series per value of {', '.join(a for a in axes if a != axis)}"
                if len(axes) > 1
                else ""
            )  # fmt: skip
            + f'. <a href="{figure_name(axis)}">PNG</a></figcaption></figure>'
            "</section>"
        )
    names = _names(rows, "claims")
    checks = [c for r in rows for c in r["claims"].values()]
    n_pass = sum(c["passed"] for c in checks)
    seeds = rows[0]["seeds"]
    toc = "".join(
        f'<li><a href="#axis-{html.escape(a)}">against {html.escape(a)}</a>: '
        + ", ".join(
            html.escape(_label(v))
            for v in dict.fromkeys(_label(r["point"][a]) for r in rows)
        )  # fmt: skip
        + "</li>"
        for a in axes
    )
    tables = (
        '<section id="metrics"><h2>chosen metrics per point</h2>'
        + "".join(_metric_table(n, rows, axes) for n in metrics)
        + "</section>"
        if metrics
        else ""
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="reglab-sweep" content="{_fingerprint(experiment, title, rows)}">
<title>{html.escape(title)}</title><style>{CSS}</style></head>
<body><h1>{html.escape(title)}</h1>
<div class="summary"><p><strong id="claims-summary">{n_pass} of {len(checks)} claim
checks pass</strong> over {len(rows)} points x {len(seeds)} seeds
({", ".join(map(str, seeds))}); every number is a seed mean with its 95% t interval.
Data: <a href="sweep.json">sweep.json</a> · <a href="sweep.csv">sweep.csv</a></p>
<ul>{toc}</ul></div>
{"".join(figures)}
{tables}
<section id="claims"><h2>claims per point</h2>
{"".join(_claim_table(n, rows, axes) for n in names)}</section>
</body></html>
"""
    page_path.write_text(page)
    return page_path
