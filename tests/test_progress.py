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
        (task,) = made[0].tasks
        assert task.description == "sweep: compiling"  # until the first epochs
        bar(3, 12)
        assert (task.description, task.completed, task.total) == ("sweep", 0.25, 1.0)


def test_bars_add_an_overall_eta_from_the_second_job():
    from reglab.progress import OVERALL, Bars

    console = Console(file=io.StringIO(), force_terminal=True)
    with Bars(console) as bars:
        bars.add("a")
        assert [t.description for t in bars.progress.tasks] == ["a: compiling"]
        bars.add("b")
        bars.update("a", 5, 10)
        bars.finish("b")
        overall = bars.progress.tasks[-1]
        assert overall.description == OVERALL
        assert (overall.completed, overall.total) == (1.5, 2)  # half of a, all of b
