# syntax=docker/dockerfile:1
# Trainer image: trains the DCGAN and publishes the next SavedModel version under /models/fashion_gan.
#
#   docker build -f docker/trainer.Dockerfile -t fashion-gan-trainer:0.1.0 .
#   docker build -f docker/trainer.Dockerfile --build-arg "TF_PACKAGE=tensorflow[and-cuda]==2.21.*" \
#       -t fashion-gan-trainer:0.1.0-gpu .          # CUDA/cuDNN from pip; the host needs the driver
#
# Default command: the job runner (GET/POST :8600/api/training) that the gateway's train-on-miss
# calls. One-shot: `python -m training --profile default --model-base-path /models/fashion_gan`.
# Fashion-MNIST is downloaded once into KERAS_HOME (mount a volume at /data/keras to keep it).

FROM python:3.11-slim-bookworm AS builder
# TensorFlow pinned like pyproject.toml; the GPU build swaps in the and-cuda extra
ARG TF_PACKAGE="tensorflow==2.21.*"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# the versions: requirements/lock.txt as pip constraints, as `make run` and `make test` install
COPY pyproject.toml docker/requirements_from_pyproject.py requirements/lock.txt ./
RUN python requirements_from_pyproject.py pyproject.toml --exclude tensorflow > runtime.txt \
    && pip install -c lock.txt "${TF_PACKAGE}" -r runtime.txt
# what training imports (no gateway: tests/test_deploy_files.py checks it against the imports)
COPY fashion_core/ fashion_core/
COPY evaluation/ evaluation/
COPY export/ export/
COPY fashion_gan/ fashion_gan/
COPY training/ training/
RUN pip install --no-deps . && python -c "import training, evaluation, export"

FROM python:3.11-slim-bookworm AS trainer
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    KERAS_HOME=/data/keras \
    TF_CPP_MIN_LOG_LEVEL=1
# The mount points exist in the image and belong to the app user, so a fresh named volume mounted
# there is created with that owner (Docker copies the mount point's ownership into a new volume).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home app \
    && mkdir -p /models/fashion_gan /data/keras /work \
    && chown -R app:app /models /data /work
COPY --from=builder /opt/venv /opt/venv
# runs, job state and the evaluator's classifier: a volume in compose, an emptyDir in Kubernetes
WORKDIR /work
EXPOSE 8600
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8600/api/training', timeout=3)"]
USER 10001:10001
CMD ["python", "-m", "training.jobserver", "--host", "0.0.0.0", "--port", "8600", \
     "--model-base-path", "/models/fashion_gan"]
