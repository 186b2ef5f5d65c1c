"""The gateway's error types. Each is translated into an HTTP answer in one place
(``gateway.app``'s exception handlers); nothing else builds error responses.
"""

from __future__ import annotations


class BadRequest(Exception):
    """The caller's input is not allowed; the message says what is (HTTP 4xx)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class NotPinnable(BadRequest):
    """A pinned version or label that the model server does not have (404, or 400 for labels)."""


class NoVersion(Exception):
    """No model version exists or none is AVAILABLE yet: the gateway trains one (HTTP 503)."""


class UpstreamError(Exception):
    """The model server (TF Serving over REST or gRPC, or the embedded model) failed.

    ``status`` is 502 (bad answer), 503 (unreachable or overloaded) or 504 (deadline passed).
    ``unreachable``: nothing listens (TF Serving keeps its ports closed until it has loaded a
    version, so on a fresh deployment this may mean "no version yet").
    """

    def __init__(
        self,
        message: str,
        status: int = 502,
        retry_after: int | None = None,
        unreachable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.unreachable = unreachable


class TrainerError(Exception):
    """The training job runner could not be reached or refused (HTTP 502/503)."""

    def __init__(self, message: str, status: int = 503) -> None:
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
