"""Atomic, numbered publishing into a TF Serving base path.

TF Serving loads any numeric folder it sees under the base path and does not check that it is
complete (contract: Models on disk), so a version is built in a hidden temporary folder on the
same filesystem, reloaded and called once, then renamed to its number in one step. A crash at any
moment leaves at most a hidden ``.tmp-publish-*`` folder, which the next publish removes.
Numbers are allocated under an exclusive file lock, so concurrent publishes never collide.
"""

from __future__ import annotations

import fcntl
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

from export.card import CARD_FILE, stamp
from export.signature import INPUT, OUTPUT, SIGNATURE, latent_dim_of, save_serving_model
from export.versions import list_versions
from export.warmup import write_warmup
from training.process import pid_alive

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


@contextmanager
def _locked(base_path: Path) -> Iterator[None]:
    with open(base_path / LOCK_FILE, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def clean_leftovers(base_path: Path) -> list[Path]:
    """Remove temporary folders of publishes whose process is gone (crashed or killed)."""
    removed = []
    for p in base_path.glob(TMP_PREFIX + "*"):
        pid_text = p.name[len(TMP_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and pid_alive(int(pid_text)) and int(pid_text) != os.getpid():
            continue  # another publish is writing it right now
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder, so the rename never publishes data still in the page cache."""
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify(path: Path, generator: keras.Model) -> None:
    """Reload the SavedModel from disk and call it once: shape, range, and the same numbers the
    in-memory generator gives for the same z."""
    latent = latent_dim_of(generator)
    z = np.random.default_rng(7).standard_normal((3, latent)).astype(np.float32)
    try:
        loaded = tf.saved_model.load(str(path))
        out = loaded.signatures[SIGNATURE](**{INPUT: tf.constant(z)})[OUTPUT].numpy()
    except Exception as exc:  # any load or call failure means the folder must not be published
        raise PublishError(f"the exported SavedModel does not load or run: {exc}") from exc
    want = np.asarray(generator(z, training=False))
    if out.shape != (3, 28, 28, 1) or not np.all(np.isfinite(out)):
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
    tmp = base_path / f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        step("save")
        save_serving_model(generator, tmp)
        extra = tmp / "assets.extra"
        extra.mkdir()
        step("warmup")
        write_warmup(extra, model_name, latent_dim_of(generator))
        step("verify")
        verify(tmp, generator)
        with _locked(base_path):
            version = max(list_versions(base_path), default=0) + 1
            step("card")
            (extra / CARD_FILE).write_text(json.dumps(stamp(card, version), indent=2))
            step("fsync")
            _fsync_tree(tmp)
            step("rename")
            final = base_path / str(version)
            os.rename(tmp, final)  # atomic on one filesystem; fails rather than merge
            _fsync_dir(base_path)
        step("done")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Published(version, final)
