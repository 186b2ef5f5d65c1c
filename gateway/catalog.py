"""What the gallery's version picker and quality panel show: every version the model server
reports, the labels that name them, and each version's quality figures from its model card.

Cards are read from MODEL_BASE_PATH (every gateway mounts it, read-only, to tell a fresh
deployment from a loading one) once per version: a published version never changes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fashion_core.cards import read_card
from fashion_core.models_config import LabelFile
from fashion_core.versions import version_dir
from gateway.backends.base import ModelStatus
from gateway.settings import Settings

# the card's figures a person compares versions by (the card keeps many more)
QUALITY_KEYS = (
    "fid",
    "fid_real_floor",
    "precision",
    "precision_real_floor",
    "recall",
    "recall_real_floor",
    "class_kl_to_uniform",
    "class_kl_real_floor",
    "nn_distance_mean",
    "nn_distance_real_floor_mean",
    "samples",
    # a class-conditional version: the share of designs the classifier sees as the category
    # asked for, beside the classifier's accuracy on real images
    "agreement",
    "classifier_accuracy",
)
# a class-conditional version's figures per category (lists of ten numbers, in index order)
PER_CLASS_KEYS = (
    "fid_per_class",
    "fid_real_floor_per_class",
    "agreement_per_class",
    "classifier_accuracy_per_class",
    "samples_per_class",
)


def _section(doc: Any, key: str) -> dict[str, Any]:
    """doc[key] when both are JSON objects, else {} (a foreign or damaged card is shown as
    having no figures, never as an error)."""
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, dict) else {}


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in value
    )


def _per_class(card: dict[str, Any], quality: dict[str, Any]) -> dict[str, Any]:
    """A class-conditional card's categories and per-category figures (nothing otherwise)."""
    if card.get("conditional") is not True:
        return {}
    listed = card.get("categories")
    categories = [
        {"index": c.get("index"), "en": c.get("en"), "es": c.get("es")}
        for c in (listed if isinstance(listed, list) else [])
        if isinstance(c, dict)
    ]
    figures = {k: quality[k] for k in PER_CLASS_KEYS if _numbers(quality.get(k))}
    return {"conditional": True, "categories": categories, "per_class": figures}


def _summary(card: Any) -> dict[str, Any]:
    quality, training = _section(card, "quality"), _section(card, "training")
    card = card if isinstance(card, dict) else {}
    return {
        **_per_class(card, quality),
        "created": card.get("created"),
        "profile": training.get("profile"),
        "epochs": training.get("epochs"),
        "quality": {
            **{k: quality[k] for k in QUALITY_KEYS if isinstance(quality.get(k), int | float)},
            # which evaluator measured them: FIDs of different evaluators are not comparable,
            # and a card without a name is the previous evaluator's (a history figure)
            **(
                {"evaluator": quality["evaluator"]}
                if isinstance(quality.get("evaluator"), str)
                else {}
            ),
        },
    }


class Catalog:
    def __init__(
        self, settings: Settings, base: Path | None = None, model_name: str | None = None
    ) -> None:
        """The first model's versions, or another model's (``base``, ``model_name``)."""
        self.base: Path = base or settings.model_base_path
        self.model_name = model_name or settings.model_name
        self.labels = LabelFile(settings.model_config_file, self.model_name)
        self._cards: dict[int, dict[str, Any]] = {}

    def _card(self, version: int) -> dict[str, Any]:
        if version not in self._cards:
            try:
                card = read_card(version_dir(self.base, version))
            except OSError:  # not mounted here, or deleted since
                return _summary({})
            self._cards[version] = _summary(card)
        return self._cards[version]

    async def listing(self, status: ModelStatus) -> dict[str, Any]:
        """The labels file and the cards are read off the event loop, in one thread hop."""
        return await asyncio.to_thread(self._listing, status)

    def _listing(self, status: ModelStatus) -> dict[str, Any]:
        labels = self.labels.labels()
        named: dict[int, list[str]] = {}
        for label, version in sorted(labels.items()):
            named.setdefault(version, []).append(label)
        rows = [
            {
                "version": v.version,
                "state": v.state,
                "labels": named.get(v.version, []),
                **self._card(v.version),
            }
            for v in status.versions
        ]
        newest = max(status.available, default=None)
        return {"model": self.model_name, "versions": rows, "labels": labels, "newest": newest}
