"""Section 5: early stopping, and where in input space the first layer learns.

Main run: the post's MLP (784 -> 128 -> 128 -> 10, tanh) on N = 1000 Fashion-MNIST
images with SGD for 1000 epochs of two steps each. Train and test loss are recorded at
log-spaced epochs; W1 is snapshotted at a few log-spaced times, and the energy of
Delta W1(t) = W1(t) - W1(0) along the training inputs' principal components shows
whether learning sits in the top (high-variance) or the bottom PCs.

User run: early stopping as one would use it, with no test set in sight: 200 of the
1000 images are held out as a validation set, the other 800 are trained on, and
training stops once the validation loss has not improved for ``patience`` epochs (the
best epoch's parameters are restored). Its test loss is compared with the best point of
its own training set's test curve: the same 800 images, seeds and batch order trained
for every epoch without stopping (the "own" run), so the comparison is not muddied by
the main run's 200 extra images.

Figures and sliders live in ``early_stopping_figures`` (matplotlib is imported only
there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reglab import data, nn, spectral
from reglab.data import files
from reglab.ensemble import Ensemble
from reglab.experiments.base import Claim, Progress, Result, config_dict
from reglab.experiments.early_stopping_moments import (
    FLAT_FRACTION,
    SHIFT_FRACTION,
    doublings,
    flattening_epochs,
    shift_epochs,
    test_optimum,
)
from reglab.experiments.rules import Interval, Rules, shrink
from reglab.optim import OptimizerSpec
from reglab.train import EarlyStopping, TrainSpec, log_spaced_epochs, predict, train

NAME = "early_stopping"
# arrays with a leading seed axis (Result.seed_axis); the rest are shared:
# epochs and the inputs' spectrum
SEED_AXIS = (
    "train_loss",
    "test_loss",
    "train_accuracy",
    "test_accuracy",
    "cumulative_energy",
    "rank_at_energy",
    "user_*",
    "own_*",
)
DATASETS = ("fashion_mnist", "mnist")
N_BUNDLED_TRAIN = 5000  # training images bundled offline
N_TEST_IMAGES = 10_000


@dataclass(frozen=True)
class Config(Rules):
    """The early-stopping run of section 5; defaults are the post's section 7 row."""

    dataset: str = "fashion_mnist"
    n_train: int = 1000  # stratified subset of the bundled training images
    # The full 10,000 test images cost ~2.4 GFLOP per record point and push the whole
    # experiment past ~12 s on 2 CPU cores; a stratified half keeps the curve's shape.
    n_test: int = 5000
    data_seed: int = 0  # picks the training, test and validation subsets
    widths: tuple[int, ...] = (784, 128, 128, 10)
    learning_rate: float = 0.05  # SGD (0.05, 1, 5e3)
    alpha: float = 1.0
    tau: float = 5e3
    epochs: int = 1000
    batch_size: int = 500  # two SGD steps per epoch
    n_record: int = 60  # log-spaced record epochs (0 included)
    # log-spaced W1 snapshots (0 included) for figure 10; 16 resolve the energy shift
    # to about a factor 1.6 in time, where the post's 10 would give 2.2
    n_snapshots: int = 16
    energy_rank: int = 10  # k of the E_{<=k} claims
    energy_fraction: float = 0.9  # rank_at_energy(fraction) for the spreading claim
    # Beyond the post: early stopping as a user runs it, on a held-out validation split
    n_val: int = 200  # held out of the n_train images; the rest are trained on
    val_every: int = 5  # validation loss every k epochs (the early-stopping check)
    patience: int = 50  # epochs without a new validation minimum before stopping
    seeds: tuple[int, ...] = (0,)

    constraints = {
        "n_train": Interval(int, 2, None),
        "n_test": Interval(int, 1, None),
        "epochs": Interval(int, 2, None, fix="an early and a late time"),
        "batch_size": Interval(int, 1, None),
        "n_record": Interval(int, 2, None),
        "n_snapshots": Interval(
            int, 3, None, fix="epoch 0, an early and a late time"
        ),
        "energy_rank": Interval(int, 1, None, fix="a count of PCs, e.g. 10"),
        "energy_fraction": Interval(float, 0, 1, "right", fix="e.g. 0.9"),
        "n_val": Interval(int, 1, None),
        "val_every": Interval(int, 1, None),
        "patience": Interval(int, 1, None),
    }  # fmt: skip
    # 10x fewer epochs and a shorter patience
    QUICK = {
        "epochs": shrink(10, floor=2),
        "patience": shrink(5),
        "val_every": shrink(5),
    }

    def validate(self) -> None:
        """Raise ValueError for splits, batch, widths or energy rank that do not fit."""
        # a file's sha256 joins its name, so a changed file is another run
        object.__setattr__(self, "dataset", files.check_dataset(self.dataset, DATASETS))
        if not files.is_file(self.dataset):  # a file's sizes: check_file_shapes
            Interval(
                int,
                2,
                N_BUNDLED_TRAIN,
                fix="the bundled training images; lower n_train",
            ).check("n_train", self.n_train)
            Interval(
                int, 1, N_TEST_IMAGES, fix=f"use {N_TEST_IMAGES} for the whole test set"
            ).check("n_test", self.n_test)
        if self.n_val >= self.n_train:
            raise ValueError(
                f"n_val must be < n_train={self.n_train}, got {self.n_val} — the"
                " user run trains on the n_train - n_val images left"
            )
        if self.batch_size > self.n_train - self.n_val:
            raise ValueError(
                f"batch_size must be <= n_train - n_val = {self.n_train - self.n_val}"
                f" (the user run's training set), got {self.batch_size}"
                " — lower batch_size or n_val"
            )
        if files.is_file(self.dataset):
            check_file_shapes(self)
        elif len(self.widths) < 2 or self.widths[0] != 784 or self.widths[-1] != 10:
            raise ValueError(
                f"widths must be (784, hidden..., 10) for 28x28 images in 10 classes,"
                f" got {self.widths!r} — e.g. (784, 128, 128, 10)"
            )
        if self.energy_rank > self.widths[0]:
            raise ValueError(
                f"energy_rank must be in [1, {self.widths[0]}] (a count of PCs), got"
                f" {self.energy_rank} — e.g. 10"
            )


def check_file_shapes(cfg: Config) -> None:
    """Raise ValueError unless a file dataset fits the widths and has a test split."""
    found = files.load(cfg.dataset)
    if found.x_test is None:
        raise ValueError(
            f"{found.path} has no test split — early_stopping measures test loss;"
            " save x_test and y_test in an npz:PATH file"
        )
    n, d = found.x.shape
    if cfg.widths[0] != d or cfg.widths[-1] != found.n_classes:
        raise ValueError(
            f"widths must start at {d} features and end at {found.n_classes} classes"
            f" for {found.path}, got {cfg.widths!r} — e.g. ({d}, 128, 128,"
            f" {found.n_classes})"
        )
    if cfg.n_train > n or cfg.n_test > len(found.x_test):
        raise ValueError(
            f"n_train={cfg.n_train} and n_test={cfg.n_test} must fit the {n} training"
            f" and {len(found.x_test)} test rows of {found.path} — lower them"
        )


def load_data(cfg: Config) -> tuple[np.ndarray, ...]:
    """Return (x_train, y_train, x_test, y_test): stratified subsets, seeded."""
    if files.is_file(cfg.dataset):
        found = files.load(cfg.dataset)
        x, y, x_test, y_test = found.x, found.y, found.x_test, found.y_test
    else:
        x, y = data.load(cfg.dataset, split="train")
        x_test, y_test = data.load(cfg.dataset, split="test")
    x, y = data.subset(x, y, cfg.n_train, seed=cfg.data_seed)  # (N, 784), (N,)
    x_test, y_test = data.subset(x_test, y_test, cfg.n_test, seed=cfg.data_seed)
    return x, y, x_test, y_test


def run(cfg: Config, *, progress: Progress | None = None) -> Result:
    """Train the main run, the user's early-stopped run and its unstopped twin."""
    x, y, x_test, y_test = load_data(cfg)
    E = cfg.epochs
    model = nn.MLPSpec(cfg.widths, activation="tanh")
    spec = TrainSpec(model, OptimizerSpec("sgd"), epochs=E, batch_size=cfg.batch_size)
    ensemble = Ensemble.grid(
        seeds=cfg.seeds, learning_rate=cfg.learning_rate, alpha=cfg.alpha, tau=cfg.tau
    )

    def progress_of(offset: int):
        if progress is None:
            return None
        return lambda done, total: progress(offset + done, 3 * total)

    # --- main run: all n_train images; losses on train and test, W1 snapshots -----
    snapshot_epochs = log_spaced_epochs(E, cfg.n_snapshots)
    # record the snapshot epochs too, so figure 10 can mark them on the loss curves
    record = np.union1d(log_spaced_epochs(E, cfg.n_record), snapshot_epochs)
    main = train(
        spec,
        ensemble,
        x,
        y,
        eval_sets={"train": (x, y), "test": (x_test, y_test)},
        record=record,
        snapshot_params=("W1",),
        snapshot_epochs=snapshot_epochs,
        progress=progress_of(0),
    )
    user, own, user_arrays = _user_runs(
        cfg, spec, ensemble, (x, y, x_test, y_test), record, progress_of
    )
    if progress is not None:
        progress(3 * E, 3 * E)
    arrays = {
        "record_epochs": main.record_epochs,  # (R,)
        "train_loss": main.history["train"]["loss"][:, 0],  # (S, R)
        "test_loss": main.history["test"]["loss"][:, 0],
        "train_accuracy": main.history["train"]["accuracy"][:, 0],
        "test_accuracy": main.history["test"]["accuracy"][:, 0],
        **_spectrum(cfg, x, main),
        **user_arrays,
        "own_test_loss": own.history["test"]["loss"][:, 0],  # (S, R) at record_epochs
        "own_test_accuracy": own.history["test"]["accuracy"][:, 0],
    }
    runs = (main, user, own)
    return Result(
        NAME,
        config_dict(cfg),
        arrays,
        timings={
            "compile_s": sum(r.compile_seconds for r in runs),
            "run_s": sum(r.run_seconds for r in runs),
        },
        notes=main.failures
        + [f"user run: {f}" for f in user.failures]
        + [f"own run: {f}" for f in own.failures],
        seed_axis=SEED_AXIS,
    )


def _spectrum(cfg: Config, x: np.ndarray, main: Any) -> dict[str, np.ndarray]:
    """Return the energy of W1(t) - W1(0) along the inputs' principal components."""
    pcs = spectral.principal_components(x)
    W1 = main.snapshots["W1"][:, 0]  # (S, n_snap, D, H)
    delta_W = W1 - W1[:, :1]  # (S, n_snap, D, H): W1(t) - W1(0)
    cum = spectral.cumulative_energy(delta_W, pcs.components)  # (S, n_snap, D)
    return {
        "snapshot_epochs": main.snapshot_epochs,  # (n_snap,)
        "cumulative_energy": cum.astype(np.float32),  # (S, n_snap, D)
        "isotropic_energy": spectral.isotropic_cumulative_energy(x.shape[1]),  # (D,)
        "pc_eigenvalues": pcs.eigenvalues,  # (D,)
        "rank_at_energy": spectral.rank_at_energy(
            delta_W, pcs.components, cfg.energy_fraction
        ),  # (S, n_snap)
    }


def _user_runs(cfg: Config, spec: TrainSpec, ensemble: Ensemble, images: tuple,
               record: np.ndarray, progress_of) -> tuple[Any, Any, dict]:  # fmt: skip
    """Train the user's early-stopped run and its never-stopped twin; return both
    and the user run's arrays (validation curve, stop, best epoch, test scores)."""
    x, y, x_test, y_test = images
    E = cfg.epochs
    # --- user run: hold out a validation split, stop on its loss ------------------
    x_fit, y_fit, x_val, y_val = data.train_val_split(
        x, y, cfg.n_val, seed=cfg.data_seed
    )
    val_epochs = np.arange(0, E + 1, cfg.val_every)
    user = train(
        spec,
        ensemble,
        x_fit,
        y_fit,
        eval_sets={"val": (x_val, y_val)},
        record=val_epochs,
        early_stopping=EarlyStopping(
            monitor="val", patience=cfg.patience, restore_best=True
        ),
        progress=progress_of(E),
    )
    # --- own run: the user's images, seeds and batch order, never stopped ---------
    # its test curve is what early stopping could at best have picked from
    own = train(
        spec,
        ensemble,
        x_fit,
        y_fit,
        eval_sets={"test": (x_test, y_test)},
        record=record,
        progress=progress_of(2 * E),
    )
    val_loss = user.history["val"]["loss"][:, 0]  # (S, R_val)
    stopped = user.stopped_epoch[:, 0]  # (S,)
    # the trainer quits at a chunk boundary; later record slots were never filled
    val_loss = np.where(val_epochs[None, :] <= stopped[:, None], val_loss, np.nan)
    logits = predict(spec.model, user.params, x_test)[:, 0]  # (S, n_test, K)
    log_p = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    user_test_loss = -np.take_along_axis(log_p, y_test[None, :, None], -1).mean((1, 2))
    arrays = {
        "val_epochs": val_epochs,  # (R_val,)
        "user_val_loss": val_loss,  # (S, R_val), NaN after the stop
        "user_best_epoch": user.best_epoch[:, 0],  # (S,)
        "user_stopped_epoch": stopped,  # (S,)
        "user_test_loss": user_test_loss,  # (S,)
        "user_test_accuracy": (logits.argmax(-1) == y_test).mean(-1),  # (S,)
    }
    return user, own, arrays


def claims(result: Result) -> list[Claim]:
    """Return the post's section-5 statements, each decided over seeds."""
    cfg = result.config
    epochs = result["record_epochs"]
    train_loss, test_loss = result["train_loss"], result["test_loss"]  # (S, R)
    seeds = np.arange(len(test_loss))
    i_opt = test_optimum(test_loss)  # (S,)
    e_opt = epochs[i_opt]  # (S,)

    # rise of the test loss above its minimum at both ends: > 0 only for an interior
    # minimum, and the smaller of the two says how deep the dip is
    low = test_loss.min(axis=-1)  # (S,)
    dip = np.minimum(test_loss[:, 0], test_loss[:, -1]) / low - 1  # (S,)
    margin = 0.05
    c_interior = Claim.over_seeds(
        "test_loss_interior_minimum",
        "The test loss falls to a minimum and then rises again as training goes on.",
        dip,
        margin,
        ">",
        f"min over both ends of test loss / its minimum - 1; minimum"
        f" {low.mean():.4f} at epochs {e_opt.tolist()} of {epochs[-1]}, final"
        f" {test_loss[:, -1].mean():.4f}",
    )
    ratio = train_loss[:, -1] / train_loss[seeds, i_opt]  # (S,)
    c_train = Claim.over_seeds(
        "train_loss_keeps_decreasing",
        "The train loss keeps falling past the test-loss minimum.",
        ratio,
        1.0,
        "<",
        f"train loss at the last epoch ({train_loss[:, -1].mean():.4f}) / at each"
        f" seed's test-optimal epoch ({train_loss[seeds, i_opt].mean():.4f})",
    )

    # spectral claims: earliest non-zero snapshot vs the last one
    snaps = result["snapshot_epochs"]
    k = cfg["energy_rank"]
    top = result["cumulative_energy"][..., k - 1].astype(float)  # (S, n_snap)
    early, late = top[:, 1], top[:, -1]  # (S,)
    iso = float(result["isotropic_energy"][k - 1])
    c_top = Claim.over_seeds(
        "early_update_in_top_pcs",
        "Early in training most of the first layer's weight change lies along the"
        " top principal components of the inputs.",
        early,
        0.5,
        ">",
        f"fraction of |W1(t) - W1(0)|² along the top {k} PCs at epoch {snaps[1]}"
        f" (the earliest snapshot after 0); an isotropic update gives {iso:.4f},"
        f" the last snapshot (epoch {snaps[-1]}) {late.mean():.4f}",
    )
    c_spread = Claim.over_seeds(
        "late_update_spreads_to_low_pcs",
        "Later in training the weight change spreads into low-variance components.",
        early - late,
        0.0,
        ">",
        f"fraction along the top {k} PCs at epoch {snaps[1]} minus at epoch"
        f" {snaps[-1]}",
    )
    frac = cfg["energy_fraction"]
    rank = result["rank_at_energy"].astype(float)  # (S, n_snap)
    c_rank = Claim.over_seeds(
        "energy_rank_grows",
        "The number of components holding most of the weight change grows with time.",
        rank[:, -1] / rank[:, 1],
        1.0,
        ">",
        f"rank holding {frac:.0%} of |ΔW1|² at epoch {snaps[-1]}"
        f" ({rank[:, -1].mean():.1f}) / at epoch {snaps[1]} ({rank[:, 1].mean():.1f})",
    )
    shift = shift_epochs(snaps, top)  # (S,)
    flat = flattening_epochs(epochs, test_loss)  # (S,)
    c_together = Claim.over_seeds(
        "energy_shift_when_test_loss_flattens",
        "The energy moves to low-variance components when the test loss flattens"
        " out (Figure 10).",
        doublings(shift, flat),
        1.0,
        "<=",
        f"|log2(shift epoch / flattening epoch)|, within a factor of 2: the fraction"
        f" along the top {k} PCs has made {SHIFT_FRACTION:.0%} of its fall from its"
        f" peak at epochs {np.round(shift, 1).tolist()}; the test loss has made"
        f" {FLAT_FRACTION:.0%} of its fall to its minimum at epochs"
        f" {np.round(flat, 1).tolist()}",
        why="the post reads the coincidence off one run by eye; with both moments"
        " defined before looking, the energy moves"
        f" {np.exp(np.mean(np.log(shift / flat))):.1f} times later than the test"
        " loss flattens (seed geometric mean), still before the test minimum at"
        f" epoch {int(np.median(e_opt))}",
    )

    # user-style early stopping against its own training set's test curve
    user = result["user_test_loss"]  # (S,)
    own = result["own_test_loss"]  # (S, R): same images, never stopped
    j_opt = test_optimum(own)  # (S,)
    own_best, own_epoch = own[seeds, j_opt], epochs[j_opt]  # (S,)
    n_fit = cfg["n_train"] - cfg["n_val"]
    best_epoch = result["user_best_epoch"]  # (S,)
    within = 0.05
    c_user = Claim.over_seeds(
        "user_early_stopping_near_optimum",
        "Stopping on a held-out validation loss lands near the test-loss optimum.",
        user / own_best - 1,
        within,
        "<=",
        f"test loss of the early-stopped run ({user.mean():.4f}; best validation"
        f" epoch {best_epoch.tolist()}, stopped at"
        f" {result['user_stopped_epoch'].tolist()}) / the minimum of the test curve"
        f" of the same {n_fit} images trained without stopping ({own_best.mean():.4f},"
        f" epochs {own_epoch.tolist()}) - 1",
    )
    c_when = Claim.over_seeds(
        "user_early_stopping_epoch_near_optimum",
        "The validation-loss minimum falls close in time to the test-loss minimum.",
        doublings(best_epoch, own_epoch),
        1.0,
        "<=",
        f"|log2(best validation epoch / the epoch of the same {n_fit} images' test"
        f" minimum)|, within a factor of 2; epochs {best_epoch.tolist()} and"
        f" {own_epoch.tolist()}",
    )
    c_beats = Claim.over_seeds(
        "user_early_stopping_beats_training_on",
        "Early stopping gives a lower test loss than training to the last epoch.",
        own[:, -1] - user,
        0.0,
        ">",
        f"test loss of the same {n_fit} images trained to epoch {epochs[-1]}"
        f" ({own[:, -1].mean():.4f}) minus that of the early-stopped run"
        f" ({user.mean():.4f})",
    )
    losses, energy = [c_interior, c_train], [c_top, c_spread, c_rank, c_together]
    return losses + energy + [c_user, c_when, c_beats]
