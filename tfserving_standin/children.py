"""Child processes of a test or benchmark run: free loopback ports, a stop that escalates from
SIGTERM to SIGKILL, and ``Children`` (gateways, control servers, each logging to a file). The
stand-in's own process (``harness.StandIn``) uses the same two helpers."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that were free a moment ago (bound to ``host:0``, then closed)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def stop_process(process: subprocess.Popen[Any], grace_s: float = 10.0) -> int:
    """SIGTERM ``process``, SIGKILL it after ``grace_s``; wait for it either way. Its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace_s)
    return process.returncode


class Children:
    """Long-lived children of a run, each logging to ``<log_dir>/<name>.log``. A context manager:
    leaving it (normally, on an exception or on Ctrl-C) stops each child still running."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in the repo root (or ``cwd``), its output in ``<log_dir>/<name>.log``.
        The child gets a session of its own, so a Ctrl-C reaches only this process, which then
        stops it."""
        with open(self.log_path(name), "wb") as log:
            proc = subprocess.Popen(
                argv,
                cwd=cwd or REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def log_tail(self, name: str, chars: int = 3000) -> str:
        try:
            return self.log_path(name).read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, name: str, grace_s: float = 10.0) -> None:
        """Stop the child ``name`` (stop_process) and forget it."""
        proc = self.procs.pop(name, None)
        if proc is not None:
            stop_process(proc, grace_s)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def __enter__(self) -> Children:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()
