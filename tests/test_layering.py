"""The import graph points one way: the service depends on the library, never the other way.

``fashion_core`` (pure contract, files and numbers) is below everything; ``fashion_gan`` (the
Python API and TF Serving clients) is below ``gateway``; training and export never import the
gateway; nothing imports ``tests``. Every import counts, also those inside functions (a lazy
import is still a dependency). A new top-level package must be added here to be allowed
anywhere, so the graph cannot grow a wrong arrow unseen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

# package -> the project packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "fashion_core": set(),
    "evaluation": {"fashion_core"},
    "fashion_gan": {"fashion_core"},
    "serving_config": {"fashion_core"},
    "tfserving_standin": {"fashion_core", "serving_config"},
    "export": {"fashion_core", "evaluation", "fashion_gan", "serving_config"},
    "training": {"fashion_core", "evaluation", "export", "fashion_gan", "serving_config"},
    "gateway": {"fashion_core", "fashion_gan"},
    "benchmarks": {
        "fashion_core",
        "evaluation",
        "fashion_gan",
        "export",
        "training",
        "gateway",
        "serving_config",
        "tfserving_standin",
    },
    "docker": set(),
    "tests": {"*"},
}


def packages() -> list[str]:
    return sorted(p.parent.name for p in REPO.glob("*/__init__.py"))


def imports(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports, at any depth of its code."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_every_package_has_a_place() -> None:
    assert set(packages()) <= set(ALLOWED), "add the new package to ALLOWED"


@pytest.mark.parametrize("package", sorted(set(ALLOWED) - {"tests"}))
def test_imports_point_down(package: str) -> None:
    project = set(packages()) | {"tests"}
    wrong = sorted(
        f"{path.relative_to(REPO)} imports {name}"
        for path in (REPO / package).rglob("*.py")
        for name in imports(path)
        if (top := name.split(".")[0]) in project and top != package and top not in ALLOWED[package]
    )
    assert not wrong, wrong


def test_the_check_sees_a_wrong_arrow(tmp_path: Path) -> None:
    """The walker finds an import hidden in a function (as fashion_gan's were)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from gateway.settings import Settings\n    return Settings\n")
    assert "gateway.settings" in imports(module)
