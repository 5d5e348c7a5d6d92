"""Image augmentations as pure, jit-able JAX functions with signature (key, x) -> x.

Every transform takes a batch of images, flattened (B, H*W) or not (B, H, W), and
returns one of the same shape and dtype. Pixels that come in from outside the image
are zero (black), never wrapped around from the opposite edge: MNIST-style images
have a zero background, and wrap-around would paste a stroke cut off at one edge
onto the other, inventing ink the digit never had.

- post_shift: the post's scheme, one random (dx, dy) for the whole batch, or none.
- random_shift, rotate, rescale: independent draws per image.
- compose chains transforms; gated adds a traced on/off switch per ensemble member;
  augmentation makes any of them a batch hook (``reglab.regularizers.augmentation``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates

Augment = Callable[[jax.Array, jax.Array], jax.Array]
MNIST_SHAPE = (28, 28)


def _as_images(x: jax.Array, image_shape: tuple[int, int]) -> jax.Array:
    """Return x viewed as a (B, H, W) batch, raising on any other shape."""
    H, W = image_shape
    if x.ndim == 2 and x.shape[1] == H * W:
        return x.reshape(x.shape[0], H, W)
    if x.ndim == 3 and x.shape[1:] == (H, W):
        return x
    raise ValueError(
        f"expected a batch of shape (B, {H * W}) or (B, {H}, {W}), got {x.shape}; "
        "pass image_shape= for images that are not 28x28"
    )


def shift_images(
    x: jax.Array, dy: jax.Array, dx: jax.Array, max_shift: int
) -> jax.Array:
    """Return (B, H, W) images moved dy rows down and dx columns right, zero-filled."""
    B, H, W = x.shape
    m = max_shift
    padded = jnp.pad(x, ((0, 0), (m, m), (m, m)))  # (B, H + 2m, W + 2m)
    # out[i, j] = x[i - dy, j - dx] = padded[i - dy + m, j - dx + m]
    return jax.lax.dynamic_slice(padded, (0, m - dy, m - dx), (B, H, W))


def post_shift(
    key: jax.Array,
    x: jax.Array,
    *,
    image_shape: tuple[int, int] = MNIST_SHAPE,
    shifts: tuple[int, ...] = (-2, -1, 1, 2),
    p_apply: float = 0.5,
) -> jax.Array:
    """Shift the whole batch by one random (dx, dy) from shifts with prob. p_apply."""
    if not 0.0 <= p_apply <= 1.0:
        raise ValueError(f"p_apply must be in [0, 1], got {p_apply}; the post uses 0.5")
    images = _as_images(x, image_shape)
    choices = jnp.asarray(shifts, dtype=jnp.int32)
    # raw bits, not randint/choice: about 3 us less per step inside a scan on CPU;
    # the modulo bias is below len(shifts) / 2**32
    bits = jax.random.bits(key, (3,))
    u = (bits[0] >> 8).astype(jnp.float32) / 2**24  # uniform on [0, 1)
    apply = u < p_apply
    # no augmentation is a shift by (0, 0): one code path, no cond, no recompilation
    dx = jnp.where(apply, choices[bits[1] % len(shifts)], 0)
    dy = jnp.where(apply, choices[bits[2] % len(shifts)], 0)
    max_shift = max(abs(s) for s in shifts)
    return shift_images(images, dy, dx, max_shift).reshape(x.shape)


def random_shift(
    key: jax.Array,
    x: jax.Array,
    *,
    image_shape: tuple[int, int] = MNIST_SHAPE,
    max_shift: int = 2,
) -> jax.Array:
    """Shift each image by its own (dx, dy), uniform on [-max_shift, max_shift]^2."""
    images = _as_images(x, image_shape)
    bits = jax.random.bits(key, (images.shape[0], 2))
    d = (bits % (2 * max_shift + 1)).astype(jnp.int32) - max_shift  # (B, 2)
    one = lambda img, dy, dx: shift_images(img[None], dy, dx, max_shift)[0]  # noqa: E731
    return jax.vmap(one)(images, d[:, 0], d[:, 1]).reshape(x.shape)


def _warp(image: jax.Array, inverse: jax.Array) -> jax.Array:
    """Return image resampled (bilinear, zero outside) at center + inverse @ offset."""
    H, W = image.shape
    center = jnp.array([(H - 1) / 2, (W - 1) / 2], dtype=jnp.float32)
    rows, cols = jnp.meshgrid(jnp.arange(H), jnp.arange(W), indexing="ij")
    out = jnp.stack([rows.ravel(), cols.ravel()]).astype(jnp.float32)  # (2, H*W)
    # each output pixel p reads the input at c + A^{-1} (p - c)
    src = center[:, None] + inverse @ (out - center[:, None])
    return map_coordinates(
        image, list(src), order=1, mode="constant", cval=0.0
    ).reshape(H, W)


def rotate_image(image: jax.Array, degrees: jax.Array) -> jax.Array:
    """Return one (H, W) image rotated counter-clockwise by degrees about its center."""
    theta = jnp.deg2rad(degrees)
    c, s = jnp.cos(theta), jnp.sin(theta)
    # (row, col) with rows growing downward: a counter-clockwise turn on screen
    # maps an output offset (r, q) back to the input offset (c r + s q, -s r + c q)
    inverse = jnp.array([[c, s], [-s, c]], dtype=jnp.float32)
    return _warp(image, inverse)


def rescale_image(image: jax.Array, scale: jax.Array) -> jax.Array:
    """Return one (H, W) image zoomed by scale about its center (> 1 enlarges)."""
    inverse = jnp.eye(2, dtype=jnp.float32) / scale
    return _warp(image, inverse)


def rotate(
    key: jax.Array,
    x: jax.Array,
    *,
    image_shape: tuple[int, int] = MNIST_SHAPE,
    max_degrees: float = 15.0,
) -> jax.Array:
    """Rotate each image by its own angle, uniform on [-max_degrees, max_degrees]."""
    images = _as_images(x, image_shape)
    angle = jax.random.uniform(
        key, (images.shape[0],), minval=-max_degrees, maxval=max_degrees
    )
    return jax.vmap(rotate_image)(images, angle).astype(x.dtype).reshape(x.shape)


def rescale(
    key: jax.Array,
    x: jax.Array,
    *,
    image_shape: tuple[int, int] = MNIST_SHAPE,
    max_change: float = 0.1,
) -> jax.Array:
    """Zoom each image by a factor, uniform on [1 - max_change, 1 + max_change]."""
    if not 0.0 <= max_change < 1.0:
        raise ValueError(
            f"max_change must be in [0, 1) so scales stay positive, got {max_change}"
        )
    images = _as_images(x, image_shape)
    scale = jax.random.uniform(
        key, (images.shape[0],), minval=1.0 - max_change, maxval=1.0 + max_change
    )
    return jax.vmap(rescale_image)(images, scale).astype(x.dtype).reshape(x.shape)


def compose(*fns: Augment) -> Augment:
    """Return the augmentation applying fns in order, each with its own subkey."""
    if not fns:
        raise ValueError("compose needs at least one augmentation, got none")

    def composed(key: jax.Array, x: jax.Array) -> jax.Array:
        for fn, k in zip(fns, jax.random.split(key, len(fns)), strict=True):
            x = fn(k, x)
        return x

    return composed


def gated(fn: Augment) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    """Return (key, x, enabled) -> fn(key, x) where enabled, else x unchanged."""

    # enabled is a traced bool, so augmented and plain members share one program
    def maybe(key: jax.Array, x: jax.Array, enabled: jax.Array) -> jax.Array:
        return jnp.where(enabled, fn(key, x), x)

    return maybe


def augmentation(fn: Augment) -> Callable:
    """Return the batch hook applying fn to the inputs of members with augment on."""
    maybe = gated(fn)

    def hook(key: jax.Array, inputs: jax.Array, targets: jax.Array, settings):
        # the key as it comes: the first data-side hook, its draws are the reference
        return maybe(key, inputs, settings.augment), targets

    return hook
