"""Each experiment's training against its floor: the rate XLA reaches on its shapes.

    python benchmarks/floor.py [--seconds 2] [--repeats 2] [--seeds 3] [--cores N]

For each of the post's five experiments (augmentation, weight_decay, dropout,
label_smoothing, early_stopping) the script builds the TrainSpec and Ensemble its
``run`` builds (widths, batch size, optimizer, members = configs x seeds, N, from the
experiment's Config defaults at ``--seeds`` seeds) and measures, in the same process:

- reglab: the real ``reglab.train.train`` for a cut of the experiment's epochs (about
  ``--seconds`` of training), warm: the same call is made once first to compile, then
  timed ``--repeats`` times, the fastest kept (the floor too). Training alone: no
  eval sets (the running train metrics are recorded, as always), records at the
  first and last epoch only; augmentation keeps its shift augmentation, the other
  options of the experiment are left out.
- floor: a jitted ``jax.lax.scan`` over the same minibatch steps of the same matmuls
  (forward: tanh layers and a softmax output; backward: the weight gradients and the
  deltas), batched over the same member count with einsum, same batch size, fixed
  minibatches, and a plain ``W -= lr * dW``: no optimizer state, no
  shuffling, no masks, no metrics. Also compiled first, then timed. Layouts tried,
  the fastest is the floor: each member its own minibatches; each seed's minibatch
  shared by its configs, layer 1 of them one wide matmul (the trainer's layout); and,
  where the trainer splits the configs into groups (``placement.group_shape``), both
  on one group, times the groups (padded groups compute their padding, as the
  trainer's do).

Both count training FLOPs as 6 x parameters x batch per member-step (the last partial
batch is padded to a whole one, as the trainer does), so the ratio reglab / floor is
the floor's time over reglab's on identical work; the issue's target is >= 60 %. The
FLOPs of each experiment's whole training (all its train calls at its full epochs) are
printed too. Everything runs on JAX's default CPU device (one device: XLA's threads
use the cores), at XLA's backend optimization level 1, as the ``reglab`` command sets.

``--cores N`` first pins this process to N of its cores (as ``reglab reproduce`` pins
each of its workers to one). The last lines then bound ``reglab reproduce``'s training
from below: every experiment's whole training (all its calls at full epochs) at the
floor's rate, in core-seconds, and over this machine's cores; and the same at reglab's
measured rate (calls not measured take their measured sibling's rates).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from reglab.placement import configure_xla, my_cores, pin_to

if "--cores" in sys.argv:  # before JAX's backend starts: XLA sizes its pool by them
    pin_to(tuple(my_cores() or ())[: int(sys.argv[sys.argv.index("--cores") + 1])])
configure_xla()  # before JAX's backend starts: the level the reglab command uses

from reglab import data, nn  # noqa: E402
from reglab.ensemble import Ensemble  # noqa: E402
from reglab.experiments import (  # noqa: E402
    augmentation,
    dropout,
    early_stopping,
    label_smoothing,
    moons,
    weight_decay,
)
from reglab.optim import OptimizerSpec  # noqa: E402
from reglab.placement import group_shape  # noqa: E402
from reglab.train import TrainSpec, train  # noqa: E402

TARGET = 0.60  # issue 23: every experiment's training >= 60 % of its floor


@dataclass(frozen=True)
class Call:
    """One train call of an experiment: its spec, ensemble, data and options."""

    name: str
    spec: TrainSpec
    ensemble: Ensemble
    x: np.ndarray
    y: np.ndarray
    options: dict[str, Any] = field(default_factory=dict)
    measure: bool = True  # False: counted in the FLOPs, shapes measured by another

    @property
    def members(self) -> int:
        """Return seeds x configs."""
        return len(self.ensemble.seeds) * self.configs

    @property
    def configs(self) -> int:
        """Return the ensemble's configs (columns)."""
        lengths = [np.size(v) for v in self.ensemble.values.values()]
        return max(lengths, default=1)

    @property
    def steps_per_epoch(self) -> int:
        """Return minibatch steps per epoch (the last partial batch kept)."""
        return -(-len(self.x) // self.spec.batch_size)

    def flops_per_epoch(self) -> float:
        """Return 6 x parameters x batch x member-steps of one epoch."""
        per_step = 6 * parameters(self.spec.model.widths) * self.spec.batch_size
        return per_step * self.steps_per_epoch * self.members


def parameters(widths) -> int:
    """Return the weights and biases of an MLP of these widths."""
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))


def seeded(cfg_class, seeds: int):
    """Return the experiment's default Config at seeds 0..seeds-1."""
    return cfg_class(seeds=tuple(range(seeds)))


def mnist(dataset: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the stratified training subset the experiment draws."""
    x, y = data.load(dataset, split="train")
    return data.subset(x, y, n, seed=seed)


def schedule(cfg) -> dict[str, float]:
    """Return the learning-rate schedule settings of a Config."""
    return {"learning_rate": cfg.learning_rate, "alpha": cfg.alpha, "tau": cfg.tau}


def augmentation_calls(seeds: int) -> list[Call]:
    """Return augmentation's train call: plain and augmented, Adam, B=8."""
    cfg = seeded(augmentation.Config, seeds)
    spec = TrainSpec(
        nn.MLPSpec(cfg.widths),
        OptimizerSpec("adam", beta1=cfg.beta1, beta2=cfg.beta2),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
    )
    ens = Ensemble(cfg.seeds, {**schedule(cfg), "augment": np.array([0.0, 1.0])})
    x, y = mnist("mnist", cfg.n_train, cfg.data_seed)
    return [Call("", spec, ens, x, y, {"augment_fn": data.post_shift})]


def weight_decay_calls(seeds: int) -> list[Call]:
    """Return weight_decay's two calls: coupled L2/L1 sweeps, proximal L1."""
    cfg = seeded(weight_decay.Config, seeds)
    moon = moons.make_moons(
        cfg.n_train, noise=cfg.noise, flip_fraction=cfg.flip_fraction,
        seed=cfg.data_seed,
    )  # fmt: skip
    l2, l1 = cfg.l2_strengths, cfg.l1_strengths
    coupled = Ensemble(
        cfg.seeds,
        {
            "l2_strength": np.array(l2 + (0.0,) * len(l1)),
            "l1_strength": np.array((0.0,) * len(l2) + l1),
            **schedule(cfg),
        },
    )
    prox = Ensemble(
        cfg.seeds, {"l1_strength": np.array(cfg.prox_strengths), **schedule(cfg)}
    )
    model = nn.MLPSpec(cfg.widths, activation="tanh")
    calls = []
    for name, penalty, ens in (
        ("coupled", "coupled", coupled),
        ("prox", "proximal", prox),
    ):
        spec = TrainSpec(
            model, OptimizerSpec("sgd", penalty=penalty), cfg.epochs, cfg.batch_size
        )
        calls.append(Call(name, spec, ens, moon.x, moon.y))
    return calls


def dropout_calls(seeds: int) -> list[Call]:
    """Return dropout's call: none, per-batch and per-example masks, Adam."""
    cfg = seeded(dropout.Config, seeds)
    moon = moons.make_moons(
        cfg.n_train, noise=cfg.noise, flip_fraction=0.0, seed=cfg.data_seed
    )
    p_drop, per_batch = [0.0, cfg.p_drop], [1.0, 1.0]
    if cfg.per_example:
        p_drop, per_batch = p_drop + [cfg.p_drop], per_batch + [0.0]
    ens = Ensemble(
        cfg.seeds, {"p_drop": p_drop, "dropout_per_batch": per_batch, **schedule(cfg)}
    )
    hidden = tuple(range(1, len(cfg.widths) - 1))
    model = nn.MLPSpec(
        cfg.widths, "tanh", dropout_layers=hidden, dropout_mode="per_example"
    )
    optimizer = OptimizerSpec("adam", beta1=cfg.beta1, beta2=cfg.beta2)
    spec = TrainSpec(model, optimizer, epochs=cfg.epochs, batch_size=cfg.batch_size)
    return [Call("", spec, ens, moon.x, moon.y)]


def label_smoothing_calls(seeds: int) -> list[Call]:
    """Return label_smoothing's call: one member per smoothing strength, SGD."""
    cfg = seeded(label_smoothing.Config, seeds)
    spec = TrainSpec(
        nn.MLPSpec(cfg.widths), OptimizerSpec("sgd"), epochs=cfg.epochs,
        batch_size=cfg.batch_size, smoothing_convention="post",
    )  # fmt: skip
    ens = Ensemble.grid(cfg.seeds, smoothing=list(cfg.smoothings), **schedule(cfg))
    x, y = mnist("mnist", cfg.n_train, cfg.data_seed)
    return [Call("", spec, ens, x, y)]


def early_stopping_calls(seeds: int) -> list[Call]:
    """Return early_stopping's calls: main (N), user and own (N - n_val, counted)."""
    cfg = seeded(early_stopping.Config, seeds)
    x, y, _, _ = early_stopping.load_data(cfg)
    model = nn.MLPSpec(cfg.widths, activation="tanh")
    spec = TrainSpec(model, OptimizerSpec("sgd"), cfg.epochs, cfg.batch_size)
    ens = Ensemble.grid(seeds=cfg.seeds, **schedule(cfg))
    fit = len(x) - cfg.n_val  # the user run stops early: counted at full length
    return [
        Call("main", spec, ens, x, y),
        Call("user", spec, ens, x[:fit], y[:fit], measure=False),
        Call("own", spec, ens, x[:fit], y[:fit], measure=False),
    ]


EXPERIMENTS = {
    "augmentation": augmentation_calls,
    "weight_decay": weight_decay_calls,
    "dropout": dropout_calls,
    "label_smoothing": label_smoothing_calls,
    "early_stopping": early_stopping_calls,
}


REPEATS = [2]  # timed runs per measurement (--repeats); the fastest is kept


def best_of(fn) -> float:
    """Return the least wall seconds of REPEATS calls of fn (a busy machine's noise
    only ever adds time)."""
    times = []
    for _ in range(REPEATS[0]):
        start = time.perf_counter()
        fn()  # train returns host arrays; the floor blocks until ready: synced
        times.append(time.perf_counter() - start)
    return min(times)


def reglab_seconds(call: Call, epochs: int) -> float:
    """Return the wall seconds of a warm ``train`` of the call cut to epochs."""
    spec = TrainSpec(
        call.spec.model, call.spec.optimizer, epochs, call.spec.batch_size,
        loss=call.spec.loss, smoothing_convention=call.spec.smoothing_convention,
    )  # fmt: skip
    kw = {"eval_sets": {}, "record": epochs, **call.options}
    train(spec, call.ensemble, call.x, call.y, **kw)  # compile (and run once)
    return best_of(lambda: train(spec, call.ensemble, call.x, call.y, **kw))


def to_members(z, seeds: int, hidden: int):
    """Return the wide layer's (S, B, C*H) as the members' (S*C, B, H)."""
    batch = z.shape[1]
    z = z.reshape(seeds, batch, -1, hidden).transpose(0, 2, 1, 3)
    return z.reshape(-1, batch, hidden)


def from_members(delta, seeds: int):
    """Return the members' (S*C, B, H) as the wide layer's (S, B, C*H)."""
    members, batch, hidden = delta.shape
    delta = delta.reshape(seeds, -1, batch, hidden).transpose(0, 2, 1, 3)
    return delta.reshape(seeds, batch, -1)


def floor_program(widths, seeds: int, wide: bool, lr: float = 0.01):
    """Return a jitted (params, xb, tb, marker) -> params: epochs x steps of SGD on
    the dots. wide: the configs of a seed share its minibatch, and layer 1 of all of
    them is one (B, D) @ (D, C*H) matmul per seed, as the trainer lays it out."""

    def dense(layer, a, W):
        if wide and layer == 0:
            return to_members(jnp.einsum("sbd,sdk->sbk", a, W), seeds, widths[1])
        return jnp.einsum("mbi,mio->mbo", a, W)

    def weight_grad(layer, a, delta):
        if wide and layer == 0:
            return jnp.einsum("sbd,sbk->sdk", a, from_members(delta, seeds))
        return jnp.einsum("mbi,mbo->mio", a, delta)

    def step(params, batch):
        a, target = batch  # (M or S, B, D), (M, B, K)
        acts = [a]
        for layer, (W, b) in enumerate(params[:-1]):
            a = jnp.tanh(dense(layer, a, W) + b[:, None])
            acts.append(a)
        W, b = params[-1]
        z = dense(len(params) - 1, a, W) + b[:, None]
        delta = (jax.nn.softmax(z) - target) / target.shape[1]
        new = []
        for layer in range(len(params) - 1, -1, -1):
            W, b = params[layer]
            dW = weight_grad(layer, acts[layer], delta)
            db = delta.sum(1)
            if layer > 0:  # no gradient for the inputs, as jax.grad leaves it out
                back = jnp.einsum("mbo,mio->mbi", delta, W)
                delta = back * (1 - acts[layer] ** 2)
            new.append((W - lr * dW, b - lr * db))
        return new[::-1], None

    def epoch(params, batches):
        return jax.lax.scan(step, params, batches)[0]

    @jax.jit
    def run(params, xb, tb, epochs_marker):
        def body(p, _):
            return epoch(p, (xb, tb)), None

        return jax.lax.scan(body, params, None, length=epochs_marker.shape[0])[0]

    return run


def floor_seconds(call: Call, epochs: int, wide: bool, configs: int = 0) -> float:
    """Return the seconds of the floor program on the call's shapes for epochs:
    each member its own minibatches, or (wide) each seed's shared by its configs;
    configs: this many instead of the call's (one group of the trainer's layout)."""
    widths, B = call.spec.model.widths, call.spec.batch_size
    S, C = len(call.ensemble.seeds), configs or call.configs
    steps, n, M = call.steps_per_epoch, len(call.x), S * C
    rng = np.random.default_rng(0)

    def weights(shape):
        scale = (2 / sum(shape[-2:])) ** 0.5
        return jnp.asarray(rng.normal(0, scale, shape), jnp.float32)

    pairs = list(zip(widths[:-1], widths[1:], strict=True))
    params = [(weights((M, a, b)), jnp.zeros((M, b), jnp.float32)) for a, b in pairs]
    if wide:  # layer 1 as (S, D, C*H)
        D, H = pairs[0]
        params[0] = (weights((S, D, C * H)), params[0][1])
    # fixed minibatches (rows offset per member or seed), no shuffling
    lanes = S if wide else M
    rows = (np.arange(steps * B)[None] + 37 * np.arange(lanes)[:, None]) % n
    rows = rows.reshape(lanes, steps, B).transpose(1, 0, 2)  # (steps, lanes, B)
    xb = jnp.asarray(np.asarray(call.x, np.float32)[rows])
    labels = np.asarray(call.y)[rows] % widths[-1]
    if wide:  # each config of a seed sees the seed's labels
        labels = np.repeat(labels, C, axis=1)
    tb = jax.nn.one_hot(jnp.asarray(labels), widths[-1], dtype=jnp.float32)
    run = floor_program(widths, S, wide)
    marker = jnp.zeros((epochs, 0))  # the scan's length as a static shape
    jax.block_until_ready(run(params, xb, tb, marker))  # compile
    return best_of(lambda: jax.block_until_ready(run(params, xb, tb, marker)))


def cut_epochs(call: Call, seconds: float, guess_gflops: float) -> int:
    """Return epochs that take about `seconds` at a guessed rate (<= the full run)."""
    want = seconds * guess_gflops * 1e9 / call.flops_per_epoch()
    return int(min(max(round(want), 2), call.spec.epochs))


def measure(name: str, call: Call, args) -> tuple[float, float]:
    """Print and return (reglab, floor) GFLOP/s of one call."""
    epochs = cut_epochs(call, args.seconds, args.guess)
    flops = call.flops_per_epoch() * epochs
    t_reglab = reglab_seconds(call, epochs)
    layouts = {"per-member": floor_seconds(call, epochs, wide=False)}
    if call.configs > 1:
        layouts["wide"] = floor_seconds(call, epochs, wide=True)
    seeds, n_params = len(call.ensemble.seeds), parameters(call.spec.model.widths)
    groups, per_group = group_shape(seeds, call.configs, n_params)
    if groups > 1:  # the trainer's groups, one after the other
        for wide in (False, True):
            one = floor_seconds(call, epochs, wide=wide, configs=per_group)
            layouts[f"{groups}x{per_group} {'wide' if wide else 'per-member'}"] = (
                groups * one
            )
    best = min(layouts, key=layouts.get)
    t_floor = layouts[best]
    rate, floor = flops / t_reglab / 1e9, flops / t_floor / 1e9
    ratio = rate / floor
    widths = "-".join(map(str, call.spec.model.widths))
    label = f"{name}{'/' + call.name if call.name else ''}"
    verdict = "ok" if ratio >= TARGET else "below"
    print(
        f"  {label:<22} {call.members:3d} members  {widths:<15}"
        f" B={call.spec.batch_size:<4} N={len(call.x):<5}"
        f" {call.spec.optimizer.name:<5} {epochs:5d} ep"
        f"  reglab {rate:6.1f}  floor {floor:6.1f} GFLOP/s  ratio {ratio:5.0%}"
        f"  (target >= {TARGET:.0%}: {verdict})  [{t_reglab:.2f} s / {t_floor:.2f} s"
        f" {best}]"
    )
    return rate, floor


def main() -> None:
    """Print each experiment's training FLOPs, rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="per reglab run")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs, best kept")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--guess", type=float, default=60.0, help="GFLOP/s guessed to cut epochs"
    )
    parser.add_argument("--only", nargs="*", choices=sorted(EXPERIMENTS))
    parser.add_argument("--cores", type=int, help="pin to this many cores first")
    args = parser.parse_args()
    REPEATS[0] = args.repeats
    print(
        f"JAX {jax.__version__}, devices: {len(jax.devices())}"
        f" ({jax.devices()[0].platform}), {args.seeds} seeds; FLOPs = 6 x params x"
        " batch per member-step"
    )
    start = time.perf_counter()
    at_floor = at_reglab = 0.0  # core-seconds of every experiment's whole training
    for name, build in EXPERIMENTS.items():
        if args.only and name not in args.only:
            continue
        calls = build(args.seeds)
        total = sum(c.flops_per_epoch() * c.spec.epochs for c in calls)
        parts = ", ".join(
            f"{c.name or 'train'} {c.members}x{c.spec.epochs} ep" for c in calls
        )
        print(f"{name}: training {total / 1e12:.2f} TFLOP ({parts})")
        rates = None
        for call in calls:
            if call.measure:
                rates = measure(name, call, args)
            flops = call.flops_per_epoch() * call.spec.epochs
            at_reglab += flops / (rates[0] * 1e9)
            at_floor += flops / (rates[1] * 1e9)
    cores = len(my_cores() or [0])
    machine = os.cpu_count() or 1
    print(f"total {time.perf_counter() - start:.0f} s")
    print(
        f"whole training, {args.seeds} seeds, on {cores} core(s) as measured: at the"
        f" floor's rate {at_floor:.0f} s, at reglab's {at_reglab:.0f} s"
    )
    if cores == 1:
        print(
            f"over the machine's {machine} cores, each a worker like this: at least"
            f" {at_floor / machine:.0f} s at the floor, {at_reglab / machine:.0f} s at"
            " reglab's rate (training alone: no compile, data, figures or claims)"
        )


if __name__ == "__main__":
    main()
