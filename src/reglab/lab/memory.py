"""What a run will allocate, estimated from its config before anything starts.

Training keeps, for every train call, two epoch-indexed tables (which record and
snapshot row each epoch writes; int32, on the host and copied to every device) and
the records themselves (per member, per evaluation set, loss and accuracy in
float32: on the device, on the host, and in each checkpoint). Both grow with the
epochs, so ``--set epochs=1000000000`` asked for tens of GB and died in XLA's
allocator after minutes. The estimate below is a lower bound read from the Config's
fields (``*epochs``, ``record_every``/``val_every``, the longest list of settings
and the seeds): enough to refuse the runs that cannot fit, never a promise.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from reglab.lab import LabError

EPOCH_LIMIT = 2**31 - 1  # the compiled program counts epochs in int32
EVAL_SETS = 2  # train and test: what most experiments record
COPIES = 3  # a record lives on the device, on the host and in the checkpoint
SHARE = 0.8  # refuse a run estimated past this share of the memory available


def available_bytes() -> int | None:
    """Return the memory this machine has available now (Linux), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _epochs(cfg: Any) -> tuple[str, int]:
    """Return the config's longest epochs field and its value (0 if it has none)."""
    found = [
        (f.name, getattr(cfg, f.name))
        for f in dataclasses.fields(cfg)
        if f.name.endswith("epochs") and isinstance(getattr(cfg, f.name), int)
    ]
    return max(found, key=lambda nv: nv[1], default=("epochs", 0))


def _members(cfg: Any) -> int:
    """Return seeds x the longest list of numbers in the config (its sweep)."""
    longest = max(
        (
            len(v)
            for f in dataclasses.fields(cfg)
            if f.name != "seeds"
            and isinstance(v := getattr(cfg, f.name), tuple)
            and v
            and all(isinstance(x, int | float) for x in v)
            and f.name != "widths"
        ),
        default=1,
    )
    return len(cfg.seeds) * longest


def estimate_bytes(cfg: Any, devices: int) -> int:
    """Return a lower bound of the bytes one train call of cfg allocates."""
    _, epochs = _epochs(cfg)
    every = getattr(cfg, "record_every", None) or getattr(cfg, "val_every", None)
    tables = 2 * 4 * (epochs + 1) * (1 + devices)  # two int32 tables per device
    n_records = epochs // every + 1 if isinstance(every, int) and every > 0 else 0
    records = n_records * _members(cfg) * EVAL_SETS * 2 * 4 * COPIES
    return tables + records


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def check_memory(name: str, cfg: Any, devices: int) -> None:
    """Raise LabError if cfg's run cannot fit here: the estimate and the fix."""
    field, epochs = _epochs(cfg)
    default = getattr(type(cfg)(), field, None)
    fix = f"lower {field} (the default is {default})"
    if hasattr(cfg, "record_every"):
        fix += " or raise record_every"
    if epochs > EPOCH_LIMIT:
        raise LabError(
            f"{name}: {field}={epochs} is past {EPOCH_LIMIT} (2**31 - 1), the most"
            f" the compiled program counts — {fix}"
        )
    need, have = estimate_bytes(cfg, devices), available_bytes()
    if have is not None and need > SHARE * have:
        raise LabError(
            f"{name}: {field}={epochs} needs at least {_size(need)} for its epoch"
            f" tables and records ({devices} device{'s' if devices > 1 else ''},"
            f" {_members(cfg)} members), more than the {_size(have)} available here"
            f" — {fix}"
        )
