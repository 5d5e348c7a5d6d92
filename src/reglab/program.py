"""The compiled array program behind ``reglab.train``: one chunk of epochs.

Shape of the program (one compiled function, called once per chunk of epochs):

    one program per device  (whole groups dealt to devices; the same one-device
                             program on each, dispatched side by side)
      lax.map over groups  (small networks: <= 9 members side by side)
        lax.scan over the chunk's epochs                          run_epoch
          lax.scan over the epoch's minibatch steps               train_epoch
            vmap over seeds  (batch order, init, regularizers' keys differ)
              vmap over configs  (learning rate, strengths, p_drop, smoothing, ...;
                                  the minibatch is shared: layer 1 is one matmul)
                                                                  step_member
          keep or drop the epoch (NaN), average, evaluate, snapshot, early stopping
                                              finish_epoch, record_member, snapshot

The member vmaps sit inside the step scan so that the scan's carry can hold W1 with
the configs in the middle, (S, D, Cg, H), the layout of that one wide matmul.

The program knows the places of a step (``reglab.regularizers.base``), never a
regularizer: a step is the batch hooks, the weight hooks, the masks, the forward and
backward with the loss terms, the step rules around that, and the optimizer's chain
(gradient rules, the base optimizer, update rules); after each epoch the averaging
rules. ``Program`` holds what is static; every function here is pure and traced.
``reglab.train`` validates inputs, drives the chunks from the host and turns the
state into a TrainResult.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from reglab import nn, regularizers
from reglab.regularizers.base import Context, Regularizer
from reglab.settings import Member
from reglab.specs import EarlyStopping, TrainSpec

Array = jax.Array


class Keys(NamedTuple):
    """A seed's keys: the trainer's streams and each regularizer's own."""

    init: Array
    order: Array
    dropout: Array  # legacy streams of built-ins (Regularizer.stream)
    augment: Array
    streams: dict[str, Array]  # regularizer name -> its key (those in use)


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
    average: dict[str, Any]  # averaging rule's name -> its state ({} when none)
    shown: nn.Params | None  # the params evaluation uses (None: params themselves)


@dataclass(frozen=True, eq=False)
class Program:
    """What is static about a program: its context and the hooks of the regularizers
    some member uses, each with the regularizer it came from, in their order."""

    ctx: Context
    early: EarlyStopping | None
    monitor: int  # the eval set early stopping watches
    regs: tuple[Regularizer, ...]  # in use (the optimizer's rules come from these)
    batch: tuple[tuple[Regularizer, Any], ...]
    weights: tuple[tuple[Regularizer, Any], ...]
    masks: tuple[tuple[Regularizer, Any], ...]
    loss: tuple[tuple[Regularizer, Any], ...]
    step: tuple[tuple[Regularizer, Any], ...]
    average: tuple[tuple[Regularizer, Any], ...]

    @property
    def spec(self) -> TrainSpec:
        """The train spec."""
        return self.ctx.spec

    @property
    def wide(self) -> bool:
        """Whether the members of a seed share the inputs (W1 then sits wide)."""
        return not any(reg.changes_inputs for reg, _ in self.batch)

    @property
    def stream_names(self) -> tuple[str, ...]:
        """The regularizers in use that draw from a key stream of their own."""
        return tuple(r.name for r in self.regs if r.stream is None)


def make(ctx: Context, early: EarlyStopping | None, monitor: int) -> Program:
    """Return the Program of ctx: the hooks of the regularizers some member uses."""
    regs = regularizers.active(ctx)

    def hooks(place: str) -> tuple:
        made = ((r, getattr(r, place)(ctx)) for r in regularizers.at(place, regs))
        return tuple((r, hook) for r, hook in made if hook is not None)

    places = ("batch", "weights", "masks", "loss", "step", "average")
    return Program(ctx, early, monitor, regs, *(hooks(p) for p in places))


def member_keys(seed: Array, names: tuple[str, ...] = ()) -> Keys:
    """Return a seed's keys; names: the regularizers with streams of their own."""
    root = jax.random.PRNGKey(seed)
    init, order, dropout, augment = jax.random.split(root, 4)
    streams = {
        n: jax.random.fold_in(root, regularizers.stream_constant(n)) for n in names
    }
    return Keys(init, order, dropout, augment, streams)


def key_of(keys: Keys, reg: Regularizer) -> Array:
    """Return reg's key: its legacy stream, or its own."""
    return getattr(keys, reg.stream) if reg.stream else keys.streams[reg.name]


def optimizer(prog: Program, member: Member, keys: Keys):
    """Return the member's optimizer: the base chain with the regularizers' rules."""
    return regularizers.optimizer(prog.ctx, member, prog.regs, partial(key_of, keys))


def evaluated(prog: Program, average: dict, params: nn.Params, member: Member):
    """Return the params evaluation uses: the averaging rules' (or params)."""
    for reg, rule in prog.average:
        params = rule.evaluate(average[reg.name], params, member)
    return params


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


def init_member(prog: Program, member: Member, keys: Keys, shapes) -> State:
    """Return one member's State at epoch 0."""
    n_records, snap_shapes = shapes
    params = nn.init_mlp(keys.init, prog.ctx.model)
    average = {reg.name: rule.init(params) for reg, rule in prog.average}
    false, zero = jnp.zeros((), bool), jnp.zeros((), jnp.int32)
    return State(
        params=params,
        opt_state=optimizer(prog, member, keys).init(params),
        diverged=false,
        stopped=false,
        last_epoch=zero,
        best_loss=jnp.array(jnp.inf, jnp.float32),
        best_epoch=zero - 1,
        best_params=params,
        metrics=jnp.zeros(n_records, jnp.float32),
        running=jnp.full((prog.spec.epochs + 1, 2), jnp.nan, jnp.float32),
        snaps={k: jnp.zeros(s, jnp.float32) for k, s in snap_shapes},
        average=average,
        shown=evaluated(prog, average, params, member) if prog.average else None,
    )


def draw_masks(prog: Program, member: Member, keys: Keys, t, batch_size: int):
    """Return the step's masks, layer -> mask (the hooks' product), or None."""
    if not prog.masks:
        return None
    masks: dict[int, Array] = {}
    for reg, hook in prog.masks:
        for layer, m in hook(key_of(keys, reg), t, batch_size, member).items():
            masks[layer] = masks[layer] * m if layer in masks else m
    return masks


def loss_and_grads(prog: Program, member, keys, t, xb, targets, w, masks, params):
    """Return (loss, grads, logits) at params: the weight hooks, the forward with
    masks, the loss and its terms, the explicit backward (the step rules' grad_fn)."""
    model = prog.ctx.model
    seen = params
    for reg, hook in prog.weights:
        seen = hook(key_of(keys, reg), t, seen, member)
    logits, cache = nn.mlp_forward(seen, xb, model, masks)
    loss, delta = nn.LOSSES[prog.spec.loss](logits, targets, w)
    for _, term in prog.loss:
        extra, extra_delta = term(logits, targets, w, member)
        loss, delta = loss + extra, delta + extra_delta
    grads = nn.mlp_backward(seen, cache, delta, model)
    return loss, grads, logits


def stepped(rule, grad_fn, key: Array, t, member: Member):
    """Return grad_fn as a step rule changes it: params -> (loss, grads, logits)."""

    def at(params):
        return rule(grad_fn, params, key, t, member)

    return at


def step_member(
    prog: Program, params, opt_state, member: Member, keys, x, y, idx, w, t
):
    """One minibatch update of one member; returns its running-metric sums."""
    opt = optimizer(prog, member, keys)
    xb, yb = x[idx], y[idx]  # (B, D), (B,): shared by the seed's members
    targets = jax.nn.one_hot(yb, prog.ctx.model.n_classes, dtype=jnp.float32)  # (B, K)
    for reg, hook in prog.batch:  # the data-side regularizers
        xb, targets = hook(key_of(keys, reg), t, xb, targets, member)
    masks = draw_masks(prog, member, keys, t, xb.shape[0])
    grad_fn = partial(loss_and_grads, prog, member, keys, t, xb, targets, w, masks)
    for reg, rule in prog.step:  # each rule decides where the gradient is taken
        grad_fn = stepped(rule, grad_fn, key_of(keys, reg), t, member)
    loss, grads, logits = grad_fn(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    # sums over the batch's real rows: free running metrics for the epoch
    correct = ((logits.argmax(-1) == yb) * w).sum()
    seen = jnp.stack([loss * w.sum(), correct])
    return optax.apply_updates(params, updates), opt_state, seen


def finish_epoch(prog: Program, state: State, trained, member: Member, e) -> State:
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

    state = state._replace(
        params=jax.tree.map(pick, params, state.params),
        opt_state=jax.tree.map(pick, opt_state, state.opt_state),
        diverged=state.diverged | (ok & ~finite),
        last_epoch=jnp.where(keep, e, state.last_epoch),
        running=state.running.at[e].set(jnp.where(keep, running, jnp.nan)),
    )
    if not prog.average:
        return state
    average = {
        reg.name: rule.update(state.average[reg.name], state.params, e, member)
        for reg, rule in prog.average
    }
    average = jax.tree.map(pick, average, state.average)
    shown = evaluated(prog, average, state.params, member)
    return state._replace(average=average, shown=shown)


def record_member(prog: Program, state: State, member: Member, e, r, eval_sets):
    """Evaluate a member at a record epoch; early-stopping bookkeeping."""
    params = evaluated(prog, state.average, state.params, member)
    values = _evaluate(params, prog.ctx.model, eval_sets)  # (sets, 2)
    state = state._replace(metrics=state.metrics.at[r].set(values))
    early = prog.early
    if early is None:
        return state
    active = ~(state.diverged | state.stopped)
    loss = values[prog.monitor, 0]
    better = active & (loss < state.best_loss - early.min_delta)
    state = state._replace(
        best_loss=jnp.where(better, loss, state.best_loss),
        best_epoch=jnp.where(better, e, state.best_epoch),
        best_params=jax.tree.map(
            lambda p, b: jnp.where(better, p, b), params, state.best_params
        ),
    )
    patience_out = active & (e - state.best_epoch >= early.patience)
    return state._replace(stopped=state.stopped | patience_out)


def snapshot_member(state: State, k) -> State:
    """Store a snapshot of the member's chosen parameters."""
    snaps = {n: s.at[k].set(state.params[n]) for n, s in state.snaps.items()}
    return state._replace(snaps=snaps)


def over_members(fn, n_shared: int):
    """Return fn over the group's (seeds, configs), both axes first; its last
    n_shared arguments are the same for every member."""

    def over(*args):
        axes = (0,) * (len(args) - n_shared) + (None,) * n_shared
        return jax.vmap(jax.vmap(fn, axes), axes)(*args)

    return over


def per_member(hyper: Member, n_seeds: int) -> Member:
    """Return the configs' settings (Cg,) repeated for each seed: (S, Cg)."""
    return jax.tree.map(lambda v: jnp.broadcast_to(v, (n_seeds,) + v.shape), hyper)


def epoch_order(key: Array, e, n: int, batch_size: int) -> Array:
    """Return (n_steps, B): a seed's shuffled pass of epoch e, padded."""
    n_steps = -(-n // batch_size)  # ceil: the last partial batch is kept
    perm = jax.random.permutation(jax.random.fold_in(key, e), n)
    pad = jnp.zeros(n_steps * batch_size - n, perm.dtype)
    return jnp.concatenate([perm, pad]).reshape(n_steps, batch_size)


def train_epoch(prog: Program, hyper: Member, keys: Keys, x, y, state: State, e):
    """Run one epoch's minibatch steps for a group: state leaves are (S, Cg, ...)."""
    N, B = x.shape[0], prog.spec.batch_size
    n_steps = -(-N // B)
    # While the steps run, W1 (and its optimizer moments) sit as (S, D, Cg, H):
    # when the configs of a seed share the minibatch, layer 1 of all of them is
    # then one (B, D) @ (D, Cg*H) matmul with no per-step transpose of W1.
    wide = prog.wide

    def axis_of(path, _):
        return 1 if wide and path[-1] == jax.tree_util.DictKey("W1") else 0

    order = partial(epoch_order, e=e, n=N, batch_size=B)
    idx = jax.vmap(order)(keys.order).transpose(1, 0, 2)  # (n_steps, S, B)
    w = (jnp.arange(n_steps * B) < N).astype(jnp.float32).reshape(n_steps, B)
    t = (e - 1) * n_steps + jnp.arange(n_steps)
    trained = (state.params, state.opt_state)
    axes = jax.tree_util.tree_map_with_path(axis_of, trained)
    p_axes, o_axes = axes
    # (S, Cg, D, H) -> (S, D, Cg, H) for W1-like leaves; back after the steps
    carry = jax.tree.map(lambda a, ax: jnp.moveaxis(a, 1, ax + 1), trained, axes)
    per_config = jax.vmap(
        partial(step_member, prog),
        in_axes=(p_axes, o_axes, 0, None, None, None, None, None, None),
        out_axes=(p_axes, o_axes, 0),
    )
    over_seeds = jax.vmap(
        per_config, in_axes=(0, 0, None, 0, None, None, 0, None, None)
    )

    def step(carry, inp):
        params, opt_state = carry
        idx_s, w, t = inp
        params, opt_state, seen = over_seeds(
            params, opt_state, hyper, keys, x, y, idx_s, w, t
        )
        return (params, opt_state), seen  # seen: (S, Cg, 2)

    carry, seen = jax.lax.scan(step, carry, (idx, w, t))
    params, opt_state = jax.tree.map(
        lambda a, ax: jnp.moveaxis(a, ax + 1, 1), carry, axes
    )
    running = seen.sum(0) / N  # (S, Cg, 2): epoch means over every row
    members = per_member(hyper, keys.init.shape[0])
    finish = over_members(partial(finish_epoch, prog), 1)
    return finish(state, (params, opt_state, running), members, e)


def run_epoch(prog: Program, hyper, keys, x, y, eval_sets, record_at, snap_at, e0):
    """Return the scan body of a chunk: train epoch e0 + i, record, snapshot."""

    def epoch(state: State, i):
        e = e0 + i
        in_range = (e >= 1) & (e <= prog.spec.epochs)
        train = partial(train_epoch, prog, hyper, keys, x, y)
        state = jax.lax.cond(in_range, train, lambda s, e: s, state, e)
        r, k = record_at[e], snap_at[e]
        members = per_member(hyper, keys.init.shape[0])
        record = over_members(partial(record_member, prog), 3)
        state = jax.lax.cond(
            r >= 0, lambda s: record(s, members, e, r, eval_sets), lambda s: s, state
        )
        snapshot = over_members(snapshot_member, 1)
        state = jax.lax.cond(k >= 0, lambda s: snapshot(s, k), lambda s: s, state)
        return state, None

    return epoch


def chunk_group(prog: Program, state, hyper, keys, e0, x, y, eval_sets, record_at,
                snap_at):  # fmt: skip
    """Run one chunk of epochs for a group: state leaves are (S, Cg, ...)."""
    epoch = run_epoch(prog, hyper, keys, x, y, eval_sets, record_at, snap_at, e0)
    state, _ = jax.lax.scan(epoch, state, jnp.arange(prog.spec.chunk))
    return state


def build_program(prog: Program):
    """Return (init_fn, chunk_fn) for one group: state leaves are (S, Cg, ...)."""
    # Inner axis: configs (hyper varies; keys and data shared). Outer: seeds.
    init_c = jax.vmap(partial(init_member, prog), in_axes=(0, None, None))
    init_fn = jax.vmap(init_c, in_axes=(None, 0, None))
    return init_fn, partial(chunk_group, prog)


def grouped(init_fn, chunk_fn):
    """Return (init, chunk) over groups: state leaves are (G, S, Cg, ...)."""
    init_g = jax.vmap(init_fn, in_axes=(0, None, None))

    def chunk_g(state, hyper, keys, *rest):
        def one(group):
            state_g, hyper_g = group
            return chunk_fn(state_g, hyper_g, keys, *rest)

        return jax.lax.map(one, (state, hyper))  # groups one after another

    return init_g, chunk_g
