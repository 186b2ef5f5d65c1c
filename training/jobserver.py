"""The trainer service's job runner: train-on-miss over HTTP for deployments where the gateway
has no TensorFlow (docker compose, Kubernetes). No TensorFlow import here either: each job is a
``fashion_core.jobs`` supervisor subprocess.

    TRAINER_ADMIN_TOKEN=... python -m training.jobserver --host 0.0.0.0 --port 8600 \\
        --model-base-path /models/fashion_gan \\
        --models-config /models/models.config --models-config-template /config/models.config

    GET  /api/training   {"training": {state, profile, epoch, progress, ...}}
    POST /api/training   {"profile": "default"} -> 202 {"training": ..., "started": bool}
                         (Authorization: Bearer $TRAINER_ADMIN_TOKEN)

Without a token it starts only on a loopback address (anyone who reaches it could start
trainings that take hours of CPU). With ``--models-config``, a volume that has no models.config
yet (a first start) gets a copy of the template: TF Serving waits for that file, and the rollout
tool changes it later, so it is written only when missing. The copy lists the models TF Serving
can start with: the one this runner trains (--model-base-path) and any other that already has a
version; the rest join with their first rollout (the server would wait for them for ever).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fashion_core import atomic
from fashion_core.auth import AuthError, BodyError, check_bearer, profile_from_body
from fashion_core.contract import PROFILES
from fashion_core.jobs import TrainingJobs
from fashion_core.models_config import seed_text
from fashion_core.versions import list_versions

MAX_BODY = 4096


def create_app(jobs: TrainingJobs, default_profile: str, token: str | None) -> Starlette:
    async def state(request: Request) -> Response:
        job = await asyncio.to_thread(jobs.state)
        return JSONResponse({"training": job.to_json()})

    async def start(request: Request) -> Response:
        if token:
            try:
                check_bearer(
                    request.headers.get("authorization"),
                    token,
                    "POST /api/training",
                    "TRAINER_ADMIN_TOKEN",
                )
            except AuthError as exc:
                return JSONResponse({"error": str(exc)}, exc.status)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            return JSONResponse({"error": f"The body must be at most {MAX_BODY} bytes."}, 413)
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                return JSONResponse({"error": f"The body must be at most {MAX_BODY} bytes."}, 413)
        try:
            profile = profile_from_body(raw, default_profile)
        except BodyError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        # "automatic": a gateway's train-on-miss honours the back-off after a failed job; an
        # operator's request says so with ?automatic=false
        automatic = request.query_params.get("automatic", "true") != "false"
        job, started = await asyncio.to_thread(jobs.start, profile, automatic)
        return JSONResponse({"training": job.to_json(), "started": started}, 202)

    return Starlette(
        routes=[
            Route("/api/training", state, methods=["GET"]),
            Route("/api/training", start, methods=["POST"]),
        ]
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def seed_models_config(path: Path, template: Path, trains: Path | None = None) -> bool:
    """Copy ``template`` to ``path`` unless ``path`` exists, with the models TF Serving can
    start with (``trains``: the base path this runner publishes to); True when written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)

    def has_version(base_path: str) -> bool:
        return base_path == str(trains) or bool(list_versions(Path(base_path)))

    atomic.write_text(path, seed_text(template.read_text(), has_version, ()))
    return True


def job_args(args: argparse.Namespace) -> tuple[str, ...]:
    """``python -m training``'s arguments for every job, besides the profile and base path."""
    # the models.config TF Serving reads: a progressive job adds each version to it and never
    # prunes the versions it names (labels, policy)
    extra = ("--model-config-file", str(args.models_config)) if args.models_config else ()
    return (*extra, *(("--no-cond-model",) if args.no_cond_model else ()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.jobserver", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8600)
    p.add_argument("--model-base-path", type=Path, default=Path("models/fashion_gan"))
    p.add_argument("--jobs-dir", type=Path, default=Path("runs/jobs"))
    p.add_argument(
        "--profile", choices=list(PROFILES), default="default", help="when a request names none"
    )
    p.add_argument(
        "--models-config", type=Path, default=None, help="the models.config TF Serving reads"
    )
    p.add_argument(
        "--models-config-template",
        type=Path,
        default=None,
        help="written to --models-config when that file does not exist yet",
    )
    p.add_argument(
        "--no-cond-model",
        action="store_true",
        help="jobs publish the first model only (a deployment that does not serve the "
        "class-conditional one: GATEWAY_CONDITIONAL=false); by default a quick job publishes "
        "fashion_gan_cond beside --model-base-path too",
    )
    args = p.parse_args(argv)
    token = os.environ.get("TRAINER_ADMIN_TOKEN") or None
    if token is None and not is_loopback(args.host):
        print(
            f"jobserver: set TRAINER_ADMIN_TOKEN to listen on {args.host}; without a token it "
            "only listens on a loopback address.",
            file=sys.stderr,
        )
        return 2
    template = args.models_config_template
    if (
        args.models_config
        and template
        and seed_models_config(args.models_config, template, args.model_base_path)
    ):
        print(f"jobserver: wrote the starting {args.models_config}", file=sys.stderr)
    jobs = TrainingJobs(args.jobs_dir, args.model_base_path, extra_args=job_args(args))
    app = create_app(jobs, args.profile, token)
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
