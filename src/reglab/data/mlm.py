"""BERT-style masking of integer token batches for masked-language-model training."""

from __future__ import annotations

from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np


def _check(
    vocab_size: int,
    mask_id: int,
    special: np.ndarray,
    p_select: float,
    ratios: tuple[float, float, float],
) -> None:
    """Raise on arguments outside their ranges, before anything is traced."""
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
    if not 0 <= mask_id < vocab_size:
        raise ValueError(
            f"mask_id must be in [0, {vocab_size}) (a token of the vocabulary), "
            f"got {mask_id}"
        )
    bad = special[(special < 0) | (special >= vocab_size)]
    if bad.size:
        raise ValueError(
            f"special_ids must lie in [0, {vocab_size}), got {bad.tolist()}; "
            "drop them or enlarge vocab_size"
        )
    if not 0.0 <= p_select <= 1.0:
        raise ValueError(
            f"p_select must be in [0, 1], got {p_select}; BERT uses 0.15 (the post "
            "also cites 0.20)"
        )
    if len(ratios) != 3:
        raise ValueError(
            f"ratios must be (mask, random, keep), three numbers, got {ratios}"
        )
    if any(not 0.0 <= r <= 1.0 for r in ratios):
        raise ValueError(
            f"each of ratios (mask, random, keep) must be in [0, 1], got {ratios}; "
            "BERT uses (0.8, 0.1, 0.1)"
        )
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(
            f"ratios (mask, random, keep) must sum to 1, got {ratios} summing to "
            f"{sum(ratios):g}; e.g. (0.8, 0.1, 0.1)"
        )


def mask_tokens(
    key: jax.Array,
    tokens: jax.Array,
    *,
    vocab_size: int,
    mask_id: int,
    special_ids: Iterable[int],
    p_select: float = 0.15,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    ignore_index: int = -100,
) -> tuple[jax.Array, jax.Array]:
    """Return (corrupted tokens, labels) after BERT's select-then-80/10/10 masking."""
    # special_ids should include padding; mask_id is never selected either
    special = np.unique(
        np.append(np.asarray(list(special_ids), dtype=np.int64), mask_id)
    )
    _check(vocab_size, mask_id, special, p_select, ratios)
    r_mask, r_random, _ = ratios
    # random replacements come from the ordinary tokens only, never a special one
    ordinary = np.setdiff1d(np.arange(vocab_size), special)  # sorted, static
    needed = 2 if r_random > 0 else 1  # a random token must differ from the original
    if len(ordinary) < needed:
        raise ValueError(
            f"masking needs >= {needed} non-special tokens, the vocabulary has "
            f"{len(ordinary)}; enlarge vocab_size, drop special_ids, or set ratios[1] "
            "to 0"
        )
    tokens = jnp.asarray(tokens)
    k_select, k_kind, k_random = jax.random.split(key, 3)

    is_special = jnp.isin(tokens, jnp.asarray(special, dtype=tokens.dtype))
    selected = (jax.random.uniform(k_select, tokens.shape) < p_select) & ~is_special
    u = jax.random.uniform(k_kind, tokens.shape)
    to_mask = selected & (u < r_mask)
    to_random = selected & (u >= r_mask) & (u < r_mask + r_random)

    # a uniform draw over the ordinary tokens other than the original one, so that
    # "random" always changes the token and "keep" alone leaves it as it was
    ordinary_j = jnp.asarray(ordinary, dtype=tokens.dtype)
    position = jnp.searchsorted(ordinary_j, tokens)  # the original's index
    n_other = max(len(ordinary) - 1, 1)
    draw = jax.random.randint(k_random, tokens.shape, 0, n_other)
    draw = draw + (draw >= position)
    replacement = ordinary_j[jnp.minimum(draw, len(ordinary) - 1)]

    corrupted = jnp.where(to_mask, mask_id, jnp.where(to_random, replacement, tokens))
    labels = jnp.where(selected, tokens, ignore_index)
    return corrupted.astype(tokens.dtype), labels.astype(jnp.int32)
