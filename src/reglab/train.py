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
from reglab import nn, placement, program, regularizers, settings
from reglab.ensemble import Ensemble
from reglab.optim import penalty_mask
from reglab.regularizers.base import Context
from reglab.settings import Member
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


@dataclass(frozen=True)
class Options:
    """How a run trains beyond its spec and ensemble: the keywords of ``train`` and
    ``train_chunks``.

    eval_sets: name -> (x, y), evaluated (NLL, accuracy) at the ``record`` epochs
    (every k epochs, or an explicit list; epoch 0 and the last are always included
    for an int); None evaluates the training set. ``progress(done_epochs,
    total_epochs)`` is called between chunks. devices: where the members train, side
    by side (a config is never split): None for every device of JAX's default backend
    (on the CPU one per core, see ``reglab.placement``), n for the first n, or a list.
    checkpoint(epoch, arrays): called with the whole training state at a chunk's end,
    at most every checkpoint_every_s seconds and at the last chunk
    (``reglab.checkpoint`` names the arrays); resume: such arrays, to continue from
    the epoch after theirs, ending bit-identical to the run never interrupted. Inside
    a ``checkpointing`` block, ``train`` takes both from its hooks unless given.
    keep_settings: per-member settings the program applies even where every member
    has them off, so that later ensembles which set them reuse it (the playground's
    sliders); by default the program leaves out the work of unused ones. groups: lay
    the configs out in this many groups (``placement.group_shape``), so that a few
    small members spread over the devices; None: the default layout.
    """

    eval_sets: Mapping[str, tuple] | None = None
    record: int | Sequence[int] = 1
    snapshot_params: Sequence[str] = ()
    snapshot_epochs: Sequence[int] = ()
    early_stopping: EarlyStopping | None = None
    augment_fn: AugmentFn | None = None
    progress: Progress | None = None
    devices: int | Sequence[jax.Device] | None = None
    checkpoint: Checkpoint | None = None
    checkpoint_every_s: float = 30.0
    resume: dict[str, np.ndarray] | None = None
    keep_settings: Collection[str] = ()
    groups: int | None = None


def train(spec: TrainSpec, ensemble: Ensemble, x, y, **options: Any) -> TrainResult:
    """Train every member of the ensemble on (x, y); return arrays per member.

    options: the keywords of ``Options`` (eval sets, records, snapshots, early
    stopping, augmentation, progress, devices, checkpoints, ...).
    """
    session = ckpt.ACTIVE.get()
    given = options.get("checkpoint") is not None or options.get("resume") is not None
    if session is not None and not given:
        options["checkpoint"], options["resume"] = session.next_call()
        options["checkpoint_every_s"] = session.every_s
    chunks = train_chunks(spec, ensemble, x, y, **options)
    (last,) = collections.deque(chunks, maxlen=1)  # run to the end, keep the last
    return last.result()


def train_chunks(spec: TrainSpec, ensemble: Ensemble, x, y, **options: Any):
    """Train the ensemble chunk by chunk, yielding a Chunk after each (see ``train``).

    The next chunk is already running while the consumer looks at a Chunk, so a live
    view (the playground) costs the training little. Inputs are checked at the first
    ``next()``; options: the keywords of ``Options``.
    """
    return run_chunks(spec, ensemble, x, y, Options(**options))


@dataclass(frozen=True, eq=False)
class Plan:
    """A run once checked: its data, schedules and the program's static context."""

    spec: TrainSpec
    ensemble: Ensemble
    options: Options
    x: Array
    y: Array
    names: list[str]  # the eval sets, in order
    sets: tuple  # their checked (x, y)
    monitor: int  # the eval set early stopping watches
    records: np.ndarray  # the record epochs
    snaps_at: np.ndarray  # the snapshot epochs
    probe: dict  # parameter name -> shape (no arrays made)
    ctx: Context


def validate(spec: TrainSpec, ensemble: Ensemble, x, y, options: Options) -> Plan:
    """Return the run's Plan; ValueError naming a bad input, before any compiling."""
    o, model = options, spec.model
    if o.groups is not None and (not isinstance(o.groups, int) or o.groups < 1):
        raise ValueError(f"groups must be an integer >= 1 or None, got {o.groups!r}")
    x, y = _check_data("train", x, y, model.widths[0], model.n_classes)
    if spec.batch_size > x.shape[0]:
        raise ValueError(
            f"batch_size must be <= the {x.shape[0]} training examples, got"
            f" {spec.batch_size} — lower batch_size or add data"
        )
    eval_sets = {"train": (x, y)} if o.eval_sets is None else dict(o.eval_sets)
    names = list(eval_sets)
    sets = tuple(
        _check_data(n, *eval_sets[n], model.widths[0], model.n_classes) for n in names
    )
    early = o.early_stopping
    if early is not None and early.monitor not in eval_sets:
        raise ValueError(
            f"early_stopping.monitor={early.monitor!r} is not an eval set;"
            f" have {names} — add it to eval_sets (a validation split)"
        )
    unknown = set(o.snapshot_params) - {
        f"{p}{l}" for l in range(1, model.depth + 1) for p in "Wb"
    }
    if unknown:
        raise ValueError(
            f"snapshot_params {sorted(unknown)} are not parameters of this MLP"
            f" (W1..W{model.depth}, b1..b{model.depth})"
        )
    records = schedule(spec.epochs, o.record, "record")
    snaps_at = np.asarray(
        schedule(spec.epochs, o.snapshot_epochs, "snapshot")
        if o.snapshot_params
        else [],
        int,
    )
    # Shapes only: eval_shape traces init_mlp without running or compiling it.
    probe = jax.eval_shape(partial(nn.init_mlp, spec=model), jax.random.PRNGKey(0))
    values = dict(ensemble.members())  # every row, a late-registered one too
    used = settings.in_use(values) | settings.check_names(
        o.keep_settings, "keep_settings"
    )
    ctx = Context(
        model=model,
        spec=spec,
        used=used,
        mask=penalty_mask(probe, spec.optimizer.penalize_biases),
        steps_per_epoch=-(-x.shape[0] // spec.batch_size),
        augment_fn=o.augment_fn,
    )
    regularizers.check(ctx, values)
    monitor = names.index(early.monitor) if early else 0
    return Plan(spec, ensemble, o, x, y, names, sets, monitor, records, snaps_at,
                probe, ctx)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Layout:
    """Where the members train: groups of configs dealt to devices."""

    devices: list
    groups: int  # G, padded to a multiple of the devices
    per_group: int  # Cg
    shape: tuple[int, int]  # (G, Cg) before the padding: part of the run's stamp
    hyper: Member  # (G, Cg) arrays
    static: tuple  # what the compiled programs are cached by


def lay_out(plan: Plan, prog: program.Program) -> Layout:
    """Return the layout of the plan's members over groups and devices."""
    devs = placement.choose_devices(plan.options.devices)
    S, C = plan.ensemble.shape
    n_params = sum(math.prod(p.shape) for p in plan.probe.values())
    G, Cg = shape = placement.group_shape(S, C, n_params, plan.options.groups)
    d = placement.devices_used(G, n_params, len(devs))
    G = d * -(-G // d)  # pad with whole groups so each device gets the same count
    hyper = jax.tree.map(
        lambda v: placement.to_groups(jnp.asarray(v), G, Cg), plan.ensemble.members()
    )
    o, ctx = plan.options, plan.ctx
    # the regularizers themselves (their hooks), not their names: a plug-in
    # registered anew under the same name compiles its own program
    static = (plan.spec, o.augment_fn, o.early_stopping, plan.monitor,
              tuple(ctx.mask.items()), ctx.used, prog.regs)  # fmt: skip
    return Layout(devs[:d], G, Cg, shape, hyper, static)


def start(plan: Plan, prog: program.Program, init_fn, lay: Layout):
    """Return the members' initial grouped state, their keys and the compile time."""
    snap_shapes = {
        n: (len(plan.snaps_at),) + plan.probe[n].shape
        for n in plan.options.snapshot_params
    }
    shapes = ((len(plan.records), len(plan.sets), 2), tuple(snap_shapes.items()))
    seeds = jnp.asarray(plan.ensemble.seeds, jnp.uint32)
    member_keys = partial(program.member_keys, names=prog.stream_names)

    def start_state(hyper, seeds):
        keys = jax.vmap(member_keys)(seeds)
        return init_fn(hyper, keys, shapes), keys

    init_program, init_s = placement.compiled(
        ("init", lay.static, shapes), start_state, (lay.hyper, seeds)
    )
    state, keys = init_program(lay.hyper, seeds)
    return state, keys, init_s


@dataclass
class Resumed:
    """Where a run starts: its state, the epoch to run first, what it had noted."""

    state: Any
    first_epoch: int
    ended: int | None  # the epoch a finished run had ended (nothing to train)
    failures: list[str]
    stamp: np.ndarray  # what a checkpoint of this run carries
    lineage: ckpt.Lineage


def resume(plan: Plan, lay: Layout, state) -> Resumed:
    """Return the run's start: afresh, or from the options' resume arrays."""
    values = plan.ensemble.values
    o = plan.options
    # what a checkpoint must have been made by: resuming under anything else is refused
    # ... and what a run it may extend to more epochs must share with it
    run = (
        repr(o.early_stopping), plan.names, tuple(o.snapshot_params),
        plan.ensemble.seeds, lay.shape, sorted(values),
        *(np.asarray(values[k]) for k in sorted(values)),
    )  # fmt: skip
    stamp, lineage = ckpt.stamps(plan.spec, run, plan.records, plan.snaps_at)
    arrays = o.resume
    if arrays is not None:
        arrays = ckpt.extended(arrays, lineage, stamp)  # as it is unless shorter
    if arrays is None:  # (None too: a shorter run offered by the lab, not fitting)
        return Resumed(state, 0, None, [], stamp, lineage)
    state = ckpt.restore(state, arrays, plan.ensemble.n_configs, stamp)
    epoch = int(arrays["meta/epoch"])
    ended = epoch if arrays["meta/done"] else None
    failures = [str(f) for f in arrays["meta/failures"]]
    return Resumed(state, epoch + 1, ended, failures, stamp, lineage)


def assemble_result(plan: Plan, state, failures: list[str], compile_s: float,
                    run_s: float) -> TrainResult:  # fmt: skip
    """Return the TrainResult of the members as they are in state (S, C, ...)."""
    early, model = plan.options.early_stopping, plan.spec.model
    chosen = state.params if state.shown is None else state.shown
    if early is not None and early.restore_best:
        # members that never improved keep their final parameters
        had_best = state.best_epoch >= 0  # (S, C)
        chosen = {
            k: np.where(
                had_best.reshape(had_best.shape + (1,) * (p.ndim - 2)),
                state.best_params[k],
                p,
            )  # fmt: skip
            for k, p in chosen.items()
        }
    metrics = state.metrics  # (S, C, R, sets, 2)
    exploded = _exploded(state.running[..., 0], model.n_classes)  # (S, C)
    notes = list(failures)
    for s, cfg in zip(*np.nonzero(exploded & ~state.diverged), strict=True):
        peak = np.nanmax(state.running[s, cfg, :, 0])
        notes.append(
            f"member ({plan.ensemble.describe(s, cfg)}) exploded: its training loss"
            f" reached {peak:.3g}, over {EXPLODED:g}x the"
            f" {math.log(model.n_classes):.3g} of a uniform guess, while staying"
            " finite — lower its learning_rate"
        )
    return TrainResult(
        params=dict(chosen),
        opt_state=state.opt_state,
        history={
            n: {"loss": metrics[..., j, 0], "accuracy": metrics[..., j, 1]}
            for j, n in enumerate(plan.names)
        },
        running={"loss": state.running[..., 0], "accuracy": state.running[..., 1]},
        record_epochs=plan.records,
        snapshots={k: np.asarray(v) for k, v in state.snaps.items()},
        snapshot_epochs=plan.snaps_at,
        diverged=np.asarray(state.diverged),
        exploded=exploded,
        stopped_epoch=np.asarray(state.last_epoch),
        best_epoch=np.asarray(state.best_epoch),
        failures=notes,
        compile_seconds=compile_s,
        run_seconds=run_s,
    )


def run_chunks(spec: TrainSpec, ensemble: Ensemble, x, y, options: Options):
    """Validate, lay out, start or resume, then run the chunks (see train_chunks)."""
    plan = validate(spec, ensemble, x, y, options)
    prog = program.make(plan.ctx, options.early_stopping, plan.monitor)
    init_fn, chunk_fn = program.grouped(*program.build_program(prog))
    lay = lay_out(plan, prog)
    state, keys, init_s = start(plan, prog, init_fn, lay)
    begun = resume(plan, lay, state)
    # Each device runs the same one-device program on its share of whole groups
    # (dispatch is asynchronous, so they run side by side): a member's arithmetic is
    # then the same on any number of devices, which an SPMD-partitioned program did
    # not guarantee (Adam's update rounded differently under shard_map).
    shared = (keys, plan.x, plan.y, plan.sets, *_tables(plan))
    runs, compile_s = placement.deal(
        lay.static, chunk_fn, (begun.state, lay.hyper), shared, lay.devices
    )
    members = partial(_members, n_configs=ensemble.n_configs)
    failures = begun.failures

    def finish(states, run_s: float) -> TrainResult:
        host = jax.tree.map(lambda *parts: members(parts), *states)  # (S, C, ...)
        return assemble_result(plan, host, failures, compile_s + init_s, run_s)

    if begun.ended is not None:  # the checkpoint is of the run's end: nothing to train
        states = [run.state for run in runs]
        yield Chunk(begun.ended, spec.epochs, True, states, members,
                    partial(finish, run_s=0.0))  # fmt: skip
        return
    yield from chunk_loop(plan, runs, begun, members, finish)


def _tables(plan: Plan) -> tuple[Array, Array]:
    """Return epoch -> record row and epoch -> snapshot row (-1: none), padded so
    that a chunk may run past the last epoch."""
    length = plan.spec.epochs + plan.spec.chunk
    return (
        jnp.asarray(index_table(plan.records, length)),
        jnp.asarray(index_table(plan.snaps_at, length)),
    )


def _members(parts, n_configs: int) -> np.ndarray:
    """Return d x (G/d, S, Cg, ...) device parts as (S, C, ...) numpy."""
    whole = np.concatenate([np.asarray(p) for p in parts])
    return np.asarray(placement.from_groups(whole, n_configs))


def chunk_loop(plan: Plan, runs, begun: Resumed, members, finish) -> Iterator[Chunk]:
    """Run the chunks from the first epoch, yielding a Chunk after each."""
    o, E, L = plan.options, plan.spec.epochs, plan.spec.chunk
    failures = begun.failures  # shared with finish: notes added here reach it
    reported = members([r.state.diverged for r in runs])
    due = ckpt.Every(o.checkpoint_every_s)
    start_s = time.perf_counter()
    starts = range(begun.first_epoch, E + 1, L)
    placement.step_all(runs, jnp.int32(begun.first_epoch))
    for c, e0 in enumerate(starts):
        states = [run.state for run in runs]  # chunk c, still running
        epoch = min(e0 + L - 1, E)
        diverged = members([s.diverged for s in states])  # waits for chunk c
        for s, cfg in zip(*np.nonzero(diverged & ~reported), strict=True):
            failures.append(
                f"member ({plan.ensemble.describe(s, cfg)}) produced NaN/inf by"
                f" epoch {epoch}; stopped with its last finite parameters"
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
        elapsed = time.perf_counter() - start_s
        if o.progress is not None:
            o.progress(epoch, E)
        if o.checkpoint is not None and due.due(done):
            host = jax.tree.map(lambda *parts: members(parts), *states)  # (S, C, ...)
            packed = ckpt.pack(host, epoch, done, begun.stamp, failures, begun.lineage)
            o.checkpoint(epoch, packed)
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
        """Return the current parameters (as evaluated), name -> (S, C, ...)."""
        shown = [s.params if s.shown is None else s.shown for s in self._states]
        return {k: self._members([p[k] for p in shown]) for k in shown[0]}

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
