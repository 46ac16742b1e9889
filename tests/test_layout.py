"""The dependency direction of docs/design.md ("Layout"): the message model at the bottom
imports nothing of ours; adapters import only adapters; presence nothing of ours; router may
import presence and the model; the agent client library only the wire protocol and the model;
gateway wires them all."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "adapters", "router", "presence")
MODEL = "adapters.model"
PROTOCOL = "gateway.agents.protocol"
# Most specific first: the first prefix a module falls under gives what it may import, as
# module-name prefixes (a prefix allows that module and everything below it).
RULES: list[tuple[str, set[str]]] = [
    (MODEL, set()),
    (PROTOCOL, {MODEL}),
    ("gateway.client", {"gateway.client", PROTOCOL, MODEL}),
    ("adapters", {"adapters"}),
    ("presence", {"presence"}),
    ("router", {"router", "presence", MODEL}),
    ("gateway", {"gateway", "adapters", "router", "presence"}),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_imports(path: Path) -> set[str]:
    """The modules of ours that a file imports, anywhere in it (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES}


def allowed_for(module: str) -> set[str]:
    for prefix, allowed in RULES:
        if module == prefix or module.startswith(prefix + "."):
            return allowed
    raise AssertionError(f"{module} falls under no rule")


def allows(allowed: set[str], imported: str) -> bool:
    # `from gateway.client import x` names the package `gateway` first: parents of an
    # allowed module are fine, as long as the module itself is allowed.
    return any(
        imported == prefix or imported.startswith(prefix + ".") or prefix.startswith(imported + ".")
        for prefix in allowed
    )


def source_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_follow_the_dependency_direction(package: str) -> None:
    for path in sorted((ROOT / package).rglob("*.py")):
        module = module_name(path)
        allowed = allowed_for(module)
        wrong = sorted(name for name in our_imports(path) if not allows(allowed, name))
        assert not wrong, f"{path.relative_to(ROOT)} imports {wrong}"


def test_the_rules_hold_something() -> None:
    """A rule that matches no module (a moved package) would pass vacuously."""
    modules = [module_name(path) for path in source_files()]
    for prefix, _ in RULES:
        assert any(m == prefix or m.startswith(prefix + ".") for m in modules), prefix


def module_graph() -> dict[str, set[str]]:
    """Each of our modules -> the modules of ours it imports. ``from X import Y`` names the
    submodule X.Y when there is one, else X itself; relative imports are resolved."""
    paths = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0]
                    base = f"{parent}.{base}" if base else parent
                subs = {f"{base}.{alias.name}" for alias in node.names} & paths.keys()
                found |= subs or {base}
        graph[module] = (found & paths.keys()) - {module}
    return graph


def test_no_import_cycles():
    """Tarjan's strongly connected components: a component of two or more modules is a cycle,
    where which module loads first decides what the others see half-initialised."""
    graph = module_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while (member := stack.pop()) != module:
                component.append(member)
            if component:
                cycles.append(sorted([module, *component]))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_test_imports_a_conftest_by_name() -> None:
    # Several folders have a conftest.py and pytest imports each as "conftest": importing one by
    # name finds whichever came first, so a run in another order fails to collect.
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module == "conftest"
    ]
    assert offenders == []
