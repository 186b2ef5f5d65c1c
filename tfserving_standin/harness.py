"""Start and stop the TensorFlow Serving stand-in (``python -m tfserving_standin``) and other
child processes, for the tests and the benchmarks alike; nothing here imports TensorFlow.

Typical use::

    with StandIn(model_name="fashion_gan", base_path=models / "fashion_gan") as server:
        requests.get(f"{server.rest_url}/v1/models/fashion_gan", timeout=5)
        grpc.insecure_channel(server.grpc_target)

``StandIn`` picks two free loopback ports, runs ``python -m tfserving_standin`` with the real
server's flags, waits for its ``STANDIN READY`` line (which, as with the real server, only comes
once its start-up loading is done) and terminates it on exit. Everything a test does through
``rest_url`` / ``grpc_target`` works the same against a real TensorFlow Serving; only
``set_faults`` (and the ``STANDIN_*`` environment variables) are stand-in specific.
The other children of a run are ``children.Children``; publishing a version and waiting for it
to load are ``publishing.publish_version`` / ``wait_for_version``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tfserving_standin.children import REPO_ROOT, free_ports, stop_process

_READY = re.compile(r"^STANDIN READY rest=(\d+) grpc=(\d+)\s*$")
_TAIL_CHARS = 6000


class StandInError(RuntimeError):
    """The stand-in exited or did not become ready; the message ends with its output tails."""


class StandIn:
    """One stand-in server process. Use as a context manager, or call start()/stop()."""

    def __init__(
        self,
        *,
        model_name: str | None = None,
        base_path: str | os.PathLike[str] | None = None,
        config_file: str | os.PathLike[str] | None = None,
        extra_flags: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        startup_timeout_s: float = 120.0,
        host: str = "127.0.0.1",
        own_session: bool = False,  # a session of its own: a Ctrl-C reaches only the caller
    ) -> None:
        if (config_file is None) == (base_path is None):
            raise ValueError("give either base_path (with model_name) or config_file")
        self._model_args: list[str]
        if config_file is not None:
            self._model_args = [f"--model_config_file={os.path.abspath(config_file)}"]
        else:
            assert base_path is not None
            self._model_args = [
                f"--model_name={model_name or 'default'}",
                f"--model_base_path={os.path.abspath(base_path)}",
            ]
        self._extra_flags = list(extra_flags)
        self._env = dict(env or {})
        self._startup_timeout_s = startup_timeout_s
        self.host = host
        self._own_session = own_session
        self.rest_port, self.grpc_port = free_ports(2, host)
        self._ports_fixed = False  # a respawn keeps its ports: its clients know them
        self._port_retries = 0
        self.process: subprocess.Popen[str] | None = None
        self._workdir = Path(tempfile.mkdtemp(prefix="standin-"))
        self._stderr_path = self._workdir / "stderr.log"
        self.faults_file = self._workdir / "faults.json"
        self._stdout_lines: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    # ----------------------------------------------------------------------------- lifecycle

    @property
    def command(self) -> list[str]:
        """The full command line."""
        return [
            sys.executable,
            "-m",
            "tfserving_standin",
            f"--port={self.grpc_port}",
            f"--rest_api_port={self.rest_port}",
            f"--host={self.host}",
            *self._model_args,
            *self._extra_flags,
        ]

    def start(self, *, wait: bool = True) -> StandIn:
        """Launch the process; with ``wait`` also block until it is ready (see wait_ready)."""
        if self.process is not None:
            raise StandInError("already started")
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["PYTHONUNBUFFERED"] = "1"
        env["STANDIN_FAULTS_FILE"] = str(self.faults_file)
        env.update(self._env)
        with open(self._stderr_path, "w", encoding="utf-8") as stderr:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=self._own_session,
            )
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        if wait:
            self.wait_ready()
        return self

    def _read_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._stdout_lines.append(line)
            match = _READY.match(line)
            if match:
                self.rest_port, self.grpc_port = int(match.group(1)), int(match.group(2))
                self._ready.set()

    @property
    def ready(self) -> bool:
        """Whether the READY line was printed."""
        return self._ready.is_set()

    def wait_ready(self, timeout_s: float | None = None) -> StandIn:
        """Block until the READY line; raise StandInError if the process exits or time runs out."""
        deadline = time.monotonic() + (self._startup_timeout_s if timeout_s is None else timeout_s)
        while not self._ready.wait(0.05):
            code = self.process.poll() if self.process else None
            if code is not None:
                self._reader_join()
                if self._ready.is_set():
                    break
                if self._port_taken() and not self._ports_fixed and self._port_retries < 3:
                    # our ports were free when picked, but another process may bind one in the
                    # seconds before the server opens them (it opens them after loading)
                    self._port_retries += 1
                    self.rest_port, self.grpc_port = free_ports(2, self.host)
                    self.process, self._reader, self._stdout_lines = None, None, []
                    self.start(wait=False)
                    continue
                raise StandInError(self._failure(f"stand-in exited with code {code}"))
            if time.monotonic() > deadline:
                self.stop()
                raise StandInError(self._failure("stand-in was not ready in time"))
        return self

    def _port_taken(self) -> bool:
        try:
            return "Address already in use" in self._stderr_path.read_text(errors="replace")
        except OSError:
            return False

    def _reader_join(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=5)

    def wait_exit(self, timeout_s: float = 60.0) -> int:
        """Wait for the process to end by itself; returns its exit code."""
        if self.process is None:
            raise StandInError("not started")
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise StandInError(self._failure("stand-in did not exit in time")) from None
        self._reader_join()  # so stdout_text() holds everything it printed
        return code

    def stop(self) -> int | None:
        """Terminate the process (SIGTERM, then SIGKILL) and return its exit code."""
        process = self.process
        if process is None:
            return None
        stop_process(process)
        self._reader_join()
        if process.stdout is not None:
            process.stdout.close()
        return process.returncode

    def respawn(self) -> StandIn:
        """A new (not started) stand-in with this one's command line and ports: the server
        coming back after a crash or a redeploy."""
        again = copy.copy(self)  # the command line, environment and ports
        again.process, again._reader = None, None
        again._stdout_lines, again._ready = [], threading.Event()
        again._ports_fixed = True
        again._workdir = Path(tempfile.mkdtemp(prefix="standin-"))
        again._stderr_path = again._workdir / "stderr.log"
        again.faults_file = again._workdir / "faults.json"
        return again

    def close(self) -> None:
        """stop() and remove the scratch directory (stderr log, faults file)."""
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> StandIn:
        if self.process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------------------- access

    @property
    def rest_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        """``127.0.0.1:PORT``, for ``grpc.insecure_channel``."""
        return f"{self.host}:{self.grpc_port}"

    def stderr_text(self) -> str:
        """Everything the process logged so far."""
        try:
            return self._stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stdout_text(self) -> str:
        """Everything the process printed on stdout so far."""
        return "".join(self._stdout_lines)

    def _failure(self, what: str) -> str:
        stdout = self.stdout_text()[-_TAIL_CHARS:]
        stderr = self.stderr_text()[-_TAIL_CHARS:]
        return (
            f"{what}\ncommand: {' '.join(self.command)}\n"
            f"--- stdout tail ---\n{stdout}\n--- stderr tail ---\n{stderr}"
        )

    # ----------------------------------------------------------------------------- stand-in only

    def set_faults(
        self, *, delay_ms: int = 0, error: str | None = None, error_count: int | None = None
    ) -> None:
        """STAND-IN ONLY: inject latency / errors into every following predict.

        ``error`` is a TF code name, optionally with a message (``"UNAVAILABLE:overloaded"``);
        ``error_count`` limits the failures to the next N predicts. Takes effect immediately.
        """
        data: dict[str, Any] = {"delay_ms": delay_ms, "error": error, "error_count": error_count}
        tmp = self.faults_file.with_name(f".faults-{uuid.uuid4().hex}")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.faults_file)

    def clear_faults(self) -> None:
        """STAND-IN ONLY: back to no injected faults."""
        self.faults_file.unlink(missing_ok=True)
