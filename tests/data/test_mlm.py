"""Tests for reglab.data.mlm: BERT masking rates, exact invariants and bad input."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reglab.data.mlm import mask_tokens

PAD, CLS, SEP, MASK = 0, 1, 2, 3
SPECIAL = (PAD, CLS, SEP)
VOCAB = 1000


def _tokens(shape=(64, 256), vocab=VOCAB, seed=0):
    """Ordinary tokens framed by CLS/SEP with a padded tail, like a real batch."""
    rng = np.random.default_rng(seed)
    t = rng.integers(4, vocab, shape)
    tail = shape[1] // 6  # padding after the SEP
    t[:, 0], t[:, -tail - 1], t[:, -tail:] = CLS, SEP, PAD
    return jnp.asarray(t, dtype=jnp.int32)


def _mask_many(p_select, ratios=(0.8, 0.1, 0.1), vocab=VOCAB, n_keys=8):
    """Mask one batch under n_keys keys; return numpy (tokens, corrupted, labels)."""
    tokens = _tokens(vocab=vocab)
    fn = partial(
        mask_tokens,
        vocab_size=vocab,
        mask_id=MASK,
        special_ids=SPECIAL,
        p_select=p_select,
        ratios=ratios,
    )
    keys = jax.random.split(jax.random.key(0), n_keys)
    corrupted, labels = jax.jit(jax.vmap(fn, in_axes=(0, None)))(keys, tokens)
    t = np.broadcast_to(np.asarray(tokens), corrupted.shape)
    return t, np.asarray(corrupted), np.asarray(labels)


def _within_5_sigma(count, n, p):
    return abs(count / n - p) < 5 * np.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("p_select", [0.15, 0.20])
def test_selection_rate_and_80_10_10_split_are_within_five_sigma(p_select):
    t, corrupted, labels = _mask_many(p_select)
    ordinary = t >= 4
    selected = labels != -100
    assert _within_5_sigma(selected.sum(), ordinary.sum(), p_select)
    n = selected.sum()  # ~25,000 at p = 0.15
    masked = selected & (corrupted == MASK)
    kept = selected & (corrupted == t)
    randomized = selected & ~masked & ~kept
    assert _within_5_sigma(masked.sum(), n, 0.8)
    assert _within_5_sigma(randomized.sum(), n, 0.1)
    assert _within_5_sigma(kept.sum(), n, 0.1)


def test_unselected_and_special_positions_are_exactly_untouched():
    t, corrupted, labels = _mask_many(0.5)
    unselected = labels == -100
    np.testing.assert_array_equal(corrupted[unselected], t[unselected])
    special = np.isin(t, SPECIAL)
    assert special.any() and (labels[special] == -100).all()
    # labels hold the original token exactly where one was selected
    np.testing.assert_array_equal(labels[~unselected], t[~unselected])


def test_random_replacements_are_ordinary_tokens_other_than_the_original():
    t, corrupted, labels = _mask_many(1.0, ratios=(0.0, 1.0, 0.0), vocab=10)
    selected = labels != -100
    new = corrupted[selected]
    assert not np.isin(new, [*SPECIAL, MASK]).any()
    assert (new != t[selected]).all()
    # uniform over the 5 ordinary tokens other than the original: each 1/5
    for original in range(4, 10):
        picks = new[t[selected] == original]
        counts = np.bincount(picks, minlength=10)[4:]
        assert counts[original - 4] == 0
        others = np.delete(counts, original - 4)
        assert all(_within_5_sigma(c, len(picks), 0.2) for c in others)


def test_all_mask_ratio_turns_every_selected_token_into_the_mask():
    t, corrupted, labels = _mask_many(0.3, ratios=(1.0, 0.0, 0.0))
    selected = labels != -100
    assert (corrupted[selected] == MASK).all()


def test_p_select_zero_selects_nothing_and_one_selects_every_ordinary_token():
    t, corrupted, labels = _mask_many(0.0, n_keys=1)
    np.testing.assert_array_equal(corrupted, t)
    assert (labels == -100).all()
    t, _, labels = _mask_many(1.0, n_keys=1)
    np.testing.assert_array_equal(labels != -100, t >= 4)


def test_same_key_gives_the_same_masking_eager_and_jitted():
    fn = partial(mask_tokens, vocab_size=VOCAB, mask_id=MASK, special_ids=SPECIAL)
    tokens, key = _tokens((4, 32)), jax.random.key(9)
    eager = fn(key, tokens)
    jitted = jax.jit(fn)(key, tokens)
    for a, b in zip(eager, jitted, strict=True):
        np.testing.assert_array_equal(a, b)
    assert eager[0].dtype == tokens.dtype and eager[1].dtype == jnp.int32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(p_select=1.5), r"p_select must be in \[0, 1\], got 1.5"),
        (dict(p_select=-0.1), r"p_select must be in \[0, 1\], got -0.1"),
        (
            dict(ratios=(0.9, 0.2, -0.1)),
            r"each of ratios .* \[0, 1\], got \(0.9, 0.2, -0.1\)",
        ),
        (
            dict(ratios=(0.8, 0.1, 0.2)),
            r"must sum to 1, got \(0.8, 0.1, 0.2\) summing to 1.1",
        ),
        (dict(ratios=(0.8, 0.2)), r"three numbers, got \(0.8, 0.2\)"),
        (dict(mask_id=VOCAB), r"mask_id must be in \[0, 1000\) .*got 1000"),
        (
            dict(special_ids=(0, 5000)),
            r"special_ids must lie in \[0, 1000\), got \[5000\]",
        ),
        (dict(vocab_size=0, mask_id=0), r"vocab_size must be >= 1, got 0"),
        (
            dict(vocab_size=5, special_ids=(0, 1, 2)),
            r"needs >= 2 non-special tokens.*has 1",
        ),
    ],
)
def test_bad_arguments_raise_naming_the_value_and_fix(kwargs, match):
    options = dict(vocab_size=VOCAB, mask_id=MASK, special_ids=SPECIAL) | kwargs
    with pytest.raises(ValueError, match=match):
        mask_tokens(jax.random.key(0), jnp.zeros((2, 3), jnp.int32), **options)
