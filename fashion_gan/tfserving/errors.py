"""One error type for TF Serving (and for the in-process model that stands in for it), and the
one place where a transport's failure becomes it (tritonclient's ``get_error``): the REST and
gRPC transports each name the ``Fault`` they saw; ``translate`` says what it means.

``ServingError`` is what callers catch. Its subclasses say whose fault it was:
``UpstreamError`` (the server failed: 502 bad answer, 503 unreachable or busy, 504 deadline),
``NoVersion`` (the model has no AVAILABLE version), ``NotPinnable`` (the version or label asked
for is not there: the caller's choice, 404 or 400), ``BadInput`` (the model refused a value the
caller chose, 400: a category outside 0-9).
"""

from __future__ import annotations

import enum

from fashion_core.contract import CATEGORIES_EN, CATEGORY
from fashion_gan.tfserving.config import ServingConfig
from fashion_gan.tfserving.values import Pin


class ServingError(Exception):
    """TF Serving refused or failed. ``status``: the HTTP status that says so (400, 404, 502,
    503, 504); ``retry_after``: seconds worth waiting, when known; ``unreachable``: nothing
    listens (TF Serving keeps its ports closed until it has loaded a version)."""

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


class UpstreamError(ServingError):
    """The model server failed: a bad answer (502), unreachable or overloaded (503), or the
    deadline passed (504)."""


class NoVersion(ServingError):
    """No version of the model is AVAILABLE (none published yet, or none loaded)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 404)


class NotPinnable(ServingError):
    """A pinned version or label the model server does not have (404; 400 for a label it does
    not define)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, status)


class BadInput(ServingError):
    """The model refused an input value the caller chose (400): the conditional model's own
    check of ``category``. Other INVALID_ARGUMENTs stay the library's (or server's) fault: the
    library sends the shapes and dtypes itself."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 400)


# the message of the conditional signature's own range check (export/signature.py), which
# TF Serving passes on inside its INVALID_ARGUMENT
CATEGORY_CHECK = f"{CATEGORY} must be"


class Fault(enum.Enum):
    """What went wrong, in words common to both transports (contract: Errors table)."""

    NOT_FOUND = "not found"  # REST 404 / NOT_FOUND
    UNKNOWN_LABEL = "unknown label"  # REST 400 / INVALID_ARGUMENT naming a label
    BAD_CATEGORY = "bad category"  # REST 400 / INVALID_ARGUMENT of the model's category check
    BUSY = "busy"  # REST 503, 429 / UNAVAILABLE (not refused), RESOURCE_EXHAUSTED
    UNREACHABLE = "unreachable"  # connection refused: nothing listens
    BROKEN = "broken"  # the connection broke off mid-answer
    DEADLINE = "deadline"  # REST 504, client timeout / DEADLINE_EXCEEDED
    OTHER = "other"  # any other refusal or a body that is not the contract's


def translate(fault: Fault, detail: str, pin: Pin, config: ServingConfig) -> ServingError:
    """The one translation of a TF Serving failure into a ServingError."""
    where, busy = config.where, config.retry_busy_s
    if fault is Fault.NOT_FOUND:
        if pin.version is not None:
            return NotPinnable(f"version {pin.version} is not loaded by the model server.", 404)
        if pin.label is not None:
            return NotPinnable(
                f"label {pin.label!r} names a version the model server has not loaded.", 404
            )
        return NoVersion(f"TF Serving has no AVAILABLE version: {detail}")
    if fault is Fault.UNKNOWN_LABEL and pin.label is not None:
        return NotPinnable(f"label {pin.label!r} is not defined on the model server.")
    if fault is Fault.BAD_CATEGORY:
        return BadInput(
            f"{CATEGORY} must be a whole number from 0 to {len(CATEGORIES_EN) - 1}, one per "
            "latent; the model refused the one sent."
        )
    if fault is Fault.BUSY:
        return UpstreamError(
            f"TF Serving at {where} is overloaded or unavailable: {detail}", 503, retry_after=busy
        )
    if fault is Fault.UNREACHABLE:
        return UpstreamError(
            f"TF Serving at {where} is unreachable.", 503, retry_after=busy, unreachable=True
        )
    if fault is Fault.BROKEN:
        return UpstreamError(f"TF Serving at {where} broke off its answer ({detail}).", 502, busy)
    if fault is Fault.DEADLINE:
        return UpstreamError(f"TF Serving did not answer within the deadline: {detail}", 504)
    return UpstreamError(f"TF Serving answered {detail}", 502)
