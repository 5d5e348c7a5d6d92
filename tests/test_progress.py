"""The progress bar: drives rich when enabled, does nothing when not."""

import io

from rich.console import Console

from reglab.progress import progress_bar


def test_disabled_bar_accepts_updates_and_prints_nothing(capsys):
    with progress_bar(enabled=False) as bar:
        bar(1, 10)
        bar(10, 10)
    assert capsys.readouterr() == ("", "")


def test_enabled_bar_tracks_done_and_total(monkeypatch):
    import rich.progress

    made = []
    original = rich.progress.Progress

    def recording(*args, **kwargs):
        kwargs["console"] = Console(file=io.StringIO(), force_terminal=True)
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(rich.progress, "Progress", recording)
    with progress_bar("sweep") as bar:
        bar(3, 12)
        (task,) = made[0].tasks
        assert (task.description, task.completed, task.total) == ("sweep", 3, 12)
