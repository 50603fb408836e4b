"""Imports go one way: capmon/ (the composition root) imports the rest, nothing imports it;
producers/ and consumers/ import monitor/, which imports neither; and no module picks what
it imports from a string, where mypy could not follow."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports(package: str) -> dict[str, set[str]]:
    """Every module file of the package -> the top-level packages it imports, at any depth
    of the file (functions and TYPE_CHECKING blocks included)."""
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tops: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                tops |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops.add(node.module.partition(".")[0])
        out[str(path.relative_to(ROOT))] = tops
    return out


def test_nothing_imports_the_composition_root() -> None:
    offenders = {module: tops & {"capmon"}
                 for package in ("monitor", "consumers", "producers")
                 for module, tops in imports(package).items() if "capmon" in tops}
    assert offenders == {}


def test_the_core_imports_neither_producers_nor_consumers() -> None:
    core = imports("monitor")
    assert len(core) > 50  # the walk saw the core
    offenders = {module: tops & {"producers", "consumers"} for module, tops in core.items()
                 if tops & {"producers", "consumers"}}
    assert offenders == {}


def test_the_root_imports_the_roles_directly() -> None:
    assert {"consumers", "producers", "monitor"} <= imports("capmon")["capmon/roles.py"]


def test_no_module_imports_by_a_name_in_a_string() -> None:
    calls = []
    for package in ("capmon", "monitor", "consumers", "producers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in ("import_module", "__import__"):
                    calls.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert calls == []
