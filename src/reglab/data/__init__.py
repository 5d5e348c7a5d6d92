"""Everything the experiments feed on: two moons, MNIST-style images, augmentation, MLM.

Two moons (reglab.data.moons)
    make_moons(n, *, noise, flip_fraction, seed) -> Moons(x, y, y_clean, flipped)
    make_moons_test(n, *, noise, seed) -> a clean, independent test draw
    WEIGHT_DECAY_MOONS, DROPOUT_MOONS: MoonsPreset(n, noise, flip_fraction) of the
    post's sections 2.1 and 3, with .train(seed) and .test(n, seed)

MNIST and Fashion-MNIST (reglab.data.vision)
    load(name, *, split, flatten, data_dir, download, base_url) -> (x float32, y int32)
        name: "mnist" or "fashion_mnist" ("fashion-mnist"); offline by default from the
        bundled subsets (5,000 training images, the full 10,000 test images); the full
        sets from data_dir= / $REGLAB_DATA, or download=True into $REGLAB_CACHE
    subset(x, y, n, *, seed, stratified) / subset_indices(y, n, *, seed, stratified)
    train_val_split(x, y, n_val, *, seed, stratified) -> (x_tr, y_tr, x_val, y_val)
    read_idx(path), parse_idx(bytes), encode_idx(array): the IDX container format

Augmentation (reglab.data.augment), each (key, x) -> x, jit/vmap/scan-safe
    post_shift, random_shift, rotate, rescale, compose(*fns), gated(fn)

Masked language modelling (reglab.data.mlm)
    mask_tokens(key, tokens, *, vocab_size, mask_id, special_ids, p_select, ratios,
                ignore_index) -> (corrupted, labels)
"""

import importlib
from typing import Any

# name -> submodule: imported on first use (PEP 562), so reading a dataset file's
# name and hash (reglab.data.files, from the command line's TOML and sweep keys)
# never starts JAX
_WHERE = {
    **dict.fromkeys(
        ("compose", "gated", "post_shift", "random_shift", "rescale", "rotate"),
        "augment",
    ),
    **dict.fromkeys(("encode_idx", "parse_idx", "read_idx"), "idx"),
    "mask_tokens": "mlm",
    **dict.fromkeys(
        (
            "DROPOUT_MOONS",
            "WEIGHT_DECAY_MOONS",
            "Moons",
            "MoonsPreset",
            "make_moons",
            "make_moons_test",
        ),
        "moons",
    ),  # fmt: skip
    **dict.fromkeys(("load", "subset", "subset_indices", "train_val_split"), "vision"),
}


def __getattr__(name: str) -> Any:
    """Return a public name of reglab.data, importing its submodule on first use."""
    if name not in _WHERE:
        raise AttributeError(f"module 'reglab.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"reglab.data.{_WHERE[name]}"), name)


__all__ = [
    "DROPOUT_MOONS",
    "WEIGHT_DECAY_MOONS",
    "Moons",
    "MoonsPreset",
    "compose",
    "encode_idx",
    "gated",
    "load",
    "make_moons",
    "make_moons_test",
    "mask_tokens",
    "parse_idx",
    "post_shift",
    "random_shift",
    "read_idx",
    "rescale",
    "rotate",
    "subset",
    "subset_indices",
    "train_val_split",
]
