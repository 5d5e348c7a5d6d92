"""Regularizers: one object per regularizer (``reglab.regularizers.base``), built-in
or plug-in, registered through one seam.

    register(reg)       put a Regularizer in the registry and its rows in the table
    registered()        every registered Regularizer, in registration order
    active(ctx)         those some member uses, in registration order
    at(place, regs)     those acting at a place, in their ``order``
    optimizer(ctx, ...) the optimizer's chain with the gradient and update rules
    load_plugins(mods)  import plug-in modules (``--plugin``, ``plugins = [...]``)

The built-ins (weight_decay, max_norm, dropout, label_smoothing, augmentation) are
registered when this package is imported; then the plug-ins named by the
``reglab.regularizers`` entry-point group (a broken one is skipped with one warning)
and by ``$REGLAB_PLUGINS`` (set by ``load_plugins``, so spawned workers and local
Ray tasks import the same modules). A plug-in module calls ``register`` on its
Regularizer itself (``REGULARIZER = register(Regularizer(...))``), so importing it
before reglab registers it too; it does no JAX work at import.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
import sys
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence

import jax
import optax

from reglab import optim, settings
from reglab.regularizers import (
    augmentation,
    dropout,
    gradient_noise,
    input_noise,
    label_smoothing,
    max_norm,
    mixup,
    sam,
    swa,
    weight_decay,
    weight_noise,
)
from reglab.regularizers.base import Context, Regularizer, Values

Array = jax.Array
ENTRY_POINTS = "reglab.regularizers"  # the entry-point group plug-ins declare
PLUGINS_ENV = "REGLAB_PLUGINS"  # comma-separated modules every process imports
PLACES = ("batch", "weights", "masks", "loss", "step", "gradient", "update", "average")
_REGISTRY: dict[str, Regularizer] = {}
_WARNED: set[str] = set()


def register(reg: Regularizer) -> Regularizer:
    """Register reg: its rows join the settings table; return it (a decorator too).

    ValueError if its name or a setting name is taken, or a default does something;
    registering the same object again changes nothing.
    """
    if not isinstance(reg, Regularizer):
        raise TypeError(
            f"register() takes a reglab.regularizers.base.Regularizer, got"
            f" {type(reg).__name__} — build one with Regularizer(name=..., ...)"
        )
    if _REGISTRY.get(reg.name) is reg:
        return reg
    if reg.stream is not None and reg.stream not in LEGACY_STREAMS:
        raise ValueError(
            f"regularizer {reg.name!r}: stream must be one of {LEGACY_STREAMS} or"
            f" None, got {reg.stream!r} — leave it None for a stream of its own"
        )
    settings.add_rows(reg.name, tuple(reg.settings))
    _REGISTRY[reg.name] = reg
    return reg


def unregister(name: str) -> None:
    """Remove a registered regularizer and its rows (tests; a plug-in reloaded)."""
    if name not in _REGISTRY:
        raise ValueError(f"no regularizer named {name!r} is registered")
    del _REGISTRY[name]
    settings.remove_rows(name)


def registered() -> tuple[Regularizer, ...]:
    """Return every registered regularizer, in registration order."""
    return tuple(_REGISTRY.values())


def active(ctx: Context) -> tuple[Regularizer, ...]:
    """Return the registered regularizers some member uses (the rest cost nothing)."""
    return tuple(r for r in _REGISTRY.values() if r.in_use(ctx))


def at(place: str, regs: Iterable[Regularizer]) -> list[Regularizer]:
    """Return the regularizers of regs acting at place, by ``order`` (stable)."""
    if place not in PLACES:
        raise ValueError(f"place must be one of {PLACES}, got {place!r}")
    return sorted((r for r in regs if getattr(r, place) is not None), key=_order)


def _order(reg: Regularizer) -> int:
    return reg.order


def validate(values: Values) -> None:
    """Run every registered regularizer's per-member check on an ensemble's values."""
    for reg in registered():
        if reg.validate is not None:
            reg.validate(values)


def check(ctx: Context, values: Values) -> None:
    """Run every registered regularizer's check against the program, before it
    compiles."""
    for reg in registered():
        if reg.check is not None:
            reg.check(ctx, values)


# --- Key streams -------------------------------------------------------------------

# The trainer's streams that predate the seam: split from the seed's key in this order
# (reglab.program.member_keys); a built-in naming one keeps its numbers.
LEGACY_STREAMS = ("dropout", "augment")


def stream_constant(name: str) -> int:
    """Return the stable 31-bit constant a regularizer's stream folds into the key."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def stream_key(seed_key: Array, reg: Regularizer) -> Array:
    """Return reg's own key for a seed: the seed's key folded with its name."""
    return jax.random.fold_in(seed_key, stream_constant(reg.name))


# --- The optimizer -------------------------------------------------------------------


def _links(made) -> list[optax.GradientTransformation]:
    """Return a rule's result as a list of links of the chain."""
    if made is None:
        return []
    if isinstance(made, optax.GradientTransformation):
        return [made]
    return list(made)


def optimizer(
    ctx: Context,
    member,
    regs: Sequence[Regularizer] | None = None,
    key_of: Callable[[Regularizer], Array] | None = None,
) -> optax.GradientTransformation:
    """Return the optimizer's chain for member: the gradient rules of regs (default:
    the active ones), the base optimizer, then their update rules, each by order.

    key_of(reg): the regularizer's key (the program's streams); None gives key 0.
    """
    regs = active(ctx) if regs is None else regs
    spec = ctx.spec.optimizer
    step_size = optim.decay_step_size(spec, member)

    def key(reg: Regularizer) -> Array:
        return key_of(reg) if key_of is not None else jax.random.PRNGKey(0)

    before = [
        link
        for reg in at("gradient", regs)
        for link in _links(reg.gradient(ctx, member, key(reg), step_size))
    ]
    after = [
        link
        for reg in at("update", regs)
        for link in _links(reg.update(ctx, member, key(reg), step_size))
    ]
    return optim.build_optimizer(spec, member, before, after)


# --- Plug-ins ----------------------------------------------------------------------


def plugin_rows() -> tuple[settings.Setting, ...]:
    """Return the settings of the registered plug-ins (not built in), in order."""
    return tuple(s for r in registered() if r.name not in _BUILTINS for s in r.settings)


def plugin_config_base() -> type:
    """Return a frozen dataclass with one field per plug-in setting (its default).

    An experiment's Config that inherits it takes the plug-ins' settings as its own
    fields, so ``--set``/``--grid``/TOML reach them and the store records them (with
    no plug-in registered it has no fields: configs hash as before).
    """
    fields = [
        (s.name, bool if s.flag else float,
         dataclasses.field(default=bool(s.default) if s.flag else float(s.default)))
        for s in plugin_rows()
    ]  # fmt: skip
    return dataclasses.make_dataclass("PluginSettings", fields, frozen=True)


def _register_module(module) -> list[Regularizer]:
    """Register every module-level Regularizer of a plug-in module; return them."""
    found = [v for v in vars(module).values() if isinstance(v, Regularizer)]
    return [register(reg) for reg in found]


def load_plugins(modules: Iterable[str]) -> list[str]:
    """Import plug-in modules and register their regularizers; return the names.

    The names join ``$REGLAB_PLUGINS``, so processes started after this (spawned
    workers, a local Ray) import them too. ValueError naming a module that fails to
    import, declares no regularizer or clashes with another, before any training.
    """
    loaded = []
    for name in modules:
        name = name.strip()
        if not name:
            continue
        before = len(_REGISTRY)
        try:
            module = importlib.import_module(name)
        except Exception as e:  # any failure of the user's module: named with the fix
            raise ValueError(
                f"plug-in {name!r} failed to import ({type(e).__name__}: {e}) — install"
                " it, put its folder on PYTHONPATH, or drop --plugin/plugins for it"
            ) from e
        try:
            regs = _register_module(module)
        except ValueError as e:
            raise ValueError(f"plug-in {name!r}: {e}") from e
        if not regs and len(_REGISTRY) == before:
            raise ValueError(
                f"plug-in {name!r} defines no Regularizer — give it a module-level"
                " Regularizer(...) (reglab.regularizers.base)"
            )
        loaded.append(name)
    if loaded:  # (importing reglab leaves the environment as it was)
        known = [m for m in os.environ.get(PLUGINS_ENV, "").split(",") if m]
        os.environ[PLUGINS_ENV] = ",".join(dict.fromkeys(known + loaded))
    return loaded


def plugins() -> tuple[str, ...]:
    """Return the plug-in modules this process loaded through load_plugins."""
    return tuple(m for m in os.environ.get(PLUGINS_ENV, "").split(",") if m)


def _load_entry_points() -> None:
    """Register the entry-point plug-ins; a broken one is skipped, warned once."""
    for ep in importlib.metadata.entry_points(group=ENTRY_POINTS):
        importing = sys.modules.get(ep.module)
        if importing is not None and ep.attr and not hasattr(importing, ep.attr):
            continue  # mid-import: the plug-in imported reglab first; it registers
        try:
            found = ep.load()
            if isinstance(found, Regularizer):
                register(found)
            else:
                _register_module(importlib.import_module(ep.module))
        except Exception as e:  # a broken plug-in never stops the built-ins
            if ep.name not in _WARNED:
                _WARNED.add(ep.name)
                warnings.warn(
                    f"reglab plug-in {ep.name!r} ({ep.value}) is skipped:"
                    f" {type(e).__name__}: {e} — fix or uninstall its package",
                    RuntimeWarning,
                    stacklevel=2,
                )


_POST = (weight_decay, max_norm, dropout, label_smoothing, augmentation)
# the canon beyond the post (issue 21): one file each, registered the same way
_CANON = (mixup, input_noise, weight_noise, gradient_noise, sam, swa)
for _builtin in (*_POST, *_CANON):
    register(_builtin.REGULARIZER)
_BUILTINS = frozenset(_REGISTRY)  # what registers after these is a plug-in
_load_entry_points()
load_plugins(plugins())

__all__ = [
    "Context",
    "Regularizer",
    "active",
    "at",
    "load_plugins",
    "optimizer",
    "plugin_config_base",
    "plugin_rows",
    "plugins",
    "register",
    "registered",
    "unregister",
]
