"""The package's import graph has no circle and no import from a lower layer to a higher one.

Every ``adaptlib`` module is parsed (not imported); each of its imports of another ``adaptlib`` module counts,
whether at module level or inside a function, and so do ``__import__("adaptlib...")`` and
``importlib.import_module("adaptlib...")`` with a literal name. Layers, lowest first::

    utils < data < backbones < methods < training < runs < measures < study < cli, bench

``analysis`` is a pure library: it imports nothing of the package but ``utils``, and only ``measures``, ``study``
and the top (``cli``, ``bench``) import it. ``reporting`` (figures and tables on disk) sits just below ``study``.
A module may import its own layer and the layers below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "adaptlib"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# layer -> rank; a module may import modules of its own rank or lower
RANKS = {"utils": 0, "data": 1, "backbones": 2, "methods": 3, "training": 4, "runs": 5, "analysis": 5.5,
         "measures": 6, "reporting": 6.5, "study": 7, "cli": 8, "bench": 8, "__init__": 8}
# layers that may import only these layers (besides themselves)
PURE = {"analysis": {"utils"}}


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its ``__init__.py``)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The module ``name`` loads: itself, else its closest enclosing module of the package."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[tuple[str, int]]:
    """(imported adaptlib module, line) for every import in the file, wherever it is written."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: set[tuple[str, int]] = set()

    def add(name: str, line: int) -> None:
        target = _target(name, modules)
        if target and target != module:
            found.add((target, line))

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:  # ``from . import x`` loads the submodule x when there is one
                name = f"{source}.{alias.name}"
                add(name if name in modules else source, node.lineno)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and node.args[0].value.split(".")[0] == PACKAGE:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in ("__import__", "import_module"):
                add(node.args[0].value, node.lineno)
    return found


def import_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], int]]:
    modules = module_files()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    lines: dict[tuple[str, str], int] = {}
    for module, path in modules.items():
        for target, line in imports_of(module, path, modules):
            graph[module].add(target)
            lines.setdefault((module, target), line)
    return graph, lines


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # the package is small: recursion depth stays far below the limit
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
    return sorted(out)


def layer_violations(graph: dict[str, set[str]], lines: dict[tuple[str, str], int]) -> list[str]:
    problems = []
    for module in sorted(graph):
        here = layer(module)
        for target in sorted(graph[module]):
            there = layer(target)
            if here == there:
                continue
            if here not in RANKS or there not in RANKS:
                problems.append(f"{module} -> {target}: layer {here if here not in RANKS else there!r} is not "
                                f"in this test's RANKS")
                continue
            where = f"{module} -> {target} (line {lines[module, target]})"
            if RANKS[there] > RANKS[here]:
                problems.append(f"{where}: {here} (rank {RANKS[here]}) imports the higher layer {there}")
            elif here in PURE and there not in PURE[here]:
                problems.append(f"{where}: {here} is a pure library and may import only {sorted(PURE[here])}")
    return problems


def describe_cycle(component: list[str], graph: dict[str, set[str]], lines: dict[tuple[str, str], int]) -> str:
    members = set(component)
    edges = [f"{a} -> {b} (line {lines[a, b]})" for a in component for b in sorted(graph[a]) if b in members]
    return "circle among " + ", ".join(component) + ":\n      " + "\n      ".join(edges)


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    modules = {"adaptlib.runs.a": tmp_path / "a.py", "adaptlib.runs.b": tmp_path / "b.py",
               "adaptlib.data": tmp_path / "__init__.py", "adaptlib.data.sub": tmp_path / "sub.py"}
    source = ("from .b import thing\n"
              "def f():\n    from ..data import sub, other\n    import adaptlib.data.sub.deeper\n")
    modules["adaptlib.runs.a"].write_text(source)
    found = {t for t, _ in imports_of("adaptlib.runs.a", modules["adaptlib.runs.a"], modules)}
    assert found == {"adaptlib.runs.b", "adaptlib.data.sub", "adaptlib.data"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_violations({"adaptlib.data.x": {"adaptlib.runs.y"}, "adaptlib.runs.y": set()},
                            {("adaptlib.data.x", "adaptlib.runs.y"): 1})


def test_no_import_circle():
    graph, lines = import_graph()
    found = cycles(graph)
    assert not found, f"{len(found)} import circles:\n  " + "\n  ".join(describe_cycle(c, graph, lines)
                                                                       for c in found)


def test_no_import_from_a_lower_layer_to_a_higher_one():
    graph, lines = import_graph()
    problems = layer_violations(graph, lines)
    assert not problems, f"{len(problems)} imports against the layers:\n  " + "\n  ".join(problems)
