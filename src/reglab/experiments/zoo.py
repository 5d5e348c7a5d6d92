"""Beyond the post: every regularizer reglab has, side by side, with its paper's claim.

The post's (L2, L1, max-norm, dropout, label smoothing) and the canon's six (mixup,
input noise, weight noise, gradient noise, SAM, SWA; ``reglab.regularizers``), each
swept over a short strength grid on two of the post's problems:

    moons    section 2.1's noisy two moons (10% flipped labels), Adam: clean test
             accuracy, the P = 0.5 boundary length, the fit to the flipped labels
    mnist    section 4's MNIST-1000, SGD: test accuracy, NLL, ECE, and the top
             Hessian eigenvalue of the training loss (``reglab.sharpness``)

One column per (regularizer, strength) plus one shared baseline column (every
regularizer off); members of a seed share their init and batch order (common random
numbers), so the baseline is the same network for every comparison. Per problem,
six programs (``PROGRAMS``), so that no member pays for another's costly work.
SWA's live weights follow the baseline's exactly (averaging only changes what is
evaluated), so the baseline is SWA's "last iterate".

Runs once the canon is registered through the seam (its settings in the table);
``Config(regularizers=POST)`` runs the post's five alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from reglab import metrics, nn, sharpness
from reglab.data import WEIGHT_DECAY_MOONS, load, subset
from reglab.ensemble import Ensemble
from reglab.experiments.base import (
    Claim,
    Progress,
    Result,
    Tally,
    config_dict,
)
from reglab.experiments.moons import boundary_length, plane_grid, prob_class1
from reglab.experiments.rules import Interval, Rules, shrink
from reglab.optim import OptimizerSpec
from reglab.settings import table
from reglab.train import TrainSpec, predict, train

NAME = "zoo"
# arrays with a leading seed axis (Result.seed_axis); the rest are shared: the data,
# the grid and the columns
SEED_AXIS = (
    "seeds", "moons_test_acc", "moons_flip_fit", "moons_boundary", "moons_prob",
    "mnist_test_acc", "mnist_nll", "mnist_ece", "mnist_top_eigenvalue",
    "mnist_hessian_trace",
)  # fmt: skip
POST = ("l2_strength", "l1_strength", "max_norm", "p_drop", "smoothing")
CANON = ("mixup", "input_noise", "weight_noise", "gradient_noise", "sam", "swa_start")
PROBLEMS = ("moons", "mnist")
LABELS = {
    "none": "no regularizer", "l2_strength": "L2", "l1_strength": "L1",
    "max_norm": "max-norm", "p_drop": "dropout", "smoothing": "label smoothing",
    "mixup": "mixup", "input_noise": "input noise", "weight_noise": "weight noise",
    "gradient_noise": "gradient noise", "sam": "SAM", "swa_start": "SWA",
}  # fmt: skip
# Nonzero strengths, weakest first (the 0 column is shared). max_norm is a cap:
# smaller is stronger. swa_start is a fraction of the epochs (averaging from there).
GRIDS = (
    ("l2_strength", (1e-4, 1e-3, 3e-3, 1e-2)),
    ("l1_strength", (1e-5, 1e-4, 3e-4, 1e-3)),
    ("max_norm", (4.0, 2.0, 1.0, 0.5)),
    ("p_drop", (0.05, 0.1, 0.2, 0.4)),
    ("smoothing", (0.01, 0.03, 0.1, 0.3)),
    ("mixup", (0.05, 0.2, 0.5, 1.0)),
    ("input_noise", (0.03, 0.1, 0.2, 0.4)),
    ("weight_noise", (0.003, 0.01, 0.03, 0.1)),
    ("gradient_noise", (1e-4, 1e-3, 1e-2, 1e-1)),
    ("sam", (0.01, 0.03, 0.1, 0.3)),
    ("swa_start", (0.9, 0.75, 0.5)),
)
# Programs of a problem. Every member of a program does the work of every regularizer
# in it (its own at strength 0 included): weight noise draws one normal per weight
# per step (~5x a 784-128-10 step; gradient noise as many), input noise and mixup
# make each member's batch its own (no shared layer-1 matmul), SAM takes two passes,
# dropout needs its layers.
GROUPS = {"p_drop": "dropout", "sam": "sam", "weight_noise": "weights",
          "gradient_noise": "gradients", "mixup": "batch",
          "input_noise": "batch"}  # fmt: skip
PROGRAMS = ("plain", "batch", "weights", "gradients", "dropout", "sam")


@dataclass(frozen=True)
class Config(Rules):
    """The zoo's problems, budgets and grids (sized for ~5 minutes on 2 cores)."""

    regularizers: tuple[str, ...] = POST + CANON
    grids: tuple[tuple[str, tuple[float, ...]], ...] = GRIDS
    moons_widths: tuple[int, ...] = (2, 64, 64, 2)
    moons_learning_rate: float = 0.01  # Adam, constant: fits the flips in 400 epochs
    moons_epochs: int = 400
    n_test: int = 2000  # clean moons test points
    grid_resolution: int = 60  # moons probability grid, resolution^2 points
    mnist_widths: tuple[int, ...] = (784, 128, 10)
    mnist_n_train: int = 1000  # MNIST-1000, section 4
    mnist_n_test: int = 10000
    mnist_learning_rate: float = 0.15  # SGD (0.15, 1, 5e3) as section 4
    mnist_alpha: float = 1.0
    mnist_tau: float = 5e3
    mnist_epochs: int = 60  # section 4 trains 250; 60 fits the budget
    batch_size: int = 32
    gradient_noise_decay: float = 0.55  # Neelakantan et al.'s gamma
    n_bins: int = 15  # equal-mass ECE bins, as section 4
    power_iterations: int = 20  # per run of the top-eigenvalue search (two runs)
    hutchinson_probes: int = 10
    seeds: tuple[int, ...] = (0,)

    constraints = {
        name: Interval(int, 1, None)
        for name in ("moons_epochs", "mnist_epochs", "batch_size", "power_iterations",
                     "hutchinson_probes", "grid_resolution")
    }  # fmt: skip
    # 1/10 of the epochs, same grids
    QUICK = {"moons_epochs": shrink(10, floor=2), "mnist_epochs": shrink(10, floor=2)}

    def validate(self) -> None:
        """Raise ValueError for a regularizer without a grid, unknown or bad values."""
        grids = dict(self.grids)
        known = {s.name for s in table()}
        for reg in self.regularizers:
            if reg not in grids:
                raise ValueError(f"regularizer {reg!r} has no grid in grids")
            if reg not in known:
                raise ValueError(
                    f"regularizer {reg!r} is not in the settings table — register"
                    " the canon (reglab.regularizers) or drop it from regularizers"
                )
            values = grids[reg]
            if not values or 0.0 in values or len(set(values)) != len(values):
                raise ValueError(
                    f"grid of {reg} must hold distinct nonzero strengths (0 is the"
                    f" shared baseline), got {values!r}"
                )


def columns(cfg: Config) -> list[tuple[str, float]]:
    """Return the (regularizer, strength) of every column, the baseline first."""
    grids = dict(cfg.grids)
    return [("none", 0.0)] + [(r, v) for r in cfg.regularizers for v in grids[r]]


def _group_of(reg: str) -> str:
    return GROUPS.get(reg, "plain")


def _ensemble(cfg: Config, cols, problem: str, epochs: int) -> Ensemble:
    """Return one program's members: each column moves one setting off its default."""
    n = len(cols)
    if problem == "moons":
        base = {"learning_rate": cfg.moons_learning_rate}
    else:
        base = {"learning_rate": cfg.mnist_learning_rate, "alpha": cfg.mnist_alpha,
                "tau": cfg.mnist_tau}  # fmt: skip
    values = {k: np.full(n, v, np.float64) for k, v in base.items()}
    for i, (reg, v) in enumerate(cols):
        if reg == "none":
            continue
        values.setdefault(reg, np.zeros(n))
        # SWA's grid is a fraction of the epochs: averaging starts at that epoch
        values[reg][i] = max(1, round(v * epochs)) if reg == "swa_start" else v
        if reg == "gradient_noise":  # annealed as the paper (the setting's 0: flat)
            values.setdefault("gradient_noise_decay", np.zeros(n))
            values["gradient_noise_decay"][i] = cfg.gradient_noise_decay
    return Ensemble(cfg.seeds, values)


def _train_problem(cfg: Config, problem: str, data, tally: Tally, i0: int):
    """Train a problem's programs; return the final params (S, columns, ...)."""
    x, y = data
    cols = columns(cfg)
    if problem == "moons":
        widths, epochs, opt = cfg.moons_widths, cfg.moons_epochs, "adam"
    else:
        widths, epochs, opt = cfg.mnist_widths, cfg.mnist_epochs, "sgd"
    hidden = tuple(range(1, len(widths) - 1))
    params: list[dict | None] = [None] * len(cols)
    for g, group in enumerate(PROGRAMS):
        idx = [c for c, (r, _) in enumerate(cols) if _group_of(r) == group or c == 0]
        if group != "plain":  # the baseline trains once, in the plain program
            idx = [c for c in idx if c != 0]
        if not idx:
            continue
        model = nn.MLPSpec(widths, "tanh", dropout_layers=hidden if group == "dropout"
                           else ())  # fmt: skip
        spec = TrainSpec(model, OptimizerSpec(opt), epochs=epochs,
                         batch_size=cfg.batch_size)  # fmt: skip
        ens = _ensemble(cfg, [cols[c] for c in idx], problem, epochs)
        res = tally.add(train(spec, ens, x, y, record=epochs,
                              progress=tally.progress(i0 + g)))  # fmt: skip
        for j, c in enumerate(idx):
            params[c] = {k: v[:, j] for k, v in res.params.items()}  # (S, ...)
    return {k: np.stack([p[k] for p in params], 1) for k in params[0]}  # (S, C, ...)


def _moons(cfg: Config, tally: Tally) -> dict[str, np.ndarray]:
    """Train and score the moons columns."""
    data, test = WEIGHT_DECAY_MOONS.train(0), WEIGHT_DECAY_MOONS.test(cfg.n_test, 1)
    params = _train_problem(cfg, "moons", (data.x, data.y), tally, 0)
    model = nn.MLPSpec(cfg.moons_widths, "tanh")
    gx, gy, points = plane_grid(data.x, cfg.grid_resolution)
    R = cfg.grid_resolution
    train_pred = predict(model, params, data.x).argmax(-1)  # (S, C, N)
    with np.errstate(over="ignore"):  # exp(-z) -> inf is P = 0, as it should
        prob = prob_class1(predict(model, params, points)).reshape(
            *train_pred.shape[:2], R, R
        )
    flipped = data.flipped
    return {
        "moons_test_acc": (predict(model, params, test.x).argmax(-1) == test.y).mean(
            -1
        ),
        "moons_flip_fit": (train_pred[..., flipped] == data.y[flipped]).mean(-1),
        "moons_boundary": boundary_length(prob, gx, gy),  # (S, C)
        "moons_prob": prob.astype(np.float32),
        "moons_x": data.x,
        "moons_y": data.y,
        "moons_flipped": flipped,
        "moons_grid_x": gx,
        "moons_grid_y": gy,
    }


def _mnist(cfg: Config, tally: Tally) -> dict[str, np.ndarray]:
    """Train and score the MNIST-1000 columns; sharpness at each one's best."""
    x, y = load("mnist", split="train")
    x, y = subset(x, y, cfg.mnist_n_train, seed=0)
    xt, yt = load("mnist", split="test")
    if cfg.mnist_n_test < len(yt):
        xt, yt = subset(xt, yt, cfg.mnist_n_test, seed=0)
    params = _train_problem(cfg, "mnist", (x, y), tally, len(PROGRAMS))
    model = nn.MLPSpec(cfg.mnist_widths, "tanh")
    logits = predict(model, params, xt)  # (S, C, n, K)
    acc = metrics.accuracy(logits, yt)  # (S, C)
    chosen = best_columns(cfg, acc)  # (regs + 1,): the baseline, then each one's best
    picked = {k: v[:, chosen] for k, v in params.items()}  # (S, R+1, ...)
    S, P = acc.shape[0], len(chosen)
    flat = {k: v.reshape(S * P, *v.shape[2:]) for k, v in picked.items()}
    sharp = sharpness.sharpness(
        jax.tree.map(np.asarray, flat), x, y, model, key=jax.random.PRNGKey(0),
        n_iterations=cfg.power_iterations, n_probes=cfg.hutchinson_probes,
    )  # fmt: skip
    return {
        "mnist_test_acc": acc,
        "mnist_nll": metrics.nll(logits, yt),
        "mnist_ece": metrics.calibration(logits, yt, n_bins=cfg.n_bins).ece,
        "sharpness_columns": np.asarray(chosen),
        "mnist_top_eigenvalue": np.asarray(sharp.top_eigenvalue).reshape(S, P),
        "mnist_hessian_trace": np.asarray(sharp.trace).reshape(S, P),
    }


def best_columns(cfg: Config, acc: np.ndarray) -> list[int]:
    """Return the baseline column, then each regularizer's best by seed-mean acc."""
    cols, mean = columns(cfg), acc.mean(0)
    out = [0]
    for reg in cfg.regularizers:
        idx = [c for c, (r, _) in enumerate(cols) if r == reg]
        out.append(idx[int(np.argmax(mean[idx]))])
    return out


def run(cfg: Config, *, progress: Progress | None = None) -> Result:
    """Train every regularizer's grid on both problems; score the final models."""
    tally = Tally(progress, 2 * len(PROGRAMS))
    arrays = _moons(cfg, tally) | _mnist(cfg, tally)
    cols = columns(cfg)
    arrays |= {
        "column_regularizer": np.array([r for r, _ in cols]),
        "column_strength": np.array([v for _, v in cols], np.float64),
        "seeds": np.array(cfg.seeds),
    }
    return Result(
        NAME, config_dict(cfg), arrays, tally.timings, tally.notes,
        seed_axis=SEED_AXIS,
    )  # fmt: skip


# --- claims ------------------------------------------------------------------------


def column_of(result: Result, reg: str, problem: str) -> int:
    """Return reg's best column on a problem by seed-mean test accuracy (0: none)."""
    if reg == "none":
        return 0
    names = result["column_regularizer"]
    idx = np.flatnonzero(names == reg)
    return int(idx[np.argmax(result[f"{problem}_test_acc"].mean(0)[idx])])


def _strength(result: Result, c: int) -> str:
    reg = str(result["column_regularizer"][c])
    return f"{LABELS[reg]} {result['column_strength'][c]:g}" if c else LABELS["none"]


def top_eigenvalue(result: Result, c: int) -> np.ndarray:
    """Return the top eigenvalue (S,) of column c (measured at the chosen ones)."""
    where = list(result["sharpness_columns"]).index(c)
    return result["mnist_top_eigenvalue"][:, where]


def _moons_claims(result: Result, has) -> list[Claim]:
    acc, fit = result["moons_test_acc"], result["moons_flip_fit"]
    length = result["moons_boundary"]
    out = []
    if has("mixup"):
        m = column_of(result, "mixup", "moons")
        out.append(Claim.over_seeds(
            "mixup_fits_fewer_flips",
            "Mixup fits fewer of the flipped moons labels than no regularizer"
            " (Zhang et al., ICLR 2018, section 3.3).",
            fit[:, m] - fit[:, 0], 0.0, "<",
            f"fraction of flipped training points predicted with their flipped label,"
            f" {_strength(result, m)} minus none ({fit[:, 0].mean():.2f})",
            "mixup's paper measures corrupted labels on CIFAR with large networks",
        ))  # fmt: skip
    if has("input_noise"):
        n = column_of(result, "input_noise", "moons")
        out.append(Claim.over_seeds(
            "input_noise_ignores_flips",
            "Input noise at its best sigma ignores the flipped labels (Bishop 1995:"
            " noise acts as Tikhonov regularization).",
            fit[:, n], 0.5, "<",
            f"fraction of flipped points fitted at {_strength(result, n)}",
        ))  # fmt: skip
        if has("l2_strength"):
            l2 = column_of(result, "l2_strength", "moons")
            out.append(Claim.over_seeds(
                "input_noise_matches_best_l2",
                "Input noise at its best sigma reaches the clean test accuracy of the"
                " best L2 within 1 point.",
                acc[:, n] - acc[:, l2], -0.01, ">=",
                f"clean test accuracy at {_strength(result, n)} minus at"
                f" {_strength(result, l2)}",
            ))  # fmt: skip
    if has("weight_noise"):
        w = column_of(result, "weight_noise", "moons")
        out.append(Claim.over_seeds(
            "weight_noise_smooths_boundary",
            "Weight noise smooths the moons boundary: shorter than with no"
            " regularizer (An 1996).",
            length[:, w] / length[:, 0], 1.0, "<",
            f"P=0.5 boundary length at {_strength(result, w)} over none",
        ))  # fmt: skip
    if has("gradient_noise"):
        g = column_of(result, "gradient_noise", "moons")
        out.append(Claim.over_seeds(
            "gradient_noise_still_fits_flips",
            "Gradient noise alone does not stop the network fitting the flipped"
            " labels.",
            fit[:, g], 0.5, ">",
            f"fraction of flipped points fitted at {_strength(result, g)}",
            f"at its best-accuracy strength ({_strength(result, g)}) the noise does"
            f" regularize this small network: it fits {fit[:, g].mean():.2f} of the"
            f" flips, no regularizer {fit[:, 0].mean():.2f}. Neelakantan et al."
            " claim easier optimization of very deep networks, not that the noise"
            " leaves a small one's fit alone",
        ))  # fmt: skip
    return out


def _mnist_claims(result: Result, has) -> list[Claim]:
    acc, ece = result["mnist_test_acc"], result["mnist_ece"]
    out = []
    if has("mixup"):
        m = column_of(result, "mixup", "mnist")
        out.append(Claim.over_seeds(
            "mixup_lowers_ece",
            "Mixup lowers the ECE on MNIST-1000 relative to no regularizer"
            " (Thulasidasan et al., NeurIPS 2019).",
            ece[:, m] - ece[:, 0], 0.0, "<",
            f"equal-mass ECE at {_strength(result, m)} minus none"
            f" ({ece[:, 0].mean():.3f})",
        ))  # fmt: skip
    for reg, name, words in (
        ("sam", "sam", "SAM ends"),
        ("swa_start", "swa", "The SWA average ends"),
    ):
        if not has(reg):
            continue
        c = column_of(result, reg, "mnist")
        last = "plain SGD" if reg == "sam" else "the last iterate (the baseline's)"
        why = "" if reg == "sam" else (
            "here SWA averages the iterates of section 4's decaying SGD schedule"
            " (power law, no SWA learning-rate phase); Izmailov et al. average"
            " under a high constant or cyclical rate, whose iterates spread over a"
            " wide basin: averaging this run's late iterates need not find a flatter"
            " point"
        )  # fmt: skip
        out += [
            Claim.over_seeds(
                f"{name}_flatter",
                f"{words} at a lower top Hessian eigenvalue than {last}.",
                top_eigenvalue(result, c) - top_eigenvalue(result, 0), 0.0, "<",
                f"top eigenvalue of the training loss at {_strength(result, c)} minus"
                f" none ({top_eigenvalue(result, 0).mean():.3g})", why,
            ),
            Claim.over_seeds(
                f"{name}_accuracy_no_lower",
                f"{words} at a test accuracy no lower than {last}.",
                acc[:, c] - acc[:, 0], 0.0, ">=",
                f"MNIST-1000 test accuracy at {_strength(result, c)} minus none"
                f" ({acc[:, 0].mean():.3f})", why,
            ),
        ]  # fmt: skip
    return out


def claims(result: Result) -> list[Claim]:
    """Return the papers' claims that this run's regularizers can decide."""
    present = set(result["column_regularizer"].tolist())

    def has(reg: str) -> bool:
        return reg in present

    return _moons_claims(result, has) + _mnist_claims(result, has)
