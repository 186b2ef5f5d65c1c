"""Keep TensorFlow's start-up noise off a CPU user's screen, and nothing else.

Importing TensorFlow on a machine without an NVIDIA driver prints, before its own logging is set
up (so TF_CPP_MIN_LOG_LEVEL cannot silence it): absl's "All log messages before
absl::InitializeLog()..." banner, "Could not find cuda drivers", "failed call to cuInit", and
the CPU feature notes. None of it means anything there. ``quiet_tensorflow()`` puts a filter on
file descriptor 2 that drops exactly those lines and passes every other one on, errors included,
in order. It does nothing where a GPU driver is installed (CUDA's messages matter there), when
FASHION_GAN_TF_NOISE=1, or when stderr is not a terminal or file it can wrap.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
from pathlib import Path

NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|cudart_stub\.cc:\d+\] Could not find cuda drivers"
    r"|cuda_platform\.cc:\d+\] failed call to cuInit"
    r"|cuda_executor\.cc:\d+\] .*(kernel driver does not appear|no NVIDIA GPU)"
    r"|cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized"
    r"|^To enable the following instructions: .* rebuild TensorFlow"
    r"|oneDNN custom operations are on"
)
_installed = False


def has_gpu_driver() -> bool:
    return Path("/proc/driver/nvidia/version").exists()


def quiet_tensorflow() -> None:
    """Install the filter once per process (before TensorFlow is imported)."""
    global _installed
    if _installed or has_gpu_driver() or os.environ.get("FASHION_GAN_TF_NOISE") == "1":
        return
    try:
        original = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
    except OSError:
        return
    _installed = True

    def forward() -> None:
        with os.fdopen(read_end, "rb") as source, os.fdopen(original, "wb", 0) as sink:
            for line in source:
                if not NOISE.search(line.decode("utf-8", "replace")):
                    sink.write(line)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()

    def drain() -> None:  # at exit: let the last lines through before the process ends
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # closes the pipe's last write end
        thread.join(timeout=2)

    atexit.register(drain)
