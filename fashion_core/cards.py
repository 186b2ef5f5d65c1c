"""assets.extra/model_card.json: the version describes itself, so the gateway, ops tools and
people read latent size, shapes, training config, data and quality from the artifact instead of
re-declaring them (style: "the artifact carries its own config")."""

from __future__ import annotations

import json
import platform
import statistics
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from fashion_core.contract import (
    CATEGORIES_EN,
    CATEGORIES_ES,
    CATEGORY,
    IMAGE_SHAPE,
    INPUT,
    OUTPUT,
    SIGNATURE,
)

CARD_FILE = "model_card.json"
PACKAGES = ("tensorflow", "keras", "jax", "numpy", "tensorflow-serving-api")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_card(
    latent_dim: int,
    training: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    quality: dict[str, Any] | None = None,
    *,
    conditional: bool = False,
) -> dict[str, Any]:
    """Everything but ``version`` and ``created``, which the publisher fills in at rename time.

    A ``conditional`` version's card also says ``"conditional": true``, its ``category`` input
    and the ten ``categories`` (index, English and Spanish name); the unconditional card has
    none of these keys."""
    inputs: dict[str, Any] = {INPUT: {"dtype": "float32", "shape": [-1, latent_dim]}}
    if conditional:
        inputs[CATEGORY] = {"dtype": "int64", "shape": [-1], "range": [0, len(CATEGORIES_EN) - 1]}
    card = {
        "model": "fashion-mnist dcgan generator",
        "latent_dim": latent_dim,
        "signature": {
            "name": SIGNATURE,
            "inputs": inputs,
            "outputs": {
                OUTPUT: {"dtype": "float32", "shape": [-1, *IMAGE_SHAPE], "range": [-1, 1]}
            },
        },
        "training": training or {},
        "data": data or {},
        "quality": quality or {},
        "packages": package_versions(),
    }
    if conditional:
        card["model"] = "fashion-mnist class-conditional dcgan generator"
        card["conditional"] = True
        card["categories"] = categories()
    return card


def categories() -> list[dict[str, Any]]:
    """The ten categories a conditional version takes: index, English and Spanish name."""
    return [
        {"index": k, "en": en, "es": es}
        for k, (en, es) in enumerate(zip(CATEGORIES_EN, CATEGORIES_ES, strict=True))
    ]


def training_section(state: dict[str, Any], run_dir: Path | None = None) -> dict[str, Any]:
    """The card's "training" section from a run's state.json: recipe, speed and what trained it,
    the same whether ``python -m training`` publishes or ``python -m export`` does later."""
    rates = list(state.get("images_per_s", []))
    steady = rates[1:] or rates  # the first epoch includes compiling the step
    config = state.get("config", {})
    return {
        "profile": config.get("profile"),
        "config": config,
        "epochs": state.get("completed_epochs"),
        "seconds_per_epoch": state.get("seconds_per_epoch", []),
        "images_per_s": round(statistics.median(steady), 1) if steady else None,
        "final_losses": state.get("losses", {}),
        "resumed_from_epoch": state.get("resumed_from_epoch", 0),
        "backend": state.get("backend"),
        "devices": state.get("devices", []),
        # the run folder's name only: a card travels, the machine's paths stay behind
        "run_dir": run_dir.name if run_dir else None,
    }


def stamp(card: dict[str, Any], version: int) -> dict[str, Any]:
    return {
        **card,
        "version": version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def read_card(version_dir: Path) -> dict[str, Any]:
    """The card of a published version; {} when it has none (an older or foreign version)."""
    path = version_dir / "assets.extra" / CARD_FILE
    try:
        card: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return card
