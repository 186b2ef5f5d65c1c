"""python -m export.rollout: list, canary N, stable N, promote, rollback, retire.

    python -m export.rollout --config /models/models.config \\
        --rest-url http://tfserving:8501 --replicas-from-dns list
    python -m export.rollout ... canary 3      # load 3 everywhere, then canary -> 3
    python -m export.rollout ... promote       # stable -> the canary's version
    python -m export.rollout ... rollback      # stable -> the previous stable version
    python -m export.rollout ... retire --keep 3
    python -m export.rollout --model fashion_gan_cond ... stable 1   # the conditional model

Each run changes one model's entry of models.config (--model, default fashion_gan) and copies
the others byte for byte. A model the file does not list yet (the conditional one on a volume
seeded before it had a version) joins it with its entry from --template (/config/models.config,
the starting file) on its first `canary N` or `stable N`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from export.rollout import RolloutError
from export.rollout.actions import CANARY, STABLE, Rollout
from export.rollout.replicas import Replicas, expand
from export.rollout.store import ConfigStore
from fashion_core.contract import COND_MODEL_NAME, MODEL_NAME


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m export.rollout",
        description="Version rollouts that TF Serving accepts on every replica.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--config",
        type=Path,
        default=Path("/models/models.config"),
        help="the models.config every TF Serving replica reads (on the models volume)",
    )
    p.add_argument(
        "--model",
        "--model-name",
        dest="model",
        default=MODEL_NAME,
        help=f"the model whose labels and versions change ({MODEL_NAME}, {COND_MODEL_NAME})",
    )
    p.add_argument(
        "--template",
        type=Path,
        default=Path("/config/models.config"),
        help="the starting models.config: where a model the live file lacks takes its entry",
    )
    p.add_argument(
        "--model-base-path",
        type=Path,
        default=None,
        help="where this machine sees the versions (default: the config's base_path)",
    )
    p.add_argument(
        "--rest-url",
        action="append",
        default=None,
        help="a TF Serving replica's REST URL; repeat for each (default http://localhost:8501)",
    )
    p.add_argument(
        "--replicas-from-dns",
        action="store_true",
        help="a --rest-url host resolving to several addresses is one replica per address "
        "(a Kubernetes headless Service)",
    )
    p.add_argument(
        "--timeout", type=float, default=120, help="seconds each change may take on every replica"
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="versions, labels, TF Serving state, model cards")
    for name, text in ((STABLE, "point stable at version N"), (CANARY, "canary -> N")):
        c = sub.add_parser(name, help=text)
        c.add_argument("version", type=int)
        c.add_argument("--force", action="store_true", help="skip the FID comparison")
    pr = sub.add_parser("promote", help="stable -> the canary's version")
    pr.add_argument("--force", action="store_true", help="skip the FID comparison")
    sub.add_parser("rollback", help="stable -> the previous stable version")
    r = sub.add_parser("retire", help="delete old versions nothing labels or keeps")
    r.add_argument("--keep", type=int, default=3, help="newest versions always kept")
    r.add_argument("--dry-run", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    replicas: Replicas | None = None
    try:
        replicas = Replicas(
            expand(args.rest_url or ["http://localhost:8501"], args.replicas_from_dns),
            args.model,
            args.timeout,
        )
        store = ConfigStore(args.config, args.model, replicas, template=args.template)
        with store.locked(wait_s=args.timeout):
            base = args.model_base_path or Path(store.entry().base_path)
            ops = Rollout(store, base)
            if args.command == "list":
                print(ops.table())
            elif args.command in (STABLE, CANARY):
                ops.point(args.command, args.version, args.force)
            elif args.command == "promote":
                ops.promote(args.force)
            elif args.command == "rollback":
                ops.rollback()
            else:
                ops.retire(args.keep, args.dry_run)
    except RolloutError as exc:
        print(f"rollout: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"rollout: {exc.strerror or exc}: {getattr(exc, 'filename', '')}.", file=sys.stderr)
        return 2
    finally:
        if replicas is not None:
            replicas.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
