"""The flows in gateway/flows/ depend on each other in one direction, written in the
switchboard's docstring: a module imports only flows below it, so none can form a cycle
and a reader can start at the bottom."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FLOWS = Path(__file__).resolve().parents[3] / "gateway" / "flows"
ORDER = [
    "clock", "records", "outbound", "aftercare", "departures", "outcomes", "dispatcher", "ingest",
    "closing", "deadlines", "timers",
]  # fmt: skip
# ingest, closing and deadlines stand side by side: none imports another.
PEERS = {("closing", "ingest"), ("deadlines", "ingest"), ("deadlines", "closing")}


def flows_imported(module: str) -> set[str]:
    tree = ast.parse((FLOWS / f"{module}.py").read_text("utf-8"))
    return {
        node.module.removeprefix("gateway.flows.")
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.startswith("gateway.flows.")
    }


@pytest.mark.parametrize("module", ORDER)
def test_a_flow_imports_only_the_flows_below_it(module):
    below = set(ORDER[: ORDER.index(module)]) - {b for a, b in PEERS if a == module}
    assert flows_imported(module) <= below
