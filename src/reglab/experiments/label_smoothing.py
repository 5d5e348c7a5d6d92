"""Section 4: calibration of an MNIST classifier under a label-smoothing sweep.

One ensemble trains a model per smoothing strength eps (the post's targets: 1 - eps on
the label, eps / (K - 1) elsewhere); members of a seed share initial weights and batch
order. The final models are scored once, with ``predict``, on the test images:
reliability curves over 15 equal-mass bins, ECE (equal-mass and equal-width) with a
bootstrap interval, accuracy, NLL, Brier score, and the confidence of wrong answers.

Beyond the post: temperature scaling, with T fitted on validation images drawn from the
bundled training images the models never saw, against label smoothing whose eps is
chosen on the same validation images.

Figures and sliders live in ``label_smoothing_figures`` (matplotlib is imported only
there).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from reglab import data, metrics, nn
from reglab.ensemble import Ensemble
from reglab.experiments.base import Claim, Progress, Result, Tally, config_dict
from reglab.experiments.rules import Interval, Rules, shrink
from reglab.optim import OptimizerSpec
from reglab.train import TrainSpec, log_spaced_epochs, predict, train

NAME = "label_smoothing"
# arrays with a leading seed axis (Result.seed_axis); the rest are shared:
# the swept smoothings, record epochs and table labels
SEED_AXIS = (
    "seeds",
    "train_*",
    "test_*",
    "ts_*",
    "val_*",
    "table",
    "temperature",
    "wrong_confidence",
    "fraction_confident_wrong",
    "diverged",
)
MNIST_TRAIN = 5000  # images in the bundled training subset
MNIST_TEST = 10000
TABLE_ROWS = (
    "eps=0",
    "eps=0 + temperature (val)",
    "smoothing, eps by val ECE",
    "smoothing, eps by test ECE",
)
TABLE_COLUMNS = ("ECE equal-mass", "ECE equal-width", "NLL", "Brier", "accuracy")
# the post sweeps [0, 0.2]; dense near its optimum 0.015; 0 is the reference model
SWEEP = (0.0, 0.005, 0.01, 0.015, 0.02, 0.05, 0.1, 0.2)
ACCURACY_TOLERANCE = 0.01  # "smoothing does not improve accuracy": by < 1 point


@dataclass(frozen=True)
class Config(Rules):
    """The post's section 7 row for label smoothing, plus the measurement plan."""

    n_train: int = 1000  # stratified subset of the bundled MNIST training images
    n_test: int = 10000  # test images scored at the end (all 10,000)
    n_val: int = 1000  # other training images for temperature scaling; 0 = skip it
    widths: tuple[int, ...] = (784, 128, 10)
    learning_rate: float = 0.15  # SGD, schedule (0.15, 1, 5e3)
    alpha: float = 1.0
    tau: float = 5e3
    epochs: int = 250
    batch_size: int = 32
    smoothings: tuple[float, ...] = SWEEP  # eps values, 0 first
    n_bins: int = 15  # equal-mass (quantile) bins, as the post's Figure 7
    # bootstrap resamples of the test points for the ECE interval; each costs a sort
    # of n_test confidences per member (about 15 ms), so 100 keeps this a second
    n_boot: int = 100
    confident: float = 0.8  # the post's "more than 80 % confident" threshold
    record_points: int = 20  # train-set loss/accuracy points (1,000 images: cheap)
    data_seed: int = 0  # which images train, validate and test
    seeds: tuple[int, ...] = (0,)

    constraints = {
        "n_train": Interval(
            int, 1, MNIST_TRAIN - 1,
            fix="the bundled MNIST training images; the post uses 1000",
        ),
        "epochs": Interval(int, 1, None, fix="the post uses 250"),
        "n_bins": Interval(int, 2, None, fix="the post uses 15 bins"),
        "n_boot": Interval(int, 1, None, fix="e.g. 100"),
        "confident": Interval(float, 0, 1, "neither", fix="the post uses 0.8"),
        "record_points": Interval(int, 2, None, fix="e.g. 20"),
    }  # fmt: skip
    # 1/10 of the epochs, fewer bootstrap resamples
    QUICK = {"epochs": shrink(10), "n_boot": functools.partial(min, 50)}

    def validate(self) -> None:
        """Raise ValueError for splits, widths or smoothings that do not fit."""
        if not 0 <= self.n_val <= MNIST_TRAIN - self.n_train:
            raise ValueError(
                f"n_val must be in [0, {MNIST_TRAIN - self.n_train}] (the bundled"
                f" training images left after n_train={self.n_train}), got"
                f" {self.n_val} — use 0 to skip temperature scaling"
            )
        if not self.n_bins <= self.n_test <= MNIST_TEST:
            raise ValueError(
                f"n_test must be in [n_bins={self.n_bins}, {MNIST_TEST}], got"
                f" {self.n_test} — use 10000 for the full test set"
            )
        if self.widths[0] != 784 or self.widths[-1] != 10:
            raise ValueError(
                f"widths must start at 784 (28x28 pixels) and end at 10 (digits),"
                f" got {self.widths} — e.g. (784, 128, 10)"
            )
        eps = np.asarray(self.smoothings, float)
        if eps.size < 2 or eps[0] != 0.0 or np.any(np.diff(eps) <= 0):
            raise ValueError(
                f"smoothings must start at 0.0 and increase strictly, with at least"
                f" two values, got {self.smoothings} — e.g. (0.0, 0.015, 0.2)"
            )
        if eps[-1] >= 0.9:
            raise ValueError(
                f"smoothings must stay below 0.9 = (K-1)/K, where the targets become"
                f" uniform, got {eps[-1]} — the post sweeps [0, 0.2]"
            )
        if not 1 <= self.batch_size <= self.n_train:
            raise ValueError(
                f"batch_size must be in [1, n_train={self.n_train}], got"
                f" {self.batch_size} — the post uses 32"
            )


def _split(cfg: Config):
    """Return train, validation (None if n_val = 0) and test sets."""
    x_all, y_all = data.load("mnist", split="train")
    train_idx = data.subset_indices(y_all, cfg.n_train, seed=cfg.data_seed)
    rest = np.setdiff1d(np.arange(len(y_all)), train_idx)  # never trained on
    val = None
    if cfg.n_val:
        val = data.subset(x_all[rest], y_all[rest], cfg.n_val, seed=cfg.data_seed + 1)
    x_test, y_test = data.load("mnist", split="test")
    if cfg.n_test < len(y_test):
        x_test, y_test = data.subset(x_test, y_test, cfg.n_test, seed=cfg.data_seed)
    return (x_all[train_idx], y_all[train_idx]), val, (x_test, y_test)


def _scores(logits: np.ndarray, y: np.ndarray, n_bins: int) -> dict[str, np.ndarray]:
    """Return accuracy, NLL, Brier, both ECEs and reliability curves of (..., N, K)."""
    mass = metrics.calibration(logits, y, n_bins=n_bins)
    width = metrics.calibration(logits, y, n_bins=n_bins, binning="equal_width")
    return {
        "accuracy": metrics.accuracy(logits, y),  # (...)
        "nll": metrics.nll(logits, y),
        "brier": metrics.brier_score(logits, y),
        "mean_confidence": metrics.confidence(logits).mean(-1),
        "ece_mass": mass.ece,
        "ece_width": width.ece,
        "rel_conf": mass.conf,  # (..., n_bins)
        "rel_acc": mass.acc,
        "rel_count": mass.count,
    }


def _temperature(
    cfg: Config, test: tuple, raw: dict[str, np.ndarray], val: tuple
) -> dict[str, np.ndarray]:
    """Return temperature-scaled test scores of every member and the table.

    test and val are (logits (S, C, N, K), labels (N,)); raw holds the unscaled test
    scores from _scores.
    """
    (test_logits, y_test), (val_logits, y_val) = test, val
    S, C = test_logits.shape[:2]
    T = np.empty((S, C))
    for s, c in np.ndindex(S, C):  # one fit per member, by NLL on validation
        T[s, c] = metrics.fit_temperature(val_logits[s, c], y_val).temperature
    # softmax(z / T): T > 1 softens an overconfident model, argmax unchanged
    scaled = _scores(test_logits / T[..., None, None], y_test, cfg.n_bins)
    val_ece = metrics.calibration(val_logits, y_val, n_bins=cfg.n_bins).ece  # (S, C)
    by_val = val_ece.argmin(-1)  # (S,) the eps a practitioner could pick
    by_test = raw["ece_mass"].argmin(-1)  # (S,) the post's pick, seen on test
    keys = ("ece_mass", "ece_width", "nll", "brier", "accuracy")
    seeds = np.arange(S)
    table = np.stack(
        [
            np.stack([raw[k][:, 0] for k in keys], -1),
            np.stack([scaled[k][:, 0] for k in keys], -1),
            np.stack([raw[k][seeds, by_val] for k in keys], -1),
            np.stack([raw[k][seeds, by_test] for k in keys], -1),
        ],
        1,
    )  # (S, rows, columns)
    out = {f"ts_{k}": v for k, v in scaled.items()}
    out.update(
        temperature=T,
        val_ece_mass=val_ece,
        val_choice=by_val,  # (S,) column of the eps chosen on validation
        table=table,
        table_rows=np.array(TABLE_ROWS),
        table_columns=np.array(TABLE_COLUMNS),
    )
    return out


def run(cfg: Config, *, progress: Progress | None = None) -> Result:
    """Train one model per smoothing strength together; score them on test."""
    (x, y), val, (x_test, y_test) = _split(cfg)
    spec = TrainSpec(
        nn.MLPSpec(cfg.widths),
        OptimizerSpec("sgd"),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        smoothing_convention="post",  # 1 - eps on the label, eps / (K - 1) elsewhere
    )
    ensemble = Ensemble.grid(
        cfg.seeds,
        learning_rate=cfg.learning_rate,
        alpha=cfg.alpha,
        tau=cfg.tau,
        smoothing=list(cfg.smoothings),
    )
    points = log_spaced_epochs(cfg.epochs, cfg.record_points) if cfg.epochs > 1 else 1
    tally = Tally(progress, n_calls=1)
    out = tally.add(
        train(
            spec,
            ensemble,
            x,
            y,
            eval_sets={"train": (x, y)},
            record=points,
            progress=tally.progress(0),
        )
    )
    logits = predict(spec.model, out.params, x_test)  # (S, C, N, K)
    raw = _scores(logits, y_test, cfg.n_bins)
    arrays = {f"test_{k}": v for k, v in raw.items()}
    interval = metrics.ece_bootstrap_interval(
        logits, y_test, n_bins=cfg.n_bins, n_boot=cfg.n_boot, seed=cfg.data_seed
    )
    # wrong answers of the eps = 0 model: a ragged list per seed, padded with NaN
    wrong = [metrics.wrong_confidence_cdf(z, y_test).confidence for z in logits[:, 0]]
    padded = np.full((len(wrong), max(1, max(w.size for w in wrong))), np.nan)
    for s, w in enumerate(wrong):
        padded[s, : w.size] = w
    arrays.update(
        seeds=np.asarray(cfg.seeds),
        smoothings=np.asarray(cfg.smoothings),  # (C,)
        record_epochs=out.record_epochs,
        train_loss=out.history["train"]["loss"],  # (S, C, R), against hard labels
        train_accuracy=out.history["train"]["accuracy"],
        test_ece_low=interval.low,  # (S, C)
        test_ece_high=interval.high,
        wrong_confidence=padded,  # (S, W) ascending, NaN after each seed's errors
        fraction_confident_wrong=metrics.fraction_confident_wrong(
            logits, y_test, threshold=cfg.confident
        ),  # (S, C)
        diverged=out.diverged,
    )
    if val is not None:
        val_logits = predict(spec.model, out.params, val[0])  # (S, C, n_val, K)
        arrays.update(_temperature(cfg, (logits, y_test), raw, (val_logits, val[1])))
    return Result(
        NAME,
        config_dict(cfg),
        arrays,
        tally.timings,
        tally.notes,
        seed_axis=SEED_AXIS,
    )


def crossing_smoothing(eps, gap: np.ndarray) -> np.ndarray:
    """Return per seed the eps where confidence - accuracy first turns <= 0.

    gap is (S, C) over the sweep eps (C,); linear between swept values. NaN for a
    seed that is not overconfident at eps = 0 or never turns underconfident.
    """
    out = np.full(len(gap), np.nan)
    for s, g in enumerate(gap):
        below = np.flatnonzero(g <= 0)
        if g[0] > 0 and below.size:
            i = int(below[0])
            # the straight line through (eps_{i-1}, g_{i-1}) and (eps_i, g_i) hits 0
            out[s] = eps[i - 1] + g[i - 1] / (g[i - 1] - g[i]) * (eps[i] - eps[i - 1])
    return out


def claims(result: Result) -> list[Claim]:
    """Return the post's statements about calibration and smoothing, over seeds."""
    eps = result["smoothings"]
    threshold = float(result.config["confident"])
    confident = result["fraction_confident_wrong"][:, 0]  # (S,)
    train_acc = result["train_accuracy"][:, 0, -1]  # (S,)
    gap = result["test_rel_conf"][:, 0] - result["test_rel_acc"][:, 0]  # (S, M)
    over_bins = np.nanmean(gap > 0, -1)  # (S,) fraction of overconfident bins
    overall = result["test_mean_confidence"] - result["test_accuracy"]  # (S, C)
    ece = result["test_ece_mass"]  # (S, C)
    best = eps[ece.argmin(-1)]  # (S,) eps of each seed's lowest ECE
    acc = result["test_accuracy"]  # (S, C)
    low, high = result["test_ece_low"], result["test_ece_high"]  # (S, C)
    s_best = ece.argmin(-1)  # (S,)
    seeds = np.arange(len(ece))
    cross = crossing_smoothing(eps, overall)  # (S,)
    where = ", ".join("none" if np.isnan(e) else f"{e:.4f}" for e in cross)
    accs = ", ".join(f"{a:.4f}" for a in acc.mean(0))
    rise = acc[:, -1] - acc[:, 0]  # (S,)
    return [
        Claim.over_seeds(
            "confident_when_wrong",
            f"Without smoothing, more than half of the wrong test predictions have"
            f" confidence above {threshold:g}.",
            confident,
            0.5,
            ">",
            f"fraction of wrong predictions (ε = 0) with max_k p_k > {threshold:g}",
            why="the post's 'over 50%' is one run's reading; the fraction sits near"
            " one half and moves a few points between seeds",
        ),
        Claim.over_seeds(
            "unsmoothed_interpolates",
            "Without smoothing the model fits every training image.",
            train_acc,
            0.999,
            ">=",
            "train accuracy at the last epoch, ε = 0",
        ),
        Claim.over_seeds(
            "unsmoothed_overconfident",
            "Without smoothing the mean confidence exceeds the accuracy in the"
            " confidence bins: the model is overconfident.",
            over_bins,
            0.5,
            ">",
            f"fraction of {gap.shape[-1]} equal-mass bins with mean confidence >"
            f" accuracy (ε = 0); overall mean confidence - accuracy"
            f" {overall[:, 0].mean():+.4f}",
        ),
        Claim.over_seeds(
            "smoothing_lowers_ece",
            "Some positive ε gives a lower ECE than no smoothing.",
            ece[:, 0] - ece[:, 1:].min(-1),
            0.0,
            ">",
            f"equal-mass ECE(ε = 0) - its minimum over ε > 0:"
            f" {ece[:, 0].mean():.4f} - {ece[:, 1:].min(-1).mean():.4f}",
        ),
        Claim.over_seeds(
            "ece_minimum_at_small_eps",
            "The ECE is smallest at a small ε (the post finds 0.015).",
            best,
            0.05,
            "<=",
            f"ε of each seed's lowest equal-mass ECE: {best.tolist()} (ECE"
            f" {ece[seeds, s_best].mean():.4f}, bootstrap 95%"
            f" [{low[seeds, s_best].mean():.4f}, {high[seeds, s_best].mean():.4f}])",
        ),
        Claim.over_seeds(
            "smoothing_turns_underconfident",
            "As ε grows the model goes from overconfident to underconfident: mean"
            " confidence - accuracy changes sign inside the sweep.",
            # > 0 exactly when the gap is positive at ε = 0 and negative at the end
            np.minimum(overall[:, 0], -overall[:, -1]),
            0.0,
            ">",
            f"the smaller of mean confidence - accuracy at ε = 0"
            f" ({overall[:, 0].mean():+.4f}) and accuracy - mean confidence at"
            f" ε = {eps[-1]:g} ({-overall[:, -1].mean():+.4f}); the sign changes at"
            f" ε = {where} (linear between the swept values)",
        ),
        Claim.over_seeds(
            "smoothing_keeps_accuracy",
            "Label smoothing does not improve accuracy (by a point or more); it is"
            " for calibration.",
            rise,
            ACCURACY_TOLERANCE,
            "<",
            f"test accuracy at ε = {eps[-1]:g} minus at ε = 0, across the whole sweep;"
            f" seed-mean accuracy by ε: {accs}",
            why=f"the post overstates: on {result.config['n_train']:,} MNIST images"
            f" accuracy rises with ε, by {100 * rise.mean():.1f} points across the"
            " sweep",
        ),
    ]
