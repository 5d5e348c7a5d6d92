"""Settings from the command line and TOML files, checked against a Config.

``--set KEY=VALUE`` parses VALUE as a TOML literal (``[0, 0.01]``, ``"mnist"``,
``true``); a bare word that is not TOML is taken as a string. A ``-c FILE.toml`` holds
the same keys at top level, and a ``[sweep]`` table whose arrays are grid axes. Every
key is checked against the experiment's Config fields (with "did you mean ...?") and
every value against the field's type before the Config itself validates the values.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import typing
from pathlib import Path
from typing import Any

from reglab.data import files
from reglab.lab import LabError


def parse_value(text: str) -> Any:
    """Return text parsed as a TOML literal, or text itself when it is a bare word."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if text and all(c.isalnum() or c in "_-.:/#~+" for c in text):
            # --set dataset=mnist means the string; so does a file, which the shell
            # has stripped of its quotes: --set dataset="csv:data/x.csv"
            return text
        raise LabError(
            f"cannot read {text!r} as a value — write numbers as 0.01, lists as"
            ' [0, 0.01], strings in quotes ("mnist"), booleans as true/false'
        ) from None


def split_assignment(text: str, flag: str) -> tuple[str, str]:
    """Return (key, value) of 'KEY=VALUE', or LabError naming the flag."""
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise LabError(f"{flag} takes KEY=VALUE, got {text!r} — e.g. {flag} epochs=500")
    return key.strip(), value.strip()


def parse_sets(items: list[str]) -> dict[str, Any]:
    """Return {key: value} from --set KEY=VALUE items (later ones win)."""
    return {k: parse_value(v) for k, v in (split_assignment(i, "--set") for i in items)}


def load_toml(path: str | Path) -> tuple[dict[str, Any], dict[str, list]]:
    """Return (settings, grid axes) from a TOML file; its [sweep] arrays are axes."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise LabError(f"cannot read -c {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise LabError(f"-c {path} is not valid TOML: {e}") from None
    sweep = data.pop("sweep", {})
    if not isinstance(sweep, dict):
        raise LabError(f"[sweep] in {path} must be a table of arrays, got {sweep!r}")
    # a dataset file named in the TOML lies beside it, wherever the command runs
    folder = Path(path).parent
    data = {k: files.relative_to(v, folder) for k, v in data.items()}
    sweep = {
        k: [files.relative_to(v, folder) for v in vs] if isinstance(vs, list) else vs
        for k, vs in sweep.items()
    }
    # [sweep] grid.l2_strength = [...] is a nested table in TOML: one axis per key
    sweep = {
        f"{k}.{sub}" if isinstance(v, dict) else k: vs
        for k, v in sweep.items()
        for sub, vs in (v.items() if isinstance(v, dict) else [(None, v)])
    }
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise LabError(
                f"[sweep] {key} in {path} must be a non-empty array of values, got"
                f" {values!r} — e.g. {key} = [0.0, 0.01]"
            )
    return data, dict(sweep)


def field_types(config_cls: type) -> dict[str, Any]:
    """Return {field name: annotated type} of a Config dataclass."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def check_key(key: str, config_cls: type, experiment: str) -> None:
    """Raise LabError for a key that is not a field of the Config, with a hint."""
    types = field_types(config_cls)
    names = list(types)
    head, dot, _ = key.partition(".")
    if dot and head in names:
        if typing.get_origin(types[head]) is not dict:
            raise LabError(
                f"{experiment} setting {head!r} is not a table, so {key!r} names"
                f" nothing — write {head}=VALUE"
            )
        return  # a key of a table setting (grid.l2_strength): the Config checks it
    if key in names:
        return
    match = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
    hint = f"did you mean {match[0]}?" if match else f"settings: {', '.join(names)}"
    raise LabError(f"{experiment} has no setting {key!r} — {hint}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Return value as the field's type tp (lists become tuples); LabError if not."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = LabError(f"{key} must be {_type_name(tp)}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise LabError(
                f"{key} must be a list ({_type_name(tp)}), got {value!r} — e.g."
                f" {key}=[{value!r}]"
            )
        item = args[0] if args else Any
        if len(args) == 2 and args[1] is Ellipsis or len(args) == 1:
            return tuple(coerce(key, v, item) for v in value)
        if len(args) != len(value):
            raise bad
        return tuple(coerce(key, v, t) for v, t in zip(value, args, strict=True))
    if origin is typing.Literal:
        if value not in args:
            raise LabError(f"{key} must be one of {args}, got {value!r}")
        return value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for t in args:
            try:
                return coerce(key, value, t)
            except LabError:
                continue
        raise bad
    if tp is bool:
        if not isinstance(value, bool):
            raise LabError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise LabError(f"{key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise LabError(f"{key} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise LabError(f"{key} must be finite, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise LabError(f'{key} must be a string, got {value!r} — quote it: "..."')
        return value
    return value  # Any or an annotation we do not check: the Config decides


def build_config(
    module: Any,
    settings: dict[str, Any],
    *,
    seeds: int | None = None,
    quick: bool = False,
):
    """Return the experiment's Config with settings applied, validated; or LabError.

    Order: the defaults, then --quick, then --seeds, then the settings (so an
    explicit ``epochs`` or ``seeds`` wins).
    """
    name = module.NAME
    types = field_types(module.Config)
    for key in settings:
        check_key(key, module.Config, name)
    plain = {k: v for k, v in settings.items() if "." not in k}
    values = {k: coerce(k, v, types[k]) for k, v in plain.items()}
    try:
        cfg = module.Config()
        if quick:
            cfg = cfg.quick()
        if seeds is not None:
            if seeds < 1:
                raise LabError(f"--seeds must be >= 1, got {seeds}")
            cfg = dataclasses.replace(cfg, seeds=tuple(range(seeds)))
        for key, value in settings.items():  # grid.l2_strength joins the grid table
            head, dot, sub = key.partition(".")
            if dot:
                values[head] = {**values.get(head, getattr(cfg, head)), sub: value}
        cfg = dataclasses.replace(cfg, **values)
    except (ValueError, TypeError) as e:
        raise LabError(f"{name}: {e}") from None
    check_seeds(cfg.seeds)
    return cfg


SEED_LIMIT = 2**32  # a seed becomes a uint32 PRNG key


def check_seeds(seeds: tuple[int, ...]) -> None:
    """Raise LabError unless seeds are distinct integers in [0, 2**32), at least one."""
    shown = list(seeds)
    if not seeds:
        raise LabError("seeds must list at least one seed, got [] — e.g. seeds=[0]")
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int)]
    bad += [s for s in seeds if s not in bad and not 0 <= s < SEED_LIMIT]
    if bad:
        raise LabError(
            f"seeds must be integers in [0, 2**32), got {bad[0]!r} in {shown} — e.g."
            " seeds=[0, 1, 2]"
        )
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise LabError(
            f"seeds must be distinct, got {shown} (seed {twice[0]} twice: the same"
            " run would be trained and stored twice) — e.g. seeds=[0, 1]"
        )
