"""Child processes of a benchmark run: start on free loopback ports, wait for an HTTP answer,
read their memory, and end every one of them (by its own id) however the run ends. The process
group itself (``Children``) and the TF Serving stand-in's harness are tfserving_standin.harness,
shared with the tests.

Used by benchmarks.serving; nothing here imports TensorFlow.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from tfserving_standin.children import Children as Children
from tfserving_standin.children import free_ports

REPO_ROOT = Path(__file__).resolve().parent.parent


class BenchError(RuntimeError):
    """A child did not start, answer or finish as expected (message says which and why)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago on ``host``."""
    return free_ports(1, host)[0]


def child_env(overrides: dict[str, str], drop: Collection[str] = ()) -> dict[str, str]:
    """This process's environment without ``drop``, plus ``overrides`` and quiet TensorFlow."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.update(overrides)
    return env


def http_status(host: str, port: int, path: str, timeout: float = 2.0) -> int | None:
    """The status code of one GET, or None when nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_status(
    proc: subprocess.Popen[bytes],
    host: str,
    port: int,
    path: str,
    started: float,
    timeout_s: float,
    poll_s: float = 0.01,
) -> float:
    """Poll ``path`` until it answers 200; seconds since ``started`` (a perf_counter value).
    Raises BenchError when the process exits or ``timeout_s`` passes first."""
    while True:
        if http_status(host, port, path) == 200:
            return time.perf_counter() - started
        if proc.poll() is not None:
            raise BenchError(f"process {proc.pid} exited with code {proc.returncode}")
        if time.perf_counter() - started > timeout_s:
            raise BenchError(f"no 200 from {path} within {timeout_s:g}s")
        time.sleep(poll_s)


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) memory of ``pid`` in MB (VmRSS, VmHWM of /proc/<pid>/status)."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024  # kB -> MB (MiB)
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


def loads_tensorflow(pid: int) -> bool:
    """Whether TensorFlow's native library is mapped into ``pid``."""
    with open(f"/proc/{pid}/maps") as fh:
        return any("libtensorflow" in line or "_pywrap_tensorflow" in line for line in fh)


@dataclass(frozen=True)
class Machine:
    nproc: int  # CPUs this process may run on
    cpu_count: int | None
    cpu_model: str
    mem_gb: float
    loadavg: tuple[float, float, float]  # at the start: other users' load skews every number
    python: str


def machine() -> Machine:
    """nproc, CPU model, memory and load: the context every number needs."""
    model = "unknown"
    mem_gb = float("nan")
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    return Machine(
        nproc=len(os.sched_getaffinity(0)),
        cpu_count=os.cpu_count(),
        cpu_model=model,
        mem_gb=mem_gb,
        loadavg=os.getloadavg(),
        python=sys.version.split()[0],
    )


CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds all processes on the machine have spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK  # user nice system idle iowait irq softirq steal


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) ``pid`` has used; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            rest = fh.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(rest[11]) + int(rest[12])) / CLK_TCK  # fields 14 and 15: utime, stime


def embedded_gateway_env(model_base_path: Path, work_dir: Path) -> dict[str, str]:
    """Settings for a gateway that serves ``model_base_path`` in-process and never trains: the
    benchmarks measure serving, and a job started by a miss would steal their cores."""
    return {
        "GATEWAY_BACKEND": "embedded",
        "MODEL_BASE_PATH": str(model_base_path),
        "GATEWAY_TRAIN_ON_MISS": "false",
        "GATEWAY_JOBS_DIR": str(work_dir / "jobs"),
        "GATEWAY_LOG_LEVEL": "warning",
    }


def start_gateway(
    children: Children, name: str, env: dict[str, str], host: str = "127.0.0.1"
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m gateway`` with ``env`` (GATEWAY_* settings) on a free port; waits until
    /readyz answers 200 and returns (process, base URL)."""
    port = free_port(host)
    full = child_env({**env, "GATEWAY_HOST": host, "GATEWAY_PORT": str(port)})
    started = time.perf_counter()
    proc = children.spawn(name, [sys.executable, "-m", "gateway"], full)
    try:
        wait_status(proc, host, port, "/readyz", started, 180)
    except BenchError as exc:
        raise BenchError(f"{exc}\n--- {name} log tail ---\n{children.log_tail(name)}") from None
    return proc, f"http://{host}:{port}"
