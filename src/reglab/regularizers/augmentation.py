"""Data augmentation: the trainer's input transformation, on for chosen members.

The transformation is the trainer's ``augment_fn`` (e.g. ``reglab.data.post_shift``),
drawn from its legacy "augment" key stream; ``augment`` turns it on per member, a
traced flag, so augmented and plain members share one program.
"""

from __future__ import annotations

import jax

from reglab.data.augment import augmentation
from reglab.regularizers.base import Context, Regularizer, Values
from reglab.settings import Setting


def check(ctx: Context, values: Values) -> None:
    """Refuse augment=True without a transformation to apply."""
    if ctx.augment_fn is None and values["augment"].any():
        raise ValueError(
            "some members have augment=True but augment_fn is None — pass"
            " augment_fn (e.g. reglab.data.post_shift) or set augment=False"
        )


def batch(ctx: Context):
    """Return the batch hook augmenting the inputs of members with augment on."""
    if ctx.augment_fn is None:
        return None
    augment = augmentation(ctx.augment_fn)

    def hook(key, t, inputs, targets, member):
        return augment(jax.random.fold_in(key, t), inputs, targets, member)

    return hook


REGULARIZER = Regularizer(
    name="augmentation",
    settings=(
        Setting(
            "augment",
            False,
            "apply the trainer's augmentation to this member",
            "use False for plain inputs",
            flag=True,
        ),
    ),  # fmt: skip
    summary="data augmentation by the trainer's augment_fn (e.g. the post's shifts)",
    batch=batch,
    order=10,  # first: its draws are those of the trainer before the seam
    stream="augment",
    check=check,
)
