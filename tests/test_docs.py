"""The documentation cannot drift: every code block of the tutorial pages runs.

Each tutorial page runs top to bottom in a fresh folder (its own run store there):
```python blocks share one namespace; ```console lines starting with ``$ reglab``
and ```bash lines run through ``reglab.cli.main`` in this process, and the lines a
console block shows after a command must appear in what it printed (``...`` skips;
a shown ``reglab: ...`` line is an error the command must exit with).

An HTML comment right above a block, invisible on the site, changes how it runs:

    <!-- docs-test: skip REASON -->          not run; the reason is reported
    <!-- docs-test: needs MODULE.NAME -->    run only where that exists (the seam)
    <!-- docs-test: replace OLD => NEW -->   run smaller (fewer epochs): OLD must
                                             appear in the block; NEW may name
                                             {newest} / {oldest}, run ids of the store

The post's section pages train at full scale, so their commands are only parsed and
their settings built (every key and value checked) — nothing trains.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
TUTORIALS = (
    "getting-started.md",
    "guide.md",
    "playground.md",
    "your-data.md",
    "study.md",
    "write-a-regularizer.md",
    "canon.md",
)
POST = sorted(p.name for p in (DOCS / "post").glob("*.md"))
FENCE = re.compile(
    r"((?:<!-- docs-test: .*? -->\n)*)```(python|console|bash)\n(.*?)```", re.S
)
MARK = re.compile(r"<!-- docs-test: (skip|replace|needs) (.*?) -->")


@dataclass
class Block:
    """One fenced block and the markers above it."""

    language: str
    text: str
    skip: str | None = None
    replace: list[tuple[str, str]] = field(default_factory=list)


def blocks(page: Path) -> list[Block]:
    """Return the page's python/console/bash blocks with their markers."""
    out = []
    for marks, language, text in FENCE.findall(page.read_text()):
        block = Block(language, text)
        for kind, arg in MARK.findall(marks):
            if kind == "skip":
                block.skip = arg
            elif kind == "needs":
                if not _exists(arg):
                    block.skip = f"needs {arg}, which this checkout lacks"
            else:
                old, arrow, new = arg.partition(" => ")
                assert arrow, f"{page.name}: replace needs 'OLD => NEW', got {arg!r}"
                assert old in text, f"{page.name}: {old!r} is not in its block"
                block.replace.append((old, new))
        out.append(block)
    return out


def _exists(dotted: str) -> bool:
    """Return whether module.attribute (e.g. reglab.regularizers.register) exists."""
    import importlib

    module, _, attribute = dotted.rpartition(".")
    try:
        return hasattr(importlib.import_module(module), attribute)
    except ImportError:
        return False


def commands(block: Block) -> list[tuple[str, list[str]]]:
    """Return (command, lines shown after it) of a console or bash block."""
    if block.language == "bash":
        lines = [ln.split("  #")[0].strip() for ln in block.text.splitlines()]
        return [(ln, []) for ln in lines if ln and not ln.startswith("#")]
    out: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            out.append((line[2:].split("  #")[0].strip(), []))
        elif out and line.strip():
            out[-1][1].append(line.strip())
    return out


def newest_and_oldest() -> dict[str, str]:
    """Return the store's newest and oldest run ids (first 8 characters)."""
    from reglab import cli

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert cli.main(["runs", "--json"]) == 0
    runs = json.loads(text.getvalue())
    return {"newest": runs[0]["id"][:8], "oldest": runs[-1]["id"][:8]} if runs else {}


def run_command(command: str, shown: list[str]) -> None:
    """Run one reglab command in this process; check what it prints and exits with."""
    from reglab import cli

    argv = shlex.split(command)
    target = None
    if ">" in argv:
        at = argv.index(">")
        argv, target = argv[:at], argv[at + 1]
    assert argv[0] == "reglab", (
        f"{command!r}: only reglab commands run here — mark the block"
        " '<!-- docs-test: skip REASON -->'"
    )
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            # in this process (no worker start-up, JAX warm), without bars
            extra = ["--no-progress", "--jobs", "1"] if _trains(argv) else []
            code = cli.main([*argv[1:], *extra])
        except SystemExit as e:  # the command line's one-line errors
            code = e.code
            print(e.code if isinstance(e.code, str) else "", file=err)
    printed = out.getvalue() + err.getvalue()
    fails = any(line.startswith("reglab: ") for line in shown)
    if fails:
        assert code not in (0, None), f"{command!r} should fail, printed {printed}"
    else:
        assert code in (0, None), f"{command!r} exited {code}: {printed[-2000:]}"
    for line in shown:
        for part in line.split("..."):
            assert part.strip() in printed, f"{command!r} did not print {part!r}"
    if target is not None:
        Path(target).write_text(out.getvalue())


def _trains(argv: list[str]) -> bool:
    return len(argv) > 1 and argv[1] in ("run", "sweep", "reproduce")


def check_page(name: str, tmp_path: Path, monkeypatch) -> list[str]:
    """Run every block of a tutorial page in order; return the skip reasons."""
    shutil.copytree(
        DOCS.parent / "examples" / "studies", tmp_path / "examples" / "studies"
    )
    monkeypatch.chdir(tmp_path)  # the pages' files and run store land here
    monkeypatch.delenv("REGLAB_STORE", raising=False)
    namespace: dict = {"__name__": "__docs__"}
    skipped = []
    for block in blocks(DOCS / name):
        if block.skip:
            skipped.append(block.skip)
            continue
        if block.language == "python":
            text = block.text
            for old, new in block.replace:
                text = text.replace(old, new)
            exec(compile(text, f"{name}:python", "exec"), namespace)  # noqa: S102
            continue
        for command, shown in commands(block):
            for old, new in block.replace:
                if old in command:  # run ids: what the commands before it stored
                    ids = newest_and_oldest() if "{" in new else {}
                    command = command.replace(old, new.format(**ids))
            run_command(command, shown)
    return skipped


@pytest.mark.parametrize("name", TUTORIALS)
def test_every_block_of_the_tutorial_page_runs(name, tmp_path, monkeypatch, capsys):
    skipped = check_page(name, tmp_path, monkeypatch)
    with capsys.disabled():
        for reason in skipped:  # said, so a skipped block is never silent
            print(f"\n  {name}: a block skipped: {reason}", end="")


def test_every_page_is_in_the_site_and_every_tutorial_has_code():
    nav = (DOCS.parent / "mkdocs.yml").read_text()
    for page in [*TUTORIALS, *(f"post/{p}" for p in POST)]:
        assert f" {page}\n" in nav, f"{page} is not in mkdocs.yml's nav"
        assert (DOCS / page).is_file()
    for name in TUTORIALS:
        assert blocks(DOCS / name), f"{name} has no code block"


@pytest.mark.parametrize("name", POST)
def test_the_post_pages_commands_name_real_settings(name):
    from reglab import cli, experiments
    from reglab.lab.overrides import build_config
    from reglab.lab.sweep import grid_points

    found = 0
    for block in blocks(DOCS / "post" / name):
        for command, _ in commands(block):
            argv = shlex.split(command)
            if argv[:2] not in (["reglab", "run"], ["reglab", "sweep"]):
                continue
            args = cli.parser().parse_args(argv[1:])
            settings, axes = cli._settings(args)
            mod = experiments.get(args.experiment)
            for point in grid_points(axes) or [{}]:
                build_config(mod, settings | point, seeds=args.seeds, quick=args.quick)
            found += 1
    assert found, f"{name} shows no reglab command"


def test_the_toml_shown_on_the_study_page_is_the_example_file():
    text = (DOCS / "study.md").read_text()
    shown = re.findall(r"```toml\n(.*?)```", text, re.S)
    examples = DOCS.parent / "examples" / "studies"
    assert shown[0] == (examples / "your-csv.toml").read_text()
    assert shown[1] in (examples / "moons-confidence-penalty.toml").read_text()


def test_the_post_pages_show_the_figures_they_name():
    for name in POST:
        text = (DOCS / "post" / name).read_text()
        images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
        assert images, f"{name} shows no figure"
        for image in images:
            assert (DOCS / "post" / image).resolve().is_file(), f"{name}: {image}"
