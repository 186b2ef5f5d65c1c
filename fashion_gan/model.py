"""The seed's API: ``cargar_o_entrenar()`` and ``generar_muestra_ropa()``.

``cargar_o_entrenar()`` returns the newest version published under MODEL_BASE_PATH (the
gateway's variable and default), or the ``version`` or ``label`` asked for (labels from
MODEL_CONFIG_FILE, as the embedded gateway reads them). Each version is loaded once per process
and shared by every thread. When no version exists it starts a training job the way the
gateway's train-on-miss does (the same job runner, fashion_gan/jobs.py: GATEWAY_JOBS_DIR's, or
the trainer service at GATEWAY_TRAINER_URL; so a gateway and a script never train twice at
once, and a failed job is retried only after the same back-off), waits for it and loads what
it published. Only those variables are read (fashion_gan/settings.py), and nothing here runs
an event loop, so both functions work inside one (a notebook, an async app).

``generar_muestra_ropa()`` draws a sheet into a ``BytesIO``: the same PNG bytes the gateway
answers for the same version and seed (same noise, same padding of short batches, same
tiling and encoder). Its limits are the request limits' defaults (fashion_core/limits.py).
Nothing is written to disk and no display is needed. ``categoria`` ("vestido", "dress", 3, or
"all" for one row per category) draws from the class-conditional model instead, published
under COND_MODEL_BASE_PATH (models/fashion_gan_cond beside the first), trained on a miss by
its own job as the gateway's category requests do; without it nothing changes.
"""

from __future__ import annotations

import io
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fashion_core.cards import read_card
from fashion_core.categories import ALL, COUNT, parse
from fashion_core.contract import CATEGORY
from fashion_core.latents import sheet_latents
from fashion_core.limits import Limit, table
from fashion_core.models_config import LabelFile
from fashion_core.render import sheet_png
from fashion_core.versions import BasePathError, scan_versions, version_dir
from fashion_gan.jobs import (
    JobRunner,
    LocalJobs,
    TrainerError,
    cond_train_args,
    first_train_args,
    job_runner,
    publishes_too,
)
from fashion_gan.settings import ApiSettings
from fashion_gan.tfserving.chunking import check_categories, padded, padded_categories
from fashion_gan.tfserving.config import DEFAULT_MAX_BATCH

__all__ = ["Generador", "ModelError", "Muestra", "cargar_o_entrenar", "generar_muestra_ropa"]
POLL_S = 1.0


class ModelError(Exception):
    """No such version or label, or the training job that should have made one failed."""


@dataclass(frozen=True)
class Generador:
    """One loaded version: ``generate(z)`` -> images (n, 28, 28, 1) in [-1, 1]."""

    version: int
    latent_dim: int
    card: dict[str, Any]
    max_batch: int
    _fn: Any = field(repr=False)
    _root: Any = field(repr=False, default=None)  # the SavedModel whose variables _fn reads

    @property
    def conditional(self) -> bool:
        """Whether this version takes a category per row (the class-conditional model)."""
        return CATEGORY in self._fn.structured_input_signature[1]

    def generate(self, z: np.ndarray, category: np.ndarray | None = None) -> np.ndarray:
        """Rows in calls of MIN_ROWS to ``max_batch``, short calls padded as the gateway pads
        them, so every row gets the bits it gets through the gateway. A conditional version
        takes ``category``: one index 0-9 per row."""
        from fashion_gan.savedmodel import call_signature

        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim or len(z) == 0:
            raise ValueError(f"z must have shape (n, {self.latent_dim}) with n >= 1.")
        if (category is None) == self.conditional:
            raise ValueError(
                "this version takes a category per row."
                if self.conditional
                else "this version takes no category: use the class-conditional model."
            )
        categories = None if category is None else np.asarray(category, dtype=np.int64)
        check_categories(z, categories)
        parts = []
        for start in range(0, len(z), self.max_batch):
            chunk = z[start : start + self.max_batch]
            rows = None if categories is None else categories[start : start + len(chunk)]
            padded_rows = None if rows is None else padded_categories(rows)
            parts.append(call_signature(self._fn, padded(chunk), padded_rows)[: len(chunk)])
        return np.concatenate(parts)


class Muestra(io.BytesIO):
    """The PNG sheet (a BytesIO, as the seed returned), with the seed and version that drew it."""

    def __init__(self, png: bytes, seed: int, version: int) -> None:
        super().__init__(png)
        self.seed, self.version = seed, version


_loaded: dict[tuple[str, int], Generador] = {}
_lock = threading.Lock()  # one load per version, whatever the number of threads asking


def _published(base: Path) -> list[int]:
    """The versions under ``base``; a folder that cannot be read is an error, never "none"
    (that would train a new version in its place)."""
    try:
        return scan_versions(base)
    except BasePathError as exc:
        raise ModelError(f"{exc}.") from None


def _settings() -> ApiSettings:
    return ApiSettings.from_env(os.environ)


def _load(base: Path, version: int, max_batch: int = DEFAULT_MAX_BATCH) -> Generador:
    key = (str(base.resolve()), version)
    with _lock:
        if key not in _loaded:
            from fashion_gan.savedmodel import load_signature, signature_latent_dim

            path = version_dir(base, version)
            root, fn = load_signature(str(path))
            _loaded[key] = Generador(
                version, signature_latent_dim(fn), read_card(path), max_batch, fn, root
            )
        return _loaded[key]


def _runner(s: ApiSettings, base: Path, conditional: bool) -> JobRunner:
    """The job runner a gateway's miss of that model uses: the first model's (local, or the
    trainer service's), or the conditional model's own local runner (its own jobs folder,
    so its single flight and back-off are its own, as gateway/trainer.py has it)."""
    if not conditional:
        # the second model beside the configured first one only: a job for another base path
        # publishes that one alone
        cond = s.cond_base_path if base == s.model_base_path else None
        args = first_train_args(cond, s.cond_model_name)
        return job_runner(
            s.jobs_dir, base, s.model_config_file, s.trainer_url, s.admin_token, train_args=args
        )
    first = _runner(s, s.model_base_path, False)
    if base == s.cond_base_path and publishes_too(first.state(), s.cond_model_name):
        return first  # the first model's quick job publishes this one too: wait for it
    if s.trainer_url:
        raise ModelError(
            f"no version of the class-conditional model in {base}, and the trainer service "
            "runs the first model's job only: start its quick profile (which publishes this "
            "model too) or publish one with python -m training --set conditional=true."
        )
    return LocalJobs(
        s.jobs_dir / s.cond_model_name,
        base,
        s.model_config_file,
        cond_train_args(s.cond_model_name),
    )


def _train(
    s: ApiSettings, base: Path, profile: str, log: Callable[[str], None], conditional: bool
) -> None:
    """Start (or join) a training job exactly as a gateway's miss does (the local job runner or
    GATEWAY_TRAINER_URL's, the same back-off after a failure) and wait for its first version
    (a progressive job goes on publishing better ones; the next call loads the newest),
    relaying its log lines."""
    runner = _runner(s, base, conditional)
    job, started = runner.start(profile, automatic=True)
    log(
        f"No hay versión en {base}: "
        + (
            f"entrenando el perfil {profile}."
            if started
            else "esperando al entrenamiento en curso."
        )
    )
    seen: list[str] = []
    while job.get("state") == "running" and not _published(base):
        time.sleep(POLL_S)
        job = runner.state()
        for line in job.get("log_tail") or []:
            if line not in seen:
                log(line)
                seen.append(line)
    # a progressive job is still running when its first version lands: a version is success
    if not _published(base):
        retry = f"; the next try waits until {job['retry_at']}" if job.get("retry_at") else ""
        raise ModelError(
            f"the training job failed: {job.get('error') or 'it published no version'}{retry}."
        )


def cargar_o_entrenar(
    version: int | None = None,
    label: str | None = None,
    *,
    profile: str | None = None,
    base_path: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    condicional: bool = False,
) -> Generador:
    """The generator: ``version``, ``label``, or the newest; trains one first if none exists
    (profile: ``profile``, else GATEWAY_TRAIN_PROFILE, default quick). ``condicional``: the
    class-conditional model's (COND_MODEL_BASE_PATH, its labels, its own job)."""
    return _cargar(_settings(), version, label, profile, base_path, log, condicional)


def _cargar(
    s: ApiSettings,
    version: int | None,
    label: str | None,
    profile: str | None = None,
    base_path: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    conditional: bool = False,
) -> Generador:
    default = s.cond_base_path if conditional else s.model_base_path
    base = Path(base_path) if base_path is not None else default
    name = s.cond_model_name if conditional else s.model_name
    say = log or (lambda line: print(line, file=sys.stderr))
    if version is not None and label is not None:
        raise ValueError("give either version or label, not both.")
    published = _published(base)
    if label is not None:
        labels = LabelFile(s.model_config_file, name).labels()
        if label not in labels:
            known = ", ".join(sorted(labels)) or "none (set MODEL_CONFIG_FILE)"
            raise ModelError(f"label {label!r} is not defined; defined labels: {known}.")
        version = labels[label]
    if version is not None:
        if version not in published:
            known = ", ".join(map(str, published)) or "none"
            raise ModelError(f"version {version} does not exist; published versions: {known}.")
        return _load(base, version)
    if not published:
        try:
            _train(s, base, profile or s.train_profile, say, conditional)
        except TrainerError as exc:  # the trainer service is unreachable or refused
            raise ModelError(str(exc)) from None
        published = _published(base)
    return _load(base, published[-1])


LIMITS = table()  # the gateway's defaults (GATEWAY_MAX_* are the gateway's own knobs)


def _check(limit: Limit, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(limit.sentence())
    if not limit.allows(int(value)):
        raise ValueError(limit.sentence())
    return int(value)


def generar_muestra_ropa(
    seed: int | None = None,
    rows: int = 3,
    cols: int = 3,
    scale: int = 1,
    *,
    spacing: int = 0,
    version: int | None = None,
    label: str | None = None,
    categoria: int | str | None = None,
) -> Muestra:
    """A rows x cols PNG design sheet in a BytesIO; a random seed unless one is given (the
    sheet's ``.seed`` says which). Same version and seed: the gateway's bytes.

    ``categoria`` asks the class-conditional model for one category: an index 0-9, the
    English or the Spanish name ("vestido", "Botin"), or ``"all"``: one row per category
    (rows is then 10), each column one idea drawn in every category. A seed gives the same
    ideas in every category. Versions and labels are then that model's."""
    category = None if categoria is None else parse(categoria, "categoria")
    if category == ALL:
        rows = COUNT
    rows, cols = _check(LIMITS["rows"], rows), _check(LIMITS["cols"], cols)
    scale, spacing = _check(LIMITS["scale"], scale), _check(LIMITS["spacing"], spacing)
    seed = secrets.randbits(63) if seed is None else _check(LIMITS["seed"], seed)
    if version is not None:
        version = _check(LIMITS["version"], version)
    # the settings read once per sheet
    gen = _cargar(_settings(), version, label, conditional=category is not None)
    z, per_row = sheet_latents(seed, rows, cols, gen.latent_dim, category)
    images = gen.generate(z, per_row)
    return Muestra(sheet_png(images, rows, cols, spacing, scale), seed, gen.version)
