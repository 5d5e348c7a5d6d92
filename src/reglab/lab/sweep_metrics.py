"""A sweep's chosen metrics: a number per run from its Result, a seed mean per point.

``reglab sweep ... --metric l2_test_acc/3`` (or ``metrics = [...]`` in a TOML's
``[sweep]`` table) names a Result array with the seed axis first, indexed as the
store names histories: ``l2_test_acc/3`` is the fourth strength's test accuracy, a
number per seed. A history (``l2_train_loss_curve/3``) gives its final recorded value:
the last that is not NaN, since a member that stopped early records NaN after it.
Arrays with more than one axis besides the seed's (weights, probability grids) are not
metrics. Per grid point a metric is its seed mean and 95% Student-t interval, read
from the stored results (numpy only), so a replayed sweep shows it without JAX.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable, Collection
from typing import Any

import numpy as np

from reglab.experiments.base import mean_interval
from reglab.lab import LabError
from reglab.lab.histories import METRIC, epoch_arrays, epochs_of


def _final(a: np.ndarray) -> np.ndarray:
    """Return the last value that is not NaN along the last axis (NaN if none)."""
    seen = ~np.isnan(a)  # (..., R)
    last = a.shape[-1] - 1 - np.argmax(seen[..., ::-1], axis=-1)  # (...)
    return np.take_along_axis(a, last[..., None], axis=-1)[..., 0]


def seed_scalars(
    arrays: dict[str, np.ndarray], seed_axis: Collection[str]
) -> dict[str, np.ndarray]:
    """Return every metric among a Result's seed-axis arrays: name -> (S,) values."""
    epochs = epoch_arrays(arrays)
    out = {}
    for name in seed_axis:
        a = arrays[name]  # (S, ...) as the Result declares
        numeric = np.issubdtype(a.dtype, np.number) or a.dtype == bool
        if not numeric or name in epochs:
            continue
        a = a.astype(np.float64)  # (S, ...)
        history = a.ndim >= 2 and METRIC.search(name) is not None
        if history and epochs_of(name, a.shape[-1], epochs) is not None:
            a = _final(a)  # (S, ...) without the epoch axis
        if a.ndim > 2 or name == "seeds":
            continue
        for index in itertools.product(*(range(n) for n in a.shape[1:])):
            out["/".join([name, *map(str, index)])] = a[(slice(None), *index)]
    return out


def listing(names: list[str]) -> str:
    """Return metric names compactly: 'l2_test_acc/0..8, test_loss'."""
    groups: dict[str, list[str]] = {}
    for n in names:
        base, _, index = n.partition("/")
        groups.setdefault(base, []).append(index)
    parts = []
    for base, index in groups.items():
        if len(index) == 1:
            parts.append(base if not index[0] else f"{base}/{index[0]}")
        else:
            parts.append(f"{base}/{index[0]}..{index[-1]}")
    return ", ".join(parts)


def check(chosen: list[str], known: list[str], experiment: str, *, bases: bool = False,
          after: str = "") -> None:  # fmt: skip
    """Raise LabError for a chosen metric not in known (with bases: its array name)."""
    bare = list(dict.fromkeys(n.partition("/")[0] for n in known))
    for name in chosen:
        if not isinstance(name, str):
            raise LabError(f"a metric is named by a string, got {name!r} — e.g."
                           f' metrics = ["{known[0]}"]')  # fmt: skip
        if (name.partition("/")[0] in bare) if bases else (name in known):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5) or (
            difflib.get_close_matches(name.partition("/")[0], bare, n=1, cutoff=0.5)
        )
        hint = f"did you mean {close[0]}? " if close else ""
        raise LabError(
            f"{experiment} has no metric {name!r} — {hint}metrics (a number per seed;"
            f" a history's last recorded value): {listing(known)}{after}"
        )


def first_point_check(chosen: list[str], experiment: str) -> Callable[[Any], None]:
    """Return an on_done callback that checks the chosen names on the first point."""
    checked: list[bool] = []

    def on_done(done: Any) -> None:
        if checked or not chosen:
            return
        checked.append(True)
        known = list(seed_scalars(done.result.arrays, done.result.seed_axis))
        check(chosen, known, experiment,
              after="; points that finished are stored: the same command with a"
              " listed --metric trains only the rest")  # fmt: skip

    return on_done


def stored_check(store: Any, chosen: list[str], experiment: str) -> None:
    """Check chosen array names against the newest stored run of the experiment."""
    if not chosen:
        return
    for run in store.list_runs(experiment, "finished")[:1]:
        holder = run.info.get("group_run", run.id)
        arrays = store.load_arrays(holder, "result")
        known = list(seed_scalars(arrays, run.info.get("seed_axis", ())))
        check(chosen, known, experiment, bases=True)


def add_metrics(store: Any, experiment: str, rows: list[dict], chosen: list[str]):
    """Add each chosen metric's per-seed values, seed mean and interval to rows."""
    cache: dict[str, dict[str, np.ndarray]] = {}
    for r in rows:
        per_seed: dict[str, list[float]] = {n: [] for n in chosen}
        for seed, run_id in r["runs"].items():
            run = store.get(run_id)
            holder = run.info.get("group_run", run.id)
            group = run.info.get("group", [run.seed])
            if holder not in cache:
                arrays = store.load_arrays(holder, "result")
                cache[holder] = seed_scalars(arrays, run.info.get("seed_axis", ()))
            check(chosen, list(cache[holder]), experiment)
            for n in chosen:
                per_seed[n].append(float(cache[holder][n][group.index(int(seed))]))
        r["metrics"] = {}
        for n, values in per_seed.items():
            mean, lo, hi = mean_interval(values)
            r["metrics"][n] = {"mean": mean, "interval": [lo, hi], "per_seed": values}
    return rows
