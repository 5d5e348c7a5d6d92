"""Float32 numerics of training: a fitted model stays fitted far past interpolation."""

import numpy as np

from reglab import nn, optim
from reglab.ensemble import Ensemble
from reglab.train import TrainSpec, train


def test_adam_keeps_a_fitted_model_fitted_far_past_interpolation():
    # 32 random points with random labels, memorized within ~100 epochs; then 3400
    # more at a constant Adam rate. Once p_true rounds to 1 in float32, a delta of
    # p - 1 is 0 at the true class while the others' p stay > 0: every row pushes
    # the logits one way, Adam scales that residue up to full steps, and all four
    # seeds blew up near epoch 2500 (running loss > 1e-3). A float64 run does not.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8)).astype(np.float32)
    y = rng.integers(0, 4, 32).astype(np.int32)
    spec = TrainSpec(
        nn.MLPSpec((8, 32, 4)), optim.OptimizerSpec("adam"), epochs=3500, batch_size=4
    )
    ensemble = Ensemble.grid(seeds=(0, 1, 2, 3), learning_rate=0.1, alpha=0.0)
    out = train(spec, ensemble, x, y, record=3500)
    late = slice(1750, None)  # the second half: long interpolated
    loss, accuracy = out.running["loss"][..., late], out.running["accuracy"][..., late]
    assert not out.diverged.any()
    assert loss.max() < 1e-5, f"max late loss per seed {loss.max(-1).ravel()}"
    assert (accuracy == 1.0).all()
    np.testing.assert_array_equal(out.history["train"]["accuracy"][..., -1], 1.0)
