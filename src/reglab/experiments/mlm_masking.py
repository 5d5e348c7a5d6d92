"""BERT masking measured on real text: selection rate and the 80/10/10 split.

The post describes BERT's second layer of augmentation in words (section 1): select
15% (or 20%) of tokens, then mask 80% of those, replace 10% by a random token and
leave 10% alone. Here the masking of ``reglab.data.mask_tokens`` is applied to a real
token batch (English prose from the standard library's own documentation, word-level
tokens, padded sequences with [CLS]/[SEP]) many times, and every rate is compared with
its rule inside a binomial band.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import jax
import numpy as np

from reglab.data import mask_tokens
from reglab.experiments.base import Claim, Progress, Result, config_dict
from reglab.experiments.rules import Interval, NonEmpty, Rules

NAME = "mlm_masking"
# arrays with a leading seed axis (Result.seed_axis); the rest are shared:
# the text, its vocabulary and the first seed's examples
SEED_AXIS = ("counts_*",)
SPECIAL = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")
KINDS = ("mask", "random", "keep")


@dataclass(frozen=True)
class Config(Rules):
    """How the text is cut into a batch and how often the masking is drawn."""

    p_selects: tuple[float, ...] = (0.15, 0.20)  # BERT's rate and the post's
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)  # mask, random, keep
    seq_len: int = 64
    n_sequences: int = 32
    n_draws: int = 200  # independent maskings of the same batch
    band_sigmas: float = 4.0  # binomial band half-width, in standard deviations
    seeds: tuple[int, ...] = (0,)

    constraints = {
        "p_selects": NonEmpty("rate", "e.g. (0.15,)"),
        "seq_len": Interval(int, 4, None, fix="e.g. 64"),
        "n_sequences": Interval(int, 1, None),
        "n_draws": Interval(int, 1, None),
    }
    QUICK = {"n_draws": 20}  # fewer draws


def real_text() -> str:
    """Return English prose: docstrings of a few standard-library modules."""
    import argparse
    import collections
    import json
    import logging
    import subprocess
    import unittest

    mods = (argparse, collections, json, logging, subprocess, unittest)
    return "\n".join(m.__doc__ or "" for m in mods)


def token_batch(cfg: Config) -> tuple[np.ndarray, list[str]]:
    """Return (tokens (n_sequences, seq_len), vocabulary) with [CLS] .. [SEP] [PAD]*."""
    words = re.findall(r"[a-z]+|[0-9]+|[^\sa-z0-9]", real_text().lower())
    vocab = list(SPECIAL) + sorted(set(words))
    index = {w: i for i, w in enumerate(vocab)}
    ids = [index[w] for w in words]
    rng = np.random.default_rng(0)
    tokens = np.zeros((cfg.n_sequences, cfg.seq_len), np.int32)  # [PAD] = 0
    for row in range(cfg.n_sequences):
        length = int(rng.integers(cfg.seq_len // 2, cfg.seq_len - 1))  # with padding
        start = int(rng.integers(0, len(ids) - length))
        tokens[row, : length + 2] = [1, *ids[start : start + length], 2]
    return tokens, vocab


def run(cfg: Config, *, progress: Progress | None = None) -> Result:
    """Mask the batch n_draws times per rate and count what happened to each token."""
    tokens, vocab = token_batch(cfg)
    special = [vocab.index(s) for s in SPECIAL]
    mask_id = vocab.index("[MASK]")
    eligible = ~np.isin(tokens, special)
    arrays = {"tokens": tokens}
    for i, p in enumerate(cfg.p_selects):

        def draw(key, p=p):
            return mask_tokens(
                key,
                tokens,
                vocab_size=len(vocab),
                mask_id=mask_id,
                special_ids=special,
                p_select=p,
                ratios=cfg.ratios,
            )

        per_seed = []
        for seed in cfg.seeds:
            keys = jax.random.split(jax.random.PRNGKey(seed * 1000 + i), cfg.n_draws)
            corrupted, labels = jax.vmap(draw)(keys)  # (draws, n, len)
            corrupted, labels = np.asarray(corrupted), np.asarray(labels)
            selected = labels != -100
            changed = corrupted != tokens
            counts = {
                "eligible": eligible.sum() * cfg.n_draws,
                "selected": selected.sum(),
                "selected_special": (selected & ~eligible).sum(),
                "mask": (selected & (corrupted == mask_id)).sum(),
                "random": (selected & (corrupted != mask_id) & changed).sum(),
                "keep": (selected & ~changed).sum(),
                "unselected_changed": (~selected & changed).sum(),
            }
            per_seed.append([counts[k] for k in sorted(counts)])
            if len(per_seed) == 1:
                arrays[f"example_{i}"] = corrupted[0, 0]
        arrays[f"counts_{i}"] = np.array(per_seed)  # (seeds, kinds of count)
        arrays["count_names"] = np.array(sorted(counts))
        if progress is not None:
            progress(i + 1, len(cfg.p_selects))
    arrays["vocab"] = np.array(vocab)
    timings = {"compile_s": 0.0, "run_s": 0.0}
    return Result(NAME, config_dict(cfg), arrays, timings, seed_axis=SEED_AXIS)


def counts(result: Result, i: int, s: int | None = None) -> dict[str, int]:
    """Return rate i's counts in seed s, or summed over the seeds."""
    names = [str(n) for n in result["count_names"]]
    c = np.atleast_2d(result[f"counts_{i}"])  # (seeds, kinds)
    row = c.sum(0) if s is None else c[s]
    return dict(zip(names, row.tolist(), strict=True))


def rates(
    result: Result, i: int, s: int | None = None
) -> list[tuple[str, float, float, float]]:
    """Return (what, measured, expected, sigma) for the selection rate and the split."""
    cfg, c = result.config, counts(result, i, s)
    p = cfg["p_selects"][i]
    rows = [("selected", c["selected"] / c["eligible"], p,
             np.sqrt(p * (1 - p) / c["eligible"]))]  # fmt: skip
    for kind, ratio in zip(KINDS, cfg["ratios"], strict=True):
        sigma = np.sqrt(ratio * (1 - ratio) / c["selected"])
        rows.append((kind, c[kind] / c["selected"], ratio, sigma))
    return rows


def claims(result: Result) -> list[Claim]:
    """Each rate inside its binomial band; specials and unselected tokens untouched."""
    cfg, out = result.config, []
    n_seeds = len(cfg["seeds"])
    for i, p in enumerate(cfg["p_selects"]):
        worst = [
            max(abs(m - e) / sd for _, m, e, sd in rates(result, i, s))
            for s in range(n_seeds)
        ]
        detail = ", ".join(
            f"{w} {m:.4f} (rule {e:g})" for w, m, e, _ in rates(result, i)
        )
        out.append(
            Claim.over_seeds(
                f"mlm_rates_follow_rule_p{p:g}",
                f"{p:.0%} of tokens are selected; of those 80% are masked, 10% replaced"
                " by a random token and 10% left unchanged.",
                worst,
                float(cfg["band_sigmas"]),
                "<",
                "largest deviation in binomial standard deviations (each seed its own"
                f" {cfg['n_draws']} maskings); over all seeds: {detail}",
            )
        )
        untouched = [
            counts(result, i, s)["selected_special"]
            + counts(result, i, s)["unselected_changed"]
            for s in range(n_seeds)
        ]
        out.append(
            Claim.over_seeds(
                f"mlm_specials_untouched_p{p:g}",
                "Special tokens and padding are never selected, and unselected"
                " positions are never changed.",
                untouched,
                0.0,
                "<=",
                "count of selected special positions plus changed unselected ones",
            )
        )
    return out
