"""Training state as named host arrays: what ``reglab.train`` checkpoints and resumes.

A checkpoint is a flat dict of numpy arrays, so the run store keeps it as one .npz:

    state/params/W1               (S, C, D, H)   a State leaf, members (S, C) first
    state/opt_state/0/mu/W1       (S, C, D, H)   ... named by its pytree path
    meta/epoch                    ()             the last epoch trained
    meta/done                     ()             the run had ended (last chunk, or
                                                 every member stopped)
    meta/fingerprint              ()             spec, schedules and ensemble (sha256)
    meta/failures                 (n,)           the NaN reports made so far

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
from dataclasses import dataclass, field

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


def pack(state, epoch: int, done: bool, stamp: np.ndarray, failures) -> Arrays:
    """Return the checkpoint of a State whose leaves are (S, C, ...) host arrays."""
    return {
        **flatten(state),
        "meta/epoch": np.array(epoch, np.int64),
        "meta/done": np.array(done),
        "meta/fingerprint": stamp,
        "meta/failures": np.array(list(failures), dtype=str),
    }


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
