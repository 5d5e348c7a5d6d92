"""Label smoothing: the post's convention as a batch hook."""

import jax
import jax.numpy as jnp
import numpy as np

from reglab import regularizers  # noqa: F401 - registers the rows member() reads
from reglab.data.targets import label_smoothing
from reglab.settings import member


def test_label_smoothing_hook_matches_the_posts_formula(getkey):
    t = jax.nn.one_hot(jnp.array([2, 0]), 4)
    _, smoothed = label_smoothing("post")(
        getkey(), None, t, member(learning_rate=0.1, smoothing=0.3)
    )
    expected = np.full((2, 4), 0.1)  # eps / (K - 1)
    expected[0, 2] = expected[1, 0] = 0.7  # 1 - eps
    np.testing.assert_allclose(smoothed, expected, rtol=1e-6)
