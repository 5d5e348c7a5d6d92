"""Max-norm: each unit's incoming weights projected back onto a ball after a step.

Srebro & Shraibman (2005); Srivastava et al. (2014) pair it with dropout. It acts on
the update last of all (``order``), so the constraint holds after every step.
"""

from __future__ import annotations

from reglab import optim
from reglab.regularizers.base import Context, Regularizer
from reglab.settings import Setting


def update(ctx: Context, member, key, step_size):
    """Return the projection onto |w_j| <= max_norm (0 leaves a member free)."""
    del ctx, key, step_size
    return optim.max_norm(member.max_norm)


REGULARIZER = Regularizer(
    name="max_norm",
    settings=(
        Setting(
            "max_norm",
            0.0,
            "cap on each unit's incoming-weight norm after a step",
            "use 0.0 to turn max-norm off",
            low=0.0,
        ),
    ),  # fmt: skip
    summary="max-norm constraint on each unit's incoming weights (Srebro &"
    " Shraibman 2005)",
    update=update,
    order=1000,  # last: the constraint holds after the whole step
)
