"""Speed of the trainer against a NumPy one-model-at-a-time loop, measured in one run.

    python benchmarks/moons_sweep.py [--epochs 2000]

Moons: the post's L2-sweep network (2-64-64-2 tanh, N=250, B=32, SGD power law
(0.15, 1, 5e4)) as ensembles of 1, 9 and 18 members with the real trainer (shuffling,
train metrics recorded once per epoch: the running epoch means, which are free, and
separately an exact evaluation of the whole training set after every epoch).
MNIST-sized: 784-128-10, N=1000, B=32, 10 members. Each line prints microseconds per
model-step (one member, one minibatch) and the ratio to the NumPy loop, which also
evaluates the training set after every epoch; compile time is printed apart. The
moons ensembles run on one JAX device and on all (one per core, ``reglab.placement``);
the NumPy loop is timed plain (its BLAS's own threads) and with one BLAS thread, which
is faster for 784-128-10 here, and each ratio is printed.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from reglab import nn, optim
from reglab.data import WEIGHT_DECAY_MOONS
from reglab.ensemble import Ensemble
from reglab.placement import PROGRAMS, claim_cpu_devices
from reglab.train import TrainSpec, train


def numpy_loop(
    x, y, widths, batch, epochs, lr0=0.15, alpha=1.0, tau=5e4, l2=0.01, exact=True
):
    """Return seconds per model-step of a plain NumPy loop: the post's own style."""
    rng = np.random.default_rng(0)
    Ws = [
        rng.normal(0, np.sqrt(2 / (a + b)), (a, b)).astype(np.float32)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]
    bs = [np.zeros(b, np.float32) for b in widths[1:]]
    n, t, steps = len(x), 0, 0
    start = time.perf_counter()
    for _ in range(epochs):
        perm = rng.permutation(n)
        for s in range(0, n, batch):
            idx = perm[s : s + batch]
            a, acts = x[idx], []
            for W, b in zip(Ws[:-1], bs[:-1], strict=True):
                acts.append(a)
                a = np.tanh(a @ W + b)
            acts.append(a)
            z = a @ Ws[-1] + bs[-1]
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(idx)), y[idx]] -= 1
            delta = p / len(idx)
            t += 1
            lr = lr0 / (1 + t / tau) ** alpha
            for l in range(len(Ws) - 1, -1, -1):
                dW, db = acts[l].T @ delta, delta.sum(0)
                if l > 0:
                    delta = (delta @ Ws[l].T) * (1 - acts[l] ** 2)
                Ws[l] -= lr * (dW + l2 * Ws[l])
                bs[l] -= lr * (db + l2 * bs[l])
            steps += 1
        if not exact:  # running metrics: the epoch's minibatch losses, ~free
            continue
        a = x  # an exact train-set evaluation after the epoch, as the trainer does
        for W, b in zip(Ws[:-1], bs[:-1], strict=True):
            a = np.tanh(a @ W + b)
        _ = ((a @ Ws[-1] + bs[-1]).argmax(1) == y).mean()
    return (time.perf_counter() - start) / steps


def reglab_run(
    x, y, widths, batch, epochs, members, lr0=0.15, tau=5e4, exact=True, devices=None
):
    """Return (seconds per model-step, compile seconds) of the reglab trainer."""
    spec = TrainSpec(nn.MLPSpec(widths), optim.OptimizerSpec("sgd"), epochs, batch)
    strengths = list(np.linspace(0.0, 0.02, members))
    ens = Ensemble.grid(
        seeds=(0,), learning_rate=lr0, alpha=1.0, tau=tau, l2_strength=strengths
    )
    sets = {"train": (x, y)} if exact else {}  # running metrics are always recorded
    PROGRAMS.clear()  # time a cold compile (no in-process cache)
    cold = train(spec, ens, x, y, eval_sets=sets, record=1, devices=devices)
    # the compiled program reused:
    warm = train(spec, ens, x, y, eval_sets=sets, record=1, devices=devices)
    steps = epochs * -(-len(x) // batch) * members
    return warm.run_seconds / steps, cold.compile_seconds


def numpy_runs(*args, **kw) -> dict[str, float]:
    """Return seconds per model-step of the NumPy loop with its BLAS's threads and
    with one (threadpoolctl, which comes with scikit-learn, the test extra)."""
    runs = {"plain": numpy_loop(*args, **kw)}
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return runs
    with threadpool_limits(1):
        runs["1 BLAS thread"] = numpy_loop(*args, **kw)
    return runs


def main() -> None:
    """Print the benchmark table."""
    claim_cpu_devices()  # one JAX CPU device per core, as the reglab command does
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=2000, help="moons epochs")
    parser.add_argument("--mnist-epochs", type=int, default=20)
    args = parser.parse_args()
    n_dev = len(jax.devices())
    device_counts = (1, n_dev) if n_dev > 1 else (1,)

    def baseline(what, runs) -> dict[str, float]:
        runs = {k: v * 1e6 for k, v in runs.items()}
        for how, us in runs.items():
            label = f"numpy one model at a time, {what}, {how}"
            print(f"  {label:<52} {us:7.2f} us/model-step")
        return runs

    def line(label, us, base, comp):
        ratios = ", ".join(f"{b / us:4.1f}x vs numpy {how}" for how, b in base.items())
        print(
            f"  {label:<52} {us:7.2f} us/model-step  {ratios}  (compile {comp:.2f} s)"
        )

    moons = WEIGHT_DECAY_MOONS.train(0)
    x, y = moons.x.astype(np.float32), moons.y
    print(f"JAX devices: {n_dev} ({jax.devices()[0].platform}); reglab.placement")
    print(f"moons 2-64-64-2, N=250, B=32, {args.epochs} epochs, metrics every epoch")
    for exact in (False, True):
        what = "exact train-set eval" if exact else "running train metrics"
        epochs = max(args.epochs // 10, 20)
        base = baseline(what, numpy_runs(x, y, (2, 64, 64, 2), 32, epochs, exact=exact))
        for members in (1, 9, 18):
            for d in device_counts if members > 1 else (1,):
                us, comp = reglab_run(
                    x, y, (2, 64, 64, 2), 32, args.epochs, members, exact=exact,
                    devices=d,
                )  # fmt: skip
                label = f"reglab {members:2d} members, {d} device(s), {what}"
                line(label, us * 1e6, base, comp)

    rng = np.random.default_rng(0)
    xm = rng.random((1000, 784), dtype=np.float32)
    ym = rng.integers(0, 10, 1000).astype(np.int32)
    print(f"MNIST-sized 784-128-10, N=1000, B=32, {args.mnist_epochs} epochs")
    print("  (large networks stay on one device: XLA's threads use every core)")
    for exact in (False, True):
        what = "exact train-set eval" if exact else "running train metrics"
        runs = numpy_runs(xm, ym, (784, 128, 10), 32, 3, tau=5e3, exact=exact)
        base = baseline(what, runs)
        us, comp = reglab_run(
            xm, ym, (784, 128, 10), 32, args.mnist_epochs, 10, tau=5e3, exact=exact
        )
        line(f"reglab 10 members, {what}", us * 1e6, base, comp)


if __name__ == "__main__":
    main()
