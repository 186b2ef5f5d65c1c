"""TensorFlow error codes and how the stand-in maps them to HTTP and gRPC.

Every failure inside the stand-in is a :class:`ServingError` carrying a TF error code, exactly as
TF Serving carries a ``tensorflow::Status``; the REST and gRPC front ends translate it at the edge.
"""

from __future__ import annotations

import enum

import grpc


class Code(enum.IntEnum):
    """``tensorflow.error.Code`` (tensorflow/core/protobuf/error_codes.proto)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# DirectSession's message when a run passes RunOptions.timeout_in_ms (DEADLINE_EXCEEDED).
TIMED_OUT = "Timed out waiting for notification"


class ServingError(Exception):
    """A non-OK status: a TF error code plus the message clients will see."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        # absl::Status::ToString() format, used where TF Serving nests one status in another.
        return f"{self.code.name}: {self.message}"


# Contract, "Errors": HTTP status from the TF code (model_servers/http_server.cc ToHTTPStatusCode).
_HTTP_STATUS: dict[Code, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


def http_status(code: Code) -> int:
    """HTTP status TF Serving's REST server answers for a TF error code."""
    return _HTTP_STATUS.get(code, 500)


def grpc_status(code: Code) -> grpc.StatusCode:
    """gRPC status code for a TF error code (the numbering is shared, so map by name)."""
    return grpc.StatusCode[code.name]


def code_from_name(name: str) -> Code:
    """Parse a code name such as ``UNAVAILABLE`` (case-insensitive); ValueError if unknown."""
    try:
        return Code[name.strip().upper()]
    except KeyError:
        raise ValueError(f"unknown TF error code name: {name!r}") from None
