"""The README's library example runs as written (with fewer epochs)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys):
    (block,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert "epochs=2000" in block
    namespace: dict = {}
    exec(block.replace("epochs=2000", "epochs=3"), namespace)  # noqa: S102
    result = namespace["result"]
    assert result.params["W1"].shape == (2, 5, 2, 64)
    assert namespace["logits"].shape == (2, 5, 250, 2)
    assert "[[" in capsys.readouterr().out  # the printed accuracies


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
    ci = (README.parent / ".ci" / "run").read_text()
    assert "\npython -m pytest -q\n" in ci  # CI runs exactly the README's test command
