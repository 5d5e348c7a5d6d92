"""The trainer: an ensemble of MLPs as one jit-compiled program (``reglab.program``).

This module validates the inputs before anything is compiled, drives the program one
chunk of epochs at a time from the host (progress, NaN reports, stopping when every
member has stopped) and returns plain numpy arrays.

Epochs are shuffled passes over the training set; the last, partial batch is kept (with
N=250 and B=32: seven batches of 32 and one of 26) by padding it to B rows whose weight
is 0, so every step has one shape and the mean runs over the real rows only.

Times are epochs: epoch 0 is the initial model, epoch e the model after e passes.
Metrics and snapshots are taken at the end of scheduled epochs. A member whose update
turns non-finite keeps its last finite parameters and stops; the others go on.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from reglab import checkpoint as ckpt
from reglab import nn, placement, program, settings
from reglab.ensemble import Ensemble
from reglab.optim import penalty_mask
from reglab.specs import (  # noqa: F401 - log_spaced_epochs: reglab.train's API
    AugmentFn,
    EarlyStopping,
    TrainSpec,
    index_table,
    log_spaced_epochs,
    schedule,
)

Array = jax.Array
Progress = Callable[[int, int], None]
Checkpoint = Callable[[int, dict[str, np.ndarray]], None]  # (epoch, arrays)
checkpointing = ckpt.checkpointing  # the lab's seam: hooks for every train call


@dataclass
class TrainResult:
    """Arrays with leading (seeds, configs) axes, as numpy."""

    params: dict[str, np.ndarray]  # final (or best, with restore_best) parameters
    opt_state: Any  # the optimizer state after the last update (optax pytree, numpy)
    history: dict[str, dict[str, np.ndarray]]  # set -> loss/accuracy -> (S, C, R)
    # Every epoch e, free: the mean training loss (the objective's likelihood part,
    # with smoothing) and accuracy over the minibatches of epoch e, as trained on
    # (dropout and augmentation active); NaN at epoch 0 and after a member stopped.
    running: dict[str, np.ndarray]  # loss/accuracy -> (S, C, epochs + 1)
    record_epochs: np.ndarray  # (R,)
    snapshots: dict[str, np.ndarray]  # name -> (S, C, n_snapshots, ...)
    snapshot_epochs: np.ndarray
    diverged: np.ndarray  # (S, C) bool: produced NaN/inf and stopped
    exploded: np.ndarray  # (S, C) bool: finite, but its loss grew far past its start
    stopped_epoch: np.ndarray  # (S, C): the last epoch each member trained
    best_epoch: np.ndarray  # (S, C): epoch of the lowest monitored loss (or -1)
    failures: list[str]
    compile_seconds: float
    run_seconds: float


def _check_data(name: str, x, y, n_in: int, n_classes: int) -> tuple[Array, Array]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ValueError(
            f"{name} inputs must have shape (n, {n_in}) to match widths[0], got"
            f" {x.shape} — flatten images or fix widths"
        )
    if y.shape != (x.shape[0],):
        raise ValueError(
            f"{name} labels must have shape ({x.shape[0]},), got {y.shape}"
        )
    if not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x))[0][0])
        raise ValueError(
            f"{name} inputs must be finite, row {bad} is not — drop or impute it"
        )
    if y.size and (y.min() < 0 or y.max() >= n_classes or not np.all(y == y.round())):
        raise ValueError(
            f"{name} labels must be integers in [0, {n_classes}), got"
            f" {y.min()}..{y.max()} — widths[-1] sets the number of classes"
        )
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)


def train(
    spec: TrainSpec,
    ensemble: Ensemble,
    x,
    y,
    *,
    eval_sets: Mapping[str, tuple] | None = None,
    record: int | Sequence[int] = 1,
    snapshot_params: Sequence[str] = (),
    snapshot_epochs: Sequence[int] = (),
    early_stopping: EarlyStopping | None = None,
    augment_fn: AugmentFn | None = None,
    progress: Progress | None = None,
    devices: int | Sequence[jax.Device] | None = None,
    checkpoint: Checkpoint | None = None,
    checkpoint_every_s: float = 30.0,
    resume: dict[str, np.ndarray] | None = None,
) -> TrainResult:
    """Train every member of the ensemble on (x, y); return arrays per member.

    eval_sets: name -> (x, y), evaluated (NLL, accuracy) at the ``record`` epochs
    (every k epochs, or an explicit list; epoch 0 and the last are always included
    for an int). ``progress(done_epochs, total_epochs)`` is called between chunks.
    devices: where the members train, side by side (a config is never split): None
    for every device of JAX's default backend (on the CPU one per core, see
    ``reglab.placement``), n for the first n, or a list of devices.
    checkpoint(epoch, arrays): called with the whole training state at a chunk's
    end, at most every checkpoint_every_s seconds and at the last chunk
    (``reglab.checkpoint`` names the arrays); resume: such arrays, to continue from
    the epoch after theirs, ending bit-identical to the run never interrupted.
    Inside a ``checkpointing`` block, both come from its hooks unless given.
    """
    session = ckpt.ACTIVE.get()
    if session is not None and checkpoint is None and resume is None:
        checkpoint, resume = session.next_call()
        checkpoint_every_s = session.every_s
    chunks = train_chunks(
        spec, ensemble, x, y, eval_sets=eval_sets, record=record,
        snapshot_params=snapshot_params, snapshot_epochs=snapshot_epochs,
        early_stopping=early_stopping, augment_fn=augment_fn, progress=progress,
        devices=devices, checkpoint=checkpoint,
        checkpoint_every_s=checkpoint_every_s, resume=resume,
    )  # fmt: skip
    (last,) = collections.deque(chunks, maxlen=1)  # run to the end, keep the last
    return last.result()


def train_chunks(
    spec: TrainSpec,
    ensemble: Ensemble,
    x,
    y,
    *,
    eval_sets: Mapping[str, tuple] | None = None,
    record: int | Sequence[int] = 1,
    snapshot_params: Sequence[str] = (),
    snapshot_epochs: Sequence[int] = (),
    early_stopping: EarlyStopping | None = None,
    augment_fn: AugmentFn | None = None,
    progress: Progress | None = None,
    devices: int | Sequence[jax.Device] | None = None,
    checkpoint: Checkpoint | None = None,
    checkpoint_every_s: float = 30.0,
    resume: dict[str, np.ndarray] | None = None,
    keep_settings: Collection[str] = (),
    groups: int | None = None,
) -> Iterator[Chunk]:
    """Train the ensemble chunk by chunk, yielding a Chunk after each (see ``train``).

    The next chunk is already running while the consumer looks at a Chunk, so a live
    view (the playground) costs the training little. Inputs are checked at the first
    ``next()``.

    eval_sets: name -> (x, y), evaluated (NLL, accuracy) at the ``record`` epochs
    (every k epochs, or an explicit list; epoch 0 and the last are always included
    for an int). ``progress(done_epochs, total_epochs)`` is called between chunks.
    devices: where the members train, side by side (a config is never split): None
    for every device of JAX's default backend (on the CPU one per core, see
    ``reglab.placement``), n for the first n, or a list of devices.
    checkpoint, checkpoint_every_s, resume: see ``train``.
    keep_settings: per-member settings the program applies even where every member
    has them off, so that later ensembles which set them reuse it (the playground's
    sliders); by default the program leaves out the work of unused ones.
    groups: lay the configs out in this many groups (``placement.group_shape``), so
    that a few small members spread over the devices; None: the default layout.
    """
    devs = placement.choose_devices(devices)
    if groups is not None and (not isinstance(groups, int) or groups < 1):
        raise ValueError(f"groups must be an integer >= 1 or None, got {groups!r}")
    model = spec.model
    x, y = _check_data("train", x, y, model.widths[0], model.n_classes)
    if spec.batch_size > x.shape[0]:
        raise ValueError(
            f"batch_size must be <= the {x.shape[0]} training examples, got"
            f" {spec.batch_size} — lower batch_size or add data"
        )
    eval_sets = {"train": (x, y)} if eval_sets is None else dict(eval_sets)
    names = list(eval_sets)
    sets = tuple(
        _check_data(n, *eval_sets[n], model.widths[0], model.n_classes) for n in names
    )
    if early_stopping is not None and early_stopping.monitor not in eval_sets:
        raise ValueError(
            f"early_stopping.monitor={early_stopping.monitor!r} is not an eval set;"
            f" have {names} — add it to eval_sets (a validation split)"
        )
    monitor = names.index(early_stopping.monitor) if early_stopping else 0
    values = ensemble.values
    if augment_fn is None and values["augment"].any():
        raise ValueError(
            "some members have augment=True but augment_fn is None — pass"
            " augment_fn (e.g. reglab.data.post_shift) or set augment=False"
        )
    if not model.dropout_layers and (values["p_drop"] > 0).any():
        bad = float(values["p_drop"][values["p_drop"] > 0][0])
        raise ValueError(
            f"p_drop={bad:g} needs dropout layers, but the MLPSpec has none — pass"
            " MLPSpec(..., dropout_layers=(1, 2)) (hidden layers to drop), or p_drop=0"
        )
    unknown = set(snapshot_params) - {
        f"{p}{l}" for l in range(1, model.depth + 1) for p in "Wb"
    }
    if unknown:
        raise ValueError(
            f"snapshot_params {sorted(unknown)} are not parameters of this MLP"
            f" (W1..W{model.depth}, b1..b{model.depth})"
        )

    E, L = spec.epochs, spec.chunk
    records = schedule(E, record, "record")
    snaps_at = schedule(E, snapshot_epochs, "snapshot") if snapshot_params else []
    snaps_at = np.asarray(snaps_at, int)
    # chunks start at epoch 0 (a resumed or extended run: after its last epoch)
    record_at = jnp.asarray(index_table(records, E + L))
    snap_at = jnp.asarray(index_table(snaps_at, E + L))

    # Shapes only: eval_shape traces init_mlp without running or compiling it.
    probe = jax.eval_shape(partial(nn.init_mlp, spec=model), jax.random.PRNGKey(0))
    mask = penalty_mask(probe, spec.optimizer.penalize_biases)
    used = settings.in_use(values) | settings.check_names(
        keep_settings, "keep_settings"
    )
    mixed = [k for k in ("decoupled", "proximal") if k in used]
    if mixed and spec.optimizer.penalty != "coupled":
        raise ValueError(
            f"members with {mixed[0]}=True need OptimizerSpec(penalty='coupled'), got"
            f" {spec.optimizer.penalty!r} — 'coupled' with {mixed[0]} per member mixes"
            " the kinds; without the setting every member follows the spec"
        )
    init_fn, chunk_fn = program.grouped(
        *program.build_program(spec, augment_fn, early_stopping, monitor, mask, used)
    )
    S, C = ensemble.shape
    n_params = sum(math.prod(p.shape) for p in probe.values())
    G, Cg = layout = placement.group_shape(S, C, n_params, groups)
    d = placement.devices_used(G, n_params, len(devs))
    devs = devs[:d]
    G = d * -(-G // d)  # pad with whole groups so each device gets the same count
    hyper = jax.tree.map(  # a Member of (G, Cg) arrays
        lambda v: placement.to_groups(jnp.asarray(v), G, Cg), ensemble.members()
    )

    snap_shapes = {n: (len(snaps_at),) + probe[n].shape for n in snapshot_params}
    shapes = ((len(records), len(sets), 2), tuple(snap_shapes.items()))
    seeds = jnp.asarray(ensemble.seeds, jnp.uint32)
    static = (spec, augment_fn, early_stopping, monitor, tuple(mask.items()), used)

    def start_state(hyper, seeds):
        keys = jax.vmap(program.member_keys)(seeds)
        return init_fn(hyper, keys, shapes), keys

    init_program, init_s = placement.compiled(("init", static, shapes), start_state,
                                     (hyper, seeds))  # fmt: skip
    state, keys = init_program(hyper, seeds)
    # what a checkpoint must have been made by: resuming under anything else is refused
    # ... and what a run it may extend to more epochs must share with it
    run = (
        repr(early_stopping), names, tuple(snapshot_params), ensemble.seeds, layout,
        sorted(values), *(np.asarray(values[k]) for k in sorted(values)),
    )  # fmt: skip
    stamp, lineage = ckpt.stamps(spec, run, records, snaps_at)
    failures: list[str] = []
    s0, ended = 0, None  # the first epoch to run; the epoch a resumed run had ended
    if resume is not None:
        resume = ckpt.extended(resume, lineage, stamp)  # as it is unless shorter
    if resume is not None:  # (None: a shorter run offered by the lab, not fitting)
        state = ckpt.restore(state, resume, C, stamp)
        failures = [str(f) for f in resume["meta/failures"]]
        s0 = int(resume["meta/epoch"]) + 1
        ended = int(resume["meta/epoch"]) if resume["meta/done"] else None
    # Each device runs the same one-device program on its share of whole groups
    # (dispatch is asynchronous, so they run side by side): a member's arithmetic is
    # then the same on any number of devices, which an SPMD-partitioned program did
    # not guarantee (Adam's update rounded differently under shard_map).
    runs, compile_s = placement.deal(
        static, chunk_fn, (state, hyper), (keys, x, y, sets, record_at, snap_at), devs
    )
    compile_s += init_s

    def members(parts) -> np.ndarray:  # d x (G/d, S, Cg, ...) -> (S, C, ...)
        whole = np.concatenate([np.asarray(p) for p in parts])
        return np.asarray(placement.from_groups(whole, C))

    reported = members([s.diverged for s in (r.state for r in runs)])
    due = ckpt.Every(checkpoint_every_s)

    def finish(states, run_s: float) -> TrainResult:
        """Return the TrainResult of the members as they are in states."""
        state = jax.tree.map(lambda *parts: members(parts), *states)  # (S, C, ...)
        chosen = state.params
        if early_stopping is not None and early_stopping.restore_best:
            # members that never improved keep their final parameters
            had_best = state.best_epoch >= 0  # (S, C)
            chosen = {
                k: np.where(
                    had_best.reshape(had_best.shape + (1,) * (p.ndim - 2)),
                    state.best_params[k],
                    p,
                )  # fmt: skip
                for k, p in state.params.items()
            }
        metrics = state.metrics  # (S, C, R, sets, 2)
        exploded = _exploded(state.running[..., 0], model.n_classes)  # (S, C)
        notes = list(failures)
        for s, cfg in zip(*np.nonzero(exploded & ~state.diverged), strict=True):
            peak = np.nanmax(state.running[s, cfg, :, 0])
            notes.append(
                f"member ({ensemble.describe(s, cfg)}) exploded: its training loss"
                f" reached {peak:.3g}, over {EXPLODED:g}x the"
                f" {math.log(model.n_classes):.3g} of a uniform guess, while staying"
                " finite — lower its learning_rate"
            )
        return TrainResult(
            params=dict(chosen),
            opt_state=state.opt_state,
            history={
                n: {"loss": metrics[..., j, 0], "accuracy": metrics[..., j, 1]}
                for j, n in enumerate(names)
            },
            running={"loss": state.running[..., 0], "accuracy": state.running[..., 1]},
            record_epochs=records,
            snapshots={k: np.asarray(v) for k, v in state.snaps.items()},
            snapshot_epochs=snaps_at,
            diverged=np.asarray(state.diverged),
            exploded=exploded,
            stopped_epoch=np.asarray(state.last_epoch),
            best_epoch=np.asarray(state.best_epoch),
            failures=notes,
            compile_seconds=compile_s,
            run_seconds=run_s,
        )

    start = time.perf_counter()
    if ended is not None:  # the checkpoint is of the run's end: nothing to train
        states = [run.state for run in runs]
        yield Chunk(ended, E, True, states, members, partial(finish, run_s=0.0))
        return
    starts = range(s0, E + 1, L)
    placement.step_all(runs, jnp.int32(s0))
    for c, e0 in enumerate(starts):
        states = [run.state for run in runs]  # chunk c, still running
        epoch = min(e0 + L - 1, E)
        diverged = members([s.diverged for s in states])  # waits for chunk c
        for s, cfg in zip(*np.nonzero(diverged & ~reported), strict=True):
            failures.append(
                f"member ({ensemble.describe(s, cfg)}) produced NaN/inf by epoch"
                f" {epoch}; stopped with its last finite parameters"
            )
        reported |= diverged
        done = (
            c == len(starts) - 1
            or (diverged | members([s.stopped for s in states])).all()
        )
        if done:
            jax.block_until_ready(states)
        else:  # the next chunk runs while the host reports on this one
            placement.step_all(runs, jnp.int32(e0 + L))
        elapsed = time.perf_counter() - start
        if progress is not None:
            progress(epoch, E)
        if checkpoint is not None and due.due(done):
            host = jax.tree.map(lambda *parts: members(parts), *states)  # (S, C, ...)
            packed = ckpt.pack(host, epoch, done, stamp, failures, lineage)
            checkpoint(epoch, packed)
        yield Chunk(epoch, E, done, states, members, partial(finish, run_s=elapsed))
        if done:
            return


@dataclass
class Chunk:
    """The ensemble after a chunk of epochs; arrays come to the host on demand."""

    epoch: int  # the last epoch trained
    epochs: int  # the run's total
    done: bool  # the last chunk (or every member stopped)
    _states: list
    _members: Callable
    _finish: Callable

    def leaf(self, name: str) -> np.ndarray:
        """Return a state field (e.g. "metrics", "diverged") as (S, C, ...) numpy."""
        return self._members([getattr(s, name) for s in self._states])

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Return the current parameters, name -> (S, C, ...)."""
        names = self._states[0].params
        return {k: self._members([s.params[k] for s in self._states]) for k in names}

    def result(self) -> TrainResult:
        """Return the TrainResult as of this chunk (the final one at the end)."""
        return self._finish(self._states)


# A training loss this many times log(K), the cross-entropy of a uniform guess (where
# a fresh network starts), is an explosion: training never goes near it, while a
# too-large learning rate can reach it within the first epoch and stay finite.
EXPLODED = 1e3


def _exploded(running_loss: np.ndarray, n_classes: int) -> np.ndarray:
    """Return (S, C): members whose running loss grew far past where it started."""
    with np.errstate(invalid="ignore"):
        grew = running_loss > EXPLODED * math.log(n_classes)  # NaN compares False
    return grew.any(axis=-1)


def predict(spec: nn.MLPSpec, params: Mapping[str, Any], x) -> np.ndarray:
    """Return inference-mode logits (S, C, n, K) of every member on inputs x."""
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2 or x.shape[1] != spec.widths[0]:
        raise ValueError(
            f"x must be (examples, {spec.widths[0]}): the network takes"
            f" {spec.widths[0]} inputs, got shape {tuple(x.shape)} — reshape it to"
            f" (n, {spec.widths[0]})"
        )
    return np.asarray(_predict(spec, dict(params), x))


@partial(jax.jit, static_argnums=0)
def _predict(spec: nn.MLPSpec, params, x):
    apply = jax.vmap(jax.vmap(nn.mlp_apply, (0, None, None)), (0, None, None))
    return apply(params, x, spec)
