"""Stochastic weight averaging: evaluate the running mean of the weights of late epochs.

Izmailov, Podoprikhin, Garipov, Vetrov and Wilson, "Averaging Weights Leads to Wider
Optima and Better Generalization", UAI 2018 (arXiv:1803.05407). From epoch
``swa_start`` on, every ``swa_every`` epochs, the weights at the epoch's end join an
equal-weight running mean,

    w_SWA <- (n w_SWA + w) / (n + 1),   n <- n + 1

and evaluation (records, early stopping, the returned params) uses w_SWA once it has
a snapshot. Training itself goes on from the live weights. The paper also raises the
learning rate to a constant or cyclic one from swa_start; here the member's own
schedule runs on (set alpha = 0 for a constant rate). No batch-norm statistics to
recompute: reglab's networks have none. Anchor: ``torch.optim.swa_utils``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from reglab import nn
from reglab.regularizers.base import AveragingRule, Context, Member, Regularizer
from reglab.settings import Setting

Array = jax.Array


class SWAState(NamedTuple):
    """The running mean of the snapshots taken so far and their number."""

    mean: nn.Params
    count: Array  # int32


def swa_init(params: nn.Params) -> SWAState:
    """Return the empty average (no snapshot yet)."""
    return SWAState(jax.tree.map(jnp.zeros_like, params), jnp.zeros([], jnp.int32))


def takes_snapshot(epoch: Array, start: Array, every: Array) -> Array:
    """Return whether the epoch's end joins the average: start, start + k, ..."""
    # settings arrive as float32: whole epochs, a fraction rounded down
    epoch = jnp.asarray(epoch, jnp.int32)
    start = jnp.floor(start).astype(jnp.int32)
    every = jnp.maximum(jnp.floor(every).astype(jnp.int32), 1)  # 0 (default): 1
    return (start > 0) & (epoch >= start) & ((epoch - start) % every == 0)


def swa_update(state: SWAState, params: nn.Params, take: Array) -> SWAState:
    """Return the average with params joined where take is true."""
    count = state.count + take.astype(jnp.int32)
    # mean_n = mean_{n-1} + (w - mean_{n-1}) / n, where a snapshot is taken
    weight = jnp.where(take, 1.0 / jnp.maximum(count, 1).astype(jnp.float32), 0.0)
    mean = jax.tree.map(
        lambda m, w: jnp.where(take, m + weight.astype(m.dtype) * (w - m), m),
        state.mean,
        params,
    )
    return SWAState(mean, count)


def swa_params(state: SWAState, params: nn.Params) -> nn.Params:
    """Return the average once it holds a snapshot, else the live params."""
    return jax.tree.map(
        lambda m, w: jnp.where(state.count > 0, m, w), state.mean, params
    )


def _average(ctx: Context) -> AveragingRule | None:
    """Return the averaging rule, or None where no member averages."""
    if "swa_start" not in ctx.used:
        return None  # swa_every alone does nothing

    def update(state: SWAState, params: nn.Params, epoch: Array, member: Member):
        take = takes_snapshot(epoch, member.swa_start, member.swa_every)
        return swa_update(state, params, take)

    def evaluate(state: SWAState, params: nn.Params, member: Member) -> nn.Params:
        del member  # a member that never averages has count 0: its live params
        return swa_params(state, params)

    return AveragingRule(init=swa_init, update=update, evaluate=evaluate)


SWA = Regularizer(
    name="swa",
    settings=(
        Setting(
            "swa_start",
            0.0,
            "first epoch whose weights join the SWA average used at evaluation"
            " (whole epochs from 1); 0 turns SWA off",
            "use 0 to evaluate the last weights, e.g. 75% of the epochs to average",
            low=0.0,
        ),
        Setting(
            "swa_every",
            0.0,
            "epochs between SWA snapshots, whole epochs; 0 or 1 takes every epoch"
            " (does nothing while swa_start is 0)",
            "use 0 to average every epoch from swa_start",
            low=0.0,
        ),
    ),
    summary="stochastic weight averaging, evaluated at the mean of late epochs' "
    "weights (Izmailov et al., UAI 2018)",
    average=_average,
)
REGULARIZER = SWA  # the name the seam's built-ins loop registers
