"""Training state as named host arrays: what ``reglab.train`` checkpoints and resumes.

A checkpoint is a flat dict of numpy arrays, so the run store keeps it as one .npz:

    state/params/W1               (S, C, D, H)   a State leaf, members (S, C) first
    state/opt_state/0/mu/W1       (S, C, D, H)   ... named by its pytree path
    meta/epoch                    ()             the last epoch trained
    meta/done                     ()             the run had ended (last chunk, or
                                                 every member stopped)
    meta/fingerprint              ()             spec, schedules and ensemble (sha256)
    meta/failures                 (n,)           the NaN reports made so far
    meta/lineage, meta/epochs,    ()             the fingerprint without epochs and
    meta/records, meta/snapshots  (r,)           schedules, and those: a finished run
                                                 can be extended to more epochs

Members are stored as (S, C), not as the program's padded (G, S, Cg) groups, so a
checkpoint does not depend on how many devices trained it. Resuming regroups them
exactly as a fresh start does; the randomness is counter-based (keys per member, batch
order folded with the epoch, dropout hashed by the step), so the resumed run ends
bit-identical to one never interrupted.

``checkpointing(save, load)`` hands checkpoints to and from every ``train`` call in its
block, numbered in call order. That is how the lab checkpoints experiments: an
experiment's ``run(cfg)`` calls ``train`` a fixed number of times in a fixed order, so
the call index names a call across processes, and no experiment module, nor the
Experiment protocol, has to pass hooks along. It is a ContextVar, not a global, so a
thread (the playground's server) never picks up another's hooks.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import jax
import jax.numpy as jnp
import numpy as np

from reglab import placement

Arrays = dict[str, np.ndarray]
Save = Callable[[int, Arrays], None]  # (epoch, arrays)


def _name(path) -> str:
    """Return a pytree path as 'params/W1' or 'opt_state/0/mu/W1'."""
    parts = []
    for k in path:
        for attr in ("name", "key", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
    return "/".join(parts)


def flatten(state) -> Arrays:
    """Return a State pytree as 'state/<path>' -> numpy array."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(state)
    return {f"state/{_name(p)}": np.asarray(leaf) for p, leaf in leaves}


def fingerprint(*parts) -> np.ndarray:
    """Return the sha256 of the parts' reprs (numpy arrays by their bytes)."""
    digest = hashlib.sha256()
    for p in parts:
        data = p.tobytes() + str(p.dtype).encode() if isinstance(p, np.ndarray) else p
        digest.update(repr(data).encode() + b"\0")
    return np.array(digest.hexdigest())


@dataclass(frozen=True)
class Lineage:
    """What a run shares with the same run for more epochs, and its schedules."""

    fingerprint: np.ndarray  # all of the stamp but epochs and the schedules
    epochs: int
    records: np.ndarray  # the record epochs
    snapshots: np.ndarray  # the snapshot epochs


def stamps(
    spec, run: tuple, records: np.ndarray, snapshots: np.ndarray
) -> tuple[np.ndarray, Lineage]:
    """Return the fingerprint a resumed checkpoint must carry, and the lineage a
    shorter run's must share: spec (a TrainSpec) and run (what else decides the
    numbers: ensemble, layout, eval sets, early stopping) without epochs or schedules.
    """
    run_of = fingerprint(*run)
    general = replace(spec, epochs=1, chunk_epochs=0)
    lineage = Lineage(
        fingerprint(repr(general), run_of), spec.epochs, records, snapshots
    )
    return fingerprint(repr(spec), records, snapshots, run_of), lineage


def pack(
    state, epoch: int, done: bool, stamp: np.ndarray, failures, lineage: Lineage
) -> Arrays:
    """Return the checkpoint of a State whose leaves are (S, C, ...) host arrays."""
    return {
        **flatten(state),
        "meta/epoch": np.array(epoch, np.int64),
        "meta/done": np.array(done),
        "meta/fingerprint": stamp,
        "meta/failures": np.array(list(failures), dtype=str),
        "meta/lineage": lineage.fingerprint,
        "meta/epochs": np.array(lineage.epochs, np.int64),
        "meta/records": np.asarray(lineage.records, np.int64),
        "meta/snapshots": np.asarray(lineage.snapshots, np.int64),
    }


def _rows(old: np.ndarray, new: np.ndarray, a: np.ndarray, fill) -> np.ndarray:
    """Return a (S, C, len(old), ...) as (S, C, len(new), ...): row e of old goes to
    row e of new; rows of epochs that old lacks hold fill."""
    out = np.full(a.shape[:2] + (len(new),) + a.shape[3:], fill, a.dtype)
    at = {int(e): i for i, e in enumerate(old)}
    for j, e in enumerate(new):
        if int(e) in at:
            out[:, :, j] = a[:, :, at[int(e)]]
    return out


def extended(arrays: Arrays, lineage: Lineage, stamp: np.ndarray) -> Arrays | None:
    """Return a finished run's checkpoint as the checkpoint of the same run for
    lineage.epochs, ready to go on from the epoch after its end; any other one as it is.

    A checkpoint marked ``meta/offered`` (the lab offers a shorter stored run to a
    longer request) that does not fit gives None instead of an error: train afresh.

    The longer run's steps are the shorter's and then more (batch order, dropout and
    the schedule count epochs and steps, not the total), so going on gives the longer
    run's numbers, provided the shorter recorded every epoch the longer records up to
    its end (an every-k schedule does; a log-spaced one moves its points: refused).
    """
    offered = bool(arrays.get("meta/offered", False))
    if not offered and str(arrays.get("meta/fingerprint")) == str(stamp):
        return arrays  # this run's own checkpoint
    if str(arrays.get("meta/lineage")) != str(lineage.fingerprint):
        return None if offered else arrays  # another run's: restore names it
    try:
        return _extended(arrays, lineage, stamp)
    except ValueError:
        if offered:
            return None
        raise


def _extended(arrays: Arrays, lineage: Lineage, stamp: np.ndarray) -> Arrays:
    E1, E = int(arrays["meta/epochs"]), lineage.epochs
    if not bool(arrays["meta/done"]) or E1 >= E:
        raise ValueError(
            f"resume checkpoint is of the same run for {E1} epochs"
            f" ({'finished' if arrays['meta/done'] else 'unfinished'}); it can only"
            f" be extended to more epochs once finished, not to {E} — resume it with"
            " its own epochs, or start afresh with resume=None"
        )
    old_r, old_s = arrays["meta/records"], arrays["meta/snapshots"]
    for what, old, new in (("record", old_r, lineage.records),
                           ("snapshot", old_s, lineage.snapshots)):  # fmt: skip
        missing = sorted(set(new[new <= E1].tolist()) - set(old.tolist()))
        if missing:
            raise ValueError(
                f"cannot extend a {E1}-epoch run to {E}: the longer run's {what}"
                f" schedule has epochs {missing[:3]} that the shorter did not"
                f" {what} — use an every-k {what} schedule, or train afresh"
            )
    out = dict(arrays)
    running = arrays["state/running"]  # (S, C, E1 + 1, 2), NaN after a member ends
    pad = np.full(running.shape[:2] + (E - E1,) + running.shape[3:], np.nan)
    out["state/running"] = np.concatenate([running, pad.astype(running.dtype)], 2)
    out["state/metrics"] = _rows(old_r, lineage.records, arrays["state/metrics"], 0)
    for k in arrays:
        if k.startswith("state/snaps/"):
            out[k] = _rows(old_s, lineage.snapshots, arrays[k], 0)
    out["meta/done"] = np.array(False)
    out["meta/fingerprint"] = stamp
    went_on = f"went on from the end of the same run for {E1} epochs, not from 0"
    out["meta/failures"] = np.array([*arrays["meta/failures"].tolist(), went_on])
    return out


def restore(grouped, arrays: Arrays, n_configs: int, stamp: np.ndarray):
    """Return the State of a checkpoint, laid out like grouped: (G, S, Cg, ...).

    Raises ValueError naming the first key that is missing, extra or of the wrong
    shape, or the fingerprint, when the checkpoint was made by another run.
    """
    if "meta/fingerprint" not in arrays or str(arrays["meta/fingerprint"]) != str(
        stamp
    ):
        raise ValueError(
            "resume checkpoint was saved by a different run (TrainSpec, ensemble,"
            " record/snapshot schedule or early stopping differ) — resume with the"
            " exact arguments that made it, or start afresh with resume=None"
        )
    leaves, treedef = jax.tree_util.tree_flatten_with_path(grouped)
    names = [f"state/{_name(p)}" for p, _ in leaves]
    extra = sorted(set(k for k in arrays if k.startswith("state/")) - set(names))
    if extra:
        raise ValueError(
            f"resume checkpoint has {extra[0]!r}, which this run's state lacks —"
            " it was saved by another model or optimizer"
        )
    restored = []
    for name, (_, leaf) in zip(names, leaves, strict=True):
        G, S, Cg = leaf.shape[:3]
        want = (S, n_configs) + leaf.shape[3:]
        if name not in arrays:
            raise ValueError(f"resume checkpoint lacks {name!r} — it is incomplete")
        a = arrays[name]
        if a.shape != want:
            raise ValueError(
                f"resume checkpoint's {name!r} has shape {a.shape}, this run needs"
                f" {want} — it was saved by another model or ensemble"
            )
        by_config = jnp.asarray(np.moveaxis(a, 1, 0), leaf.dtype)  # (C, S, ...)
        grouped_leaf = placement.to_groups(by_config, G, Cg)  # (G, Cg, S, ...)
        restored.append(jnp.swapaxes(grouped_leaf, 1, 2))  # (G, S, Cg, ...)
    return jax.tree_util.tree_unflatten(treedef, restored)


@dataclass
class Every:
    """Says when a checkpoint is due: the first chunk after every_s seconds."""

    every_s: float
    since: float = field(default_factory=time.monotonic)

    def due(self, last: bool) -> bool:
        """Return True (and restart the clock) if a checkpoint is due now."""
        now = time.monotonic()
        if last or now - self.since >= self.every_s:
            self.since = now
            return True
        return False


@dataclass
class Session:
    """The hooks of one ``checkpointing`` block and the train calls made in it."""

    save: Callable[[int, int, Arrays], None]  # (call, epoch, arrays)
    load: Callable[[int], Arrays | None]  # call -> its checkpoint, or None
    every_s: float
    calls: int = 0

    def next_call(self) -> tuple[Save, Arrays | None]:
        """Return the checkpoint hook and the resume state of the next train call."""
        call = self.calls
        self.calls += 1

        def save(epoch: int, arrays: Arrays) -> None:
            self.save(call, epoch, arrays)

        return save, self.load(call)


ACTIVE: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "reglab_checkpointing", default=None
)


@contextlib.contextmanager
def checkpointing(
    save: Callable[[int, int, Arrays], None],
    load: Callable[[int], Arrays | None] = lambda call: None,
    every_s: float = 30.0,
) -> Iterator[Session]:
    """Checkpoint every ``train`` call in the block: ``save(call, epoch, arrays)``
    at most every every_s seconds and at each call's end; ``load(call)`` gives the
    checkpoint a call resumes from (None: start afresh)."""
    token = ACTIVE.set(Session(save, load, every_s))
    try:
        yield ACTIVE.get()
    finally:
        ACTIVE.reset(token)
