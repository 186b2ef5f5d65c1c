"""The one translation of TF Serving's failures (fashion_gan/tfserving/errors.py): what each
REST status and gRPC code means, as a ServingError class, status, Retry-After and whether
nothing listens. The REST and gRPC transports name a Fault; ``translate`` decides."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from fashion_gan.tfserving import grpc as grpc_transport
from fashion_gan.tfserving import rest
from fashion_gan.tfserving.config import ServingConfig
from fashion_gan.tfserving.errors import (
    BadInput,
    Fault,
    NotPinnable,
    NoVersion,
    ServingError,
    UpstreamError,
    translate,
)
from fashion_gan.tfserving.values import Pin

CONFIG = ServingConfig(rest_url="http://tfs:8501", retry_busy_s=7)


@pytest.mark.parametrize(
    ("code", "message", "fault"),
    [
        (404, "Servable not found for request: Latest(fashion_gan)", Fault.NOT_FOUND),
        (400, "Unrecognized servable version label: gold", Fault.UNKNOWN_LABEL),
        (400, "Input to reshape is a tensor with 99 values", Fault.OTHER),
        # the conditional signature's own check (export/signature.py), as TF Serving wraps it
        (400, "assertion failed: [category must be 0-9] [Condition x < y ...]", Fault.BAD_CATEGORY),
        (429, "Run() timeout exceeded while waiting in batching queue", Fault.BUSY),
        (503, "the server is overloaded", Fault.BUSY),
        (504, "Deadline Exceeded", Fault.DEADLINE),
        (500, "Internal", Fault.OTHER),
    ],
)
def test_rest_answers(code: int, message: str, fault: Fault) -> None:
    assert rest._fault(code, message) is fault


class _Rpc(grpc.aio.AioRpcError):  # type: ignore[misc]  # grpc has no types here
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._c, self._d = code, details

    def code(self) -> grpc.StatusCode:
        return self._c

    def details(self) -> str:
        return self._d


@pytest.mark.parametrize(
    ("code", "details", "fault"),
    [
        (grpc.StatusCode.NOT_FOUND, "Servable not found", Fault.NOT_FOUND),
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            "Unrecognized servable version label",
            Fault.UNKNOWN_LABEL,
        ),
        (grpc.StatusCode.INVALID_ARGUMENT, "Expects arg[0] to be float", Fault.OTHER),
        (grpc.StatusCode.INVALID_ARGUMENT, "[category must be 0-9] [x >= 0]", Fault.BAD_CATEGORY),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", Fault.DEADLINE),
        (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", Fault.UNREACHABLE),
        (grpc.StatusCode.UNAVAILABLE, "Socket closed", Fault.BUSY),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "Run() timeout exceeded", Fault.BUSY),
        (grpc.StatusCode.INTERNAL, "boom", Fault.OTHER),
    ],
)
def test_grpc_codes(code: grpc.StatusCode, details: str, fault: Fault) -> None:
    assert grpc_transport._fault(_Rpc(code, details)) is fault


@pytest.mark.parametrize(
    ("fault", "pin", "kind", "status", "retry", "unreachable"),
    [
        (Fault.NOT_FOUND, Pin(), NoVersion, 404, None, False),
        (Fault.NOT_FOUND, Pin(version=3), NotPinnable, 404, None, False),
        (Fault.NOT_FOUND, Pin(label="canary"), NotPinnable, 404, None, False),
        (Fault.UNKNOWN_LABEL, Pin(label="gold"), NotPinnable, 400, None, False),
        (Fault.UNKNOWN_LABEL, Pin(), UpstreamError, 502, None, False),  # no label was asked
        (Fault.BUSY, Pin(), UpstreamError, 503, 7, False),
        (Fault.UNREACHABLE, Pin(), UpstreamError, 503, 7, True),
        (Fault.BROKEN, Pin(), UpstreamError, 502, 7, False),
        (Fault.DEADLINE, Pin(), UpstreamError, 504, None, False),
        (Fault.OTHER, Pin(), UpstreamError, 502, None, False),
        (Fault.BAD_CATEGORY, Pin(), BadInput, 400, None, False),  # the caller's choice
    ],
)
def test_translate(
    fault: Fault, pin: Pin, kind: type, status: int, retry: Any, unreachable: bool
) -> None:
    err = translate(fault, "detail", pin, CONFIG)
    assert type(err) is kind and isinstance(err, ServingError)
    assert (err.status, err.retry_after, err.unreachable) == (status, retry, unreachable)
