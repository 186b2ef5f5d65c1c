"""The gateway's error types. Each is answered in one place (``gateway.misses.answer``);
nothing else builds error responses.

The model server's and the trainer's error types are the library's (fashion_gan/tfserving/
errors.py, fashion_gan/jobs.py): the transports raise them, the embedded backend raises the
same ones, and the gateway answers them. Those below are the gateway's own.
"""

from __future__ import annotations

from fashion_gan.jobs import TrainerError
from fashion_gan.tfserving.errors import NotPinnable, NoVersion, ServingError, UpstreamError

__all__ = [
    "BadRequest",
    "BodiesFull",
    "ClientGone",
    "NoVersion",
    "NotPinnable",
    "Overloaded",
    "QueueTimeout",
    "ServingError",
    "TrainerError",
    "UpstreamError",
]


class BadRequest(Exception):
    """The caller's input is not allowed; the message says what is (HTTP 4xx)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Overloaded(Exception):
    """The gateway refuses work it could not finish soon (HTTP 503 with Retry-After, at once).
    The message says why; the answer adds what to do."""


class BodiesFull(Overloaded):
    """Request bodies already fill GATEWAY_MAX_BUFFERED_BYTES: this one is not read (503)."""


class QueueTimeout(Overloaded):
    """An admitted request waited too long for the model; it was dropped uncomputed (503)."""


class ClientGone(Exception):
    """The client closed the connection before its answer was ready; its work was dropped."""
