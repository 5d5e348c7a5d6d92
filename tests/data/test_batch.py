"""Batch hooks: the one place data-side regularizers act on a minibatch."""

import jax
import jax.numpy as jnp
import numpy as np

from reglab.data import batch
from reglab.data.augment import augmentation
from reglab.data.targets import label_smoothing
from reglab.settings import member


def test_compose_applies_hooks_in_order_with_the_same_key(getkey):
    seen = []

    def tag(name):
        def hook(key, inputs, targets, settings):
            seen.append((name, key))
            return inputs + 1.0, targets * 2.0

        return hook

    key = getkey()
    x, t = batch.compose(tag("a"), tag("b"))(key, jnp.zeros(2), jnp.ones(2), None)
    np.testing.assert_array_equal(x, [2.0, 2.0])
    np.testing.assert_array_equal(t, [4.0, 4.0])
    assert [n for n, _ in seen] == ["a", "b"]
    assert all((k == key).all() for _, k in seen)
    same = batch.compose()(key, x, t, None)  # nothing to do: unchanged
    assert same[0] is x and same[1] is t


def test_augmentation_hook_changes_inputs_only_where_augment_is_on(getkey):
    def flip(key, x):
        del key
        return -x

    hook = augmentation(flip)
    x, t = jnp.arange(6.0).reshape(2, 3), jnp.eye(2)
    on = member(learning_rate=0.1, augment=True)
    off = member(learning_rate=0.1, augment=False)
    np.testing.assert_array_equal(hook(getkey(), x, t, on)[0], -x)
    np.testing.assert_array_equal(hook(getkey(), x, t, off)[0], x)
    assert hook(getkey(), x, t, on)[1] is t  # targets untouched


def test_label_smoothing_hook_matches_the_posts_formula(getkey):
    t = jax.nn.one_hot(jnp.array([2, 0]), 4)
    _, smoothed = label_smoothing("post")(
        getkey(), None, t, member(learning_rate=0.1, smoothing=0.3)
    )
    expected = np.full((2, 4), 0.1)  # eps / (K - 1)
    expected[0, 2] = expected[1, 0] = 0.7  # 1 - eps
    np.testing.assert_allclose(smoothed, expected, rtol=1e-6)
