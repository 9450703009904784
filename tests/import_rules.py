"""An import-linter contract type of this repository: SQL is built only in `storage/`.

import-linter's own contracts keep the layers and forbid cycles, but they see modules, not
names: `from sqlmodel import select` and `from sqlmodel import col` are one import of
`sqlmodel`. This contract reads each module's imports and refuses, outside the packages
allowed, every import of a statement builder: `select`, `insert`, `update`, `delete` (and
their classes) and `text` from SQLAlchemy or SQLModel, and any dialect's module (`insert`
for upserts).
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck

LIBRARIES = ("sqlalchemy", "sqlmodel")
BUILDERS = frozenset(
    {"select", "insert", "update", "delete", "Select", "Insert", "Update", "Delete", "text"}
)


@dataclass(frozen=True, slots=True)
class Builder:
    module: str
    line: int
    text: str


def _builders_in(path: Path) -> list[tuple[int, str]]:
    """(line, what) of each statement builder the file imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            if root not in LIBRARIES:
                continue
            if ".dialects" in node.module:
                found.append((node.lineno, f"from {node.module} import ..."))
                continue
            names = sorted(a.name for a in node.names if a.name in BUILDERS)
            if names:
                found.append((node.lineno, f"from {node.module} import {', '.join(names)}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in LIBRARIES and ".dialects" in alias.name:
                    found.append((node.lineno, f"import {alias.name}"))
    return found


class SqlOnlyIn(Contract):
    """No module of `source_modules` (their descendants included) imports a statement builder,
    except the modules listed in `allow` (each with the reason in the contract's name)."""

    type_name = "sql_only_in_storage"

    source_modules = fields.ListField(subfield=fields.StringField())
    allow = fields.ListField(subfield=fields.StringField(), required=False)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        allowed: set[str] = set(getattr(self, "allow", None) or [])
        modules: set[str] = set()
        for name in getattr(self, "source_modules", []):
            modules |= {name, *graph.find_descendants(name)}
        broken = []
        for module in sorted(modules - allowed):
            spec = importlib.util.find_spec(module)
            if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
                continue
            for line, text in _builders_in(Path(spec.origin)):
                broken.append(Builder(module, line, text))
        return ContractCheck(kept=not broken, metadata={"builders": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for builder in check.metadata["builders"]:
            output.print_error(
                f"{builder.module}:{builder.line} builds SQL outside storage/: {builder.text}",
                bold=False,
            )
        output.new_line()
