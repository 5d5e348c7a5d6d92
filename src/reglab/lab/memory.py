"""What a run will allocate, estimated from its config before anything starts.

Training keeps, for every member, each epoch's mean minibatch loss and accuracy
(``program.State.running``, (epochs + 1, 2) float32: on the device, on the host and
in each checkpoint), two epoch-indexed int32 tables (which record and snapshot row an
epoch writes; on the host and copied to every device) and the records. All grow with
the epochs: ``--set epochs=1000000000`` of weight_decay asked XLA for 9 members x
(10^9 + 1) x 8 bytes = 72 GB at once and died after minutes. The estimate is read
from the Config's fields (``*epochs``, ``record_every``/``val_every``, the longest
list of numbers and the seeds). Measured: weight_decay with epochs=50,000,000 on 2 CPU
devices peaked at 12.2 GiB RSS within 90 s (ps); the estimate says 11.2 GiB.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from reglab.lab import LabError

EPOCH_LIMIT = 2**31 - 1  # the compiled program counts epochs in int32
EVAL_SETS = 2  # train and test: what most experiments record
COPIES = 3  # on the device, on the host and in the checkpoint
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
    """Return the bytes one train call of cfg allocates in proportion to epochs."""
    _, epochs = _epochs(cfg)
    every = getattr(cfg, "record_every", None) or getattr(cfg, "val_every", None)
    members = _members(cfg)
    running = members * (epochs + 1) * 2 * 4 * COPIES  # loss, accuracy per epoch
    tables = 2 * 4 * (epochs + 1) * (1 + devices)  # two int32 tables per device
    n_records = epochs // every + 1 if isinstance(every, int) and every > 0 else 0
    records = n_records * members * EVAL_SETS * 2 * 4 * COPIES
    return running + tables + records


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


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
            f"{name}: {field}={epochs} needs about {_size(need)} for its per-epoch"
            f" histories, tables and records ({_members(cfg)} members, {devices}"
            f" device{'s' if devices > 1 else ''}), more than the {_size(have)}"
            " available here"
            f" — {fix}"
        )
