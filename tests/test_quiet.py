"""TensorFlow's start-up noise stays off a CPU user's screen; everything else gets through."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fashion_core.quiet import NOISE, has_gpu_driver
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(has_gpu_driver(), reason="with a GPU driver CUDA lines are kept")
ENV = {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "0"}  # TensorFlow's default verbosity

LINES = [  # as TensorFlow 2.21 prints them on a machine without a GPU driver, and others
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1.1 27666 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.",
    "a line of our own",
    "E0000 00:00:1.2 27666 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1.3 27666 some_kernel.cc:9] a real TensorFlow error",
    "Traceback (most recent call last):",
]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120
    )


def test_only_the_known_noise_is_dropped_in_order() -> None:
    code = (
        "import os\nfrom fashion_core.quiet import quiet_tensorflow\nquiet_tensorflow()\n"
        f"for line in {LINES!r}:\n    os.write(2, (line + '\\n').encode())\n"
    )
    kept = _run(code).stderr.splitlines()
    assert kept == [line for line in LINES if not NOISE.search(line)]
    assert kept == [LINES[2], LINES[4], LINES[5]]


def test_tensorflow_starts_quietly() -> None:
    done = _run(
        "from fashion_core.quiet import quiet_tensorflow\nquiet_tensorflow()\n"
        "import sys, tensorflow as tf\ntf.constant(1.0) + 1.0\n"
        "print('an error of our own', file=sys.stderr)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "an error of our own", done.stderr
