"""What ``reglab playground`` trains, as an experiment: a saved page re-made by ``run``.

The playground's page is one Config here: the data (two moons: N, position noise,
label flips, data seed), the network (hidden widths, activation), the optimizer, and
per member (the live setting first, then up to seven pins) the schedule and the
regularizers. ``run`` trains it exactly as the page does — the same ``Problem``, the
same padded ensemble, the same compiled program (``chunks``) — so a page saved to the
store and ``reglab run playground -c saved.toml`` are one run with one cache key.

Per-member fields hold one value per member; a single value is shared by all
(``--set l2_strengths=[0,0.0025,0.01]`` trains three members that differ only in L2).
The claims compare each regularized member with an unregularized one where the
config has both, and say whether each member fits the flipped labels (the post's
section 2.1 measure).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from reglab import nn, regularizers
from reglab.data.moons import MoonsPreset
from reglab.ensemble import Ensemble
from reglab.experiments.base import Claim, Progress, Result, config_dict
from reglab.experiments.moons import plane_grid, prob_class1
from reglab.experiments.rules import Rules, check_choice
from reglab.optim import OPTIMIZERS, PENALTIES, OptimizerSpec
from reglab.train import (
    Chunk,
    TrainResult,
    TrainSpec,
    log_spaced_epochs,
    predict,
    train_chunks,
)

NAME = "playground"
# arrays with a leading seed axis (Result.seed_axis); the rest are shared:
# the data, grid and record epochs
SEED_AXIS = (
    "prob",
    "train_loss",
    "test_loss",
    "train_accuracy",
    "test_accuracy",
    "flip_fit",
    "diverged",
    "params_*",
)
MAX_MEMBERS = 8  # the live setting + 7 pins
# Members train padded to the next of these widths (copies of the last member): a
# slider never recompiles, a pin past 2 or 4 members compiles once, and the lone
# live setting does not pay for 8 (2-64-64-2, 3,000 epochs: 1 member 2.7 s, 2 3.1 s,
# 4 3.4 s, 8 6.0 s on the 2-core machine).
WIDTHS = (2, 4, 8)
# ... in two groups, one per core on a 2-core machine (one group kept them on one):
# a fixed layout, so a page gives the same numbers on any machine
GROUPS = 2
MASKS = ("per_batch", "per_example")  # the post's DropoutLayer draws one per batch
BATCH_SIZE = 32  # the post's
N_TEST = 1000  # clean test draw, smaller than weight_decay's: evaluated often
GRID = 64  # the boundary's grid is GRID x GRID points
N_CHUNKS = 100  # chunks per run: a frame can go out after each (10,000 epochs: 101)
N_RECORDS = 60  # log-spaced epochs at which train and test loss are evaluated
# in every program even at 0, so their sliders never recompile (train_chunks)
KEPT = ("l2_strength", "l1_strength", "max_norm", "smoothing")
# Config field -> the per-member setting (reglab.settings' name) it holds
MEMBER_FIELDS = {
    "learning_rates": "learning_rate",
    "alphas": "alpha",
    "taus": "tau",
    "l2_strengths": "l2_strength",
    "l1_strengths": "l1_strength",
    "penalties": "penalty",
    "max_norms": "max_norm",
    "p_drops": "p_drop",
    "masks": "mask",
    "smoothings": "smoothing",
}
REGULARIZERS = ("l2_strength", "l1_strength", "max_norm", "p_drop", "smoothing")


# the registered plug-ins' settings as fields: one value shared by every member
PluginSettings = regularizers.plugin_config_base()


@dataclass(frozen=True)
class Config(PluginSettings, Rules):
    """A playground page; defaults are the post's weight-decay row, one member."""

    n_train: int = 250
    noise: float = 0.1  # position noise (std) of the moons
    flip_fraction: float = 0.1  # probability that a training label is flipped
    data_seed: int = 0
    hidden: tuple[int, ...] = (64, 64)  # 2-64-64-2
    activation: str = "tanh"
    optimizer: str = "sgd"
    epochs: int = 10_000
    # one value per member (live setting, then pins), or one shared by all
    learning_rates: tuple[float, ...] = (0.15,)  # lr_t = lr0 / (1 + t/tau)^alpha
    alphas: tuple[float, ...] = (1.0,)
    taus: tuple[float, ...] = (5e4,)
    l2_strengths: tuple[float, ...] = (0.0025,)  # the post's moderate L2
    l1_strengths: tuple[float, ...] = (0.0,)
    penalties: tuple[str, ...] = ("coupled",)  # how L2/L1 enter the update
    max_norms: tuple[float, ...] = (0.0,)  # 0: off
    p_drops: tuple[float, ...] = (0.0,)
    masks: tuple[str, ...] = ("per_batch",)
    smoothings: tuple[float, ...] = (0.0,)
    seeds: tuple[int, ...] = (0,)  # the page's "seeds k" is 0..k-1

    QUICK = {"epochs": 100}  # 100 epochs, same shapes

    def validate(self) -> None:
        """Raise ValueError for members, choices or data the page cannot train."""
        lengths = {f: len(getattr(self, f)) for f in MEMBER_FIELDS}
        n = max(lengths.values())
        if min(lengths.values()) == 0 or n > MAX_MEMBERS:
            raise ValueError(
                f"per-member settings hold 1 to {MAX_MEMBERS} values (the live setting"
                f" and up to {MAX_MEMBERS - 1} pins), got lengths {lengths} — e.g."
                " l2_strengths=[0, 0.0025]"
            )
        for f, k in lengths.items():
            if k not in (1, n):
                raise ValueError(
                    f"{f} has {k} values but another per-member setting has {n} —"
                    f" give {f} one value (shared by every member) or {n}"
                )
            if k == 1:  # shared: stored once per member, so equal pages hash equal
                object.__setattr__(self, f, getattr(self, f) * n)
        check_choice("activation", self.activation, nn.ACTIVATIONS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        for penalty in self.penalties:
            check_choice("penalties", penalty, PENALTIES)
        for mask in self.masks:
            check_choice("masks", mask, MASKS)
        if isinstance(self.data_seed, bool) or not (
            isinstance(self.data_seed, int) and self.data_seed >= 0
        ):
            raise ValueError(
                f"data_seed must be an integer >= 0, got {self.data_seed!r} — e.g. 0"
            )
        MoonsPreset(self.n_train, self.noise, self.flip_fraction)  # their messages
        if self.n_train < BATCH_SIZE:
            raise ValueError(
                f"n_train must be >= the batch size {BATCH_SIZE}, got {self.n_train}"
                " — the post uses 250"
            )
        model(self)  # MLPSpec's message for a bad width
        TrainSpec(model(self), epochs=self.epochs)  # and TrainSpec's for epochs
        Ensemble(self.seeds, ensemble_values(self))  # the settings table's messages

    @property
    def n_members(self) -> int:
        """The number of members (the live setting and its pins)."""
        return len(self.learning_rates)

    def members(self) -> list[dict[str, Any]]:
        """Return one dict of per-member settings (reglab.settings names) per member."""
        return [
            {k: getattr(self, f)[m] for f, k in MEMBER_FIELDS.items()}
            for m in range(self.n_members)
        ]


def model(cfg: Config) -> nn.MLPSpec:
    """Return the MLP of cfg: dropout layers only if some member drops."""
    dropout = any(p > 0 for p in cfg.p_drops)
    return nn.MLPSpec(
        (2, *cfg.hidden, 2),
        cfg.activation,
        # after every hidden layer, only if some member drops: masks cost steps
        dropout_layers=tuple(range(1, len(cfg.hidden) + 1)) if dropout else (),
        dropout_mode="per_example",  # per-batch members via dropout_per_batch
    )


def padded_width(n: int) -> int:
    """Return the ensemble width that n members train in (see WIDTHS)."""
    return next(w for w in WIDTHS if w >= n)


def ensemble_values(
    cfg: Config, extra: Mapping[str, Sequence] | None = None
) -> dict[str, np.ndarray]:
    """Return the Ensemble columns of cfg's members, padded with copies of the last."""
    members = cfg.members()
    pad = padded_width(len(members)) - len(members)
    members += [members[-1]] * pad
    numbers = [k for f, k in MEMBER_FIELDS.items() if f not in ("penalties", "masks")]
    column = {k: np.asarray([m[k] for m in members], np.float32) for k in numbers}
    flags = {
        "dropout_per_batch": ("mask", "per_batch"),
        "decoupled": ("penalty", "decoupled"),
        "proximal": ("penalty", "proximal"),
    }
    for k, (name, value) in flags.items():
        column[k] = np.asarray([m[name] == value for m in members])
    for row in regularizers.plugin_rows():  # plug-ins: shared by every member
        column[row.name] = np.full(len(members), getattr(cfg, row.name, row.default))
    for k, values in (extra or {}).items():  # the page's per-member values win
        column[k] = np.asarray([*values, *[values[-1]] * pad])
    return column


@dataclass(frozen=True)
class Problem:
    """Everything one run trains on: data, the static spec, the members."""

    spec: TrainSpec
    ensemble: Ensemble
    x: np.ndarray  # (N, 2)
    y: np.ndarray  # (N,) after flips
    flipped: np.ndarray  # (N,) bool
    x_test: np.ndarray  # (N_TEST, 2) clean
    y_test: np.ndarray
    grid_x: np.ndarray  # (GRID,)
    grid_y: np.ndarray
    points: np.ndarray  # (GRID * GRID, 2)
    n_members: int  # the real members; the rest of the ensemble is padding

    @property
    def records(self) -> np.ndarray:
        """The epochs at which train and test loss are evaluated."""
        return log_spaced_epochs(self.spec.epochs, N_RECORDS)


def problem(cfg: Config, extra: Mapping[str, Sequence] | None = None) -> Problem:
    """Return the data, spec and ensemble of a config.

    extra: per-member values of settings the Config has no field for (a row added
    to the table, e.g. by a plug-in), one per member; the playground trains them.
    """
    moons = MoonsPreset(cfg.n_train, cfg.noise, cfg.flip_fraction)
    data, test = moons.train(cfg.data_seed), moons.test(N_TEST, cfg.data_seed)
    spec = TrainSpec(
        model(cfg),
        OptimizerSpec(cfg.optimizer, penalty="coupled"),  # the rest per member
        epochs=cfg.epochs,
        batch_size=BATCH_SIZE,
        chunk_epochs=math.ceil((cfg.epochs + 1) / N_CHUNKS),
    )
    gx, gy, points = plane_grid(data.x, GRID)
    ensemble = Ensemble(cfg.seeds, ensemble_values(cfg, extra))
    return Problem(
        spec, ensemble, data.x, data.y, data.flipped, test.x, test.y, gx, gy,
        points, cfg.n_members,
    )  # fmt: skip


def chunks(p: Problem, progress: Progress | None = None) -> Iterator[Chunk]:
    """Train p's ensemble, yielding after each chunk: the page's and run's program."""
    return train_chunks(
        p.spec, p.ensemble, p.x, p.y,
        eval_sets={"train": (p.x, p.y), "test": (p.x_test, p.y_test)},
        record=p.records.tolist(), keep_settings=KEPT, progress=progress,
        groups=GROUPS,
    )  # fmt: skip


def result(cfg: Config, p: Problem, trained: TrainResult) -> Result:
    """Return the Result of a finished run: boundaries, curves, flips fitted."""
    n = p.n_members
    params = {k: v[:, :n] for k, v in trained.params.items()}  # (S, M, ...)
    logits = predict(p.spec.model, params, p.points)  # (S, M, GRID*GRID, 2)
    S = len(cfg.seeds)
    on_train = predict(p.spec.model, params, p.x).argmax(-1)  # (S, M, N)
    flipped = p.flipped
    # fraction of flipped points predicted with their (flipped) training label
    flip_fit = (
        (on_train[..., flipped] == p.y[flipped]).mean(-1)
        if flipped.any()
        else (np.full((S, n), np.nan))
    )
    h = trained.history
    arrays = {
        "x_train": p.x,
        "y_train": p.y,
        "flipped": flipped,
        "grid_x": p.grid_x,
        "grid_y": p.grid_y,
        "prob": prob_class1(logits).reshape(S, n, GRID, GRID).astype(np.float32),
        "record_epochs": trained.record_epochs,
        "train_loss": h["train"]["loss"][:, :n],  # (S, M, R) on the noisy labels
        "test_loss": h["test"]["loss"][:, :n],  # on the clean test draw
        "train_accuracy": h["train"]["accuracy"][:, :n],
        "test_accuracy": h["test"]["accuracy"][:, :n],
        "flip_fit": flip_fit,  # (S, M)
        "diverged": trained.diverged[:, :n],
        **{f"params_{k}": v for k, v in params.items()},
    }
    timings = {"compile_s": trained.compile_seconds, "run_s": trained.run_seconds}
    return Result(
        NAME, config_dict(cfg), arrays, timings, list(trained.failures),
        seed_axis=SEED_AXIS,
    )  # fmt: skip


def run(cfg: Config, *, progress: Progress | None = None) -> Result:
    """Train the page's members as one program; return boundaries and curves."""
    p = problem(cfg)
    (last,) = collections.deque(chunks(p, progress), maxlen=1)
    return result(cfg, p, last.result())


def regularized(member: dict[str, Any]) -> bool:
    """Whether a member's settings turn on any regularizer."""
    return any(member[k] > 0 for k in REGULARIZERS)


def label(member: dict[str, Any]) -> str:
    """Return a member's regularizers in a few words, e.g. 'L2 0.0025, p 0.2'."""
    names = {"l2_strength": "L2", "l1_strength": "L1", "max_norm": "max-norm",
             "p_drop": "dropout", "smoothing": "smoothing"}  # fmt: skip
    parts = [f"{names[k]} {member[k]:g}" for k in REGULARIZERS if member[k] > 0]
    decays = member["l2_strength"] > 0 or member["l1_strength"] > 0
    if member["penalty"] != "coupled" and decays:
        parts.append(member["penalty"])
    return ", ".join(parts) or "unregularized"


def members_of(result: Result) -> list[dict[str, Any]]:
    """Return the per-member settings of a Result's config."""
    cfg = {f.name: result.config[f.name] for f in fields(Config)}
    return Config(**{k: tuple(v) if isinstance(v, list) else v
                     for k, v in cfg.items()}).members()  # fmt: skip


def claims(result: Result) -> list[Claim]:
    """Return, per member, the flip-fitting claim and the comparison with λ = 0."""
    a, members = result.arrays, members_of(result)
    acc = a["test_accuracy"][:, :, -1]  # (S, M) clean test accuracy at the end
    n_flips = int(a["flipped"].sum())
    bare = [m for m, member in enumerate(members) if not regularized(member)]
    out = []
    for m, member in enumerate(members):
        name = f"member{m}"
        if n_flips and regularized(member):
            out.append(Claim.over_seeds(
                f"{name}_ignores_flips",
                f"Member {m} ({label(member)}) smooths over the flipped labels.",
                a["flip_fit"][:, m], 0.5, "<",
                f"fraction of the {n_flips} flipped training points predicted with"
                " their flipped label",
                why="too weak a regularizer, or too few epochs to see the difference",
            ))  # fmt: skip
        elif n_flips:
            out.append(Claim.over_seeds(
                f"{name}_fits_flips",
                f"Member {m}, unregularized, fits the flipped labels.",
                a["flip_fit"][:, m], 0.5, ">",
                f"fraction of the {n_flips} flipped training points predicted with"
                " their flipped label",
                why="an unregularized net needs many epochs (the post: 10,000) to"
                " carve islands around the flips",
            ))  # fmt: skip
        if bare and regularized(member):
            b = bare[0]
            out.append(Claim.over_seeds(
                f"{name}_beats_member{b}",
                f"Member {m} ({label(member)}) reaches a higher clean test accuracy"
                f" than unregularized member {b}.",
                acc[:, m] - acc[:, b], 0.0, ">",
                f"clean test accuracy of member {m} ({acc[:, m].mean():.3f}) minus"
                f" member {b} ({acc[:, b].mean():.3f}), {N_TEST} test points",
                why="a strong regularizer cannot thread the moons; on clean data"
                " (no flips, little noise) there is little to gain",
            ))  # fmt: skip
    if not out:  # no flips and no unregularized member: the least one can say
        out.append(Claim.over_seeds(
            "members_learn_the_moons",
            "Every member separates the moons better than chance.",
            acc.min(1), 0.5, ">",
            "lowest clean test accuracy over the members",
        ))  # fmt: skip
    return out
