"""The gRPC API: ``tensorflow.serving.PredictionService`` and ``tensorflow.serving.ModelService``.

Status codes follow the contract's gRPC section (NOT_FOUND for unknown model/version or nothing
AVAILABLE, INVALID_ARGUMENT for bad labels and inputs, FAILED_PRECONDITION for an unknown signature
in Predict). Classify, Regress and MultiInference are not implemented (UNIMPLEMENTED).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures
from typing import Any, NoReturn, TypeVar

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from . import metadata, predict, status
from .errors import Code, ServingError, grpc_status
from .faults import Faults
from .manager import ServableManager

_log = logging.getLogger("tfserving_standin.grpc")
_T = TypeVar("_T")
_NO_DEADLINE_S = 10 * 365 * 24 * 3600.0


def _abort(context: Any, error: ServingError) -> NoReturn:
    context.abort(grpc_status(error.code), error.message)
    raise AssertionError("context.abort returned")  # pragma: no cover


def _answer(context: Any, what: str, call: Callable[[], _T]) -> _T:
    try:
        return call()
    except ServingError as exc:
        _log.debug("%s failed: %s", what, exc)
        _abort(context, exc)
    except Exception as exc:  # a stand-in bug must still answer, and visibly
        _log.exception("%s: internal error", what)
        _abort(context, ServingError(Code.INTERNAL, f"stand-in internal error: {exc!r}"))


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
    """Predict and GetModelMetadata."""

    def __init__(self, manager: ServableManager, faults: Faults, *, tensor_content: bool) -> None:
        self._manager = manager
        self._faults = faults
        self._tensor_content = tensor_content

    def Predict(
        self, request: predict_pb2.PredictRequest, context: Any
    ) -> predict_pb2.PredictResponse:
        # main.cc turns the client deadline into the session timeout. Without a deadline grpcio
        # reports a huge remaining time, too large for a thread wait: treat it as "none".
        remaining = context.time_remaining()
        timeout = None if remaining is None or remaining > _NO_DEADLINE_S else float(remaining)
        return _answer(
            context,
            "Predict",
            lambda: predict.run_predict(
                self._manager,
                request,
                tensor_content=self._tensor_content,
                timeout_s=timeout,
                before_run=self._faults.check_error,
            ),
        )

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: Any
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        return _answer(
            context, "GetModelMetadata", lambda: metadata.get_model_metadata(self._manager, request)
        )


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]
    """GetModelStatus and HandleReloadConfigRequest."""

    def __init__(self, manager: ServableManager) -> None:
        self._manager = manager

    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: Any
    ) -> get_model_status_pb2.GetModelStatusResponse:
        return _answer(
            context, "GetModelStatus", lambda: status.get_model_status(self._manager, request)
        )

    def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: Any
    ) -> model_management_pb2.ReloadConfigResponse:
        """Replace the whole config (model_service_impl.cc).

        As in the real server a failure is returned as the RPC status (e.g. FAILED_PRECONDITION
        when a label points at a version that is not AVAILABLE); gRPC does not deliver the
        response message, so the ``status`` field is only seen on success (error_code OK).
        """

        def reload() -> model_management_pb2.ReloadConfigResponse:
            if not request.config.HasField("model_config_list"):
                raise ServingError(
                    Code.INVALID_ARGUMENT,
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                    "ModelConfigList is currently supported",
                )
            for index, model in enumerate(request.config.model_config_list.config):
                _log.info(
                    "Config entry index: %d path: %s name: %s platform: %s",
                    index, model.base_path, model.name, model.model_platform,
                )  # fmt: skip
            try:
                self._manager.reload_config(request.config)
            except ServingError as exc:
                _log.error("ReloadConfig failed: %s", exc.message)
                raise
            response = model_management_pb2.ReloadConfigResponse()
            response.status.error_code = int(Code.OK)
            return response

        return _answer(context, "HandleReloadConfigRequest", reload)


class GrpcServer:
    """A grpcio server with both services on ``host:port`` (port 0: none) and/or the UNIX
    socket ``socket_path`` (server.cc BuildAndStart: one of the two is required)."""

    def __init__(
        self,
        manager: ServableManager,
        faults: Faults,
        *,
        host: str,
        port: int,
        tensor_content: bool,
        max_workers: int,
        socket_path: str = "",
    ) -> None:
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="standin-grpc"),
            options=[
                # main.cc: SetMaxMessageSize(kint32max) in both directions.
                ("grpc.max_receive_message_length", -1),
                ("grpc.max_send_message_length", -1),
                # Fail on a port that is in use instead of sharing it silently.
                ("grpc.so_reuseport", 0),
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(manager, faults, tensor_content=tensor_content), self._server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelServicer(manager), self._server
        )
        self.port = 0
        if port != 0:
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            bound = self._server.add_insecure_port(address)
            if not bound:
                raise OSError(f"could not bind gRPC port {address}")
            self.port = int(bound)
        if socket_path and not self._server.add_insecure_port(f"unix:{socket_path}"):
            raise OSError(f"could not bind gRPC UNIX socket {socket_path}")

    def start(self) -> None:
        """Start serving."""
        self._server.start()

    def stop(self) -> None:
        """Stop immediately (in-flight RPCs are cancelled, like the real server on SIGTERM)."""
        self._server.stop(grace=None)
