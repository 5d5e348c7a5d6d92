"""Section 5: early stopping, and where in input space the first layer learns.

Main run: the post's MLP (784 -> 128 -> 128 -> 10, tanh) on N = 1000 Fashion-MNIST
images with SGD for 1000 epochs of two steps each. Train and test loss are recorded at
log-spaced epochs; W1 is snapshotted at a few log-spaced times, and the energy of
Delta W1(t) = W1(t) - W1(0) along the training inputs' principal components shows
whether learning sits in the top (high-variance) or the bottom PCs.

User run: early stopping as one would use it, with no test set in sight: 200 of the
1000 images are held out as a validation set, the other 800 are trained on, and
training stops once the validation loss has not improved for ``patience`` epochs (the
best epoch's parameters are restored). Its test loss is compared with the main run's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import matplotlib.colors
import matplotlib.figure
import numpy as np

from reglab import data, nn, spectral
from reglab.ensemble import Ensemble
from reglab.experiments.base import (
    Claim,
    Figure,
    Progress,
    Result,
    Slider,
    check_choice,
    check_counts,
    config_dict,
)
from reglab.optim import OptimizerSpec
from reglab.train import EarlyStopping, TrainSpec, log_spaced_epochs, predict, train

NAME = "early_stopping"
DATASETS = ("fashion_mnist", "mnist")
N_BUNDLED_TRAIN = 5000  # training images bundled offline
N_TEST_IMAGES = 10_000
TIME_COLORS = "coolwarm_r"  # early = red, late = blue, as in the post's figure 10
_COUNTS = ("n_train", "n_test", "epochs", "batch_size", "n_record", "n_snapshots")
_COUNTS += ("energy_rank", "n_val", "val_every", "patience")


@dataclass(frozen=True)
class Config:
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
    n_snapshots: int = 10  # log-spaced W1 snapshots (0 included) for figure 10
    energy_rank: int = 10  # k of the E_{<=k} claims
    energy_fraction: float = 0.9  # rank_at_energy(fraction) for the spreading claim
    # Beyond the post: early stopping as a user runs it, on a held-out validation split
    n_val: int = 200  # held out of the n_train images; the rest are trained on
    val_every: int = 5  # validation loss every k epochs (the early-stopping check)
    patience: int = 50  # epochs without a new validation minimum before stopping
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_counts(self, *_COUNTS)
        if not 2 <= self.n_train <= N_BUNDLED_TRAIN:
            raise ValueError(
                f"n_train must be in [2, {N_BUNDLED_TRAIN}] (the bundled training"
                f" images), got {self.n_train} — lower n_train"
            )
        if self.n_test > N_TEST_IMAGES:
            raise ValueError(
                f"n_test must be in [1, {N_TEST_IMAGES}], got {self.n_test}"
                f" — use {N_TEST_IMAGES} for the whole test set"
            )
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
        if len(self.widths) < 2 or self.widths[0] != 784 or self.widths[-1] != 10:
            raise ValueError(
                f"widths must be (784, hidden..., 10) for 28x28 images in 10 classes,"
                f" got {self.widths!r} — e.g. (784, 128, 128, 10)"
            )
        if self.n_record < 2 or self.n_snapshots < 3 or self.epochs < 2:
            raise ValueError(
                f"epochs must be >= 2, n_record >= 2 and n_snapshots >= 3 (epoch 0, an"
                f" early and a late time), got {self.epochs}, {self.n_record} and"
                f" {self.n_snapshots}"
            )
        if self.energy_rank > self.widths[0]:
            raise ValueError(
                f"energy_rank must be in [1, {self.widths[0]}] (a count of PCs), got"
                f" {self.energy_rank} — e.g. 10"
            )
        if not 0.0 < self.energy_fraction <= 1.0:
            raise ValueError(
                f"energy_fraction must be in (0, 1], got {self.energy_fraction}"
                " — e.g. 0.9"
            )
        if not self.seeds:
            raise ValueError("seeds must hold at least one seed, e.g. (0,)")

    def quick(self) -> Config:
        """Return a smoke-run version: 10x fewer epochs and a shorter patience."""
        return replace(
            self,
            epochs=max(2, self.epochs // 10),
            patience=max(1, self.patience // 5),
            val_every=max(1, self.val_every // 5),
        )


def load_data(cfg: Config) -> tuple[np.ndarray, ...]:
    """Return (x_train, y_train, x_test, y_test): stratified subsets, seeded."""
    x, y = data.load(cfg.dataset, split="train")
    x_test, y_test = data.load(cfg.dataset, split="test")
    x, y = data.subset(x, y, cfg.n_train, seed=cfg.data_seed)  # (N, 784), (N,)
    x_test, y_test = data.subset(x_test, y_test, cfg.n_test, seed=cfg.data_seed)
    return x, y, x_test, y_test


def run(cfg: Config, *, progress: Progress | None = None) -> Result:
    """Train the main run and the user-style early-stopping run; return the arrays."""
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
        return lambda done, total: progress(offset + done, 2 * total)

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
    pcs = spectral.principal_components(x)
    W1 = main.snapshots["W1"][:, 0]  # (S, n_snap, D, H)
    delta_W = W1 - W1[:, :1]  # (S, n_snap, D, H): W1(t) - W1(0)
    cum = spectral.cumulative_energy(delta_W, pcs.components)  # (S, n_snap, D)
    rank = spectral.rank_at_energy(delta_W, pcs.components, cfg.energy_fraction)

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
    if progress is not None:
        progress(2 * E, 2 * E)
    val_loss = user.history["val"]["loss"][:, 0]  # (S, R_val)
    stopped = user.stopped_epoch[:, 0]  # (S,)
    # the trainer quits at a chunk boundary; later record slots were never filled
    val_loss = np.where(val_epochs[None, :] <= stopped[:, None], val_loss, np.nan)
    logits = predict(model, user.params, x_test)[:, 0]  # (S, n_test, K)
    log_p = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    user_test_loss = -np.take_along_axis(log_p, y_test[None, :, None], -1).mean((1, 2))
    user_test_acc = (logits.argmax(-1) == y_test).mean(-1)  # (S,)

    arrays = {
        "record_epochs": main.record_epochs,  # (R,)
        "train_loss": main.history["train"]["loss"][:, 0],  # (S, R)
        "test_loss": main.history["test"]["loss"][:, 0],
        "train_accuracy": main.history["train"]["accuracy"][:, 0],
        "test_accuracy": main.history["test"]["accuracy"][:, 0],
        "snapshot_epochs": main.snapshot_epochs,  # (n_snap,)
        "cumulative_energy": cum.astype(np.float32),  # (S, n_snap, D)
        "isotropic_energy": spectral.isotropic_cumulative_energy(x.shape[1]),  # (D,)
        "pc_eigenvalues": pcs.eigenvalues,  # (D,)
        "rank_at_energy": rank,  # (S, n_snap)
        "val_epochs": val_epochs,  # (R_val,)
        "user_val_loss": val_loss,  # (S, R_val), NaN after the stop
        "user_best_epoch": user.best_epoch[:, 0],  # (S,)
        "user_stopped_epoch": stopped,  # (S,)
        "user_test_loss": user_test_loss,  # (S,)
        "user_test_accuracy": user_test_acc,  # (S,)
    }
    return Result(
        NAME,
        config_dict(cfg),
        arrays,
        timings={
            "compile_s": main.compile_seconds + user.compile_seconds,
            "run_s": main.run_seconds + user.run_seconds,
        },
        notes=main.failures + [f"user run: {f}" for f in user.failures],
    )


# --- summaries shared by figures and claims ---------------------------------------


def _test_optimum(result: Result) -> tuple[int, float]:
    """Return (index into record_epochs, value) of the seed-mean test-loss minimum."""
    mean = result["test_loss"].mean(axis=0)  # (R,)
    i = int(np.argmin(mean))
    return i, float(mean[i])


def _band(ax, t, curves, color, label, **kw) -> None:
    """Plot the seed mean of curves (S, T) over t, with a min-max band if S > 1."""
    seen = ~np.isnan(curves).all(axis=0)  # (T,): a curve may end early (NaN after)
    t, curves = t[seen], curves[:, seen]
    ax.plot(t, np.nanmean(curves, axis=0), color=color, label=label, **kw)
    if len(curves) > 1:
        lo, hi = np.nanmin(curves, axis=0), np.nanmax(curves, axis=0)
        ax.fill_between(t, lo, hi, color=color, alpha=0.2, linewidth=0)


def _epoch_axis(epochs: np.ndarray) -> np.ndarray:
    """Return epochs as floats with epoch 0 drawn at 0.5, so a log axis can show it."""
    return np.where(epochs == 0, 0.5, epochs).astype(float)


def _loss_panel(ax, result: Result) -> None:
    t = _epoch_axis(result["record_epochs"])
    _band(ax, t, result["train_loss"], "tab:blue", "train loss")
    _band(ax, t, result["test_loss"], "tab:orange", "test loss")
    ax.set_xscale("log")
    ax.set_xlabel("epoch (epoch 0 drawn at 0.5)")
    ax.set_ylabel("cross-entropy loss")


def _vlines(ax, lines) -> None:
    """Draw vertical lines (epoch, color, linestyle, label) on a log epoch axis."""
    for epoch, color, style, label in lines:
        ax.axvline(max(epoch, 0.5), color=color, linestyle=style, label=label)


def _fig9(result: Result, note: str) -> Figure:
    cfg, epochs = result.config, result["record_epochs"]
    i_opt, opt = _test_optimum(result)
    fig = matplotlib.figure.Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    _loss_panel(ax, result)
    _vlines(
        ax, [(epochs[i_opt], "grey", "--", f"test minimum (epoch {epochs[i_opt]})")]
    )
    ax.legend()
    ax.set_title(f"MLP {tuple(cfg['widths'])}, N={cfg['n_train']} {cfg['dataset']}")
    final = result["test_loss"].mean(axis=0)[-1]
    after = (
        f"rises to {final:.3f} by epoch {epochs[-1]}"
        if i_opt < len(epochs) - 1
        else "is still falling at the last epoch"
    )
    caption = (
        f"Train and test loss over {cfg['epochs']} epochs of SGD (log epoch axis;"
        f" test loss on {cfg['n_test']} test images). The test loss is lowest"
        f" ({opt:.3f}) at epoch {epochs[i_opt]} (dashed grey) and {after}, while the"
        " train loss keeps falling." + note
    )
    return Figure("fig9_early_stopping", fig, caption)


def _fig10(result: Result, note: str) -> Figure:
    epochs, snaps = result["record_epochs"], result["snapshot_epochs"]
    cum = result["cumulative_energy"].mean(axis=0)  # (n_snap, D)
    k = np.arange(1, cum.shape[-1] + 1)
    cmap = matplotlib.colormaps[TIME_COLORS]
    norm = matplotlib.colors.LogNorm(vmin=max(snaps[1], 1), vmax=snaps[-1])
    fig = matplotlib.figure.Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    for j in range(1, len(snaps)):  # epoch 0 has Delta W = 0: nothing to show
        left.plot(k, cum[j], color=cmap(norm(snaps[j])), label=f"epoch {snaps[j]}")
    iso = result["isotropic_energy"]
    left.plot(k, iso, color="grey", linestyle="--", label="isotropic update (k/D)")
    left.set_xscale("log")
    left.set_xlabel("principal component rank k (1 = largest variance)")
    left.set_ylabel(r"cumulative energy $E_{\leq k}$ of $\Delta W_1$")
    left.set_ylim(0, 1.02)
    left.legend(fontsize="small", loc="lower right")
    _loss_panel(right, result)
    at = np.searchsorted(epochs, snaps)  # snapshot epochs are record epochs
    t, colors = _epoch_axis(snaps[1:]), cmap(norm(snaps[1:]))
    for name, marker in (("train_loss", "o"), ("test_loss", "s")):
        values = result[name].mean(axis=0)[at][1:]
        right.scatter(t, values, c=colors, marker=marker, edgecolor="k", zorder=3)
    right.legend(title="markers: snapshot times")
    caption = (
        r"Left: fraction $E_{\leq k}$ of $|W_1(t) - W_1(0)|^2$ lying along the top k"
        " principal components of the training inputs, at the snapshot epochs"
        " (red early, blue late); grey: what an isotropic update gives. Right: the"
        " loss curves with the snapshot epochs marked in the same colours." + note
    )
    return Figure("fig10_spectral", fig, caption)


def sliders(result: Result) -> list[Slider]:
    """Training time as a slider: energy curve and loss curves at each snapshot."""
    epochs, snaps = result["record_epochs"], result["snapshot_epochs"]
    cum = result["cumulative_energy"].mean(axis=0)  # (n_snap, D)
    k = np.arange(1, cum.shape[-1] + 1)
    at = np.searchsorted(epochs, snaps)
    panels = []
    for j in range(1, len(snaps)):  # epoch 0 has Delta W = 0
        fig = matplotlib.figure.Figure(figsize=(9, 3.6), layout="constrained")
        left, right = fig.subplots(1, 2)
        left.plot(k, result["isotropic_energy"], color="grey", linestyle="--",
                  label="isotropic (k/D)")  # fmt: skip
        for i in range(1, j):  # earlier times, faint, for reference
            left.plot(k, cum[i], color="0.75", lw=0.8)
        left.plot(k, cum[j], color="tab:red", lw=2, label=f"epoch {snaps[j]}")
        left.set_xscale("log")
        left.set_ylim(0, 1.02)
        left.set_xlabel("principal component rank k")
        left.set_ylabel(r"$E_{\leq k}$")
        left.legend(fontsize="small", loc="lower right")
        _loss_panel(right, result)
        right.axvline(_epoch_axis(snaps[j : j + 1])[0], color="tab:red", lw=1.5)
        right.scatter(
            _epoch_axis(snaps[j : j + 1]),
            result["test_loss"].mean(axis=0)[at][j : j + 1],
            color="tab:red", zorder=3,
        )  # fmt: skip
        panels.append(fig)
    return [
        Slider(
            "slider_time",
            "training time (epoch)",
            [str(int(e)) for e in snaps[1:]],
            panels,
            "Move through training: where the first layer's weight change lies among"
            " the principal components of the inputs (left; earlier times in grey),"
            " and the same moment on the loss curves (right).",
        )
    ]


def _fig_user(result: Result, note: str) -> Figure:
    cfg, epochs = result.config, result["record_epochs"]
    i_opt, opt = _test_optimum(result)
    fig = matplotlib.figure.Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    t_val, t = _epoch_axis(result["val_epochs"]), _epoch_axis(epochs)
    val_label = f"validation loss (user run, {cfg['n_val']} held out)"
    _band(ax, t_val, result["user_val_loss"], "tab:green", val_label)
    _band(ax, t, result["test_loss"], "tab:orange", "test loss (main run)", alpha=0.6)
    best = float(result["user_best_epoch"].mean())
    stop = float(result["user_stopped_epoch"].mean())
    e_opt = epochs[i_opt]
    lines = [
        (e_opt, "grey", "--", f"main run's test minimum (epoch {e_opt})"),
        (best, "tab:green", ":", f"best validation epoch ({best:.0f})"),
        (stop, "tab:red", ":", f"last trained epoch ({stop:.0f})"),
    ]
    _vlines(ax, lines)
    ax.set_xscale("log")
    ax.set_xlabel("epoch (epoch 0 drawn at 0.5)")
    ax.set_ylabel("cross-entropy loss")
    ax.legend(fontsize="small")
    ax.set_title("Early stopping on a validation split")
    stopped = (
        f"training stopped at epoch {stop:.0f}, {cfg['patience']} epochs without a"
        " new validation minimum,"
        if stop < cfg["epochs"]
        else f"patience ({cfg['patience']} epochs) never ran out,"
    )
    caption = (
        f"Early stopping as a user runs it: {cfg['n_train'] - cfg['n_val']} images"
        f" trained on, {cfg['n_val']} held out; {stopped} and the best epoch"
        f" ({best:.0f}) was restored. Its test loss is"
        f" {result['user_test_loss'].mean():.3f}, against the main run's minimum"
        f" {opt:.3f} at epoch {epochs[i_opt]}." + note
    )
    return Figure("fig_early_stopping_user", fig, caption)


def figures(result: Result) -> list[Figure]:
    """Return figure 9 (losses), figure 10 (spectral energy) and the user run's."""
    n_seeds = len(result["train_loss"])
    note = f" Seed mean of {n_seeds}, min-max band." if n_seeds > 1 else ""
    return [_fig9(result, note), _fig10(result, note), _fig_user(result, note)]


def claims(result: Result) -> list[Claim]:
    """Return the post's section-5 statements as measured checks on the seed mean."""
    cfg = result.config
    epochs = result["record_epochs"]
    train_loss, test_loss = result["train_loss"], result["test_loss"]  # (S, R)
    n_seeds = len(test_loss)
    i_opt, opt = _test_optimum(result)
    test_mean = test_loss.mean(axis=0)
    train_mean = train_loss.mean(axis=0)

    def agree(per_seed: np.ndarray) -> str:
        return f"; {int(per_seed.sum())}/{n_seeds} seeds agree" if n_seeds > 1 else ""

    # rise of the test loss above its minimum at both ends: > 0 only for an interior
    # minimum, and the smaller of the two says how deep the dip is
    def dip(curve: np.ndarray) -> np.ndarray:
        low = curve.min(axis=-1)
        return np.minimum(curve[..., 0], curve[..., -1]) / low - 1

    margin = 0.05
    c_interior = Claim(
        "test_loss_interior_minimum",
        "The test loss falls to a minimum and then rises again as training goes on.",
        float(dip(test_mean)),
        margin,
        ">",
        f"min over both ends of test_loss(end)/min - 1; minimum {opt:.4f} at epoch"
        f" {epochs[i_opt]} of {epochs[-1]}, initial {test_mean[0]:.4f}, final"
        f" {test_mean[-1]:.4f}{agree(dip(test_loss) > margin)}",
    )
    ratio = train_mean[-1] / train_mean[i_opt]
    c_train = Claim(
        "train_loss_keeps_decreasing",
        "The train loss keeps falling past the test-loss minimum.",
        float(ratio),
        1.0,
        "<",
        f"train loss at the last epoch ({train_mean[-1]:.4f}) / at the test-optimal"
        f" epoch {epochs[i_opt]} ({train_mean[i_opt]:.4f})"
        f"{agree(train_loss[:, -1] < train_loss[:, i_opt])}",
    )

    # spectral claims: earliest non-zero snapshot vs the last one
    snaps = result["snapshot_epochs"]
    k = cfg["energy_rank"]
    cum = result["cumulative_energy"][..., k - 1]  # (S, n_snap): E_{<=k}
    early, late = cum[:, 1], cum[:, -1]  # (S,)
    iso = float(result["isotropic_energy"][k - 1])
    c_top = Claim(
        "early_update_in_top_pcs",
        "Early in training most of the first layer's weight change lies along the"
        " top principal components of the inputs.",
        float(early.mean()),
        0.5,
        ">",
        f"E_<={k} of W1(t)-W1(0) at epoch {snaps[1]} (the earliest snapshot after"
        f" 0); an isotropic update gives {iso:.4f}, the last snapshot (epoch"
        f" {snaps[-1]}) {late.mean():.4f}{agree(early > 0.5)}",
    )
    c_spread = Claim(
        "late_update_spreads_to_low_pcs",
        "Later in training the weight change spreads into low-variance components.",
        float((early - late).mean()),
        0.0,
        ">",
        f"E_<={k} at epoch {snaps[1]} minus at epoch {snaps[-1]}{agree(early > late)}",
    )
    frac = cfg["energy_fraction"]
    rank = result["rank_at_energy"]  # (S, n_snap)
    c_rank = Claim(
        "energy_rank_grows",
        "The number of components holding most of the weight change grows with time.",
        float(rank[:, -1].mean() / rank[:, 1].mean()),
        1.0,
        ">",
        f"rank holding {frac:.0%} of |Delta W1|^2 at epoch {snaps[-1]}"
        f" ({rank[:, -1].mean():.1f}) / at epoch {snaps[1]} ({rank[:, 1].mean():.1f})"
        f"{agree(rank[:, -1] > rank[:, 1])}",
    )

    # user-style early stopping against the main run's test optimum
    user = result["user_test_loss"]  # (S,)
    within = 0.05
    excess = float(user.mean()) / opt - 1
    c_user = Claim(
        "user_early_stopping_near_optimum",
        "Stopping on a held-out validation loss lands near the test-loss optimum.",
        excess,
        within,
        "<=",
        f"test loss of the early-stopped user run ({user.mean():.4f}; trained on"
        f" {cfg['n_train'] - cfg['n_val']} images, best epoch"
        f" {result['user_best_epoch'].mean():.0f}, stopped at"
        f" {result['user_stopped_epoch'].mean():.0f}) / the main run's minimum test"
        f" loss ({opt:.4f}, epoch {epochs[i_opt]}) - 1"
        f"{agree(user / test_loss.min(axis=1) - 1 <= within)}",
    )
    best_epoch = result["user_best_epoch"]  # (S,)
    # distance in doublings; epoch 0 would be log(0), so count it as epoch 1
    off = np.abs(np.log2(np.maximum(best_epoch, 1) / max(epochs[i_opt], 1)))
    c_when = Claim(
        "user_early_stopping_epoch_near_optimum",
        "The validation-loss minimum falls close in time to the test-loss minimum.",
        float(np.abs(np.log2(max(best_epoch.mean(), 1) / max(epochs[i_opt], 1)))),
        1.0,
        "<=",
        f"|log2(best validation epoch {best_epoch.mean():.0f} / the main run's"
        f" test-optimal epoch {epochs[i_opt]})|, i.e. within a factor of 2"
        f"{agree(off <= 1.0)}",
    )
    c_beats = Claim(
        "user_early_stopping_beats_training_on",
        "Early stopping gives a lower test loss than training to the last epoch.",
        float(user.mean()),
        float(test_mean[-1]),
        "<",
        f"test loss of the early-stopped user run vs the main run's at epoch"
        f" {epochs[-1]}, which trains on {cfg['n_val']} more images"
        f"{agree(user < test_loss[:, -1])}",
    )
    return [c_interior, c_train, c_top, c_spread, c_rank, c_user, c_when, c_beats]
