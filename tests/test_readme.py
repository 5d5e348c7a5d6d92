"""The README stays short: set-up commands, the test command, links that resolve.

The library example and the long sections moved to docs/, whose code runs in
tests/test_docs.py.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_gives_exactly_one_install_one_run_and_one_test_command():
    text = README.read_text()
    shell = re.findall(r"```bash\n(.*?)```", text, re.S)
    commands = [ln.split("#")[0].strip() for b in shell for ln in b.splitlines()]
    commands = [c for c in commands if c]
    assert commands == [
        'pip install -e ".[test]"',
        "reglab reproduce",
        "python -m pytest -q",
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\npython -m pytest -q\n" in ci  # CI runs exactly the README's test command
    assert "mkdocs build --strict" in ci  # and builds the docs as the README says


def test_readme_links_every_docs_page_and_each_link_resolves():
    text = README.read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    for link in links:
        assert (ROOT / link).exists(), f"README links {link}, which does not exist"
    pages = {str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")}
    missing = pages - {"docs/index.md"} - set(links)
    assert not missing, f"README links no {sorted(missing)}"


def test_readme_is_short():
    assert len(README.read_text().splitlines()) < 80  # the long sections live in docs/
