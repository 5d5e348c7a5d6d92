"""The compiled array program behind ``reglab.train``: one chunk of epochs.

Shape of the program (one compiled function, called once per chunk of epochs):

    vmap over seeds  (batch order, init, dropout and augmentation keys differ)
      vmap over configs  (learning rate, strengths, p_drop, smoothing, augment differ;
                          the minibatch is shared, so layer 1 is one wide matmul)
        lax.scan over the chunk's epochs
          lax.scan over the epoch's minibatch steps
          evaluate / snapshot / early-stopping bookkeeping on scheduled epochs

Everything here is pure and traced; ``reglab.train`` validates inputs, drives the
chunks from the host and turns the state into a TrainResult.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from reglab import nn
from reglab.optim import Hyper, build_optimizer

if TYPE_CHECKING:
    from reglab.train import EarlyStopping, TrainSpec

Array = jax.Array
AugmentFn = Callable[[Array, Array], Array]


class Keys(NamedTuple):
    init: Array
    order: Array
    dropout: Array
    augment: Array


class State(NamedTuple):
    params: nn.Params
    opt_state: Any
    diverged: Array  # bool
    stopped: Array  # bool (early stopping)
    last_epoch: Array  # int: the last epoch with an applied update
    best_loss: Array
    best_epoch: Array
    best_params: nn.Params
    metrics: Array  # (records, sets, 2): NLL and accuracy
    running: Array  # (epochs + 1, 2): each epoch's mean minibatch loss and accuracy
    snaps: dict[str, Array]  # name -> (snapshots, ...)


def member_keys(seed: int) -> Keys:
    return Keys(*jax.random.split(jax.random.PRNGKey(seed), 4))


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
    return jnp.stack(rows) if rows else jnp.zeros((0, 2), jnp.float32)


def build_program(
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
        return State(
            params=params,
            opt_state=opt.init(params),
            diverged=false,
            stopped=false,
            last_epoch=zero,
            best_loss=jnp.array(jnp.inf, jnp.float32),
            best_epoch=zero - 1,
            best_params=params,
            metrics=jnp.zeros(n_records, jnp.float32),
            running=jnp.full((spec.epochs + 1, 2), jnp.nan, jnp.float32),
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
            loss, delta = nn.LOSSES[spec.loss](logits, targets, w)
            grads = nn.mlp_backward(params, cache, delta, model)
            updates, opt_state = opt.update(grads, opt_state, params)
            # sums over the batch's real rows: free running metrics for the epoch
            correct = ((logits.argmax(-1) == yb) * w).sum()
            seen = jnp.stack([loss * w.sum(), correct])
            return (optax.apply_updates(params, updates), opt_state), seen

        def train_epoch(state: State, e):
            perm = jax.random.permutation(jax.random.fold_in(keys.order, e), N)
            pad = n_steps * B - N
            idx = jnp.concatenate([perm, jnp.zeros(pad, perm.dtype)])
            w = (jnp.arange(n_steps * B) < N).astype(jnp.float32)
            t = (e - 1) * n_steps + jnp.arange(n_steps)
            (params, opt_state), seen = jax.lax.scan(
                step,
                (state.params, state.opt_state),
                (idx.reshape(n_steps, B), w.reshape(n_steps, B), t),
            )
            running = seen.sum(0) / N  # (2,): epoch means over every training row
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
                running=state.running.at[e].set(jnp.where(keep, running, jnp.nan)),
            )

        def record(state: State, e):
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

        def snapshot(state: State, e):
            k = snap_at[e]
            snaps = {n: s.at[k].set(state.params[n]) for n, s in state.snaps.items()}
            return state._replace(snaps=snaps)

        def epoch(state: State, i):
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


# Measured on the 2-core machine: for small networks XLA's per-member cost is flat up
# to about this many members side by side in one vmap, then grows (2-64-64-2: 14 us
# at 9, 17.5 at 18), so wider ensembles of small networks run as a sequential
# lax.map over groups. Large networks gain from wide matmuls (784-128-10 with 10
# members: 130 us as one group, 153 as two) and are not grouped.
GROUP_MEMBERS = 9
GROUP_BELOW_PARAMS = 32_768


def group_shape(
    n_seeds: int, n_configs: int, n_params: int = 0, n_devices: int = 1
) -> tuple[int, int, int]:
    """Return (groups, configs per group, devices used).

    Small members go in groups of <= GROUP_MEMBERS; the groups are dealt evenly to
    the devices (a config is never split, so at most n_configs devices are used).
    """
    d = max(1, min(n_devices, n_configs))
    if n_params >= GROUP_BELOW_PARAMS:
        groups = d
    else:
        per_group = max(1, GROUP_MEMBERS // n_seeds)
        groups = d * -(-n_configs // (per_group * d))
    return groups, -(-n_configs // groups), d  # balanced: the least padding


def to_groups(values: Array, groups: int, per_group: int) -> Array:
    """(C, ...) config values -> (G, Cg, ...), padding with copies of the last one."""
    pad = groups * per_group - values.shape[0]
    padded = jnp.concatenate([values, jnp.repeat(values[-1:], pad, axis=0)])
    return padded.reshape((groups, per_group) + values.shape[1:])


def from_groups(leaf, n_configs: int):
    """(G, S, Cg, ...) state leaf -> (S, C, ...), dropping the padding."""
    G, S, Cg = leaf.shape[:3]
    moved = leaf.transpose((1, 0, 2) + tuple(range(3, leaf.ndim)))
    return moved.reshape((S, G * Cg) + leaf.shape[3:])[:, :n_configs]


def grouped(init_fn, chunk_fn):
    """Return (init, chunk) over groups: state leaves are (G, S, Cg, ...)."""
    init_g = jax.vmap(init_fn, in_axes=(0, None, None))

    def chunk_g(state, hyper, keys, *rest):
        def one(group):
            state_g, hyper_g = group
            return chunk_fn(state_g, hyper_g, keys, *rest)

        return jax.lax.map(one, (state, hyper))  # groups one after another

    return init_g, chunk_g


def _mesh(devices) -> Mesh:
    return Mesh(np.array(devices, dtype=object), ("groups",))


def sharded(chunk_g, devices):
    """Return chunk_g run with the groups axis split across devices, in parallel."""
    groups, whole = PartitionSpec("groups"), PartitionSpec()
    # (state, hyper) lead with groups; keys, e0, data and schedules are replicated
    return jax.shard_map(
        chunk_g,
        mesh=_mesh(devices),
        in_specs=(groups, groups) + (whole,) * 7,
        out_specs=groups,
    )


def place(args, devices):
    """Put chunk arguments where ``sharded`` expects them: (state, hyper) split."""
    mesh = _mesh(devices)
    split = NamedSharding(mesh, PartitionSpec("groups"))
    copy = NamedSharding(mesh, PartitionSpec())
    state, hyper, *rest = args
    # also after every chunk: XLA hands empty leaves back replicated
    return (
        jax.device_put(state, split),
        jax.device_put(hyper, split),
        *jax.device_put(rest, copy),
    )


PROGRAMS: dict[Any, Any] = {}


def compiled(key, fn, args):
    """Return fn compiled for args' shapes, cached across calls; and compile time."""
    shapes = jax.tree.map(lambda a: (jnp.shape(a), jnp.result_type(a)), args)
    full_key = (key, jax.tree.structure(args), tuple(jax.tree.leaves(shapes)))
    if full_key in PROGRAMS:
        return PROGRAMS[full_key], 0.0
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    PROGRAMS[full_key] = compiled
    return compiled, time.perf_counter() - start
