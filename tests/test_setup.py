"""The set-up a newcomer runs: ``make run`` installs what serving needs and no test tool, ``make
test`` the test tools, both at the exact versions of requirements/lock.txt (as the images do).
Checked with ``make -n`` (prints the commands, runs none) and by reading the files."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

LOCK = REPO / "requirements" / "lock.txt"


def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"not an exact pin in {LOCK.name}: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def dry_make(target: str, venv: Path) -> str:
    """What ``make <target>`` would run on a machine without .venv (``venv`` printed as VENV)."""
    result = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.replace(str(venv), "VENV")


def test_the_lock_pins_every_requirement_within_its_range() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = locked()
    for line in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in {LOCK.name}: add its exact version (make lock)"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{LOCK.name} pins {req.name}=={pins[name]}, outside pyproject's {req.specifier}"
        )
    assert {"pip", "setuptools"} <= set(pins)  # the venv's own tools and the build are pinned too


def test_make_run_installs_no_test_tool(tmp_path: Path) -> None:
    run = dry_make("run", tmp_path / "venv")
    installs = [line for line in run.splitlines() if "pip install" in line]
    assert installs and all("--constraint requirements/lock.txt" in line for line in installs)
    assert any(line.endswith(" -e .") for line in installs), installs
    assert "[dev]" not in run and "pytest" not in run


def test_make_test_installs_the_test_tools_at_the_locked_versions(tmp_path: Path) -> None:
    out = dry_make("test", tmp_path / "venv")
    installs = [line for line in out.splitlines() if "pip install" in line]
    assert any("-e '.[dev]'" in line for line in installs), installs
    assert all("--constraint requirements/lock.txt" in line for line in installs)
    pytest_line = [line for line in out.splitlines() if "VENV/bin/pytest" in line]
    assert pytest_line and "--durations=" in pytest_line[0] and "not slow" not in pytest_line[0]


def test_make_test_fast_leaves_the_slow_tests_out(tmp_path: Path) -> None:
    out = dry_make("test-fast", tmp_path / "venv")
    assert re.search(r"VENV/bin/pytest .*-m \"not slow\"", out), out


@pytest.mark.parametrize("dockerfile", ["gateway.Dockerfile", "trainer.Dockerfile"])
def test_images_install_at_the_locked_versions(dockerfile: str) -> None:
    text = (REPO / "docker" / dockerfile).read_text().replace("\\\n", " ")
    assert "requirements/lock.txt ./" in text  # copied beside the requirement lists
    installs = [part for part in text.split("&&") if re.search(r"pip install .*-r ", part)]
    assert installs and all("-c lock.txt" in part for part in installs), installs
