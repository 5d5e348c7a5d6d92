"""Progress bars with ETA for ``progress(done, total)`` callbacks: one kind for all.

``Bars`` shows one bar per job ("compiling" until its first epochs are done) and, from
the second job on, an overall bar with the ETA of the whole command; the ``reglab``
command drives it for its experiments and ``progress_bar`` gives a library user the
same bar for one ``train`` call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Progress = Callable[[int, int], None]
OVERALL = "all (overall ETA)"


class Bars:
    """One bar per job plus an overall ETA; a job says 'compiling' until it moves."""

    def __init__(self, console: Any = None, disable: bool = False) -> None:
        from rich.progress import (
            BarColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self.progress = RichProgress(
            TextColumn("[bold]{task.description:<34}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=disable,
        )
        self.tasks: dict[str, Any] = {}
        self.total: Any = None

    def __enter__(self) -> Bars:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def add(self, tag: str) -> None:
        """Add a job's bar, shown as compiling until its first epochs are done."""
        self.tasks[tag] = self.progress.add_task(f"{tag}: compiling", total=1.0)
        if len(self.tasks) == 2:  # an overall bar once there is more than one job
            self.total = self.progress.add_task(OVERALL, total=0.0)
        if self.total is not None:
            self.progress.update(self.total, total=len(self.tasks))
            self._overall()

    def update(self, tag: str, done: int, total: int) -> None:
        """Move a job's bar to done of total epochs."""
        if tag not in self.tasks:
            return
        self.progress.update(
            self.tasks[tag], completed=done / max(total, 1), description=tag
        )
        self._overall()

    def _overall(self) -> None:
        if self.total is None:
            return
        ids = set(self.tasks.values())
        done = sum(t.completed for t in self.progress.tasks if t.id in ids)
        self.progress.update(self.total, completed=done)

    def finish(self, tag: str) -> None:
        """Hide a finished job's bar."""
        if tag in self.tasks:
            self.update(tag, 1, 1)
            self.progress.update(self.tasks[tag], visible=False)


@contextmanager
def progress_bar(
    description: str = "training", *, enabled: bool = True
) -> Iterator[Progress]:
    """Yield a callback that drives one ``Bars`` job; a no-op when not enabled.

    ``with progress_bar("L2 sweep") as bar: train(..., progress=bar)``
    """
    if not enabled:
        yield lambda done, total: None
        return
    with Bars() as bars:
        bars.add(description)
        yield lambda done, total: bars.update(description, done, total)
