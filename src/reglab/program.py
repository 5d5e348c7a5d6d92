"""The compiled array program behind ``reglab.train``: one chunk of epochs.

Shape of the program (one compiled function, called once per chunk of epochs):

    one program per device  (whole groups dealt to devices; the same one-device
                             program on each, dispatched side by side)
      lax.map over groups  (small networks: <= 9 members side by side)
        lax.scan over the chunk's epochs
          lax.scan over the epoch's minibatch steps
            vmap over seeds  (batch order, init, dropout and augmentation keys differ)
              vmap over configs  (learning rate, strengths, p_drop, smoothing, ...;
                                  the minibatch is shared: layer 1 is one matmul)
          evaluate / snapshot / early-stopping bookkeeping on scheduled epochs

The member vmaps sit inside the step scan so that the scan's carry can hold W1 with
the configs in the middle, (S, D, Cg, H), the layout of that one wide matmul.

Everything here is pure and traced; ``reglab.train`` validates inputs, drives the
chunks from the host and turns the state into a TrainResult.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from reglab import nn
from reglab.data import batch
from reglab.data.augment import augmentation
from reglab.data.targets import label_smoothing
from reglab.optim import build_optimizer
from reglab.settings import Member
from reglab.specs import AugmentFn, EarlyStopping, TrainSpec

Array = jax.Array


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


def _evaluate(params, spec: nn.MLPSpec, eval_sets) -> Array:
    """Return (sets, 2): mean NLL and accuracy of each eval set."""
    rows = []
    for x, y in eval_sets:
        logits = nn.mlp_apply(params, x, spec)  # (n, K)
        log_p, _ = nn.log_softmax(logits)  # keeps a fitted set's tiny NLL (not -0.0)
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
    used: Collection[str],
):
    """Return (init_fn, chunk_fn) for one group: state leaves are (S, Cg, ...).

    used: the per-member settings the program applies (``reglab.settings.in_use``);
    the work of any other is left out (augmentation, smoothing, dropout masks and the
    optimizer's transformations, ``optim.build_optimizer``).
    """
    model, B = spec.model, spec.batch_size
    K = model.n_classes
    augmenting = augment_fn is not None and "augment" in used
    hooks = [augmentation(augment_fn)] if augmenting else []
    if "smoothing" in used:
        hooks.append(label_smoothing(spec.smoothing_convention))
    on_batch = batch.compose(*hooks)
    dropping = bool(model.dropout_layers) and "p_drop" in used
    per_batch_members = model.dropout_mode == "per_example" and (
        "dropout_per_batch" in used
    )

    def init_member(hyper: Member, keys, shapes):
        n_records, snap_shapes = shapes
        params = nn.init_mlp(keys.init, model)
        opt = build_optimizer(spec.optimizer, hyper, mask, used)
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

    def step_member(params, opt_state, hyper: Member, keys, x, y, idx, w, t):
        """One minibatch update of one member; returns its running-metric sums."""
        opt = build_optimizer(spec.optimizer, hyper, mask, used)
        xb, yb = x[idx], y[idx]  # (B, D), (B,): shared by the seed's members
        targets = jax.nn.one_hot(yb, K, dtype=jnp.float32)  # (B, K)
        # the data-side regularizers: augmentation, label smoothing (reglab.data.batch)
        xb, targets = on_batch(jax.random.fold_in(keys.augment, t), xb, targets, hyper)
        masks = None
        if dropping:
            masks = nn.dropout_masks(keys.dropout, model, B, hyper.p_drop, t)
            if per_batch_members:
                # row 0 of a per-example draw is exactly the per-batch draw (the hash
                # is indexed by flat position), so such members get the post's masks
                per_batch = hyper.dropout_per_batch
                masks = {l: jnp.where(per_batch, m[:1], m) for l, m in masks.items()}
        logits, cache = nn.mlp_forward(params, xb, model, masks)
        loss, delta = nn.LOSSES[spec.loss](logits, targets, w)
        grads = nn.mlp_backward(params, cache, delta, model)
        updates, opt_state = opt.update(grads, opt_state, params)
        # sums over the batch's real rows: free running metrics for the epoch
        correct = ((logits.argmax(-1) == yb) * w).sum()
        seen = jnp.stack([loss * w.sum(), correct])
        return optax.apply_updates(params, updates), opt_state, seen

    def finish_epoch(state: State, trained, e):
        """Keep a member's epoch unless it turned non-finite or it had stopped."""
        params, opt_state, running = trained
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

    def record_member(state: State, e, r, eval_sets):
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
                lambda p, b: jnp.where(better, p, b), state.params, state.best_params
            ),
        )
        patience_out = active & (e - state.best_epoch >= early.patience)
        return state._replace(stopped=state.stopped | patience_out)

    def snapshot_member(state: State, k):
        snaps = {n: s.at[k].set(state.params[n]) for n, s in state.snaps.items()}
        return state._replace(snaps=snaps)

    def over_members(fn, n_shared: int):
        """Return fn over the group's (seeds, configs), both axes first; its last
        n_shared arguments are the same for every member."""

        def over(*args):
            axes = (0,) * (len(args) - n_shared) + (None,) * n_shared
            return jax.vmap(jax.vmap(fn, axes), axes)(*args)

        return over

    def chunk_group(state, hyper, keys, e0, x, y, eval_sets, record_at, snap_at):
        """Run one chunk of epochs for a group: state leaves are (S, Cg, ...)."""
        N = x.shape[0]
        n_steps = -(-N // B)  # ceil: the last partial batch is kept
        # While the steps run, W1 (and its optimizer moments) sit as (S, D, Cg, H):
        # when the configs of a seed share the minibatch, layer 1 of all of them is
        # then one (B, D) @ (D, Cg*H) matmul with no per-step transpose of W1.
        wide = not augmenting

        def axis_of(path, _):
            return 1 if wide and path[-1] == jax.tree_util.DictKey("W1") else 0

        def train_epoch(state: State, e):
            def order(key):  # (n_steps, B): this seed's shuffled pass, padded
                perm = jax.random.permutation(jax.random.fold_in(key, e), N)
                pad = jnp.zeros(n_steps * B - N, perm.dtype)
                return jnp.concatenate([perm, pad]).reshape(n_steps, B)

            idx = jax.vmap(order)(keys.order).transpose(1, 0, 2)  # (n_steps, S, B)
            w = (jnp.arange(n_steps * B) < N).astype(jnp.float32).reshape(n_steps, B)
            t = (e - 1) * n_steps + jnp.arange(n_steps)
            trained = (state.params, state.opt_state)
            axes = jax.tree_util.tree_map_with_path(axis_of, trained)
            p_axes, o_axes = axes
            # (S, Cg, D, H) -> (S, D, Cg, H) for W1-like leaves; back after the steps
            carry = jax.tree.map(
                lambda a, ax: jnp.moveaxis(a, 1, ax + 1), trained, axes
            )
            per_config = jax.vmap(
                step_member,
                in_axes=(p_axes, o_axes, 0, None, None, None, None, None, None),
                out_axes=(p_axes, o_axes, 0),
            )
            per_member = jax.vmap(
                per_config, in_axes=(0, 0, None, 0, None, None, 0, None, None)
            )

            def step(carry, inp):
                params, opt_state = carry
                idx_s, w, t = inp
                params, opt_state, seen = per_member(
                    params, opt_state, hyper, keys, x, y, idx_s, w, t
                )
                return (params, opt_state), seen  # seen: (S, Cg, 2)

            carry, seen = jax.lax.scan(step, carry, (idx, w, t))
            params, opt_state = jax.tree.map(
                lambda a, ax: jnp.moveaxis(a, ax + 1, 1), carry, axes
            )
            running = seen.sum(0) / N  # (S, Cg, 2): epoch means over every row
            trained = (params, opt_state, running)
            return over_members(finish_epoch, 1)(state, trained, e)

        def epoch(state: State, i):
            e = e0 + i
            in_range = (e >= 1) & (e <= spec.epochs)
            state = jax.lax.cond(in_range, train_epoch, lambda s, e: s, state, e)
            r, k = record_at[e], snap_at[e]
            record = over_members(record_member, 3)
            state = jax.lax.cond(
                r >= 0, lambda s: record(s, e, r, eval_sets), lambda s: s, state
            )
            snapshot = over_members(snapshot_member, 1)
            state = jax.lax.cond(k >= 0, lambda s: snapshot(s, k), lambda s: s, state)
            return state, None

        state, _ = jax.lax.scan(epoch, state, jnp.arange(spec.chunk))
        return state

    # Inner axis: configs (hyper varies; keys and data shared). Outer: seeds.
    init_c = jax.vmap(init_member, in_axes=(0, None, None))
    init_fn = jax.vmap(init_c, in_axes=(None, 0, None))
    return init_fn, chunk_group


def grouped(init_fn, chunk_fn):
    """Return (init, chunk) over groups: state leaves are (G, S, Cg, ...)."""
    init_g = jax.vmap(init_fn, in_axes=(0, None, None))

    def chunk_g(state, hyper, keys, *rest):
        def one(group):
            state_g, hyper_g = group
            return chunk_fn(state_g, hyper_g, keys, *rest)

        return jax.lax.map(one, (state, hyper))  # groups one after another

    return init_g, chunk_g
