"""The post's experiments, one module each, in the post's order."""

from __future__ import annotations

import importlib
from typing import cast

from reglab.experiments.base import Drawing, Experiment

POST = (  # figures 1-10: what ``reglab reproduce`` runs
    "augmentation",
    "weight_decay",
    "dropout",
    "label_smoothing",
    "early_stopping",
)
BEYOND = (  # ``reglab reproduce --all`` adds them
    "adamw",  # the decoupling argument as a measured grid
    "mlm_masking",  # BERT's masking rates measured on real text
    "choices",  # the post's unstated choices, and what they change
    "playground",  # what ``reglab playground`` trains, so a saved page re-makes
    "study",  # your own question, from a TOML file (``reglab run study -c FILE``)
    "zoo",  # every regularizer, the canon's papers' claims on the post's problems
)
NAMES = POST + BEYOND

# Scheduling order for parallel runs: the longest full-scale runs start first.
# Measured (3 seeds, cold, each worker on its own core of the 2-core machine, s):
# weight_decay 102, early_stopping 66, augmentation 51, dropout 49, label_smoothing 49.
LONGEST_FIRST = (
    "zoo",
    "choices",
    "weight_decay",
    "early_stopping",
    "dropout",
    "adamw",
    "label_smoothing",
    "augmentation",
    "mlm_masking",
    "playground",
    "study",
)
assert sorted(LONGEST_FIRST) == sorted(NAMES)


def get(name: str) -> Experiment:
    """Return the experiment module called name: config, run and claims."""
    if name not in NAMES:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(NAMES)}")
    return cast(Experiment, importlib.import_module(f"reglab.experiments.{name}"))


def figures_of(name: str) -> Drawing:
    """Return the module with name's figures (and sliders): NAME_figures if it exists.

    Figures live apart from training, so a run never imports matplotlib.
    """
    module = get(name)
    try:
        drawing = importlib.import_module(f"reglab.experiments.{name}_figures")
    except ModuleNotFoundError as err:
        if err.name != f"reglab.experiments.{name}_figures":
            raise
        drawing = module
    return cast(Drawing, drawing)
