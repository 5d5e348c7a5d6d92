"""The trainer: an ensemble of MLPs as one jit-compiled program.

Shape of the program (one compiled function, called once per chunk of epochs):

    vmap over seeds  (batch order, init, dropout and augmentation keys differ)
      vmap over configs  (learning rate, strengths, p_drop, smoothing, augment differ;
                          the minibatch is shared, so layer 1 is one wide matmul)
        lax.scan over the chunk's epochs
          lax.scan over the epoch's minibatch steps
          evaluate / snapshot / early-stopping bookkeeping on scheduled epochs

Epochs are shuffled passes over the training set; the last, partial batch is kept (with
N=250 and B=32: seven batches of 32 and one of 26) by padding it to B rows whose weight
is 0, so every step has one shape and the mean runs over the real rows only.

Times are epochs: epoch 0 is the initial model, epoch e the model after e passes.
Metrics and snapshots are taken at the end of scheduled epochs. A member whose update
turns non-finite keeps its last finite parameters and stops; the others go on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from reglab import nn
from reglab.ensemble import Ensemble
from reglab.optim import Hyper, OptimizerSpec, build_optimizer, penalty_mask

Array = jax.Array
Progress = Callable[[int, int], None]
AugmentFn = Callable[[Array, Array], Array]

LOSS_NAMES = tuple(nn.LOSSES)


@dataclass(frozen=True)
class TrainSpec:
    """Everything static about a training run: what changes the compiled program."""

    model: nn.MLPSpec
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    epochs: int = 1
    batch_size: int = 32
    loss: str = "cross_entropy"
    smoothing_convention: str = "post"  # 1-eps / eps/(K-1), as the post defines it
    chunk_epochs: int = 0  # epochs per compiled call; 0 picks about 20 calls per run

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(
                f"batch_size must be an integer >= 1, got {self.batch_size!r}"
            )
        if self.loss not in LOSS_NAMES:
            raise ValueError(f"loss must be one of {LOSS_NAMES}, got {self.loss!r}")
        if self.smoothing_convention not in nn.SMOOTHING_CONVENTIONS:
            raise ValueError(
                f"smoothing_convention must be one of {nn.SMOOTHING_CONVENTIONS},"
                f" got {self.smoothing_convention!r}"
            )
        if self.chunk_epochs < 0:
            raise ValueError(
                f"chunk_epochs must be >= 0 (0 = automatic), got {self.chunk_epochs}"
            )

    @property
    def chunk(self) -> int:
        """Epochs per compiled call."""
        return self.chunk_epochs or max(1, math.ceil((self.epochs + 1) / 20))


@dataclass(frozen=True)
class EarlyStopping:
    """Stop a member when its loss on ``monitor`` has not improved for a while."""

    monitor: str = "val"  # the eval set whose loss (NLL) is watched
    patience: int = 20  # epochs without an improvement larger than min_delta
    min_delta: float = 0.0
    restore_best: bool = True  # return the parameters of the best epoch

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1 epoch, got {self.patience}")
        if self.min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")


@dataclass
class TrainResult:
    """Arrays with leading (seeds, configs) axes, as numpy."""

    params: dict[str, np.ndarray]  # final (or best, with restore_best) parameters
    opt_state: Any  # the optimizer state after the last update (optax pytree, numpy)
    history: dict[str, dict[str, np.ndarray]]  # set -> loss/accuracy -> (S, C, R)
    record_epochs: np.ndarray  # (R,)
    snapshots: dict[str, np.ndarray]  # name -> (S, C, n_snapshots, ...)
    snapshot_epochs: np.ndarray
    diverged: np.ndarray  # (S, C) bool: produced NaN/inf and stopped
    stopped_epoch: np.ndarray  # (S, C): the last epoch each member trained
    best_epoch: np.ndarray  # (S, C): epoch of the lowest monitored loss (or -1)
    failures: list[str]
    compile_seconds: float
    run_seconds: float


class _Keys(NamedTuple):
    init: Array
    order: Array
    dropout: Array
    augment: Array


class _State(NamedTuple):
    params: nn.Params
    opt_state: Any
    diverged: Array  # bool
    stopped: Array  # bool (early stopping)
    last_epoch: Array  # int: the last epoch with an applied update
    best_loss: Array
    best_epoch: Array
    best_params: nn.Params
    metrics: Array  # (records, sets, 2): NLL and accuracy
    snaps: dict[str, Array]  # name -> (snapshots, ...)


def _member_keys(seed: int) -> _Keys:
    return _Keys(*jax.random.split(jax.random.PRNGKey(seed), 4))


def _hyper(h: Mapping[str, Array]) -> Hyper:
    return Hyper(
        h["learning_rate"], h["alpha"], h["tau"], h["l2_strength"], h["l1_strength"]
    )


def _evaluate(params, spec: nn.MLPSpec, eval_sets) -> Array:
    """Return (sets, 2): mean NLL and accuracy of each eval set."""
    rows = []
    for x, y in eval_sets:
        logits = nn.mlp_apply(params, x, spec)  # (n, K)
        log_p = logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True)
        nll = -jnp.take_along_axis(log_p, y[:, None], axis=-1).mean()
        acc = (logits.argmax(-1) == y).mean()
        rows.append(jnp.stack([nll, acc]))
    return jnp.stack(rows)


def _build_program(
    spec: TrainSpec,
    augment_fn: AugmentFn | None,
    early: EarlyStopping | None,
    monitor: int,
    mask: dict[str, bool],
):
    """Return (init_fn, chunk_fn), both already vmapped over (seeds, configs)."""
    model, B = spec.model, spec.batch_size
    K = model.n_classes

    def init_member(hyper, keys, shapes):
        n_records, snap_shapes = shapes
        params = nn.init_mlp(keys.init, model)
        opt = build_optimizer(spec.optimizer, _hyper(hyper), mask)
        false, zero = jnp.zeros((), bool), jnp.zeros((), jnp.int32)
        return _State(
            params=params,
            opt_state=opt.init(params),
            diverged=false,
            stopped=false,
            last_epoch=zero,
            best_loss=jnp.array(jnp.inf, jnp.float32),
            best_epoch=zero - 1,
            best_params=params,
            metrics=jnp.zeros(n_records, jnp.float32),
            snaps={k: jnp.zeros(s, jnp.float32) for k, s in snap_shapes},
        )

    def chunk_member(state, hyper, keys, e0, x, y, eval_sets, record_at, snap_at):
        opt = build_optimizer(spec.optimizer, _hyper(hyper), mask)
        N = x.shape[0]
        n_steps = -(-N // B)  # ceil: the last partial batch is kept

        def step(carry, inp):
            params, opt_state = carry
            idx, w, t = inp  # (B,), (B,), global step number
            xb, yb = x[idx], y[idx]  # (B, D), (B,): shared by the seed's members
            if augment_fn is not None:
                shifted = augment_fn(jax.random.fold_in(keys.augment, t), xb)
                xb = jnp.where(hyper["augment"] > 0, shifted, xb)
            masks = None
            if model.dropout_layers:
                masks = nn.dropout_masks(keys.dropout, model, B, hyper["p_drop"], t)
            logits, cache = nn.mlp_forward(params, xb, model, masks)
            targets = nn.smooth_labels(
                yb, K, hyper["smoothing"], spec.smoothing_convention
            )
            _, delta = nn.LOSSES[spec.loss](logits, targets, w)
            grads = nn.mlp_backward(params, cache, delta, model)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        def train_epoch(state: _State, e):
            perm = jax.random.permutation(jax.random.fold_in(keys.order, e), N)
            pad = n_steps * B - N
            idx = jnp.concatenate([perm, jnp.zeros(pad, perm.dtype)])
            w = (jnp.arange(n_steps * B) < N).astype(jnp.float32)
            t = (e - 1) * n_steps + jnp.arange(n_steps)
            (params, opt_state), _ = jax.lax.scan(
                step,
                (state.params, state.opt_state),
                (idx.reshape(n_steps, B), w.reshape(n_steps, B), t),
            )
            # Checked once per epoch, not per step: a member that blew up keeps the
            # parameters it had at the start of the epoch (its last finite ones).
            finite = jnp.array(True)
            for leaf in jax.tree.leaves(params):
                finite &= jnp.isfinite(leaf).all()
            ok = ~(state.diverged | state.stopped)
            keep = ok & finite

            def pick(new, old):
                return jnp.where(keep, new, old)

            return state._replace(
                params=jax.tree.map(pick, params, state.params),
                opt_state=jax.tree.map(pick, opt_state, state.opt_state),
                diverged=state.diverged | (ok & ~finite),
                last_epoch=jnp.where(keep, e, state.last_epoch),
            )

        def record(state: _State, e):
            r = record_at[e]
            values = _evaluate(state.params, model, eval_sets)  # (sets, 2)
            state = state._replace(metrics=state.metrics.at[r].set(values))
            if early is None:
                return state
            active = ~(state.diverged | state.stopped)
            loss = values[monitor, 0]
            better = active & (loss < state.best_loss - early.min_delta)
            state = state._replace(
                best_loss=jnp.where(better, loss, state.best_loss),
                best_epoch=jnp.where(better, e, state.best_epoch),
                best_params=jax.tree.map(
                    lambda p, b: jnp.where(better, p, b),
                    state.params,
                    state.best_params,
                ),
            )
            patience_out = active & (e - state.best_epoch >= early.patience)
            return state._replace(stopped=state.stopped | patience_out)

        def snapshot(state: _State, e):
            k = snap_at[e]
            snaps = {n: s.at[k].set(state.params[n]) for n, s in state.snaps.items()}
            return state._replace(snaps=snaps)

        def epoch(state: _State, i):
            e = e0 + i
            in_range = (e >= 1) & (e <= spec.epochs)
            state = jax.lax.cond(in_range, train_epoch, lambda s, e: s, state, e)
            state = jax.lax.cond(record_at[e] >= 0, record, lambda s, e: s, state, e)
            state = jax.lax.cond(snap_at[e] >= 0, snapshot, lambda s, e: s, state, e)
            return state, None

        state, _ = jax.lax.scan(epoch, state, jnp.arange(spec.chunk))
        return state

    # Inner axis: configs (hyper varies; keys and data shared). Outer: seeds.
    init_c = jax.vmap(init_member, in_axes=(0, None, None))
    init_fn = jax.vmap(init_c, in_axes=(None, 0, None))
    chunk_c = jax.vmap(chunk_member, in_axes=(0, 0, None) + (None,) * 6)
    chunk_fn = jax.vmap(chunk_c, in_axes=(0, None, 0) + (None,) * 6)
    return init_fn, chunk_fn


_PROGRAMS: dict[Any, Any] = {}


def _compiled(key, fn, args):
    """Return fn compiled for args' shapes, cached across calls; and compile time."""
    shapes = jax.tree.map(lambda a: (jnp.shape(a), jnp.result_type(a)), args)
    full_key = (key, jax.tree.structure(args), tuple(jax.tree.leaves(shapes)))
    if full_key in _PROGRAMS:
        return _PROGRAMS[full_key], 0.0
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    _PROGRAMS[full_key] = compiled
    return compiled, time.perf_counter() - start


def log_spaced_epochs(epochs: int, n: int) -> np.ndarray:
    """Return about n distinct epochs from 0 to epochs, log-spaced (0 included)."""
    if n < 2:
        raise ValueError(f"n must be >= 2 (first and last epoch), got {n}")
    points = np.unique(np.round(np.geomspace(1, epochs, n - 1)).astype(int))
    return np.concatenate([[0], points])


def _schedule(epochs: int, at: int | Sequence[int], what: str) -> np.ndarray:
    if isinstance(at, int | np.integer):
        if at < 1:
            raise ValueError(f"{what} every k epochs needs k >= 1, got {at}")
        points = np.arange(0, epochs + 1, at)
        return np.unique(np.concatenate([points, [epochs]]))
    points = np.unique(np.asarray(at, dtype=int))
    if points.size and (points.min() < 0 or points.max() > epochs):
        raise ValueError(
            f"{what} epochs must lie in [0, {epochs}], got {points.min()}..."
            f"{points.max()} — epoch 0 is the initial model"
        )
    return points


def _index_table(points: np.ndarray, length: int) -> np.ndarray:
    table = np.full(length, -1, np.int32)
    table[points] = np.arange(len(points), dtype=np.int32)
    return table


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
) -> TrainResult:
    """Train every member of the ensemble on (x, y); return arrays per member.

    eval_sets: name -> (x, y), evaluated (NLL, accuracy) at the ``record`` epochs
    (every k epochs, or an explicit list; epoch 0 and the last are always included
    for an int). ``progress(done_epochs, total_epochs)`` is called between chunks.
    """
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
    if augment_fn is None and (ensemble.values["augment"] > 0).any():
        raise ValueError("some members have augment=1 but augment_fn is None")
    unknown = set(snapshot_params) - {
        f"{p}{l}" for l in range(1, model.depth + 1) for p in "Wb"
    }
    if unknown:
        raise ValueError(
            f"snapshot_params {sorted(unknown)} are not parameters of this MLP"
            f" (W1..W{model.depth}, b1..b{model.depth})"
        )

    E, L = spec.epochs, spec.chunk
    n_chunks = math.ceil((E + 1) / L)
    records = _schedule(E, record, "record")
    snaps_at = _schedule(E, snapshot_epochs, "snapshot") if snapshot_params else []
    snaps_at = np.asarray(snaps_at, int)
    record_at = jnp.asarray(_index_table(records, n_chunks * L))
    snap_at = jnp.asarray(_index_table(snaps_at, n_chunks * L))

    # Shapes only: eval_shape traces init_mlp without running or compiling it.
    probe = jax.eval_shape(partial(nn.init_mlp, spec=model), jax.random.PRNGKey(0))
    mask = penalty_mask(probe, spec.optimizer.penalize_biases)
    init_fn, chunk_fn = _build_program(spec, augment_fn, early_stopping, monitor, mask)
    hyper = {k: jnp.asarray(v) for k, v in ensemble.values.items()}
    snap_shapes = {n: (len(snaps_at),) + probe[n].shape for n in snapshot_params}
    shapes = ((len(records), len(sets), 2), tuple(snap_shapes.items()))
    seeds = jnp.asarray(ensemble.seeds, jnp.uint32)
    static = (spec, augment_fn, early_stopping, monitor, tuple(mask.items()))

    def start_state(hyper, seeds):
        keys = jax.vmap(_member_keys)(seeds)
        return init_fn(hyper, keys, shapes), keys

    init_program, init_s = _compiled(("init", static, shapes), start_state,
                                     (hyper, seeds))  # fmt: skip
    state, keys = init_program(hyper, seeds)
    args = (state, hyper, keys, jnp.int32(0), x, y, sets, record_at, snap_at)
    program, compile_s = _compiled(static, chunk_fn, args)
    compile_s += init_s

    failures: list[str] = []
    reported = np.zeros(ensemble.shape, bool)
    start = time.perf_counter()
    for c in range(n_chunks):
        state = program(state, hyper, keys, jnp.int32(c * L), x, y, sets, record_at,
                        snap_at)  # fmt: skip
        diverged = np.asarray(state.diverged)
        for s, cfg in zip(*np.nonzero(diverged & ~reported), strict=True):
            failures.append(
                f"member ({ensemble.describe(s, cfg)}) produced NaN/inf by epoch"
                f" {min((c + 1) * L - 1, E)}; stopped with its last finite parameters"
            )
        reported |= diverged
        if progress is not None:
            progress(min((c + 1) * L - 1, E), E)
        if (diverged | np.asarray(state.stopped)).all():
            break
    jax.block_until_ready(state)
    run_s = time.perf_counter() - start

    state = jax.tree.map(np.asarray, state)  # on the host from here on
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
    return TrainResult(
        params=dict(chosen),
        opt_state=jax.tree.map(np.asarray, state.opt_state),
        history={
            n: {"loss": metrics[..., j, 0], "accuracy": metrics[..., j, 1]}
            for j, n in enumerate(names)
        },
        record_epochs=records,
        snapshots={k: np.asarray(v) for k, v in state.snaps.items()},
        snapshot_epochs=snaps_at,
        diverged=np.asarray(state.diverged),
        stopped_epoch=np.asarray(state.last_epoch),
        best_epoch=np.asarray(state.best_epoch),
        failures=failures,
        compile_seconds=compile_s,
        run_seconds=run_s,
    )


def predict(spec: nn.MLPSpec, params: Mapping[str, Any], x) -> np.ndarray:
    """Return inference-mode logits (S, C, n, K) of every member on inputs x."""
    return np.asarray(_predict(spec, dict(params), jnp.asarray(x, jnp.float32)))


@partial(jax.jit, static_argnums=0)
def _predict(spec: nn.MLPSpec, params, x):
    apply = jax.vmap(jax.vmap(nn.mlp_apply, (0, None, None)), (0, None, None))
    return apply(params, x, spec)
