"""Label smoothing: softened one-hot training targets (Szegedy et al. 2016).

The convention (the post's 1-eps / eps/(K-1), or PyTorch's uniform eps/K) is the
train spec's ``smoothing_convention``; ``reglab.data.targets`` holds the arithmetic.
"""

from __future__ import annotations

from reglab.data.targets import label_smoothing
from reglab.regularizers.base import Context, Regularizer
from reglab.settings import Setting


def batch(ctx: Context):
    """Return the batch hook smoothing each member's targets by its smoothing."""
    smooth = label_smoothing(ctx.spec.smoothing_convention)

    def hook(key, t, inputs, targets, member):
        del t
        return smooth(key, inputs, targets, member)

    return hook


REGULARIZER = Regularizer(
    name="label_smoothing",
    settings=(
        Setting(
            "smoothing",
            0.0,
            "label smoothing epsilon of the training targets",
            "use 0.0 to train on one-hot targets",
            low=0.0,
            high=1.0,
            high_open=True,
        ),
    ),  # fmt: skip
    summary="label smoothing of the training targets (Szegedy et al. 2016)",
    batch=batch,
    changes_inputs=False,  # targets only: the members still share the inputs
)
