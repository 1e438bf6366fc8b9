"""Stages import downward only, and no module imports itself round a cycle — not even lazily.

netbed's data flow is spec → network → programs → capture → trace → expect → report, with the
commands (runner, CLI, pytest plugin) on top. A module may import its own stage or one below it.
Every `import` counts wherever it stands (module top, inside a function, under TYPE_CHECKING): a
lazy import that dodges a cycle is still a cycle. A new module must be placed in STAGES.
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

from conftest import REPO

# lowest first; a module belongs to the stage of its longest matching name
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("netbed", "netbed.errors", "netbed.privileges", "netbed.preflight", "netbed.runstate",
              "netbed.runfolder", "netbed.terminal", "netbed.pace")),
    ("spec", ("netbed.spec", "netbed.topologies")),
    ("network", ("netbed.network",)),
    ("programs", ("netbed.programs",)),
    ("capture", ("netbed.capture",)),
    ("trace", ("netbed.trace",)),
    ("expect", ("netbed.expect", "netbed.experiment", "netbed.verdict", "netbed.claims")),
    ("report", ("netbed.report",)),
    ("commands", ("netbed.runner", "netbed.cli", "netbed.topo_cli", "netbed.pytest_plugin", "netbed.custom_topo",
                  "netbed.lab", "netbed.claims.grade", "netbed.cluster_lab")),
]


def module_name(package_root: Path, path: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package_root: Path) -> dict[str, set[str]]:
    """module -> the netbed modules it imports (a `from X import Y` of a submodule points at X.Y)."""
    files = {module_name(package_root, p): p for p in package_root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base)
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def stage_of(module: str) -> int:
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(STAGES):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank is None:
        raise AssertionError(f"{module} belongs to no stage: add it to STAGES in {Path(__file__).name}")
    return rank


def problems(graph: dict[str, set[str]]) -> list[str]:
    """Upward imports and cycles, in words."""
    found = []
    for module, imported in sorted(graph.items()):
        for other in sorted(imported):
            if stage_of(other) > stage_of(module):
                found.append(f"upward: {module} ({STAGES[stage_of(module)][0]}) imports {other} "
                             f"({STAGES[stage_of(other)][0]})")
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for other in sorted(graph[module]):
            if state.get(other) == 1:
                found.append("cycle: " + " → ".join(path[path.index(other):] + [other]))
            elif other not in state:
                visit(other)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_netbed_stages_import_downward_only_and_without_cycles():
    graph = import_graph(REPO / "netbed")
    assert graph["netbed.runner"] and graph["netbed.report.html"]  # the walk did find imports
    assert problems(graph) == []


def test_an_upward_lazy_import_is_caught(tmp_path):
    copy = tmp_path / "netbed"
    shutil.copytree(REPO / "netbed", copy, ignore=shutil.ignore_patterns("__pycache__"))
    folder = copy / "report" / "folder.py"
    folder.write_text(folder.read_text() + "\n\ndef _again(d):\n    from netbed.runner import write_result\n"
                      "    return write_result\n")
    found = problems(import_graph(copy))
    assert "upward: netbed.report.folder (report) imports netbed.runner (commands)" in found
    assert any(p.startswith("cycle: ") and "netbed.report.folder" in p and "netbed.runner" in p for p in found)


def test_a_module_outside_every_stage_is_named():
    try:
        stage_of("elsewhere.module")
    except AssertionError as exc:
        assert "belongs to no stage" in str(exc)
    else:
        raise AssertionError("a module outside netbed was given a stage")
