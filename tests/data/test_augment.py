"""Tests for reglab.data.augment: exact shifts, the post's statistics, jit/vmap/scan."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reglab import regularizers  # noqa: F401 - registers the rows member() reads
from reglab.data.augment import (
    augmentation,
    compose,
    gated,
    post_shift,
    random_shift,
    rescale,
    rescale_image,
    rotate,
    rotate_image,
    shift_images,
)
from reglab.settings import member


def _shift_oracle(img, dy, dx):
    """Shift with zero fill by explicit slicing (numpy, no reglab code)."""
    out = np.zeros_like(img)
    H, W = img.shape
    out[max(dy, 0) : H + min(dy, 0), max(dx, 0) : W + min(dx, 0)] = img[
        max(-dy, 0) : H - max(dy, 0), max(-dx, 0) : W - max(dx, 0)
    ]
    return out


def _marker_batch(n=2, row=12, col=9):
    """Images that are zero except one bright pixel, to read a shift off exactly."""
    x = np.zeros((n, 28, 28), np.float32)
    x[:, row, col] = 1.0
    return jnp.asarray(x)


def _displacement(images, row=12, col=9):
    """Return (dy, dx) per image from where the marker pixel went."""
    flat = np.asarray(images).reshape(len(images), -1).argmax(axis=1)
    return np.stack([flat // 28 - row, flat % 28 - col], axis=1)


_shift_jit = jax.jit(shift_images, static_argnums=3)


@pytest.mark.parametrize("dy", range(-2, 3))
@pytest.mark.parametrize("dx", range(-2, 3))
def test_shift_matches_a_zero_filled_slicing_oracle(dy, dx):
    img = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    out = _shift_jit(jnp.asarray(img), dy, dx, 2)
    for k in range(3):
        np.testing.assert_array_equal(out[k], _shift_oracle(img[k], dy, dx))


def test_shift_fills_with_zeros_instead_of_wrapping_around():
    x = np.zeros((1, 28, 28), np.float32)
    x[0, :, 27] = 1.0  # a stroke along the right edge
    out = np.asarray(_shift_jit(jnp.asarray(x), 0, 1, 2))
    assert out.sum() == 0.0  # it leaves the image; nothing appears at column 0


_post_many = jax.jit(jax.vmap(post_shift, in_axes=(0, None)))


def test_post_shift_statistics_match_the_post_within_five_sigma():
    # n draws: P(no shift) = 1/2, each of the 16 (dy, dx) pairs has probability 1/32
    n = 8000
    keys = jax.random.split(jax.random.key(0), n)
    out = _post_many(keys, _marker_batch().reshape(2, 784))  # (n, 2, 784)
    d = np.stack([_displacement(o.reshape(2, 28, 28)) for o in np.asarray(out)])
    assert (d[:, 0] == d[:, 1]).all()  # one shift for the whole batch
    d = d[:, 0]
    still = (d == 0).all(axis=1)
    assert abs(still.mean() - 0.5) < 5 * np.sqrt(0.25 / n)
    moved = d[~still]
    assert set(np.unique(moved)) == {-2, -1, 1, 2}  # never 0 along one axis only
    pairs, counts = np.unique(moved, axis=0, return_counts=True)
    assert len(pairs) == 16
    p = 1 / 32
    assert np.all(np.abs(counts / n - p) < 5 * np.sqrt(p * (1 - p) / n))


def test_post_shift_accepts_flat_and_square_batches_alike():
    key = jax.random.key(3)
    x = jax.random.uniform(jax.random.key(1), (4, 28, 28))
    square = post_shift(key, x, p_apply=1.0)
    flat = post_shift(key, x.reshape(4, 784), p_apply=1.0)
    assert square.shape == (4, 28, 28) and flat.shape == (4, 784)
    np.testing.assert_array_equal(flat.reshape(4, 28, 28), square)


def test_post_shift_runs_under_scan_with_one_key_per_member():
    # the trainer's shape: scan over steps, vmap over members, one key each
    x = _marker_batch(1).reshape(1, 784)

    def step(carry, key):
        keys = jax.random.split(key, 3)  # 3 ensemble members
        out = jax.vmap(partial(post_shift, p_apply=1.0), in_axes=(0, None))(keys, x)
        return carry, out

    _, outs = jax.jit(lambda k: jax.lax.scan(step, 0, jax.random.split(k, 20)))(
        jax.random.key(0)
    )
    d = _displacement(np.asarray(outs).reshape(60, 28, 28)).reshape(20, 3, 2)
    assert np.isin(d, [-2, -1, 1, 2]).all()
    assert len({tuple(v) for v in d.reshape(60, 2)}) > 5  # members and steps differ


def test_random_shift_moves_images_independently_within_range():
    n = 4000
    x = _marker_batch(n)
    d = _displacement(jax.jit(random_shift)(jax.random.key(0), x))
    assert d.min() == -2 and d.max() == 2
    p = 1 / 25  # 25 (dy, dx) pairs, uniform
    _, counts = np.unique(d, axis=0, return_counts=True)
    assert len(counts) == 25
    assert np.all(np.abs(counts / n - p) < 5 * np.sqrt(p * (1 - p) / n))


def test_rotating_by_90_degrees_equals_numpy_rot90():
    img = np.random.default_rng(0).random((28, 28), dtype=np.float32)
    out = jax.jit(rotate_image)(jnp.asarray(img), 90.0)
    np.testing.assert_allclose(out, np.rot90(img), atol=1e-5)


def test_rescaling_moves_a_pixel_to_center_plus_scale_times_offset():
    # 5x5 image, center (2, 2): a pixel at (3, 2) lands at 2 + 2 * 1 = (4, 2) when
    # doubled; bilinear sampling puts half of it at (3, 2)
    img = jnp.zeros((5, 5)).at[3, 2].set(1.0)
    out = np.asarray(rescale_image(img, 2.0))
    assert out[4, 2] == pytest.approx(1.0) and out[3, 2] == pytest.approx(0.5)
    np.testing.assert_allclose(rescale_image(img, 1.0), img, atol=1e-6)


def test_random_rotate_and_rescale_keep_shape_dtype_and_stay_within_range():
    x = jax.random.uniform(jax.random.key(0), (8, 784))
    for fn in (rotate, rescale):
        out = jax.jit(fn)(jax.random.key(1), x)
        assert out.shape == x.shape and out.dtype == x.dtype
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        assert not np.allclose(out, x)
    zero = rotate(jax.random.key(1), x, max_degrees=0.0)
    np.testing.assert_allclose(zero, x, atol=1e-5)


def test_compose_applies_each_transform_with_its_own_subkey():
    x = jax.random.uniform(jax.random.key(0), (2, 784))
    key = jax.random.key(5)
    k1, k2 = jax.random.split(key)
    expected = rotate(k2, post_shift(k1, x, p_apply=1.0))
    got = compose(partial(post_shift, p_apply=1.0), rotate)(key, x)
    np.testing.assert_array_equal(got, expected)


def test_gated_members_augment_or_pass_through_in_one_vmapped_program():
    x = jax.random.uniform(jax.random.key(0), (2, 784))
    keys = jax.random.split(jax.random.key(1), 2)
    fn = gated(partial(post_shift, p_apply=1.0))
    out = jax.jit(jax.vmap(fn, in_axes=(0, None, 0)))(keys, x, jnp.array([True, False]))
    np.testing.assert_array_equal(out[1], x)
    np.testing.assert_array_equal(out[0], post_shift(keys[0], x, p_apply=1.0))


def test_bad_arguments_raise_naming_the_value():
    with pytest.raises(ValueError, match=r"\(B, 784\) or \(B, 28, 28\), got \(2, 10\)"):
        post_shift(jax.random.key(0), jnp.zeros((2, 10)))
    with pytest.raises(ValueError, match=r"p_apply must be in \[0, 1\], got 1.5"):
        post_shift(jax.random.key(0), jnp.zeros((2, 784)), p_apply=1.5)
    with pytest.raises(ValueError, match=r"max_change must be in \[0, 1\).*got 1.0"):
        rescale(jax.random.key(0), jnp.zeros((2, 784)), max_change=1.0)
    with pytest.raises(ValueError, match="compose needs at least one"):
        compose()


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
