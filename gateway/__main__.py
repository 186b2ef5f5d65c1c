"""Start the gateway:  python -m gateway   (settings from the environment, see README).

GATEWAY_BACKEND=rest TFSERVING_REST_URL=http://localhost:8501 python -m gateway
"""

from __future__ import annotations

import logging
import os
import sys

import uvicorn

from fashion_core.quiet import quiet_tensorflow
from gateway.settings import SettingsError, from_env


def main() -> int:
    try:
        settings = from_env(os.environ)
    except SettingsError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    quiet_tensorflow()  # the embedded backend imports TensorFlow: no CUDA probing noise
    from gateway.app import create_app
    from gateway.server import raise_open_files_limit, uvicorn_config

    app = create_app(settings)
    print(
        f"Gateway ({settings.backend}) on http://{settings.host}:{settings.port}/"
        "api/generar-diseno  (docs: /docs)",
        flush=True,
    )
    raise_open_files_limit(settings)
    uvicorn.Server(uvicorn_config(app, settings)).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
