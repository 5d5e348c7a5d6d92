"""Your study: any MLP, dataset, optimizer and grid of per-member settings, from TOML.

A study is an experiment whose Config is the whole question: the data (the post's
moons with their noise and flipped labels, MNIST or Fashion-MNIST subsets, or a file,
``npz:PATH`` / ``csv:PATH``, whose sha256 joins the run's key), the network (hidden
widths, activation), the optimizer and its penalty kind, the schedule, epochs and
batch size, the seeds, and a ``grid``: per-member settings of ``reglab list``'s table
(built-in or a registered plug-in's), each a value or a list of values. The members
are seeds x the product of the grid's lists, trained as one compiled program.

``reglab run study -c FILE.toml`` with ``[grid] l2_strength = [0, 1e-3]`` trains
both strengths side by side; ``--set epochs=500``, ``--grid grid.l2_strength=0,1e-3``
and a TOML ``[sweep]`` (``grid.smoothing = [0.0, 0.1]``) work as for any experiment.

It reports what a researcher reads first: train and test loss and accuracy curves,
the test NLL and ECE with a reliability diagram (``reglab.metrics``), each layer's
weight norm and sparsity, and for 2-D inputs the decision boundaries. Its claims are
plain comparisons of each member with its baseline (the same schedule, every other
grid setting at its default, which does nothing) where the grid has one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reglab import metrics, nn, settings
from reglab.data import files
from reglab.ensemble import Ensemble
from reglab.experiments.base import Claim, Progress, Result, config_dict
from reglab.experiments.moons import plane_grid
from reglab.experiments.rules import Interval, Options, Rules, shrink
from reglab.optim import OPTIMIZERS, PENALTIES, OptimizerSpec
from reglab.train import TrainSpec, log_spaced_epochs, predict, train

NAME = "study"
BUILTIN = ("moons", "mnist", "fashion_mnist")
GRID = 80  # boundary panels: GRID x GRID points over the inputs' bounding box
# n_train = 0 / n_test = 0 take the dataset's own size
N_TRAIN = {"moons": 250, "mnist": 1000, "fashion_mnist": 1000}  # the post's
N_TEST = {"moons": 1000, "mnist": 10_000, "fashion_mnist": 10_000}
# grid settings compared like for like, never against each other's default
SCHEDULE = ("learning_rate", "alpha", "tau")
# the Result's arrays with a seed axis first (the rest: data, grid, epochs)
SEED_AXIS = (
    "train_loss", "test_loss", "train_accuracy", "test_accuracy", "diverged", "nll",
    "ece", "brier", "reliability_conf", "reliability_acc", "weight_norm", "sparsity",
    "boundary",
)  # fmt: skip


@dataclass(frozen=True)
class Config(Rules):
    """One study; defaults: the post's noisy moons, L2 off against its moderate L2."""

    # "moons", "mnist", "fashion_mnist", "npz:PATH" or "csv:PATH" (relative to a
    # TOML file's folder); a file's sha256 is appended, so a changed file is a new run
    dataset: str = "moons"
    n_train: int = 0  # 0: moons 250, images 1000 (stratified), a file all its rows
    n_test: int = 0  # 0: moons 1000 clean points, images 10,000, a file's test rows
    test_fraction: float = 0.2  # a file without x_test/y_test: held out, stratified
    noise: float = 0.1  # moons only: position noise (std)
    flip_fraction: float = 0.1  # moons only: share of training labels flipped
    standardize: bool = False  # z-score inputs with the training mean and std
    data_seed: int = 0  # draws the moons, the subsets and the held-out split
    hidden: tuple[int, ...] = (64, 64)  # hidden widths; inputs and classes from data
    activation: str = "tanh"
    optimizer: str = "sgd"  # "sgd" or "adam"
    penalty: str = "coupled"  # how L2/L1 enter: coupled, decoupled (AdamW), proximal
    learning_rate: float = 0.15  # lr_t = learning_rate / (1 + t/tau)^alpha
    alpha: float = 1.0
    tau: float = 5e4
    epochs: int = 2000
    batch_size: int = 32
    n_record: int = 40  # log-spaced epochs (0 included) for the curves
    n_bins: int = 15  # equal-mass confidence bins of the ECE (the post's)
    sparsity_threshold: float = 1e-3  # |w| below it counts as zero
    # per-member settings (``reglab list``), a value or a list each; the members are
    # the product of the lists (a grid setting wins over the fields above)
    grid: dict[str, Any] = field(default_factory=lambda: {"l2_strength": [0.0, 0.0025]})
    seeds: tuple[int, ...] = (0,)

    constraints = {
        "epochs": Interval(int, 1, None),
        "batch_size": Interval(int, 1, None),
        "n_record": Interval(int, 2, None),
        "n_bins": Interval(int, 1, None),
        "n_train": Interval(int, 0, None, fix="e.g. 0 (the dataset's own size)"),
        "n_test": Interval(int, 0, None, fix="e.g. 0 (the dataset's own size)"),
        "data_seed": Interval(int, 0, None, fix="e.g. 0"),
        "activation": Options(tuple(nn.ACTIVATIONS)),
        "optimizer": Options(tuple(OPTIMIZERS)),
        "penalty": Options(tuple(PENALTIES)),
        "test_fraction": Interval(float, 0, 1, "neither", fix="e.g. 0.2"),
        "sparsity_threshold": Interval(float, 0, None, fix="e.g. 1e-3"),
    }  # fmt: skip
    QUICK = {"epochs": shrink(20, floor=2)}  # 20x fewer epochs, same shapes

    def validate(self) -> None:
        """Raise ValueError for data, grid and sizes that do not fit together."""
        object.__setattr__(self, "dataset", files.check_dataset(self.dataset, BUILTIN))
        if self.dataset != "moons" and self.flip_fraction != 0:
            raise ValueError(
                f"flip_fraction flips the moons' labels only, got {self.flip_fraction}"
                f" for dataset {self.dataset.partition('#')[0]!r} — set"
                " flip_fraction = 0"
            )
        object.__setattr__(self, "grid", checked_grid(self.grid))
        check_sizes(self)
        nn.MLPSpec((1, *self.hidden, 2), self.activation)  # its message for widths
        members(self)  # the settings table's messages for every value


def check_sizes(cfg: Config) -> None:
    """Raise ValueError when the data cannot give n_train examples or one batch.

    A file is read and checked here (its one-line messages), before anything trains.
    """
    if files.is_file(cfg.dataset):
        found = files.load(cfg.dataset)
        n = len(found.x)
        if found.x_test is None:
            n -= max(found.n_classes, round(cfg.test_fraction * n))
            if n < found.n_classes:
                raise ValueError(
                    f"{found.path} has {len(found.x)} rows: too few to hold out a test"
                    " split of every class — add rows, or save x_test and y_test in"
                    " an npz"
                )
        if cfg.n_train > n:
            raise ValueError(
                f"n_train must be <= the {n} training rows of {found.path}, got"
                f" {cfg.n_train} — use n_train = 0 for all of them"
            )
        n = cfg.n_train or n
    else:
        n = cfg.n_train or N_TRAIN[cfg.dataset]
        if cfg.dataset == "moons":
            from reglab.data.moons import MoonsPreset

            MoonsPreset(n, cfg.noise, cfg.flip_fraction)  # its messages
    if cfg.batch_size > n:
        raise ValueError(
            f"batch_size must be <= the {n} training examples, got {cfg.batch_size}"
            " — lower batch_size or raise n_train"
        )


def checked_grid(grid: Any) -> dict[str, list]:
    """Return the grid as {setting: [values]}, its names checked against the table."""
    if not isinstance(grid, dict):
        raise TypeError(
            f"grid must be a table of per-member settings, got {grid!r} — e.g."
            " [grid] l2_strength = [0, 1e-3]"
        )
    rows = {s.name: s for s in settings.table()}
    out = {}
    for name, values in grid.items():
        if name not in rows:
            import difflib

            match = difflib.get_close_matches(name, list(rows), n=1)
            hint = f"did you mean {match[0]}?" if match else "see reglab list"
            raise ValueError(
                f"grid setting {name!r} is not in the settings table — {hint} (a"
                " plug-in's settings appear once it is installed or --plugin loads it)"
            )
        values = list(values) if isinstance(values, list | tuple) else [values]
        if not values:
            raise ValueError(f"grid {name} has no values — give at least one")
        rows[name].check(values)  # the row's own message
        out[name] = values
    return out


def members(cfg: Config) -> Ensemble:
    """Return the ensemble: seeds x the product of the grid's lists."""
    shared: dict[str, Any] = {
        "learning_rate": cfg.learning_rate,
        "alpha": cfg.alpha,
        "tau": cfg.tau,
        "decoupled": cfg.penalty == "decoupled",
        "proximal": cfg.penalty == "proximal",
    }
    # the grid's own order sets the product's (its first setting varies slowest)
    rest = {k: v for k, v in shared.items() if k not in cfg.grid}
    return Ensemble.grid(seeds=cfg.seeds, **rest, **cfg.grid)


def columns(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Return each member column's grid values, in the ensemble's (product) order.

    From the config alone, so a stored Result's figures and claims need neither its
    arrays nor the plug-ins that defined its settings.
    """
    keys = list(grid)
    return [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*grid.values())
    ]


def column_labels(grid: dict[str, list]) -> list[str]:
    """Return one label per member column, e.g. 'l2_strength=0.0025'."""
    varying = [k for k, v in grid.items() if len(v) > 1] or list(grid)
    return [
        ", ".join(f"{k}={float(point[k]):g}" for k in varying) or "default"
        for point in columns(grid)
    ]


def baselines(grid: dict[str, list]) -> list[int]:
    """Return each column's baseline: the column with its schedule and every other
    grid setting off (-1 where the grid has none).

    Every regularizer's default does nothing and is 0 (a strength) or off (a flag),
    the seam's contract, so 'off' needs no settings table.
    """
    points = columns(grid)
    schedule = [k for k in grid if k in SCHEDULE]
    out = []
    for point in points:
        found = [
            b for b, other in enumerate(points)
            if all(other[k] == point[k] for k in schedule)
            and all(float(other[k]) == 0.0 for k in grid if k not in schedule)
        ]  # fmt: skip
        out.append(found[0] if found else -1)
    return out


def load_data(cfg: Config) -> dict[str, np.ndarray]:
    """Return x, y, x_test, y_test (and flipped for moons), checked and seeded."""
    from reglab import data

    if cfg.dataset == "moons":
        moons = data.MoonsPreset(cfg.n_train or N_TRAIN["moons"], cfg.noise,
                                 cfg.flip_fraction)  # fmt: skip
        train_set = moons.train(cfg.data_seed)
        test = moons.test(cfg.n_test or N_TEST["moons"], cfg.data_seed)
        out = {"x": train_set.x, "y": train_set.y, "flipped": train_set.flipped,
               "x_test": test.x, "y_test": test.y}  # fmt: skip
    elif cfg.dataset in BUILTIN:
        x, y = data.load(cfg.dataset, split="train")
        x_test, y_test = data.load(cfg.dataset, split="test")
        x, y = data.subset(
            x, y, cfg.n_train or N_TRAIN[cfg.dataset], seed=cfg.data_seed
        )
        n_test = cfg.n_test or N_TEST[cfg.dataset]
        x_test, y_test = data.subset(x_test, y_test, n_test, seed=cfg.data_seed)
        out = {"x": x, "y": y, "x_test": x_test, "y_test": y_test}
    else:
        out = file_data(cfg)
    if cfg.standardize:
        mean, std = out["x"].mean(0), out["x"].std(0)
        std = np.where(std > 0, std, 1.0)  # a constant column stays as it is
        out["x"] = (out["x"] - mean) / std
        out["x_test"] = (out["x_test"] - mean) / std
    out["x"] = out["x"].astype(np.float32)
    out["x_test"] = out["x_test"].astype(np.float32)
    return out


def file_data(cfg: Config) -> dict[str, np.ndarray]:
    """Return a file's training and test arrays: its own test split, or held out."""
    from reglab import data

    found = files.load(cfg.dataset)
    x, y = found.x, found.y
    if found.x_test is None:
        n_held = max(found.n_classes, round(cfg.test_fraction * len(x)))
        x, y, x_test, y_test = data.train_val_split(x, y, n_held, seed=cfg.data_seed)
    else:
        x_test, y_test = found.x_test, found.y_test
    if cfg.n_train:
        x, y = data.subset(x, y, cfg.n_train, seed=cfg.data_seed)
    if cfg.n_test and cfg.n_test < len(x_test):
        x_test, y_test = data.subset(x_test, y_test, cfg.n_test, seed=cfg.data_seed)
    return {"x": x, "y": y, "x_test": x_test, "y_test": y_test}


def model(cfg: Config, n_in: int, n_classes: int) -> nn.MLPSpec:
    """Return the MLP: dropout layers after every hidden layer if some member drops."""
    drops = any(float(p) > 0 for p in cfg.grid.get("p_drop", [0.0]))
    return nn.MLPSpec(
        (n_in, *cfg.hidden, n_classes),
        cfg.activation,
        dropout_layers=tuple(range(1, len(cfg.hidden) + 1)) if drops else (),
    )


def run(cfg: Config, *, progress: Progress | None = None) -> Result:
    """Train the study's members as one program; return curves, calibration, norms."""
    d = load_data(cfg)
    K = int(max(d["y"].max(), d["y_test"].max())) + 1
    spec = TrainSpec(
        model(cfg, d["x"].shape[1], K),
        OptimizerSpec(cfg.optimizer),  # the penalty kind is per member (members())
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
    )
    ensemble = members(cfg)
    trained = train(
        spec, ensemble, d["x"], d["y"],
        eval_sets={"train": (d["x"], d["y"]), "test": (d["x_test"], d["y_test"])},
        record=log_spaced_epochs(cfg.epochs, cfg.n_record), progress=progress,
    )  # fmt: skip
    arrays = measurements(cfg, spec.model, trained.params, d)
    h = trained.history
    arrays.update(
        record_epochs=trained.record_epochs,
        train_loss=h["train"]["loss"], test_loss=h["test"]["loss"],  # (S, C, R)
        train_accuracy=h["train"]["accuracy"], test_accuracy=h["test"]["accuracy"],
        diverged=trained.diverged,  # (S, C)
    )  # fmt: skip
    arrays["n_classes"] = np.asarray(K)
    timings = {"compile_s": trained.compile_seconds, "run_s": trained.run_seconds}
    return Result(
        NAME, config_dict(cfg), arrays, timings, list(trained.failures),
        seed_axis=SEED_AXIS,
    )  # fmt: skip


def measurements(
    cfg: Config, spec: nn.MLPSpec, params: dict, d: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Return the end-of-training numbers: NLL, ECE, reliability, norms, boundaries."""
    logits = predict(spec, params, d["x_test"])  # (S, C, N_test, K)
    cal = metrics.calibration(logits, d["y_test"], n_bins=cfg.n_bins)
    weights = [params[f"W{l}"] for l in range(1, len(spec.widths))]  # (S, C, i, o)
    out = {
        "nll": metrics.nll(logits, d["y_test"]),  # (S, C)
        "ece": cal.ece,  # (S, C)
        "brier": metrics.brier_score(logits, d["y_test"]),
        "reliability_conf": cal.conf,  # (S, C, n_bins)
        "reliability_acc": cal.acc,
        "weight_norm": np.stack([np.sqrt((W**2).sum((-2, -1))) for W in weights], -1),
        "sparsity": np.stack(
            [(np.abs(W) < cfg.sparsity_threshold).mean((-2, -1)) for W in weights], -1
        ),  # (S, C, layers)
    }
    if d["x"].shape[1] == 2:  # the plane: boundaries like the post's figure 2
        gx, gy, points = plane_grid(d["x"], GRID)
        p = predict(spec, params, points)  # (S, C, GRID*GRID, K)
        p = np.exp(p - p.max(-1, keepdims=True))
        p = p / p.sum(-1, keepdims=True)
        shape = (*p.shape[:2], GRID, GRID)
        out.update(
            grid_x=gx, grid_y=gy, x_train=d["x"], y_train=d["y"],
            # P(class 1) for two classes; the predicted class for more
            boundary=(p[..., 1] if p.shape[-1] == 2 else p.argmax(-1)).reshape(shape),
        )  # fmt: skip
        if "flipped" in d:
            out["flipped"] = d["flipped"]
    return out


def labels_of(result: Result) -> list[str]:
    """Return the member columns' labels of a study's Result."""
    return column_labels(result.config["grid"])


def claims(result: Result) -> list[Claim]:
    """Return each grid point against the baseline: test NLL and accuracy."""
    a, labels = result.arrays, labels_of(result)
    acc = a["test_accuracy"][:, :, -1]  # (S, C)
    epochs = result.config["epochs"]
    out = []
    for c, (label, base) in enumerate(
        zip(labels, baselines(result.config["grid"]), strict=True)
    ):
        if base < 0 or c == base:
            continue
        out.append(Claim.over_seeds(
            f"nll_{c}_below_baseline",
            f"{label} ends with a lower test NLL than the baseline"
            f" ({labels[base]}).",
            a["nll"][:, c] - a["nll"][:, base], 0.0, "<",
            f"test NLL of {label} minus {labels[base]}'s, after {epochs} epochs",
            why="a comparison, not a promise: a regularizer can cost likelihood when"
            " it is too strong, or change nothing measurable in few epochs",
        ))  # fmt: skip
        out.append(Claim.over_seeds(
            f"accuracy_{c}_above_baseline",
            f"{label} ends with a higher test accuracy than the baseline"
            f" ({labels[base]}).",
            acc[:, c] - acc[:, base], 0.0, ">",
            f"test accuracy of {label} minus {labels[base]}'s",
            why="on clean or easy data there is little accuracy to gain",
        ))  # fmt: skip
    if not out:  # no baseline: the least one can say
        out.append(Claim.over_seeds(
            "members_beat_chance",
            "Every member's test accuracy beats guessing the class.",
            acc.min(1), 1.0 / int(a["n_classes"]), ">",
            "lowest test accuracy over the grid's members",
        ))  # fmt: skip
    return out
