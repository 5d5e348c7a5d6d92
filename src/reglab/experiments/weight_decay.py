"""Section 2.1: L2 and L1 weight decay on two moons with flipped labels.

One ensemble holds both sweeps (9 L2 columns, then 9 L1 columns; coupled penalties,
the post's SGD); an optional second program repeats the L1 sweep with proximal
soft-thresholding, whose zeros are exact. Final models are evaluated by ``predict``:
P(class 1) over the input plane, accuracy on the noisy training labels and on a clean
test draw, and the hidden-to-hidden weights W2 whose sparsity the post shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import matplotlib.figure
import numpy as np

from reglab import nn
from reglab.data import make_moons, make_moons_test
from reglab.ensemble import Ensemble
from reglab.experiments.base import (
    Claim,
    Figure,
    Progress,
    Result,
    Slider,
    Tally,
    check_moons_sizes,
    config_dict,
)
from reglab.optim import OptimizerSpec
from reglab.train import TrainSpec, predict, train

NAME = "weight_decay"
SWEEPS = ("l2", "l1", "prox")  # prox: the L1 sweep again, by soft-thresholding


@dataclass(frozen=True)
class Config:
    """The weight-decay sweeps of section 2.1; defaults are the post's section 7 row."""

    n_train: int = 250  # two moons, section 2.1
    noise: float = 0.1  # WEIGHT_DECAY_MOONS: moons apart, only flips confuse
    flip_fraction: float = 0.10  # each label flipped with probability 10%
    n_test: int = 2000  # clean test draw (no flips) from the same distribution
    data_seed: int = 0
    widths: tuple[int, ...] = (2, 64, 64, 2)
    learning_rate: float = 0.15  # SGD (0.15, 1, 5e4)
    alpha: float = 1.0
    tau: float = 5e4
    epochs: int = 10_000
    batch_size: int = 32
    l2_strengths: tuple[float, ...] = tuple(0.0025 * i for i in range(9))  # 0..0.02
    l1_strengths: tuple[float, ...] = tuple(0.0005 * i for i in range(9))  # 0..0.004
    # Beyond the post: L1 by soft-thresholding (exact zeros) at two of the L1
    # strengths, a second program (~1/3 of the run time); () skips it.
    prox_strengths: tuple[float, ...] = (0.0005, 0.002)
    # The models of the claims and figure 4: the post's "most moderate amount" of
    # regularization, the first nonzero strength of each sweep. Past it (our mean-
    # over-batch gradients) the net collapses to a near-linear boundary; see claims.
    l2_named: float = 0.0025
    l1_named: float = 0.0005
    # |w| below these counts as near zero: 1e-2 is ~8% of W2's init std (0.125),
    # 1e-3 is below what subgradient L1's per-step jitter leaves (see claims)
    thresholds: tuple[float, ...] = (1e-2, 1e-3)
    # Multiplies every strength. Our likelihood gradient is a batch mean; 1/32 (1 /
    # batch_size) reads the post's lambdas as if its gradient summed over the batch,
    # which reproduces its figures (every lambda threads the moons); 1.0 is literal.
    strength_scale: float = 1.0
    record_every: int = 500  # train-set metrics only: evaluation is not the point
    grid_resolution: int = 100  # decision-probability grid is resolution^2
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        check_moons_sizes(self)
        if len(self.widths) < 4 or self.widths[0] != 2 or self.widths[-1] != 2:
            raise ValueError(
                f"widths must be (2, hidden, hidden, ..., 2) with >= 2 hidden layers"
                f" (W2 is hidden-to-hidden), got {self.widths!r}"
            )
        for name in ("l2_strengths", "l1_strengths"):
            v = getattr(self, name)
            if 0.0 not in v or min(v) < 0:
                raise ValueError(
                    f"{name} must be >= 0 and include 0.0 (the unregularized"
                    f" baseline), got {v!r}"
                )
        if any(s < 0 for s in self.prox_strengths):
            raise ValueError(f"prox_strengths must be >= 0, got {self.prox_strengths}")
        for name, sweep in (("l2_named", "l2_strengths"), ("l1_named", "l1_strengths")):
            if getattr(self, name) not in getattr(self, sweep):
                raise ValueError(
                    f"{name}={getattr(self, name)} must be one of {sweep}"
                    f" {getattr(self, sweep)!r} — pick a swept strength"
                )
        if not self.strength_scale > 0:
            raise ValueError(
                f"strength_scale must be > 0, got {self.strength_scale} — 1.0 keeps"
                " the post's strengths"
            )
        if not self.thresholds or min(self.thresholds) <= 0:
            raise ValueError(f"thresholds must be > 0, got {self.thresholds!r}")
        if not self.seeds:
            raise ValueError("seeds must hold at least one seed, e.g. (0,)")

    def quick(self) -> Config:
        """Return a smoke-run version: 20x fewer epochs, same shapes."""
        return replace(self, epochs=max(1, self.epochs // 20))


def plane_grid(x: np.ndarray, resolution: int, margin: float = 0.5):
    """Return (gx (R,), gy (R,), points (R*R, 2)) covering x's bounding box + margin."""
    lo, hi = x.min(axis=0) - margin, x.max(axis=0) + margin
    gx = np.linspace(lo[0], hi[0], resolution, dtype=np.float32)
    gy = np.linspace(lo[1], hi[1], resolution, dtype=np.float32)
    X, Y = np.meshgrid(gx, gy)  # (R, R): rows follow y, columns follow x
    return gx, gy, np.stack([X.ravel(), Y.ravel()], axis=1)


def prob_class1(logits: np.ndarray) -> np.ndarray:
    """Return P(class 1) from two-class logits (..., 2)."""
    # softmax over two classes: p_1 = sigmoid(z_1 - z_0)
    return 1.0 / (1.0 + np.exp(-(logits[..., 1] - logits[..., 0])))


def near_zero_fraction(W: np.ndarray, threshold: float) -> np.ndarray:
    """Return the fraction of entries with |w| < threshold over the last two axes."""
    return (np.abs(W) < threshold).mean(axis=(-2, -1))


def dead_unit_fraction(W: np.ndarray, threshold: float) -> np.ndarray:
    """Return the fraction of units whose every W entry (row or column) is near zero.

    A row of W (fan_in, fan_out) that is all near zero is a lower-layer unit cut off
    from the layer above; an all-near-zero column is an upper unit that hears nothing.
    """
    small = np.abs(W) < threshold  # (..., fan_in, fan_out)
    dead_rows, dead_cols = small.all(axis=-1), small.all(axis=-2)
    return (dead_rows.sum(-1) + dead_cols.sum(-1)) / (W.shape[-2] + W.shape[-1])


def live_near_zero_fraction(W: np.ndarray, threshold: float) -> np.ndarray:
    """Return the near-zero fraction among entries joining two live units."""
    small = np.abs(W) < threshold
    live = ~small.all(axis=-1)[..., :, None] & ~small.all(axis=-2)[..., None, :]
    return (small & live).sum(axis=(-2, -1)) / np.maximum(live.sum(axis=(-2, -1)), 1)


def _model(cfg: Config) -> nn.MLPSpec:
    return nn.MLPSpec(cfg.widths, activation="tanh")


def run(cfg: Config, *, progress: Progress | None = None) -> Result:
    """Train the L2+L1 ensemble (and the proximal L1 sweep); evaluate final models."""
    data = make_moons(
        cfg.n_train,
        noise=cfg.noise,
        flip_fraction=cfg.flip_fraction,
        seed=cfg.data_seed,
    )
    test = make_moons_test(cfg.n_test, noise=cfg.noise, seed=cfg.data_seed)
    gx, gy, points = plane_grid(data.x, cfg.grid_resolution)
    R = cfg.grid_resolution
    schedule = {"learning_rate": cfg.learning_rate, "alpha": cfg.alpha, "tau": cfg.tau}
    k = cfg.strength_scale
    l2, l1 = [
        tuple(k * v for v in sweep) for sweep in (cfg.l2_strengths, cfg.l1_strengths)
    ]
    n2, n1 = len(l2), len(l1)
    # one program, 18 columns: L2 sweep (L1 off), then L1 sweep (L2 off)
    coupled = Ensemble(
        cfg.seeds,
        {
            "l2_strength": np.array(l2 + (0.0,) * n1),
            "l1_strength": np.array((0.0,) * n2 + l1),
            **schedule,
        },
    )
    sweeps = {"l2": (0, n2), "l1": (n2, n2 + n1)}  # column ranges
    calls = [(OptimizerSpec("sgd", penalty="coupled"), coupled, sweeps)]
    if cfg.prox_strengths:
        prox = Ensemble(
            cfg.seeds, {"l1_strength": k * np.array(cfg.prox_strengths), **schedule}
        )
        sweeps = {"prox": (0, len(cfg.prox_strengths))}
        calls.append((OptimizerSpec("sgd", penalty="proximal"), prox, sweeps))

    arrays: dict[str, np.ndarray] = {
        "x_train": data.x,
        "y_train": data.y,
        "y_train_clean": data.y_clean,
        "flipped": data.flipped,
        "grid_x": gx,
        "grid_y": gy,
        "seeds": np.array(cfg.seeds),
    }
    tally = Tally(progress, len(calls))
    for i, (optimizer, ensemble, sweeps) in enumerate(calls):
        spec = TrainSpec(
            _model(cfg), optimizer, epochs=cfg.epochs, batch_size=cfg.batch_size
        )

        res = tally.add(
            train(
                spec,
                ensemble,
                data.x,
                data.y,
                eval_sets={"train": (data.x, data.y)},
                record=cfg.record_every,
                progress=tally.progress(i),
            )
        )
        train_pred = predict(spec.model, res.params, data.x).argmax(-1)  # (S, C, n)
        test_pred = predict(spec.model, res.params, test.x).argmax(-1)  # (S, C, n_test)
        grid_logits = predict(spec.model, res.params, points)  # (S, C, R*R, 2)
        grid_p = prob_class1(grid_logits).reshape(grid_logits.shape[:2] + (R, R))
        arrays["record_epochs"] = res.record_epochs
        for name, (a, b) in sweeps.items():
            flipped = data.flipped
            swept = {"l2": l2, "l1": l1, "prox": k * np.array(cfg.prox_strengths)}
            arrays[f"{name}_strengths"] = np.asarray(swept[name], np.float32)
            arrays[f"{name}_W2"] = res.params["W2"][:, a:b]  # (S, C, H1, H2)
            arrays[f"{name}_train_acc"] = (train_pred[:, a:b] == data.y).mean(-1)
            arrays[f"{name}_train_acc_clean"] = (
                train_pred[:, a:b] == data.y_clean
            ).mean(-1)
            arrays[f"{name}_test_acc"] = (test_pred[:, a:b] == test.y).mean(-1)
            # fraction of flipped points predicted with their (wrong) flipped label
            arrays[f"{name}_flip_fit"] = (
                (train_pred[:, a:b][..., flipped] == data.y[flipped]).mean(-1)
                if flipped.any()
                else np.full(train_pred[:, a:b].shape[:2], np.nan)
            )
            arrays[f"{name}_train_loss_curve"] = res.history["train"]["loss"][:, a:b]
            arrays[f"{name}_diverged"] = res.diverged[:, a:b]
            if name != "prox":  # boundaries are drawn for the post's two sweeps
                arrays[f"{name}_prob"] = grid_p[:, a:b].astype(np.float32)
    return Result(NAME, config_dict(cfg), arrays, tally.timings, tally.notes)


# --- figures -------------------------------------------------------------------------


def plot_probability(ax, gx, gy, p, x, y, flipped=None) -> object:
    """Draw P(class 1) filled contours, the p=0.5 boundary and the labelled points."""
    levels = np.linspace(0.0, 1.0, 11)
    cs = ax.contourf(gx, gy, p, levels=levels, cmap="RdBu_r", alpha=0.8)
    ax.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=1.2)
    ax.scatter(*x[y == 0].T, s=7, c="tab:blue", edgecolors="w", linewidths=0.3)
    ax.scatter(*x[y == 1].T, s=7, c="tab:red", edgecolors="w", linewidths=0.3)
    if flipped is not None and flipped.any():
        ax.scatter(*x[flipped].T, s=40, marker="x", c="k", linewidths=0.9)
    ax.set_xticks([])
    ax.set_yticks([])
    return cs


def _boundary_figure(result: Result, sweep: str, symbol: str) -> Figure:
    a = result.arrays
    strengths, p = a[f"{sweep}_strengths"], a[f"{sweep}_prob"][0]  # seed 0: (C, R, R)
    test_acc = a[f"{sweep}_test_acc"].mean(0)  # seed mean (C,)
    n = len(strengths)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig = matplotlib.figure.Figure(figsize=(3.2 * cols + 0.8, 3.0 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for c, ax in enumerate(axes.flat):
        if c >= n:
            ax.set_axis_off()
            continue
        cs = plot_probability(
            ax, a["grid_x"], a["grid_y"], p[c], a["x_train"], a["y_train"], a["flipped"]
        )
        ax.set_title(
            f"{symbol} = {strengths[c]:g}  (test acc {test_acc[c]:.3f})", fontsize=9
        )
    fig.colorbar(cs, ax=axes, label="P(class 1)", shrink=0.8)
    key = {"l2": "fig2_l2_boundaries", "l1": "fig3_l1_boundaries"}[sweep]
    caption = (
        f"Decision probability P(class 1) of the 2-64-64-2 tanh MLP (seed"
        f" {int(a['seeds'][0])}) after SGD with coupled {sweep.upper()} strength"
        f" {symbol}; black line: P = 0.5; dots: training labels (red = 1, blue = 0)"
        " after 10% flips; crosses mark the flipped points. Titles give the clean"
        " test accuracy (seed mean)."
    )
    return Figure(key, fig, caption)


def _named_index(result: Result, sweep: str) -> int:
    strengths = result.arrays[f"{sweep}_strengths"]
    named = result.config[f"{sweep}_named"] * result.config["strength_scale"]
    return int(np.argmin(np.abs(strengths - named)))


def _hidden_weights_figure(result: Result) -> Figure:
    a = result.arrays
    thr = result.config["thresholds"][0]
    i2, i1 = _named_index(result, "l2"), _named_index(result, "l1")
    i0 = int(np.argmin(a["l2_strengths"]))
    panels = [
        ("unregularized", a["l2_W2"][0, i0]),
        (f"L2, $\\lambda_2$ = {a['l2_strengths'][i2]:g}", a["l2_W2"][0, i2]),
        (f"L1, $\\lambda_1$ = {a['l1_strengths'][i1]:g}", a["l1_W2"][0, i1]),
    ]
    vmax = max(float(np.abs(W).max()) for _, W in panels)
    fig = matplotlib.figure.Figure(figsize=(13, 4.4))
    axes = fig.subplots(1, 3)
    for ax, (title, W) in zip(axes, panels, strict=True):
        im = ax.imshow(W, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        frac = float(near_zero_fraction(W, thr))
        ax.set_title(f"{title}\n|w| < {thr:g}: {frac:.0%} of entries", fontsize=10)
        ax.set_xlabel("hidden layer 2 unit")
        ax.set_ylabel("hidden layer 1 unit")
    fig.colorbar(im, ax=axes, label="weight (shared scale)", shrink=0.85)
    caption = (
        "Hidden-to-hidden weights W2 (64 x 64, rows: layer-1 units, columns: layer-2"
        " units) of the unregularized, an L2 and an L1 model (seed"
        f" {int(a['seeds'][0])}) on one diverging colour scale; titles give the"
        f" fraction of entries with |w| < {thr:g}."
    )
    return Figure("fig4_hidden_weights", fig, caption)


def _sparsity_figure(result: Result) -> Figure:
    a = result.arrays
    thresholds = result.config["thresholds"]
    sweeps = [s for s in SWEEPS if f"{s}_W2" in a]
    fig = matplotlib.figure.Figure(figsize=(11, 4))
    ax2, ax1 = fig.subplots(1, 2, sharey=True)
    styles = ["-", "--", ":"]
    for sweep in sweeps:
        ax = ax2 if sweep == "l2" else ax1
        s, W = a[f"{sweep}_strengths"], a[f"{sweep}_W2"]  # (C,), (S, C, H, H)
        label = {"l2": "L2", "l1": "L1 (subgradient)", "prox": "L1 (proximal)"}[sweep]
        color = {"l2": "tab:blue", "l1": "tab:orange", "prox": "tab:green"}[sweep]
        for thr, ls in zip(thresholds, styles, strict=False):
            _band(
                ax, s, near_zero_fraction(W, thr), f"{label}: |w| < {thr:g}", color, ls
            )
        if sweep == "prox":
            _band(ax, s, (W == 0).mean(axis=(-2, -1)), f"{label}: w = 0", "k", "-")
        _band(
            ax, s, dead_unit_fraction(W, thresholds[0]), f"{label}: dead units", color,
            "-.", marker="s",
        )  # fmt: skip
    ax2.set_xlabel("L2 strength $\\lambda_2$")
    ax1.set_xlabel("L1 strength $\\lambda_1$")
    ax2.set_ylabel("fraction of W2")
    for ax in (ax2, ax1):
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    caption = (
        "Sparsity of W2 against strength: fraction of entries below each threshold,"
        " and of dead units (a layer-1 unit whose W2 row, or a layer-2 unit whose W2"
        f" column, is entirely below {thresholds[0]:g}); proximal L1 also shows exact"
        " zeros. Seed mean, band min-max when several seeds."
    )
    return Figure("fig_l1_sparsity", fig, caption)


def _band(ax, x, values, label, color, ls, marker="o") -> None:
    """Plot the seed mean of values (S, C) against x, with a min-max band."""
    ax.plot(x, values.mean(0), ls=ls, marker=marker, ms=3, color=color, label=label)
    if values.shape[0] > 1:
        ax.fill_between(x, values.min(0), values.max(0), color=color, alpha=0.15)


def figures(result: Result) -> list[Figure]:
    """Return figures 2, 3 and 4 of the post and the sparsity-vs-strength figure."""
    return [
        _boundary_figure(result, "l2", "$\\lambda_2$"),
        _boundary_figure(result, "l1", "$\\lambda_1$"),
        _hidden_weights_figure(result),
        _sparsity_figure(result),
    ]


def _strength_panel(result: Result, sweep: str, c: int, seed: int = 0):
    """One member: its decision probability and its W2, side by side."""
    a = result.arrays
    fig = matplotlib.figure.Figure(figsize=(7.2, 3.2), layout="constrained")
    ax_p, ax_w = fig.subplots(1, 2)
    plot_probability(
        ax_p, a["grid_x"], a["grid_y"], a[f"{sweep}_prob"][seed, c], a["x_train"],
        a["y_train"], a["flipped"],
    )  # fmt: skip
    acc = a[f"{sweep}_test_acc"][seed, c]
    ax_p.set_title(f"boundary (clean test acc {acc:.3f})", fontsize=9)
    W = a[f"{sweep}_W2"][seed, c]
    vmax = float(np.abs(a[f"{sweep}_W2"][seed]).max())  # one scale along the slider
    ax_w.imshow(W, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    thr = result.config["thresholds"][0]
    ax_w.set_title(f"W2: {near_zero_fraction(W, thr):.0%} of |w| < {thr:g}", fontsize=9)
    ax_w.set_xticks([])
    ax_w.set_yticks([])
    return fig


def sliders(result: Result) -> list[Slider]:
    """One panel per strength of each sweep (and per seed when there are several)."""
    a, out = result.arrays, []
    names = {"l2": ("L2", "λ₂"), "l1": ("L1", "λ₁"), "prox": ("proximal L1", "λ₁")}
    for sweep, (label, symbol) in names.items():
        if f"{sweep}_prob" not in a:
            continue
        strengths = a[f"{sweep}_strengths"]
        out.append(
            Slider(
                f"slider_{sweep}",
                f"{label} strength {symbol}",
                [f"{v:g}" for v in strengths],
                [_strength_panel(result, sweep, c) for c in range(len(strengths))],
                f"Move through the {label} sweep: the decision boundary of the model"
                " trained at that strength (seed 0) and its hidden-to-hidden weights"
                " W2, on one colour scale along the sweep.",
            )
        )
    n_seeds = a["l2_prob"].shape[0] if "l2_prob" in a else 1
    if n_seeds > 1:
        i = _named_index(result, "l2")
        out.append(
            Slider(
                "slider_seed",
                "seed",
                [str(int(s)) for s in a["seeds"]],
                [_strength_panel(result, "l2", i, s) for s in range(n_seeds)],
                f"The L2 model at λ₂ = {a['l2_strengths'][i]:g} for each seed: same"
                " data, different initial weights and batch order.",
            )
        )
    return out


# --- claims --------------------------------------------------------------------------


def _agree(values: np.ndarray, comparison: str, threshold: float) -> str:
    ok = {">": values > threshold, "<": values < threshold}[comparison]
    return f"{int(ok.sum())}/{len(values)} seeds agree"


def claims(result: Result) -> list[Claim]:
    """Return the post's section 2.1 statements, measured on the seed mean."""
    a, cfg = result.arrays, result.config
    thr = cfg["thresholds"]
    i0, i2 = int(np.argmin(a["l2_strengths"])), _named_index(result, "l2")
    j0, i1 = int(np.argmin(a["l1_strengths"])), _named_index(result, "l1")
    lam2, lam1 = float(a["l2_strengths"][i2]), float(a["l1_strengths"][i1])
    fit0, fit2 = a["l2_flip_fit"][:, i0], a["l2_flip_fit"][:, i2]  # (S,)
    acc0, acc2 = a["l2_test_acc"][:, i0], a["l2_test_acc"][:, i2]
    W0, W2, W1 = a["l2_W2"][:, i0], a["l2_W2"][:, i2], a["l1_W2"][:, i1]
    out = [
        Claim(
            "unregularized_fits_flips",
            "Without weight decay the network fits the flipped labels.",
            float(fit0.mean()),
            0.5,
            ">",
            f"fraction of the {int(a['flipped'].sum())} flipped training points"
            f" predicted with their flipped label at lambda=0; train accuracy on the"
            f" noisy labels {a['l2_train_acc'][:, i0].mean():.3f};"
            f" {_agree(fit0, '>', 0.5)}",
        ),
        Claim(
            "moderate_l2_ignores_flips",
            "Moderate L2 smooths the boundary: it stops fitting the flipped labels.",
            float(fit2.mean()),
            0.5,
            "<",
            f"flipped points predicted with their flipped label at lambda_2={lam2:g};"
            f" train accuracy on noisy labels {a['l2_train_acc'][:, i2].mean():.3f},"
            f" on clean labels {a['l2_train_acc_clean'][:, i2].mean():.3f};"
            f" {_agree(fit2, '<', 0.5)}",
        ),
        Claim(
            "moderate_l2_generalizes_better",
            "Moderate L2 raises clean test accuracy over the unregularized model.",
            float((acc2 - acc0).mean()),
            0.0,
            ">",
            f"clean test accuracy at lambda_2={lam2:g} ({acc2.mean():.3f}) minus at"
            f" lambda=0 ({acc0.mean():.3f}), {len(a['x_train'])} train points;"
            f" {_agree(acc2 - acc0, '>', 0.0)}",
        ),
    ]
    gains = np.concatenate(
        [
            np.delete(a["l2_test_acc"], i0, axis=1) - acc0[:, None],
            np.delete(a["l1_test_acc"], j0, axis=1) - a["l1_test_acc"][:, j0, None],
        ],
        axis=1,
    ).mean(0)  # (regularized configs,)
    out.append(
        Claim(
            "regularization_raises_test_accuracy",
            "Weight decay (L2 or L1, across the sweeps) beats lambda=0 on clean data.",
            float(gains.mean()),
            0.0,
            ">",
            f"mean over the {len(gains)} nonzero strengths of both sweeps of the"
            f" clean test accuracy gain over lambda=0; {int((gains > 0).sum())} of"
            f" {len(gains)} strengths gain (min {gains.min():+.3f}, max"
            f" {gains.max():+.3f})",
        )
    )
    l1_frac = near_zero_fraction(W1, thr[0])  # (S,)
    l2_frac = near_zero_fraction(W2, thr[0])
    out += [
        Claim(
            "l1_makes_hidden_weights_sparse",
            "L1 leaves most hidden-to-hidden weights at (near) zero.",
            float(l1_frac.mean()),
            0.5,
            ">",
            f"fraction of W2 entries with |w| < {thr[0]:g} at lambda_1={lam1:g}"
            f" (lambda=0: {near_zero_fraction(W0, thr[0]).mean():.3f}); below"
            f" {thr[-1]:g}: {near_zero_fraction(W1, thr[-1]).mean():.3f}; dead units"
            f" {dead_unit_fraction(W1, thr[0]).mean():.3f}, near-zero among live"
            f" units {live_near_zero_fraction(W1, thr[0]).mean():.3f};"
            f" {_agree(l1_frac, '>', 0.5)}",
        ),
        Claim(
            "moderate_l2_not_sparse",
            "L2 shrinks weights without zeroing most of them.",
            float(l2_frac.mean()),
            0.5,
            "<",
            _l2_sparsity_detail(a, thr, i2, lam2) + f"; {_agree(l2_frac, '<', 0.5)}",
        ),
    ]
    if "prox_W2" in a:
        k = int(np.argmin(np.abs(a["prox_strengths"] - lam1)))
        exact_prox = (a["prox_W2"][:, k] == 0).mean(axis=(-2, -1))
        out.append(
            Claim(
                "proximal_l1_exact_zeros",
                "Proximal L1 (soft-thresholding) zeroes weights exactly; subgradient"
                " L1 only brings them near zero.",
                float(exact_prox.mean()),
                0.5,
                ">",
                f"fraction of W2 entries exactly 0 with proximal L1 at lambda_1="
                f"{a['prox_strengths'][k]:g}; subgradient L1 at {lam1:g}:"
                f" {(W1 == 0).mean(axis=(-2, -1)).mean():.4f} exactly 0,"
                f" {l1_frac.mean():.3f} below {thr[0]:g}; proximal clean test"
                f" accuracy {a['prox_test_acc'][:, k].mean():.3f};"
                f" {_agree(exact_prox, '>', 0.5)}",
            )
        )
    return out


def _l2_sparsity_detail(a, thr, i2, lam2) -> str:
    """Describe L2's near-zero weights, and the dead units of its strongest setting."""
    W2 = a["l2_W2"]  # (S, C, H, H)
    iw = int(np.argmax(a["l2_strengths"]))
    return (
        f"fraction of W2 entries with |w| < {thr[0]:g} at lambda_2={lam2:g}; at the"
        f" strongest lambda_2={a['l2_strengths'][iw]:g}:"
        f" {near_zero_fraction(W2[:, iw], thr[0]).mean():.3f} near zero, but"
        f" {dead_unit_fraction(W2[:, iw], thr[0]).mean():.3f} of the units are dead"
        f" (whole W2 row/column near zero) and only"
        f" {live_near_zero_fraction(W2[:, iw], thr[0]).mean():.3f} of the entries"
        " between live units are near zero - strong L2 removes whole units, not"
        " individual connections"
    )
