"""A rich progress bar with ETA for any ``progress(done, total)`` callback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Progress = Callable[[int, int], None]


@contextmanager
def progress_bar(
    description: str = "training", *, enabled: bool = True
) -> Iterator[Progress]:
    """Yield a callback that drives a rich bar with ETA; a no-op when not enabled.

    ``with progress_bar("L2 sweep") as bar: train(..., progress=bar)``
    """
    if not enabled:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} epochs"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=1)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
