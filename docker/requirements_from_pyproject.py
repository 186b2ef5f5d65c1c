"""Print the project's dependencies from pyproject.toml as pip requirement lines.

The images install dependencies from pyproject.toml before copying the sources (a cached layer),
so the pins live in one place. The slim gateway image leaves TensorFlow out::

    python docker/requirements_from_pyproject.py pyproject.toml                  # all
    python docker/requirements_from_pyproject.py pyproject.toml \\
        --exclude tensorflow keras tensorflow-serving-api jax                     # gateway runtime
    python docker/requirements_from_pyproject.py pyproject.toml \\
        --only tensorflow-serving-api                                             # --no-deps
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

# PEP 508 name at the start of a requirement, before extras/specifiers/markers
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503 normalised name: ``Tensorflow_Serving.API`` -> ``tensorflow-serving-api``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a PEP 508 requirement: {requirement!r}")
    return canonical(match.group(1))


def select(
    requirements: Iterable[str],
    *,
    exclude: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> list[str]:
    """Requirements whose names are in ``only`` (when given) and not in ``exclude``."""
    excluded = {canonical(n) for n in exclude}
    wanted = None if only is None else {canonical(n) for n in only}
    picked = []
    for req in requirements:
        name = requirement_name(req)
        if name in excluded or (wanted is not None and name not in wanted):
            continue
        picked.append(req)
    if wanted is not None:
        missing = wanted - {requirement_name(r) for r in picked}
        if missing:
            raise SystemExit(f"not among the project's dependencies: {sorted(missing)}")
    return picked


def project_dependencies(pyproject: Path) -> list[str]:
    data = tomllib.loads(pyproject.read_text())
    deps: list[str] = data["project"]["dependencies"]
    return deps


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("--exclude", nargs="*", default=[], metavar="NAME")
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME")
    args = parser.parse_args(argv)
    reqs = select(project_dependencies(args.pyproject), exclude=args.exclude, only=args.only)
    sys.stdout.write("".join(f"{r}\n" for r in reqs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
