"""The second model a ``category_from_z`` job publishes: its conditional networks without the
wrapper, as the class-conditional model, version for version with the first (and a first
version whatever the first model's gate says: training/progressive.py decides when)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from fashion_core.versions import list_versions

# (float32 generator, quality figures, the card's training section) -> published version
Publish = Callable[[keras.Model, dict[str, Any], dict[str, Any]], int]
PENDING = "the evaluator's classifier is trained after the first versions"


@dataclass(frozen=True)
class Companion:
    """The class-conditional model that a ``category_from_z`` job publishes too: the same
    networks without the wrapper, under their own name and base path, so that designs by
    category come from the job's first minutes instead of a second job of their own."""

    model: str
    base_path: Path
    publish: Publish
    prune: Callable[[], list[int]]


def publish_companion(
    companion: Companion,
    net: keras.Model,
    training: dict[str, Any],
    state: dict[str, Any],
    measure: Callable[[keras.Model], dict[str, Any]] | None,
    log: Callable[[str], None],
) -> int | None:
    """Publish ``net`` (conditional) as the companion model, its card's figures measured per
    category by ``measure`` (None: no evaluator yet); the version, recorded in
    ``state["companion_versions"]``, or None. Only over versions this job made: a conditional
    model that has others (its own job's, a rollout's) is left to them. A failure here costs
    the conditional model this version, never the first model's job."""
    from training.publishing import PublishFailed  # the module that builds the job

    ours: list[int] = state.setdefault("companion_versions", [])
    versions = list_versions(companion.base_path)
    if versions and versions[-1] not in ours:
        if not state.get("companion_left"):
            log(f"{companion.model} ya tiene versiones de otro origen: este trabajo no las "
                "sustituye.")  # fmt: skip
        state["companion_left"] = True
        return None
    try:
        quality = measure(net) if measure is not None else {"pending": PENDING}
        version = companion.publish(net, quality, training)
    except Exception as exc:  # any failure: the first model's job goes on
        reason = exc if isinstance(exc, PublishFailed) else f"{type(exc).__name__}: {exc}"
        log(f"No se pudo publicar {companion.model}: {reason}.")
        return None
    ours.append(version)
    return version
