"""The shape of src/reglab, read from its syntax trees: short functions, no cycles.

Two house rules a reviewer cannot keep by eye: no function over ``MAX_LINES`` lines
(a claims function that is one flat list of ``Claim.over_seeds`` calls may be longer:
each call is one statement of the post), and no import cycle among src/reglab's
modules, imports inside functions included (they only hide a cycle from Python).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

import reglab

ROOT = Path(reglab.__file__).parent
MAX_LINES = 100
# functions allowed over the limit (none: keep it so)
LONG_ALLOWED: set[str] = set()
# cycles among modules only branch core edits; none today (a frozenset of modules)
CYCLES_ALLOWED: set[frozenset[str]] = set()


def module_name(path: Path, root: Path = ROOT) -> str:
    """Return the dotted module name of a source file under root (reglab's)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources(root: Path = ROOT) -> dict[str, ast.Module]:
    """Return module name -> parsed tree for every .py file under root."""
    return {
        module_name(p, root): ast.parse(p.read_text(), str(p))
        for p in sorted(root.rglob("*.py"))
    }


def functions(tree: ast.Module, prefix: str):
    """Yield (qualified name, node) of every function in tree, nested ones too."""

    def walk(node: ast.AST, path: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{path}.{child.name}"
                yield name, child
                yield from walk(child, name)
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{path}.{child.name}")
            else:
                yield from walk(child, path)

    yield from walk(tree, prefix)


def length(node: ast.AST) -> int:
    """Return the lines a function spans, decorators excluded."""
    return node.end_lineno - node.lineno + 1


def is_claim_list(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether a function is a flat list of claims: its long statements are lists
    (or appends) of ``Claim.over_seeds(...)`` calls, and nothing else is long."""

    def over_seeds(call: ast.AST) -> bool:
        return (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "over_seeds"
        )

    def flat(stmt: ast.stmt) -> bool:
        value = getattr(stmt, "value", None)
        if isinstance(value, ast.List | ast.Tuple):
            return bool(value.elts) and all(over_seeds(e) for e in value.elts)
        if isinstance(value, ast.Call):  # out.append(Claim.over_seeds(...))
            return over_seeds(value) or (
                len(value.args) == 1 and over_seeds(value.args[0])
            )
        return isinstance(value, ast.Expr) and flat(value)

    body = node.body
    claims = sum(length(s) for s in body if flat(s))
    rest = sum(length(s) for s in body if not flat(s))
    return claims > 0 and rest <= MAX_LINES // 2


def long_functions(trees: dict[str, ast.Module]) -> dict[str, int]:
    """Return qualified name -> lines of every function over MAX_LINES."""
    out = {}
    for module, tree in trees.items():
        for name, node in functions(tree, module):
            if length(node) > MAX_LINES and not is_claim_list(node):
                out[name] = length(node)
    return out


def imported_modules(module: str, tree: ast.Module, known: set[str]) -> set[str]:
    """Return the reglab modules module imports, at any depth of its tree."""
    package = module if module in _packages(known) else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            # `from pkg import mod` imports pkg.mod when that is a module
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # a.b.attr -> a.b
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


def _packages(known: set[str]) -> set[str]:
    return {m.rpartition(".")[0] for m in known if "." in m}


def import_graph(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    """Return module -> the reglab modules it imports, function-local imports too.

    A package's ``__init__`` runs before any of its modules, so importing
    ``reglab.a.b`` is an edge to ``reglab.a`` as well: only edges are kept whose
    importing module is not itself inside that package (a package's modules reach
    their own ``__init__`` without a cycle being a problem of theirs).
    """
    known = set(trees)
    graph = {}
    for module, tree in trees.items():
        graph[module] = {
            m for m in imported_modules(module, tree, known)
            if not module.startswith(m + ".")
        }  # fmt: skip
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# --- the checks on reglab ------------------------------------------------------------


@functools.cache
def reglab_sources() -> dict[str, ast.Module]:
    """Return reglab's parsed modules, parsed once for the three checks."""
    return sources()


def test_no_function_over_the_line_limit():
    found = long_functions(reglab_sources())
    over = {k: v for k, v in found.items() if k not in LONG_ALLOWED}
    assert not over, f"functions over {MAX_LINES} lines: {over} — split them"
    stale = LONG_ALLOWED - set(found)
    assert not stale, f"allowed long functions that are short now: {stale}"


def layers(graph: dict[str, set[str]], depth: int = 2) -> dict[str, set[str]]:
    """Return the graph of reglab's layers: each subpackage (reglab.lab, ...) one node.

    Data flows one way through the layers (DESIGN.md): reglab.lab may use
    reglab.reproduce, not also the reverse, even where no two modules cycle.
    """

    def top(module: str) -> str:
        return ".".join(module.split(".")[:depth])

    out: dict[str, set[str]] = {}
    for module, imported in graph.items():
        out.setdefault(top(module), set()).update(
            top(m) for m in imported if top(m) != top(module)
        )
    return out


def private_imports(trees: dict[str, ast.Module]) -> list[str]:
    """Return 'module: name' for each _private name imported from another module."""
    out = []
    for module, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "reglab"
            ):
                out += [
                    f"{module}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    return out


def test_no_import_cycle_among_reglab_modules():
    graph = import_graph(reglab_sources())
    found = [c for c in cycles(graph) if frozenset(c) not in CYCLES_ALLOWED]
    assert not found, f"import cycles (function-local imports included): {found}"
    found = cycles(layers(graph))
    assert not found, f"import cycles between reglab's packages: {found}"


def test_no_private_name_crosses_modules():
    found = private_imports(reglab_sources())
    assert not found, f"private names imported from another module: {found}"


# --- the checks check: each catches what it is for -----------------------------------


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_function_local_import_cycle_is_found(tmp_path):
    root = _package(tmp_path, {
        "a.py": "from pkg import b\n",
        "b.py": "def f():\n    from pkg.c import g\n    return g\n",
        "c.py": "def g():\n    import pkg.a\n",
        "d.py": "from pkg.a import x\n",
        "sub/__init__.py": "", "sub/e.py": "from .. import d\nfrom . import f\n",
        "sub/f.py": "from pkg.sub import e\n",
    })  # fmt: skip
    found = cycles(import_graph(sources(root)))
    assert found == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.sub.e", "pkg.sub.f"]]


def test_a_package_importing_its_own_modules_is_no_cycle(tmp_path):
    root = _package(tmp_path, {
        "sub/__init__.py": "def get():\n    from pkg.sub import one\n",
        "sub/one.py": "from pkg.sub import two\n", "sub/two.py": "x = 1\n",
    })  # fmt: skip
    assert cycles(import_graph(sources(root))) == []


def _function(lines: int, claims: bool) -> str:
    if claims:
        call = "    Claim.over_seeds(\n" + "        'x',\n" * 8 + "    ),\n"
        body = "    out = [\n" + call * (lines // 10) + "    ]\n    return out\n"
    else:
        body = "    x = 1\n" * lines + "    return x\n"
    return "def f():\n" + body


def test_a_cycle_between_packages_is_found(tmp_path):
    root = _package(tmp_path, {
        "run.py": "def go():\n    from pkg.lab.events import put\n",
        "lab/__init__.py": "", "lab/events.py": "put = print\n",
        "lab/driver.py": "def execute():\n    from pkg.run import go\n",
    })  # fmt: skip
    graph = import_graph(sources(root))
    assert cycles(graph) == []  # no two modules cycle ...
    assert cycles(layers(graph)) == [["pkg.lab", "pkg.run"]]  # ... but the layers do


def test_a_private_name_imported_from_another_module_is_found(tmp_path):
    root = _package(tmp_path, {
        "a.py": "_CSS = ''\n__all__ = []\n",
        "b.py": "from pkg.a import _CSS, __all__\n",
    })  # fmt: skip
    assert private_imports(sources(root)) == []  # reglab's only: a plain package
    assert private_imports({"reglab.b": ast.parse("from reglab.a import _CSS")}) == [
        "reglab.b: reglab.a._CSS"
    ]


@pytest.mark.parametrize(
    ("lines", "claims", "flagged"),
    [(98, False, False), (101, False, True), (300, True, False)],
)
def test_long_functions_are_found_but_not_flat_claim_lists(
    tmp_path, lines, claims, flagged
):
    root = _package(tmp_path, {"m.py": _function(lines, claims)})
    assert ("pkg.m.f" in long_functions(sources(root))) == flagged
