"""Version rollouts for ops: list, canary, promote, rollback, retire.

    python -m export.rollout list
    python -m export.rollout canary 3        # load version 3, then point label canary at it
    python -m export.rollout promote         # stable -> the canary's version
    python -m export.rollout rollback        # stable -> the previous stable version
    python -m export.rollout retire --keep 3 # delete unlabelled versions beyond the newest 3

Each action rewrites ``models.config`` atomically and asks TF Serving to reload it
(``ModelService.HandleReloadConfigRequest`` with --grpc-target, else its config poll picks it up),
in two steps: first the policy gains the version and the command waits until TF Serving reports
it AVAILABLE; only then does the label move. A label never points at a version that is not
AVAILABLE, or whose FID is worse than stable's, unless --force.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from fashion_core import atomic
from fashion_core.cards import read_card
from fashion_core.models_config import ConfigFileError, ModelEntry, read, with_entry, write
from fashion_core.versions import list_versions, version_dir

STABLE, CANARY = "stable", "canary"


class RolloutError(Exception):
    """The action is refused or failed; nothing half-done is left (message: one sentence)."""


@dataclass
class Rollout:
    config_path: Path
    model_name: str
    base_path: Path  # where this machine sees the versions (may differ from the config's path)
    rest_url: str
    grpc_target: str | None
    timeout_s: float
    log: Callable[[str], None] = print

    @property
    def history_path(self) -> Path:
        return self.config_path.with_name(f"{self.config_path.stem}.history.json")

    # --- TF Serving ----------------------------------------------------------------------------
    def state_of(self, version: int) -> tuple[str, str]:
        """(state, error message) of one version, from TF Serving's REST status body."""
        url = f"{self.rest_url}/v1/models/{self.model_name}/versions/{version}"
        try:
            resp = requests.get(url, timeout=5)
        except requests.RequestException:
            return "UNREACHABLE", f"TF Serving at {self.rest_url} is unreachable"
        if resp.status_code == 404:
            return "NOT_LOADED", ""
        try:
            status = resp.json()["model_version_status"][0]
            return str(status["state"]), str(status.get("status", {}).get("error_message", ""))
        except (ValueError, KeyError, IndexError):
            return "UNKNOWN", resp.text[:200]

    def label_version(self, label: str) -> int | None:
        """Which version TF Serving serves for ``label`` (its metadata's model_spec)."""
        url = f"{self.rest_url}/v1/models/{self.model_name}/labels/{label}/metadata"
        try:
            resp = requests.get(url, timeout=5)
            return int(resp.json()["model_spec"]["version"]) if resp.ok else None
        except (requests.RequestException, ValueError, KeyError):
            return None

    def reload(self, entry: ModelEntry) -> None:
        """Ask TF Serving to re-read the config now (else its poll does it)."""
        if not self.grpc_target:
            return
        import grpc
        from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

        config, _ = read(self.config_path, self.model_name)
        with grpc.insecure_channel(self.grpc_target) as channel:
            stub = model_service_pb2_grpc.ModelServiceStub(channel)
            try:
                stub.HandleReloadConfigRequest(
                    model_management_pb2.ReloadConfigRequest(config=config),
                    timeout=self.timeout_s,
                )
            except grpc.RpcError as err:
                raise RolloutError(f"TF Serving refused the new config: {err.details()}") from None

    def wait_for(self, what: str, check: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if check():
                return True
            time.sleep(0.2)
        self.log(f"timed out after {self.timeout_s:g}s waiting for {what}")
        return False

    # --- config and history --------------------------------------------------------------------
    def load(self) -> ModelEntry:
        try:
            return read(self.config_path, self.model_name)[1]
        except ConfigFileError as exc:
            raise RolloutError(str(exc)) from None

    def save(self, entry: ModelEntry) -> None:
        config, _ = read(self.config_path, self.model_name)
        write(self.config_path, with_entry(config, entry))
        self.reload(entry)

    def history(self) -> list[int]:
        try:
            return [int(v) for v in json.loads(self.history_path.read_text())["stable"]]
        except (OSError, ValueError, KeyError):
            return []

    def record_stable(self, version: int) -> None:
        stables = [v for v in self.history() if v != version] + [version]
        atomic.write_json(self.history_path, {"stable": stables[-20:]})

    def quality(self, version: int) -> dict[str, Any]:
        try:
            return dict(read_card(version_dir(self.base_path, version)).get("quality", {}))
        except FileNotFoundError:
            return {}

    # --- actions ---------------------------------------------------------------------------------
    def point(self, label: str, version: int, force: bool, compare: bool = True) -> None:
        """Load ``version`` if needed, check it, then move ``label`` to it."""
        if version not in list_versions(self.base_path):
            raise RolloutError(f"version {version} is not published under {self.base_path}.")
        entry = self.load()
        stable = entry.labels.get(STABLE)
        if compare:
            self._check_quality(version, stable, force)
        if version not in entry.versions:
            entry.versions.append(version)
            self.save(entry)
            self.log(f"policy now keeps versions {sorted(entry.versions)}; waiting for {version}")
        if not self.wait_for(
            f"version {version} AVAILABLE", lambda: self.state_of(version)[0] == "AVAILABLE"
        ):
            state, error = self.state_of(version)
            if not force:
                self._drop_unlabelled(entry)
                raise RolloutError(
                    f"version {version} is {state} on TF Serving{': ' + error if error else ''}; "
                    "the label was not moved (use --force to move it anyway)."
                )
        previous = entry.labels.get(label)
        entry.labels[label] = version
        if label == STABLE:
            if previous is not None and previous != version:
                self.record_stable(previous)
            self.record_stable(version)
        self._drop_unlabelled(entry)
        self.wait_for(f"label {label} -> {version}", lambda: self.label_version(label) == version)
        self.log(f"{label} -> {version} (was {previous})")

    def _check_quality(self, version: int, stable: int | None, force: bool) -> None:
        if stable is None or stable == version:
            return
        new, old = self.quality(version), self.quality(stable)
        if "fid" not in new or "fid" not in old or new.get("samples") != old.get("samples"):
            self.log(f"no comparable FID for {version} and stable {stable}: not compared")
            return
        if new["fid"] > old["fid"] and not force:
            raise RolloutError(
                f"version {version} has FID {new['fid']:.2f}, worse than stable {stable}'s "
                f"{old['fid']:.2f}; use --force to roll it out anyway."
            )

    def _drop_unlabelled(self, entry: ModelEntry) -> None:
        """Keep loaded: labelled versions and the previous stable (the rollback target)."""
        keep = set(entry.labels.values())
        earlier = [v for v in self.history() if v != entry.labels.get(STABLE)]
        if earlier:
            keep.add(earlier[-1])
        entry.versions = sorted(keep)
        self.save(entry)

    def promote(self, force: bool) -> None:
        entry = self.load()
        if CANARY not in entry.labels:
            raise RolloutError("there is no canary to promote; run `canary N` first.")
        self.point(STABLE, entry.labels[CANARY], force)

    def rollback(self, force: bool) -> None:
        entry = self.load()
        current = entry.labels.get(STABLE)
        earlier = [v for v in self.history() if v != current]
        if current is None or not earlier:
            raise RolloutError("there is no earlier stable version to roll back to.")
        target = earlier[-1]
        # no FID comparison: the previous stable was good enough once; it must be AVAILABLE
        self.point(STABLE, target, force, compare=False)
        # the rolled-back version leaves the history, so a second rollback goes further back
        stables = [v for v in self.history() if v not in (current, target)] + [target]
        atomic.write_json(self.history_path, {"stable": stables})
        self.log(f"rolled back: stable {current} -> {target}")

    def retire(self, keep: int, dry_run: bool) -> list[int]:
        """Delete versions that are neither labelled, kept loaded, nor among the newest ``keep``;
        each is renamed away first, so TF Serving sees it vanish in one step."""
        entry = self.load()
        protected = set(entry.labels.values()) | set(entry.versions)
        published = list_versions(self.base_path)
        newest = set(published[-keep:]) if keep > 0 else set()
        doomed = [v for v in published if v not in protected and v not in newest]
        for v in doomed:
            self.log(f"{'would retire' if dry_run else 'retiring'} version {v}")
            if not dry_run:
                path = version_dir(self.base_path, v)
                gone = self.base_path / f".retired-{v}-{uuid.uuid4().hex[:6]}"
                os.rename(path, gone)
                shutil.rmtree(gone, ignore_errors=True)
        return doomed

    def table(self) -> str:
        entry = self.load()
        rows = [
            (
                "version",
                "labels",
                "loaded",
                "TF Serving",
                "created",
                "profile",
                "epochs",
                "FID",
                "class KL",
                "NN dist",
            )
        ]
        for v in reversed(list_versions(self.base_path)):
            card = read_card(version_dir(self.base_path, v))
            q, t = card.get("quality", {}), card.get("training", {})
            labels = ",".join(k for k, lv in sorted(entry.labels.items()) if lv == v) or "-"
            rows.append(
                (
                    str(v),
                    labels,
                    "yes" if v in entry.versions else "no",
                    self.state_of(v)[0],
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m export.rollout",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--config",
        type=Path,
        default=Path("serving_config/models.config"),
        help="the models.config TF Serving reads",
    )
    p.add_argument("--model-name", default="fashion_gan")
    p.add_argument(
        "--model-base-path",
        type=Path,
        default=None,
        help="where this machine sees the versions (default: the config's base_path)",
    )
    p.add_argument("--rest-url", default="http://localhost:8501", help="TF Serving REST")
    p.add_argument(
        "--grpc-target",
        default=None,
        help="TF Serving gRPC, for an immediate config reload (else its poll)",
    )
    p.add_argument("--timeout", type=float, default=120, help="seconds to wait for TF Serving")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="versions, labels, TF Serving state, model cards")
    for name, text in (("stable", "point stable at version N"), ("canary", "canary -> N")):
        c = sub.add_parser(name, help=text)
        c.add_argument("version", type=int)
        c.add_argument("--force", action="store_true", help="skip the AVAILABLE and FID checks")
    pr = sub.add_parser("promote", help="stable -> the canary's version")
    pr.add_argument("--force", action="store_true")
    rb = sub.add_parser("rollback", help="stable -> the previous stable version")
    rb.add_argument("--force", action="store_true", help="move it even if not AVAILABLE")
    r = sub.add_parser("retire", help="delete old unlabelled versions")
    r.add_argument("--keep", type=int, default=3, help="newest versions always kept")
    r.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)

    try:
        entry = read(args.config, args.model_name)[1]
    except ConfigFileError as exc:
        print(f"rollout: {exc}", file=sys.stderr)
        return 2
    ops = Rollout(
        args.config,
        args.model_name,
        args.model_base_path or Path(entry.base_path),
        args.rest_url.rstrip("/"),
        args.grpc_target,
        args.timeout,
    )
    try:
        if args.command == "list":
            print(ops.table())
        elif args.command in (STABLE, CANARY):
            ops.point(args.command, args.version, args.force)
        elif args.command == "promote":
            ops.promote(args.force)
        elif args.command == "rollback":
            ops.rollback(args.force)
        else:
            ops.retire(args.keep, args.dry_run)
    except RolloutError as exc:
        print(f"rollout: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
