"""What a command leaves behind: its summary, claims and metrics files, the report."""

from __future__ import annotations

import csv
import dataclasses
import json
import platform
from pathlib import Path


def versions() -> dict[str, str]:
    """Return the versions the report names."""
    import jax
    import matplotlib
    import numpy

    import reglab

    return {
        "reglab": reglab.__version__,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": numpy.__version__,
        "matplotlib": matplotlib.__version__,
    }


def print_sweep(rows: list[dict], console) -> None:
    """Print a row per grid point and claim: verdict, seed mean [interval], holds in.

    One claim per row keeps the table inside 80 columns however many claims an
    experiment has (a column per claim cut their names at 120).
    """
    from rich import box
    from rich.table import Table

    from reglab.report import straddles

    axes = list(rows[0]["point"]) if rows else []
    names = list(dict.fromkeys(n for r in rows for n in r["claims"]))
    n_seeds = max((len(r["seeds"]) for r in rows), default=0)
    table = Table(
        title=f"{len(rows)} grid points x {len(names)} claims, {n_seeds} seed"
        f"{'s' if n_seeds != 1 else ''} each: verdict on the seed mean",
        caption="mean ± half its 95% interval; held: seeds where the claim holds\n"
        "* the 95% interval includes the threshold: the seeds do not settle it",
        box=box.SIMPLE_HEAD, show_edge=False, padding=0,
    )  # fmt: skip
    for col in axes:
        table.add_column(col, overflow="fold")
    table.add_column("claim", overflow="fold")
    table.add_column("verdict")
    table.add_column("mean ± 95%", no_wrap=True)
    table.add_column("held", justify="right", no_wrap=True)
    for r in rows:
        at = [repr(v) for v in r["point"].values()]
        for i, n in enumerate(names):
            c = r["claims"].get(n)
            here = at if i == 0 else [""] * len(at)  # the point once per group
            if c is None:
                table.add_row(*here, n, "-", "-", "-")
                continue
            lo, hi = c["interval"] or (c["measured"], c["measured"])
            half = (hi - lo) / 2  # the t interval is symmetric about the mean
            note = (
                "*"
                if straddles(c["interval"], c["threshold"], len(c["per_seed"]))
                else ""
            )
            mark = f"[green]pass{note}[/]" if c["passed"] else f"[red]FAIL{note}[/]"
            held = sum(_holds(v, c) for v in c["per_seed"])
            table.add_row(*here, n, mark, f"{c['measured']:.3g} ± {half:.2g}",
                          f"{held}/{len(c['per_seed'])}",
                          end_section=i == len(names) - 1)  # fmt: skip
    console.print(table)
    chosen = list(dict.fromkeys(n for r in rows for n in r.get("metrics", {})))
    if not chosen:
        return
    table = Table(title="chosen metrics per grid point: seed mean [95% interval]")
    for col in [*axes, *chosen]:
        table.add_column(col)
    for r in rows:
        cells = [repr(v) for v in r["point"].values()]
        for n in chosen:
            m = r["metrics"][n]
            cells.append(f"{m['mean']:.4g} [{m['interval'][0]:.4g}, "
                         f"{m['interval'][1]:.4g}]")  # fmt: skip
        table.add_row(*cells)
    console.print(table)


def _holds(value: float, claim: dict) -> bool:
    """Return whether one seed's value satisfies a claim row's comparison."""
    import operator

    compare = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
    return bool(compare[claim["comparison"]](value, claim["threshold"]))


@dataclasses.dataclass
class Outputs:
    quick: bool = False
    sections: list = dataclasses.field(default_factory=list)

    def add(self, section, console) -> None:
        """Keep a finished section and print its outcome."""
        self.sections.append(section)
        what = (
            "re-rendered the saved result"
            if section.cached
            else (f"trained in {section.timings.get('total_s', 0):.1f} s")
        )
        console.print(f"[bold]{section.name}[/]: {what}")
        from reglab.report import failure_reason, verdict

        for c in section.claims:
            color = "green" if c.passed else "red"
            mark = f"[{color}]{verdict(c)}[/]"
            agree = f" ({c.agreement})" if len(c.per_seed) > 1 else ""
            console.print(
                f"  {mark} {c.name}: {c.measured:.4g} {c.comparison}"
                f" {c.threshold:.4g}{agree}",
                highlight=False,
            )
            if not c.passed:
                console.print(f"       why: {failure_reason(c, self.quick)}")


MARK = ".reglab-output.json"  # which command's report a folder holds


def claim_folder(
    out: Path, command: str, what: str, *, same: str, overwrite: bool
) -> None:
    """Mark out as the report of `reglab command` on what; refuse another's report.

    A folder holding the report of another command, or of the same command on
    another ``same`` (its experiment; reproduce: its experiments), is left alone
    unless overwrite: one page would replace the other and orphan its figures.
    The same command on the same experiment with other settings replaces its own.
    """
    from reglab.lab import LabError

    mark = out / MARK
    try:
        held = json.loads(mark.read_text())
    except (OSError, ValueError):  # none yet (or unreadable): a folder of ours
        held = None
    mine = {"command": command, "what": what, "same": same}
    ours = not isinstance(held, dict) or (
        (held.get("command"), held.get("same")) == (command, same)
    )
    if not ours and not overwrite:
        raise LabError(
            f"--out {out} holds the report of `reglab {held.get('command')}`"
            f" ({held.get('what')}), not of this {command} ({what}) — choose another"
            " --out (or leave it out: each report gets its own folder), or add"
            " --overwrite to replace it"
        )
    out.mkdir(parents=True, exist_ok=True)
    mark.write_text(json.dumps(mine) + "\n")


def run_title(name: str, settings: dict, quick: bool) -> str:
    """Return the page title of `reglab run`: the experiment and what was changed."""
    changed = ", ".join(f"{k}={v!r}" for k, v in sorted(settings.items()))
    what = f" with {changed}" if changed else " (defaults)"
    return f"reglab run: {name}{what}" + (" (quick run)" if quick else "")


def write_outputs(
    out: Path, done: Outputs, quick: bool, total: float, title: str | None = None
) -> Path:
    """Write claims.json, metrics.json, metrics.csv and index.html; return the page."""
    from reglab.report import write_report

    claims = [
        {"experiment": s.name, **c.to_dict()} for s in done.sections for c in s.claims
    ]
    metrics = {
        s.name: {"timings": s.timings, "notes": s.notes}
        | {c.name: c.measured for c in s.claims}
        for s in done.sections
    }
    (out / "claims.json").write_text(json.dumps(claims, indent=2))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with open(out / "metrics.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["experiment", "claim", "measured", "threshold", "passed"])
        for c in claims:
            writer.writerow(
                [c["experiment"], c["name"], c["measured"], c["threshold"], c["passed"]]
            )
    return write_report(
        out,
        done.sections,
        title=(title or "reglab: regularization, reproduced")
        + (" (quick run)" if quick and title is None else ""),
        versions=versions(),
        total_seconds=total,
        quick=quick,
    )
