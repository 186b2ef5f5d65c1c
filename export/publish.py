"""Atomic, numbered publishing into a TF Serving base path.

TF Serving loads any numeric folder it sees under the base path and does not check that it is
complete (contract: Models on disk), so a version is built in a hidden temporary folder on the
same filesystem, reloaded and called once, then renamed to its number in one step. A crash at any
moment leaves at most a hidden ``.tmp-publish-*`` folder, which a later publish removes.

Each temporary folder is owned by a lock (``.tmp-publish-<id>.lock``) that its publisher holds
until it is done: a cleaner removes only folders whose lock nobody holds, so no process deletes
another's live publish, in whatever PID namespace either runs. Numbers are allocated under an
exclusive lock and a high-water mark, so concurrent publishes never collide and a deleted
version's number is never given out again.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from export.signature import (
    generate,
    is_conditional,
    latent_dim_of,
    num_classes_of,
    save_serving_model,
)
from export.warmup import write_warmup
from fashion_core import atomic, locks
from fashion_core.cards import CARD_FILE, stamp
from fashion_core.contract import CATEGORY, IMAGE_SHAPE, INPUT, OUTPUT, SIGNATURE
from fashion_core.versions import next_version, record_version

TMP_PREFIX = ".tmp-publish-"
LOCK_FILE = ".publish.lock"
# test hook: called with the name of each step; the crash tests kill the process inside it
Step = Callable[[str], None]


class PublishError(Exception):
    """The new version failed its check or could not be written (message: one sentence)."""


@dataclass(frozen=True)
class Published:
    version: int
    path: Path


def _owner_lock(folder: Path) -> Path:
    return folder.with_name(folder.name + ".lock")


def clean_leftovers(base_path: Path) -> list[Path]:
    """Remove temporary folders (and lock files) of publishes that are not running any more.

    Each leftover is judged under its own lock, taken without waiting: a lock we get is one no
    publisher holds, and while we hold it no publisher can take it, so the folder and the lock
    file go together and no live publish loses either. (Probing the lock, releasing it and then
    deleting by path, as before, let a publisher take the lock in between.)"""
    removed = []
    seen: set[Path] = set()
    for p in sorted(base_path.glob(TMP_PREFIX + "*")):
        folder = p.with_name(p.name.removesuffix(".lock"))
        if folder in seen:
            continue
        seen.add(folder)
        fd = locks.try_acquire(_owner_lock(folder))
        if fd is None:
            continue  # another publish is writing it right now
        try:
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
            _owner_lock(folder).unlink(missing_ok=True)  # still held: nobody else has it
        finally:
            os.close(fd)
    return removed


@contextmanager
def owned_folder(base_path: Path) -> Iterator[Path]:
    """A fresh hidden folder name under ``base_path`` whose owner lock this process holds for
    the ``with`` body (the folder itself is the caller's to create). The lock is taken before
    the folder exists and dropped after it is gone (renamed or removed), and the lock file is
    unlinked while still held, so a cleaner never sees the folder without a held lock."""
    tmp = base_path / f"{TMP_PREFIX}{uuid.uuid4().hex[:12]}"
    owner = locks.acquire(_owner_lock(tmp))  # waits out a cleaner that is probing it
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename
        _owner_lock(tmp).unlink(missing_ok=True)
        os.close(owner)


def verify(path: Path, generator: keras.Model) -> None:
    """Reload the SavedModel from disk and call it once: shape, range, and the same numbers the
    in-memory generator gives for the same z (and categories, for a conditional one)."""
    latent = latent_dim_of(generator)
    z = np.random.default_rng(7).standard_normal((3, latent)).astype(np.float32)
    inputs = {INPUT: tf.constant(z)}
    categories = None
    if is_conditional(generator):
        categories = np.array([0, 4, num_classes_of(generator) - 1], np.int64)
        inputs[CATEGORY] = tf.constant(categories)
    try:
        loaded = tf.saved_model.load(str(path))
        out = loaded.signatures[SIGNATURE](**inputs)[OUTPUT].numpy()
    except Exception as exc:  # any load or call failure means the folder must not be published
        raise PublishError(f"the exported SavedModel does not load or run: {exc}") from exc
    want = generate(generator, z, categories)
    if out.shape != (3, *IMAGE_SHAPE) or not np.all(np.isfinite(out)):
        raise PublishError(f"the exported model returned shape {out.shape} or non-finite values.")
    if out.min() < -1.0 or out.max() > 1.0:
        raise PublishError("the exported model returned values outside [-1, 1].")
    if not np.allclose(out, want, atol=1e-4):
        raise PublishError("the exported model disagrees with the generator it was made from.")


def publish(
    generator: keras.Model,
    base_path: Path,
    card: dict[str, Any],
    model_name: str = "fashion_gan",
    on_step: Step | None = None,
) -> Published:
    """Write, verify and atomically publish ``generator`` as the next version under base_path."""
    step = on_step or (lambda _name: None)
    base_path.mkdir(parents=True, exist_ok=True)
    base_path = base_path.resolve()
    clean_leftovers(base_path)
    with owned_folder(base_path) as tmp:
        step("save")
        save_serving_model(generator, tmp)
        extra = tmp / "assets.extra"
        extra.mkdir()
        step("warmup")
        write_warmup(extra, model_name, latent_dim_of(generator), num_classes_of(generator))
        step("verify")
        verify(tmp, generator)
        with locks.exclusive(base_path / LOCK_FILE):
            version = next_version(base_path)
            step("card")
            (extra / CARD_FILE).write_text(json.dumps(stamp(card, version), indent=2))
            step("fsync")
            atomic.fsync_tree(tmp)
            step("rename")
            final = base_path / str(version)
            os.rename(tmp, final)  # atomic on one filesystem; fails rather than merge
            atomic.fsync_dir(base_path)
            record_version(base_path, version)
        step("done")
    return Published(version, final)
