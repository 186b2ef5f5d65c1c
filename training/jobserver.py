"""The trainer service's job runner: train-on-miss over HTTP for deployments where the gateway
has no TensorFlow (docker compose, Kubernetes). No TensorFlow import here either: each job is a
``training.jobs`` supervisor subprocess.

    python -m training.jobserver --host 0.0.0.0 --port 8600 --model-base-path /models/fashion_gan

    GET  /api/training   {"training": {state, profile, epoch, progress, ...}}
    POST /api/training   {"profile": "default"} -> 202 {"training": ..., "started": bool}
                         (Authorization: Bearer $TRAINER_ADMIN_TOKEN when that is set)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from training.config import PROFILES
from training.jobs import TrainingJobs


def create_app(jobs: TrainingJobs, default_profile: str, token: str | None) -> Starlette:
    async def state(request: Request) -> Response:
        job = await asyncio.to_thread(jobs.state)
        return JSONResponse({"training": job.to_json()})

    async def start(request: Request) -> Response:
        if token and not secrets.compare_digest(
            request.headers.get("authorization", "").encode(), f"Bearer {token}".encode()
        ):
            return JSONResponse({"error": "Send 'Authorization: Bearer <admin token>'."}, 401)
        raw = await request.body()
        try:
            doc = json.loads(raw) if raw.strip() else {}
        except ValueError:
            doc = None
        profile = doc.get("profile", default_profile) if isinstance(doc, dict) else None
        if profile not in PROFILES:
            return JSONResponse(
                {"error": f'The body must be {{"profile": one of {", ".join(PROFILES)}}}.'}, 400
            )
        job, started = await asyncio.to_thread(jobs.start, profile)
        return JSONResponse({"training": job.to_json(), "started": started}, 202)

    return Starlette(
        routes=[
            Route("/api/training", state, methods=["GET"]),
            Route("/api/training", start, methods=["POST"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.jobserver", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8600)
    p.add_argument("--model-base-path", type=Path, default=Path("models/fashion_gan"))
    p.add_argument("--jobs-dir", type=Path, default=Path("runs/jobs"))
    p.add_argument(
        "--profile",
        choices=list(PROFILES),
        default="default",
        help="profile when a request names none",
    )
    args = p.parse_args(argv)
    token = os.environ.get("TRAINER_ADMIN_TOKEN") or None
    app = create_app(TrainingJobs(args.jobs_dir, args.model_base_path), args.profile, token)
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
