"""The request limits: one table that the gateway's validator, its OpenAPI schema and docs
page, the Python API, the gallery (from ``GET /api/limits``) and the README all read.

Three maxima come from settings (GATEWAY_MAX_GRID, GATEWAY_MAX_SCALE, GATEWAY_MAX_SPACING);
``table()`` with no arguments gives the defaults, which is what the Python API allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fashion_core.latents import MAX_SEED

MAX_GRID: Final = 16
MAX_SCALE: Final = 8
MAX_SPACING: Final = 8
MAX_STEPS: Final = 32


@dataclass(frozen=True)
class Limit:
    name: str
    lo: int
    hi: int
    default: int | None  # None: see help (a random seed, the newest version, ...)
    help: str
    setting: str | None = None  # the variable that sets ``hi``, if one does

    def allows(self, value: int) -> bool:
        return self.lo <= value <= self.hi

    def sentence(self) -> str:
        """What is allowed, as the 400 answer says it."""
        return f"{self.name} must be an integer from {self.lo} to {self.hi}."


def table(
    max_grid: int = MAX_GRID, max_scale: int = MAX_SCALE, max_spacing: int = MAX_SPACING
) -> dict[str, Limit]:
    """name -> Limit, in the order the docs list them."""
    rows = (
        Limit("rows", 1, max_grid, 3, "rows of the sheet", "GATEWAY_MAX_GRID"),
        Limit("cols", 1, max_grid, 3, "columns of the sheet", "GATEWAY_MAX_GRID"),
        Limit("scale", 1, max_scale, 1, "integer upscale of every tile", "GATEWAY_MAX_SCALE"),
        Limit("spacing", 0, max_spacing, 0, "pixels between tiles", "GATEWAY_MAX_SPACING"),
        Limit("seed", 0, MAX_SEED, None, "same seed + same version = same PNG (default: random)"),
        Limit("version", 1, MAX_SEED, None, "pin a published version (default: the newest)"),
        # a walk or a POST body never draws more than the largest sheet
        Limit(
            "steps",
            2,
            min(MAX_STEPS, max_grid**2),
            8,
            "designs in an interpolation (at most 32 and rows x cols of the largest sheet)",
            "GATEWAY_MAX_GRID",
        ),
        Limit(
            "latents",
            1,
            max_grid**2,
            None,
            "latent vectors in a POST body (rows x cols of the largest sheet)",
            "GATEWAY_MAX_GRID",
        ),
        Limit("from", 0, MAX_SEED, None, "seed of the first design of a walk (required)"),
        Limit("to", 0, MAX_SEED, None, "seed of the last design of a walk (required)"),
    )
    return {limit.name: limit for limit in rows}


def markdown_table() -> str:
    """The README's table of request limits (defaults; a test keeps the two equal)."""
    out = ["| parameter | allowed | default | set by | what |", "|---|---|---|---|---|"]
    for limit in table().values():
        default = "—" if limit.default is None else str(limit.default)
        setting = f"`{limit.setting}`" if limit.setting else "—"
        out.append(
            f"| `{limit.name}` | {limit.lo} to {limit.hi} | {default} | {setting} | {limit.help} |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown_table())
