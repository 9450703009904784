"""The import contracts `make lint` checks hold, and break on the imports they forbid.

Each case copies the three packages and the contracts into a temporary folder, plants one
forbidden import and runs `lint-imports` there: it must fail, naming the broken contract.
The unchanged copy must pass, so a failure is the planted import's doing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what `lint-imports` reads: the packages, the contract types, the settings."""
    copy = tmp_path_factory.mktemp("tree")
    ignored = shutil.ignore_patterns("__pycache__", "static", "*.yml", "*.mako")
    for package in ("bot", "handlers", "storage"):
        shutil.copytree(ROOT / package, copy / package, ignore=ignored)
    (copy / "tests").mkdir()
    (copy / "tests" / "__init__.py").write_text("")
    shutil.copy(ROOT / "tests" / "import_rules.py", copy / "tests" / "import_rules.py")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    run = lint_imports(tree)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        (
            "bot/core/text.py",
            "import handlers.common",
            "Nothing in bot/ imports handlers/, but the app that registers them BROKEN",
        ),
        (
            "storage/db.py",
            "import bot.settings",
            "storage/ imports nothing of bot/ or handlers/ BROKEN",
        ),
        (
            "bot/core/calendar.py",
            "import bot.checkins.model",
            "No import cycles: between modules, nor between the packages that hold them BROKEN",
        ),
        (
            "bot/ui/blocks.py",
            "import bot.digest.model",
            "Imports run one way: entry points, handlers, features, shared rooms, storage BROKEN",
        ),
        (
            "bot/checkins/blocks.py",
            "from bot.checkins import service",
            "checkins: its service and its blocks never import each other BROKEN",
        ),
        (
            "bot/reviews/blocks.py",
            "from bot.reviews import service",
            "reviews: its service and its blocks never import each other BROKEN",
        ),
        (
            "bot/lessons/blocks.py",
            "from bot.lessons import service",
            "lessons: its service and its blocks never import each other BROKEN",
        ),
        (
            "storage/queries/lessons.py",
            "import bot.lessons.model",
            "storage/ imports nothing of bot/ or handlers/ BROKEN",
        ),
        (
            "bot/risks/blocks.py",
            "from bot.risks import service",
            "risks: its service and its blocks never import each other BROKEN",
        ),
        (
            "bot/risks/model.py",
            "import bot.summary.blocks",
            "No import cycles: between modules, nor between the packages that hold them BROKEN",
        ),
        (
            "bot/evidence/service.py",
            "from sqlmodel import select",
            "SQL is built only in storage/",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tree: Path, tmp_path: Path, module: str, planted: str, broken: str
) -> None:
    planted_tree = tmp_path / "tree"
    shutil.copytree(tree, planted_tree)
    target = planted_tree / module
    target.write_text(target.read_text() + f"\n{planted}  # noqa: E402, F401\n")
    run = lint_imports(planted_tree)
    said = " ".join(run.stdout.split())  # the report wraps its lines
    assert run.returncode == 1, run.stdout + run.stderr
    assert broken in said, run.stdout
    if "SQL" in broken:
        found = re.findall(r"(\S+):\d+ builds SQL outside storage/: (from \S+ import \w+)", said)
        assert found == [("bot.evidence.service", "from sqlmodel import select")]
