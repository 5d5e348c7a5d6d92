"""The regularizer seam: one object per regularizer, acting at named places of a step.

A training step meets the places in this order; a regularizer fills any of them (each
field is optional, ``None`` when it does not act there):

    batch      (ctx) -> BatchHook | None       the minibatch: augmentation, label
                                               smoothing, mixup, input noise
    weights    (ctx) -> WeightHook | None      the weights the step's forward and
                                               backward see (training): weight noise
    masks      (ctx) -> MaskHook | None        multiplicative masks on the activations
                                               of the model's dropout layers: dropout
    loss       (ctx) -> LossTerm | None        a term added to the loss, with its
                                               explicit gradient: confidence penalty
    step       (ctx) -> StepRule | None        where the gradient is taken (a second
                                               forward/backward): SAM
    gradient   (ctx, member, key, step_size)   optax transformation of the raw gradient,
               -> GradientTransformation|None  before the optimizer scales it: coupled
                                               L2/L1, gradient noise
    update     (ctx, member, key, step_size)   optax transformation of the scaled update
               -> GradientTransformation|None  (after -lr_t): decoupled and proximal
                                               decay, max-norm (ordered by ``order``)
    average    (ctx) -> AveragingRule | None   state of its own, updated after each
                                               epoch, used at evaluation: SWA

Every factory takes the static ``Context`` of the program and returns ``None`` when
none of its settings is in ``ctx.used`` (no member moves them off their default): the
program then leaves its work out, and its numbers are bit for bit those with the work
in. Everything a factory returns is a pure function of traced values: ``member`` holds
each per-member setting as a traced scalar (``member.mixup``), so a strength grid over
seeds is one compiled program and a playground slider never recompiles.

Randomness: each regularizer draws from its own key stream, ``key`` below, a constant
per seed (members of one seed share it: common random numbers). ``t`` is the global
minibatch step (int32, from 0); a hook folds it in (``jax.random.fold_in(key, t)``).
The stream is derived from the seed and the regularizer's ``name`` (``stream`` names
one of the trainer's legacy streams instead, for the built-ins whose numbers predate
the seam), so adding a regularizer never changes another's draws.

Checks, before anything compiles (optional): ``validate(values)`` sees the ensemble's
per-member values (name -> (configs,) array) and ``check(ctx, values)`` the program
they train in; each raises ValueError naming the bad value and the fix.

Settings: ``settings`` are rows of the one table (``reglab.settings.Setting``); each
default must do nothing (a strength of 0, a flag off). Registering the regularizer
puts them in the table, so ``--set``/``--grid``, TOML, ``reglab list``, the store's
configs, the playground's controls and the report all know them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from reglab import nn
from reglab.settings import Setting

Array = jax.Array
Member = Any  # the member's settings: one traced scalar per setting, by attribute


@dataclass(frozen=True)
class Context:
    """What a regularizer may know statically about the program it is built into."""

    model: nn.MLPSpec
    spec: Any  # reglab.specs.TrainSpec: optimizer, epochs, batch size, loss, ...
    used: frozenset[str]  # the settings some member moves off its default
    mask: Mapping[str, bool]  # parameter name -> penalized (W*, and b* by default)
    steps_per_epoch: int
    augment_fn: Callable[[Array, Array], Array] | None = None  # the trainer's


# (key, t, inputs (B, D), targets (B, K), member) -> (inputs, targets)
BatchHook = Callable[[Array, Array, Array, Array, Member], tuple[Array, Array]]
# (key, t, params, member) -> params the step's forward and backward use; the gradient
# is then applied to the clean params
WeightHook = Callable[[Array, Array, nn.Params, Member], nn.Params]
# (key, t, batch_size, member) -> {layer index: mask (B, width) or (1, width)}; a
# mask multiplies the layer's activations in forward and its delta in backward
MaskHook = Callable[[Array, Array, int, Member], dict[int, Array]]
# (logits (B, K), targets (B, K), weights (B,), member) -> (loss, dloss/dlogits),
# weights marking real rows (the loss is their weighted mean)
LossTerm = Callable[[Array, Array, Array, Member], tuple[Array, Array]]
# grad_fn(params) -> (loss, grads, logits): the step's loss, its explicit-backward
# gradient and logits on this step's batch, with the batch, weight and mask hooks
# applied. A step rule, called (grad_fn, params, key, t, member), returns the same
# triple, its grads taken where it chooses; the update is applied to params.
GradFn = Callable[[nn.Params], tuple[Array, nn.Params, Array]]
StepRule = Callable[[GradFn, nn.Params, Array, Array, Member], tuple[Array, Any, Array]]
# (ctx, member, key, step_size) -> an optax transformation, a sequence of them (each
# a link of the optimizer's chain, in order), or None
GradientRule = Callable[
    [Context, Member, Array, Callable[[Array], Array]],
    optax.GradientTransformation | Sequence[optax.GradientTransformation] | None,
]
# values: setting name -> (configs,) array of the ensemble's members
Values = Mapping[str, np.ndarray]


class AveragingRule(NamedTuple):
    """Extra state updated after each epoch and used in place of the params at
    evaluation (records, early stopping, the returned params)."""

    init: Callable[[nn.Params], Any]  # params -> state
    update: Callable[[Any, nn.Params, Array, Member], Any]  # (state, params, epoch, m)
    evaluate: Callable[[Any, nn.Params, Member], nn.Params]  # (state, params, m)


@dataclass(frozen=True)
class Regularizer:
    """One regularizer: its rows of the settings table and the places it acts."""

    name: str  # e.g. "mixup"; also the name of its key stream
    settings: tuple[Setting, ...]
    summary: str  # one line for ``reglab list`` and the docs: what it is, its paper
    batch: Callable[[Context], BatchHook | None] | None = None
    weights: Callable[[Context], WeightHook | None] | None = None
    masks: Callable[[Context], MaskHook | None] | None = None
    loss: Callable[[Context], LossTerm | None] | None = None
    step: Callable[[Context], StepRule | None] | None = None
    gradient: GradientRule | None = None
    update: GradientRule | None = None
    average: Callable[[Context], AveragingRule | None] | None = None
    order: int = 50  # position among the others at the same place (low first)
    stream: str | None = None  # a legacy key stream of the trainer ("dropout", ...)
    validate: Callable[[Values], None] | None = None  # per-member values alone
    check: Callable[[Context, Values], None] | None = None  # against the program
    # whether its batch hook may change the inputs (then each member sees its own
    # batch); False (targets only) keeps the shared batch and its one wide matmul
    changes_inputs: bool = True

    def in_use(self, ctx: Context) -> bool:
        """Return whether some member sets one of this regularizer's settings."""
        return any(s.name in ctx.used for s in self.settings)
