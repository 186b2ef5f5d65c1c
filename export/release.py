"""Measure a generator's quality figures, then publish it with its model card.

Shared by ``python -m training`` (right after a run) and ``python -m export`` (an existing
``.keras`` generator), so both write the same card.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from export.publish import Published, publish
from export.signature import generate, is_conditional, latent_dim_of
from fashion_core import atomic
from fashion_core.cards import build_card
from fashion_core.dataset import FashionMNIST

Log = Callable[[str], None]


def measure(
    generator: keras.Model, data: FashionMNIST, classifier_path: Path, samples: int, log: Log
) -> dict[str, Any]:
    from evaluation.classifier import load_or_train_classifier
    from evaluation.figures import Evaluator

    if samples <= 0:
        return {"skipped": "eval_samples is 0"}
    classifier = load_or_train_classifier(classifier_path, data, log=log)
    evaluator = Evaluator(data, classifier)
    latent_dim = latent_dim_of(generator)
    if is_conditional(generator):  # per category too: FID per class, agreement
        figures = evaluator.figures_by_category(
            lambda z, categories: generate(generator, z, categories), samples, 0, latent_dim
        )
    else:
        figures = evaluator.figures(
            lambda z: generate(generator, z), samples=samples, latent_dim=latent_dim
        )
    return {**figures, "classifier": classifier_path.name}


def release(
    generator: keras.Model,
    base_path: Path,
    data: FashionMNIST | None,
    classifier_path: Path,
    eval_samples: int,
    training: dict[str, Any],
    model_name: str,
    log: Log = print,
    on_phase: Callable[[str], None] = lambda _phase: None,
    quality: dict[str, Any] | None = None,
) -> Published:
    """Measure (when ``data`` is given and ``quality`` is not already measured) and publish;
    ``on_phase`` hears "evaluating" and "publishing" (the training job's progress)."""
    data_info: dict[str, Any] = {}
    if data is not None:
        data_info = {"name": "fashion-mnist", "source": data.source, "sha256": data.sha256}
    if quality is None and data is None:
        quality = {"skipped": "no data given"}
    if quality is None and data is not None:
        on_phase("evaluating")
        quality = measure(generator, data, classifier_path, eval_samples, log)
        if "fid" in quality:
            log(
                f"Calidad: FID {quality['fid']:.2f} (suelo real {quality['fid_real_floor']:.2f}),"
                f" KL clases {quality['class_kl_to_uniform']:.3f},"
                f" distancia al vecino {quality['nn_distance_mean']:.2f}"
            )
        if "agreement" in quality:
            log(
                f"Por categoría: acuerdo {quality['agreement']:.3f} (el clasificador acierta"
                f" {quality['classifier_accuracy']:.3f} con imágenes reales), FID por clase"
                f" {quality['fid_per_class']}"
            )
    on_phase("publishing")
    card = build_card(
        latent_dim_of(generator),
        training=training,
        data=data_info,
        quality=quality,
        conditional=is_conditional(generator),
    )
    published = publish(generator, base_path, card, model_name=model_name)
    log(f"Publicada la versión {published.version} en {published.path}")
    return published


def record_in_run(run_dir: Path, version: int) -> None:
    """Record in the training run's state.json that its generator is published as ``version``:
    the next training command with that folder starts a new run instead of publishing again."""
    state = atomic.read_json(run_dir / "state.json", default={})
    # a progressive job publishes along the way: its run ends with its budget, not here
    progressive = (state.get("config") or {}).get("time_budget_s", 0) > 0
    state = {**state, "published_version": version, "finished": not progressive}
    atomic.write_json(run_dir / "state.json", state)
