"""models.config as the rollout changes it: under a lock, one accepted change at a time, each
confirmed on every replica or written back exactly as it was. Only this model's entry changes;
the other models' entries are copied as they are. A model the file does not list yet takes its
entry from the template, with nothing kept or labelled until its first change."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from export.rollout import RolloutError
from export.rollout.replicas import Replicas
from fashion_core import atomic, locks
from fashion_core.models_config import (
    ConfigFileError,
    ModelEntry,
    ModelServerConfig,
    entry_of,
    lock_path,
    parse,
    read,
    with_entry,
    write,
)


class ConfigStore:
    def __init__(
        self,
        path: Path,
        model: str,
        replicas: Replicas,
        log: Callable[[str], None] = print,
        template: Path | None = None,
    ) -> None:
        self.path, self.model, self.replicas, self.log = path, model, replicas, log
        self.template = template
        self.lock_path = lock_path(path)

    @contextmanager
    def locked(self, wait_s: float) -> Iterator[None]:
        """Hold the rollout lock (one rollout at a time), waiting at most ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while (fd := locks.try_acquire(self.lock_path)) is None:
            if time.monotonic() > deadline:
                raise RolloutError(
                    f"another rollout holds {self.lock_path}; run this one when it is done."
                )
            time.sleep(0.2)
        try:
            yield
        finally:
            os.close(fd)

    def entry(self) -> ModelEntry:
        try:
            return self._read()[1]
        except ConfigFileError as exc:
            raise RolloutError(str(exc)) from None

    def _read(self) -> tuple[ModelServerConfig, ModelEntry]:
        """The live config and this model's entry: from the file, else (a model not served
        yet) the template's base path with no versions and no labels."""
        try:
            text = self.path.read_text()
        except OSError as exc:
            raise ConfigFileError(f"cannot read {self.path}: {exc.strerror}.") from None
        config = parse(text, str(self.path))
        try:
            return config, entry_of(config, self.model)
        except ConfigFileError:
            if self.template is None or not self.template.is_file():
                raise ConfigFileError(f"{self.path} has no model named {self.model!r}.") from None
        starting = read(self.template, self.model)[1]
        return config, ModelEntry(starting.name, starting.base_path)

    def change(self, new: ModelEntry, describe: str) -> None:
        """Write ``new`` if TF Serving would accept it, then wait until every replica applied
        it; on failure write the old file back, byte for byte, and raise RolloutError."""
        try:
            old_text = self.path.read_text()
            config, old = self._read()
        except (OSError, ConfigFileError) as exc:
            raise RolloutError(f"cannot read {self.path}: {exc}") from None
        r = self.replicas
        moved = {k: v for k, v in new.labels.items() if old.labels.get(k) != v}
        for label, version in moved.items():
            if version not in new.versions:
                raise RolloutError(
                    f"label {label} would name version {version} outside the policy."
                )
            if not r.all_available(version):
                raise RolloutError(
                    f"label {label} cannot move to version {version}, which is not AVAILABLE on "
                    f"every replica ({r.describe(version)}): TF Serving would refuse the config."
                )
        added = sorted(set(new.versions) - set(old.versions))
        removed = sorted(set(old.versions) - set(new.versions))
        if not (moved or added or removed):
            return
        write(self.path, with_entry(config, new))

        def done() -> bool:
            return (
                all(r.all_available(v) for v in added)
                and all(r.all_serve_label(k, v) for k, v in moved.items())
                and all(r.all_unloaded(v) for v in removed)
            )

        def failed() -> str | None:
            for v in added:
                if error := r.failed(v):
                    return f"version {v} failed to load: {error}"
            return None

        reason = r.wait(describe, done, failed)
        if reason:
            atomic.write_text(self.path, old_text)
            raise RolloutError(f"{describe}: {reason}; models.config is as it was.")
        self.log(describe)
