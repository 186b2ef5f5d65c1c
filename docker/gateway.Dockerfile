# syntax=docker/dockerfile:1
# Gateway image: the Starlette app in front of TensorFlow Serving (REST or gRPC backend).
#
#   docker build -f docker/gateway.Dockerfile -t fashion-gan-gateway:0.1.0 .                  # slim
#   docker build -f docker/gateway.Dockerfile --target gateway-full -t fashion-gan-gateway:0.1.0-full .
#
# gateway-slim (the default, last stage) has no TensorFlow (a ~150 MB virtualenv instead of ~2 GB):
# the project installed with --no-deps, the gateway's runtime dependencies from pyproject.toml and
# tensorflow-serving-api with --no-deps. It serves GATEWAY_BACKEND=rest. gateway-full installs the
# package whole, for the embedded backend and for the grpc one (gateway/backends/protos.py reads
# the tensorflow package's generated *_pb2.py files from disk without loading TensorFlow).

# --- builders: a virtualenv in /opt/venv, copied whole into the runtime stages ------------------
FROM python:3.11-slim-bookworm AS builder-base
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# the versions: requirements/lock.txt as pip constraints, as `make run` and `make test` install
COPY pyproject.toml docker/requirements_from_pyproject.py requirements/lock.txt ./

FROM builder-base AS builder-slim
# dependencies first (a layer cached until pyproject.toml changes), then the project itself
RUN python requirements_from_pyproject.py pyproject.toml \
        --exclude tensorflow keras tensorflow-serving-api jax > runtime.txt \
    && python requirements_from_pyproject.py pyproject.toml \
        --only tensorflow-serving-api > no-deps.txt \
    && pip install -c lock.txt -r runtime.txt \
    && pip install -c lock.txt --no-deps -r no-deps.txt
# only what the gateway imports (tests/test_deploy_files.py checks it against the imports)
COPY fashion_core/ fashion_core/
COPY fashion_gan/ fashion_gan/
COPY gateway/ gateway/
RUN pip install --no-deps . \
    && python -c "import gateway, starlette, uvicorn, requests, grpc, PIL, numpy, prometheus_client" \
    && if python -c "import tensorflow" 2>/dev/null; then echo "TensorFlow leaked in" >&2; exit 1; fi

FROM builder-base AS builder-full
RUN python requirements_from_pyproject.py pyproject.toml > runtime.txt \
    && pip install -c lock.txt -r runtime.txt
COPY fashion_core/ fashion_core/
COPY fashion_gan/ fashion_gan/
COPY gateway/ gateway/
RUN pip install --no-deps . && python -c "import gateway"

# --- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8000 \
    MODEL_NAME=fashion_gan \
    MODEL_BASE_PATH=/models/fashion_gan
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home app
WORKDIR /home/app
EXPOSE 8000
# /readyz answers 200 while the gateway answers requests, TF Serving's state is in its body
# (no curl needed: Python)
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('GATEWAY_PORT', '8000'), timeout=3)"]
USER 10001:10001
CMD ["python", "-m", "gateway"]

FROM runtime AS gateway-full
COPY --from=builder-full /opt/venv /opt/venv

FROM runtime AS gateway-slim
ENV GATEWAY_BACKEND=rest
COPY --from=builder-slim /opt/venv /opt/venv
