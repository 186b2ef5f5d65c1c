"""The rollout actions: point a label (canary, stable), promote, rollback, retire, list."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from export.prune import remove_version
from export.rollout import RolloutError, gate
from export.rollout.history import History
from export.rollout.replicas import Replicas
from export.rollout.store import ConfigStore
from fashion_core.cards import read_card
from fashion_core.models_config import ModelEntry
from fashion_core.versions import list_versions, version_dir

STABLE, CANARY = "stable", "canary"


class Rollout:
    def __init__(
        self,
        store: ConfigStore,
        base_path: Path,
        log: Callable[[str], None] = print,
    ) -> None:
        self.store, self.base_path, self.log = store, base_path, log
        self.replicas: Replicas = store.replicas
        self.history = History(store.path, store.model)

    def point(self, label: str, version: int, force: bool, compare: bool = True) -> int | None:
        """Load ``version`` on every replica, then move ``label`` to it; returns the version
        the label had before."""
        if version not in list_versions(self.base_path):
            raise RolloutError(f"version {version} is not published under {self.base_path}.")
        entry = self.store.entry()
        if compare and not force:
            gate.check(self.base_path, version, entry.labels.get(STABLE), self.log)
        if version not in entry.versions:
            entry = replace(entry, versions=sorted({*entry.versions, version}))
            self.store.change(entry, f"policy now keeps versions {entry.versions}")
        previous = entry.labels.get(label)
        entry = replace(entry, labels={**entry.labels, label: version})
        self.store.change(entry, f"{label} -> {version} (was {previous})")
        if label == STABLE and previous != version:
            self.history.record(previous, version)
        self._drop_unneeded(entry)
        return previous

    def _drop_unneeded(self, entry: ModelEntry) -> None:
        """The policy keeps labelled versions and the previous stable (instant rollback)."""
        keep = set(entry.labels.values())
        earlier = self.history.earlier(entry.labels.get(STABLE))
        if earlier is not None and earlier in list_versions(self.base_path):
            keep.add(earlier)
        if set(entry.versions) != keep:
            entry = replace(entry, versions=sorted(keep))
            self.store.change(entry, f"policy now keeps versions {entry.versions}")

    def promote(self, force: bool) -> None:
        entry = self.store.entry()
        if CANARY not in entry.labels:
            raise RolloutError("there is no canary to promote; run `canary N` first.")
        self.point(STABLE, entry.labels[CANARY], force)

    def rollback(self) -> None:
        current = self.store.entry().labels.get(STABLE)
        target = self.history.earlier(current)
        if current is None or target is None:
            raise RolloutError("there is no earlier stable version to roll back to.")
        # no quality comparison: the previous stable was good enough once
        self.point(STABLE, target, force=True, compare=False)
        self.history.rolled_back(current, target)
        self.log(f"rolled back: stable {current} -> {target}")

    def retire(self, keep: int, dry_run: bool) -> list[int]:
        """Delete versions that are neither labelled, kept loaded, nor among the newest
        ``keep``, once no replica has them loaded; each is renamed away first, so TF Serving
        sees it vanish in one step."""
        entry = self.store.entry()
        protected = set(entry.labels.values()) | set(entry.versions)
        published = list_versions(self.base_path)
        newest = set(published[-keep:]) if keep > 0 else set()
        doomed = [v for v in published if v not in protected and v not in newest]
        for v in doomed:
            if not self.replicas.all_unloaded(v):
                raise RolloutError(
                    f"version {v} is still loaded ({self.replicas.describe(v)}); not deleted."
                )
            self.log(f"{'would retire' if dry_run else 'retiring'} version {v}")
            if not dry_run:
                remove_version(self.base_path, v)
        return doomed

    def table(self) -> str:
        entry = self.store.entry()
        header = ("version", "labels", "kept", "TF Serving", "created", "profile", "epochs")
        rows = [(*header, "FID", "class KL", "NN dist")]
        for v in reversed(list_versions(self.base_path)):
            card = read_card(version_dir(self.base_path, v))
            q, t = card.get("quality", {}), card.get("training", {})
            labels = ",".join(k for k, lv in sorted(entry.labels.items()) if lv == v) or "-"
            states = [s.state if s else "-" for s in self.replicas.states(v)]
            served = states[0] if len(set(states)) == 1 else "/".join(states)
            rows.append(
                (
                    str(v),
                    labels,
                    "yes" if v in entry.versions else "no",
                    served,
                    str(card.get("created", "-")),
                    str(t.get("profile", "-")),
                    str(t.get("epochs", "-")),
                    _fmt(q.get("fid")),
                    _fmt(q.get("class_kl_to_uniform")),
                    _fmt(q.get("nn_distance_mean")),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        )


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, int | float) else "-"
