"""The package layout's rules (docs/architecture.md), checked from the source: only verl_rise/verl_ext imports verl,
data flows reward_fns <- data_prep <- verl_rise, and no module-level import cycle exists."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.paths import REPO_ROOT

PACKAGES = ("reward_fns", "data_prep", "verl_rise")


def _modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in sorted((REPO_ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(path: Path, module: str, top_level_only: bool) -> set[str]:
    """Absolute names ``path`` imports (relative imports resolved); with ``top_level_only``, only statements run
    at import time (module body, not inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_only_verl_ext_imports_verl():
    offenders = []
    for module, path in _modules().items():
        if module.startswith("verl_rise.verl_ext"):
            continue
        bad = sorted(n for n in _imports(path, module, top_level_only=False) if n == "verl" or n.startswith("verl."))
        if bad:
            offenders.append(f"{path.relative_to(REPO_ROOT)}: {bad}")
    assert not offenders, "verl imported outside verl_rise/verl_ext:\n" + "\n".join(offenders)


def test_data_flows_one_way():
    allowed = {"reward_fns": {"reward_fns"}, "data_prep": {"data_prep", "reward_fns"},
               "verl_rise": set(PACKAGES)}
    offenders = []
    for module, path in _modules().items():
        pkg = module.split(".")[0]
        for name in _imports(path, module, top_level_only=False):
            top = name.split(".")[0]
            if top in PACKAGES and top not in allowed[pkg]:
                offenders.append(f"{module} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_no_import_cycle_at_module_level():
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in _imports(path, module, top_level_only=True):
            # `from a.b import c` names a.b.c (a module or an attribute): keep the longest prefix that is a module.
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    # A package's __init__ importing its own submodules is how Python packages work, not a loop between concepts.
    real = [c for c in cycles if not all(m.startswith(c[0]) or c[0].startswith(m) for m in c)]
    assert not real, "import cycles:\n" + "\n".join(" -> ".join(c) for c in real)


def test_benchmarks_and_the_package_do_not_import_the_tests():
    """Benchmarks run on the main install (no test extra: no pytest), so neither they nor the packages may import
    the ``tests`` package; what both need lives beside the benchmarks (benchmarks/shared_data.py, reward_cases)."""
    offenders = []
    files = {**_modules(), **{f"benchmarks.{p.stem}": p for p in sorted((REPO_ROOT / "benchmarks").rglob("*.py"))}}
    for module, path in files.items():
        bad = sorted(n for n in _imports(path, module, top_level_only=False) if n == "tests" or n.startswith("tests."))
        if bad:
            offenders.append(f"{path.relative_to(REPO_ROOT)}: {bad}")
    assert not offenders, "the tests package imported outside tests/:\n" + "\n".join(offenders)
