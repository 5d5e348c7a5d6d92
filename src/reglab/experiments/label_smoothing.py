"""Section 4: calibration of an MNIST classifier under a label-smoothing sweep.

One ensemble trains a model per smoothing strength eps (the post's targets: 1 - eps on
the label, eps / (K - 1) elsewhere); members of a seed share initial weights and batch
order. The final models are scored once, with ``predict``, on the test images:
reliability curves over 15 equal-mass bins, ECE (equal-mass and equal-width) with a
bootstrap interval, accuracy, NLL, Brier score, and the confidence of wrong answers.

Beyond the post: temperature scaling, with T fitted on validation images drawn from the
bundled training images the models never saw, against label smoothing whose eps is
chosen on the same validation images.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from reglab import data, metrics, nn
from reglab.ensemble import Ensemble
from reglab.experiments.base import (
    Claim,
    Figure,
    Progress,
    Result,
    Slider,
    Tally,
    config_dict,
)
from reglab.optim import OptimizerSpec
from reglab.train import TrainSpec, log_spaced_epochs, predict, train

NAME = "label_smoothing"
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
ACCURACY_TOLERANCE = 0.01  # "smoothing does not improve accuracy much": < 1 point


@dataclass(frozen=True)
class Config:
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

    def __post_init__(self) -> None:
        for name in ("seeds", "widths", "smoothings"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not 1 <= self.n_train < MNIST_TRAIN:
            raise ValueError(
                f"n_train must be in [1, {MNIST_TRAIN - 1}] (the bundled MNIST"
                f" training images), got {self.n_train} — the post uses 1000"
            )
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
        if self.epochs < 1 or not 1 <= self.batch_size <= self.n_train:
            raise ValueError(
                f"epochs must be >= 1 and batch_size in [1, n_train={self.n_train}],"
                f" got {self.epochs} and {self.batch_size} — the post uses 250, 32"
            )
        if self.n_bins < 2 or self.n_boot < 1:
            raise ValueError(
                f"n_bins must be >= 2 and n_boot >= 1, got {self.n_bins} and"
                f" {self.n_boot} — the post uses 15 bins"
            )
        if not 0.0 < self.confident < 1.0:
            raise ValueError(
                f"confident must be in (0, 1), got {self.confident} — the post uses 0.8"
            )
        if self.record_points < 2:
            raise ValueError(f"record_points must be >= 2, got {self.record_points}")
        if not self.seeds:
            raise ValueError("seeds must hold at least one seed, got () — e.g. (0,)")

    def quick(self) -> Config:
        """Return a smoke-run version: 1/10 of the epochs, fewer resamples."""
        return dataclasses.replace(
            self, epochs=max(1, self.epochs // 10), n_boot=min(self.n_boot, 50)
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
    )


# --- figures -----------------------------------------------------------------------


def _seed_note(result: Result) -> str:
    n = len(result["seeds"])
    return f" Curves: mean over {n} seeds (bin by bin), bars min-max." if n > 1 else ""


def _reliability(ax, conf, acc, label, color, **style) -> None:
    """Plot seed-mean accuracy against confidence per bin, (S, M) each."""
    x, y = np.nanmean(conf, 0), np.nanmean(acc, 0)
    if conf.shape[0] > 1:
        # a mean of equal values can land an ulp outside them: clip the bar lengths
        below = np.maximum(y - np.nanmin(acc, 0), 0.0)
        above = np.maximum(np.nanmax(acc, 0) - y, 0.0)
        ax.errorbar(
            x, y, yerr=[below, above], color=color, lw=0, elinewidth=0.8, alpha=0.6
        )
    ax.plot(x, y, marker="o", ms=3, color=color, label=label, **style)


def _diagonal(ax, lo: float) -> None:
    ax.plot([lo, 1], [lo, 1], color="0.5", ls="--", lw=1, label="calibrated")
    ax.set_xlabel("mean confidence in bin")
    ax.set_ylabel("accuracy in bin")
    ax.grid(alpha=0.3)


def _fig7(result: Result, threshold: float) -> Figure:
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(11, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for s, seed in enumerate(result["seeds"]):
        conf = result["wrong_confidence"][s]
        conf = conf[np.isfinite(conf)]
        cdf = np.arange(1, conf.size + 1) / max(conf.size, 1)
        left.step(conf, cdf, where="post", color="C0", alpha=0.9, label=f"seed {seed}")
    left.axvline(threshold, color="C3", ls=":", lw=1)
    above = float(np.mean(result["fraction_confident_wrong"][:, 0]))
    left.text(
        threshold, 0.9, f"{above:.0%} of wrong answers\nhave confidence > "
        f"{threshold:g} ", color="C3", ha="right",
    )  # fmt: skip
    left.set_xlabel("confidence of a wrong test prediction")
    left.set_ylabel("cumulative fraction of wrong predictions")
    left.set_xlim(0, 1.01)
    left.grid(alpha=0.3)
    left.legend(loc="upper left")
    conf, acc = result["test_rel_conf"][:, 0], result["test_rel_acc"][:, 0]
    _reliability(right, conf, acc, "eps = 0", "C0")
    _diagonal(right, min(np.nanmin(conf), np.nanmin(acc)))
    right.legend(loc="upper left")
    n_bins = conf.shape[-1]
    acc0, ece0 = result["test_accuracy"][:, 0].mean(), result["test_ece_mass"][:, 0]
    caption = (
        f"MNIST, {result.config['n_train']} training images, no label smoothing,"
        f" scored on {result.config['n_test']} test images (accuracy {acc0:.4f})."
        " Left: empirical CDF of the confidence max_k p_k over the wrong"
        " predictions. Right: mean accuracy against mean confidence in"
        f" {n_bins} equal-mass confidence bins; points below the dashed diagonal"
        f" are overconfident (equal-mass ECE {ece0.mean():.4f})." + _seed_note(result)
    )
    return Figure("fig7_calibration", fig, caption)


def _fig8(result: Result) -> Figure:
    import matplotlib as mpl
    from matplotlib.figure import Figure as MplFigure

    eps = result["smoothings"]
    fig = MplFigure(figsize=(12, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    colors = mpl.colormaps["viridis"](np.linspace(0, 0.95, len(eps)))
    for c, e in enumerate(eps):
        _reliability(
            left, result["test_rel_conf"][:, c], result["test_rel_acc"][:, c],
            f"eps = {e:g}", colors[c], lw=1.2,
        )  # fmt: skip
    _diagonal(left, min(np.nanmin(result["test_rel_conf"]), 0.5))
    left.legend(fontsize=8, ncol=2, loc="upper left", title="label smoothing")
    ece = result["test_ece_mass"].mean(0)  # (C,)
    low, high = result["test_ece_low"].mean(0), result["test_ece_high"].mean(0)
    # ECE's bootstrap is biased upward, so the percentile interval need not contain
    # the estimate: draw it as a segment, not as error bars around the point.
    right.vlines(eps, low, high, color="C0", alpha=0.6, lw=3)
    right.plot(
        eps, ece, marker="o", ms=4, color="C0",
        label=f"equal-mass ECE; bars: {result.config['n_boot']}-resample"
        " bootstrap 95% interval",
    )  # fmt: skip
    right.plot(
        eps, result["test_ece_width"].mean(0), marker="s", ms=3, ls="--",
        color="C2", label="equal-width ECE",
    )  # fmt: skip
    best = int(np.argmin(ece))
    right.plot(
        eps[best], ece[best], marker="*", ms=16, color="C3", ls="none",
        label=f"minimum at eps = {eps[best]:g}",
    )  # fmt: skip
    right.set_xscale("symlog", linthresh=float(eps[1]))
    right.set_xticks(eps, [f"{e:g}" for e in eps], rotation=45)
    right.minorticks_off()
    right.set_xlabel("label smoothing eps (symlog axis, ticks at the swept values)")
    right.set_ylabel("ECE on test")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    caption = (
        "Label-smoothing sweep, one model per eps trained together (shared"
        " initial weights and batch order). Left: reliability curves over"
        f" {result['test_rel_conf'].shape[-1]} equal-mass bins, one colour per eps;"
        " above the diagonal is underconfident. Right: expected calibration error"
        " against eps; the star marks the lowest equal-mass ECE"
        f" ({ece[best]:.4f} at eps = {eps[best]:g}; eps = 0 gives {ece[0]:.4f}),"
        " bars are bootstrap intervals over the test points. eps is the post's"
        " convention (1 - eps on the label, eps/(K-1) elsewhere); the same targets"
        " in the (1 - e) one_hot + e/K convention have e = eps K/(K-1)."
        + _seed_note(result)
    )
    return Figure("fig8_smoothing_sweep", fig, caption)


def _fig_temperature(result: Result) -> Figure:
    from matplotlib.figure import Figure as MplFigure

    eps = result["smoothings"]
    fig = MplFigure(figsize=(13, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1, 1.3))
    choice = result["val_choice"]  # (S,)
    seeds = np.arange(len(choice))
    T = result["temperature"][:, 0]
    curves = (
        ("test_rel", 0, "eps = 0", "C0"),
        ("ts_rel", 0, f"eps = 0, temperature T = {T.mean():.2f}", "C1"),
        ("test_rel", choice, f"eps = {eps[choice[0]]:g} (lowest val ECE)", "C2"),
    )
    for prefix, col, label, color in curves:
        conf = result[f"{prefix}_conf"][seeds, col]
        _reliability(left, conf, result[f"{prefix}_acc"][seeds, col], label, color)
    _diagonal(left, min(np.nanmin(result["test_rel_conf"][:, 0]), 0.5))
    left.legend(loc="upper left", fontsize=9)
    table = result["table"].mean(0)  # (rows, columns)
    right.axis("off")
    cells = [[f"{v:.4f}" for v in row] for row in table]
    grid = right.table(
        cellText=cells,
        rowLabels=list(result["table_rows"]),
        colLabels=list(result["table_columns"]),
        loc="center",
    )
    grid.auto_set_font_size(False)
    grid.set_fontsize(9)
    grid.scale(1, 1.8)
    right.set_title("test-set scores (lower is better, except accuracy)")
    caption = (
        "Beyond the post: temperature scaling against label smoothing. T is fitted"
        f" by NLL on {result.config['n_val']} bundled training images the models"
        " never trained on; the smoothing eps is the one with the lowest equal-mass"
        " ECE on the same images. Left: reliability curves on the test images."
        " Right: test scores; the last row picks eps by test ECE, as the sweep of"
        " Figure 8 does, and is optimistic for that reason." + _seed_note(result)
    )
    return Figure("fig_temperature_vs_smoothing", fig, caption)


def figures(result: Result) -> list[Figure]:
    """Return Figures 7 and 8, and temperature vs smoothing when it was measured."""
    out = [_fig7(result, float(result.config["confident"])), _fig8(result)]
    if "table" in result.arrays:
        out.append(_fig_temperature(result))
    return out


# --- claims ------------------------------------------------------------------------


def sliders(result: Result) -> list[Slider]:
    """One reliability diagram per epsilon, on fixed axes, to move through the sweep."""
    from matplotlib.figure import Figure as MplFigure

    eps, panels = result["smoothings"], []
    lo = min(float(np.nanmin(result["test_rel_conf"])), 0.5)
    for c, e in enumerate(eps):
        fig = MplFigure(figsize=(4.6, 4.2), layout="constrained")
        ax = fig.subplots()
        _reliability(
            ax, result["test_rel_conf"][:, c], result["test_rel_acc"][:, c],
            f"eps = {e:g}", "C0", lw=1.5,
        )  # fmt: skip
        _diagonal(ax, lo)
        ece = result["test_ece_mass"][:, c].mean()
        acc = result["test_accuracy"][:, c].mean()
        ax.set_title(f"eps = {e:g}: ECE {ece:.4f}, accuracy {acc:.4f}", fontsize=10)
        ax.set_xlim(lo, 1.0)
        ax.set_ylim(lo, 1.0)
        panels.append(fig)
    return [
        Slider(
            "slider_smoothing",
            "label smoothing ε",
            [f"{e:g}" for e in eps],
            panels,
            "Mean confidence against mean accuracy over equal-mass bins of the test"
            " set for each ε (seed mean): below the diagonal is overconfident, above"
            " it underconfident.",
        )
    ]


def _agree(ok: np.ndarray) -> str:
    return f"{int(np.sum(ok))} of {ok.size} seeds agree"


def claims(result: Result) -> list[Claim]:
    """Return the post's statements about calibration and smoothing, measured."""
    eps = result["smoothings"]
    threshold = float(result.config["confident"])
    confident = result["fraction_confident_wrong"][:, 0]  # (S,)
    train_acc = result["train_accuracy"][:, 0, -1]  # (S,)
    gap = result["test_rel_conf"][:, 0] - result["test_rel_acc"][:, 0]  # (S, M)
    over_bins = np.nanmean(gap, 0) > 0  # (M,) judged on the seed mean per bin
    per_seed_over = np.nanmean(gap > 0, -1)  # (S,)
    overall = result["test_mean_confidence"] - result["test_accuracy"]  # (S, C)
    ece = result["test_ece_mass"]  # (S, C)
    best = int(np.argmin(ece.mean(0)))
    seed_best = ece.argmin(-1)  # (S,)
    acc = result["test_accuracy"]  # (S, C)
    acc_change = acc[:, best] - acc[:, 0]  # (S,)
    smoothing_gain = ece[:, 0] - ece[:, 1:].min(-1)  # (S,)
    low, high = result["test_ece_low"].mean(0), result["test_ece_high"].mean(0)
    return [
        Claim(
            "confident_when_wrong",
            f"Without smoothing, more than half of the wrong test predictions have"
            f" confidence above {threshold:g}.",
            float(confident.mean()),
            0.5,
            ">",
            f"fraction of wrong predictions (eps = 0) with max_k p_k > {threshold:g};"
            f" {_agree(confident > 0.5)}",
        ),
        Claim(
            "unsmoothed_interpolates",
            "Without smoothing the model fits every training image.",
            float(train_acc.mean()),
            0.999,
            ">=",
            f"train accuracy at the last epoch, eps = 0; {_agree(train_acc >= 0.999)}",
        ),
        Claim(
            "unsmoothed_overconfident",
            "Without smoothing the mean confidence exceeds the accuracy in the"
            " confidence bins: the model is overconfident.",
            float(over_bins.mean()),
            0.5,
            ">",
            f"fraction of {gap.shape[-1]} equal-mass bins with mean confidence >"
            f" accuracy (eps = 0); overall mean confidence - accuracy"
            f" {overall[:, 0].mean():+.4f}; {_agree(per_seed_over > 0.5)}",
        ),
        Claim(
            "smoothing_lowers_ece",
            "Some positive eps gives a lower ECE than no smoothing.",
            float(smoothing_gain.mean()),
            0.0,
            ">",
            f"equal-mass ECE(eps = 0) - min over eps > 0: {ece[:, 0].mean():.4f} -"
            f" {ece[:, 1:].min(-1).mean():.4f}; {_agree(smoothing_gain > 0)}",
        ),
        Claim(
            "ece_minimum_at_small_eps",
            "The ECE is smallest at a small eps (the post finds 0.015).",
            float(eps[best]),
            0.05,
            "<=",
            f"eps minimizing the seed-mean equal-mass ECE ({ece.mean(0)[best]:.4f},"
            f" bootstrap 95% [{low[best]:.4f}, {high[best]:.4f}]); per-seed argmin"
            f" {eps[seed_best].tolist()};"
            f" {_agree((eps[seed_best] > 0) & (eps[seed_best] <= 0.05))} on (0, 0.05]",
        ),
        Claim(
            "largest_eps_underconfident",
            "At the largest eps the model is underconfident: mean confidence below"
            " accuracy.",
            float(overall[:, -1].mean()),
            0.0,
            "<",
            f"mean confidence - accuracy on test at eps = {eps[-1]:g};"
            f" {_agree(overall[:, -1] < 0)}",
        ),
        Claim(
            "smoothing_keeps_accuracy",
            "Label smoothing does not change accuracy much; it is for calibration.",
            float(np.abs(acc_change.mean())),
            ACCURACY_TOLERANCE,
            "<",
            f"|accuracy(eps = {eps[best]:g}, lowest ECE) - accuracy(eps = 0)|, under"
            f" {ACCURACY_TOLERANCE:g}; accuracy over the sweep ranges"
            f" {acc.mean(0).min():.4f}..{acc.mean(0).max():.4f};"
            f" {_agree(np.abs(acc_change) < ACCURACY_TOLERANCE)}",
        ),
    ]
