"""Confidence penalty (Pereyra et al. 2017, arXiv:1701.06548): a reglab plug-in.

The loss becomes L - beta * H(p), H(p) = -sum_k p_k log p_k the entropy of the
prediction: confident (low-entropy) outputs pay, as label smoothing's do.
"""

import jax
import jax.numpy as jnp

from reglab.regularizers import register
from reglab.regularizers.base import Regularizer
from reglab.settings import Setting


def penalty(logits, weights, beta):
    """Return (-beta * mean entropy of softmax(logits), its gradient dL/dlogits)."""
    log_p = jax.nn.log_softmax(logits)  # (B, K)
    p = jnp.exp(log_p)
    entropy = -(p * log_p).sum(-1)  # (B,)
    n = jnp.maximum(weights.sum(), 1.0)  # the mean runs over the real rows
    # dH/dz_k = -p_k (log p_k + H), so d(-beta H)/dz_k = beta p_k (log p_k + H)
    grad = beta * p * (log_p + entropy[:, None]) * (weights[:, None] / n)
    return -beta * (weights * entropy).sum() / n, grad


def loss(ctx):
    """Return the loss term: each member's beta is its confidence_penalty."""
    return lambda z, targets, w, member: penalty(z, w, member.confidence_penalty)


BETA = Setting("confidence_penalty", 0.0, "beta: the loss minus beta times the"
               " prediction's entropy", "use 0.0 to turn it off", low=0.0)  # fmt: skip
REGULARIZER = register(Regularizer(
    "confidence_penalty", (BETA,), "confidence penalty (Pereyra et al. 2017)", loss=loss
))  # fmt: skip
