"""Predict, shared by REST and gRPC (servables/tensorflow/predict_util.cc RunPredict).

REST converts its JSON into a ``PredictRequest`` first and back afterwards, exactly like the real
``HttpRestApiHandler``, so both front ends validate and fail in the same order with the same codes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2

from . import tensor_proto
from .errors import TIMED_OUT, Code, ServingError
from .servable import LoadedServable

DEFAULT_SIGNATURE = "serving_default"
_PREDICT_METHODS = (
    "tensorflow/serving/predict",
    "tensorflow/serving/classify",
    "tensorflow/serving/regress",
)

# Model calls that carry a deadline run here so the caller can give up on time (REST answers 504
# after --rest_api_timeout_in_ms) while the call itself finishes in the background, as a real
# session run would. With batching the batch thread applies the deadline instead.
_executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="standin-model")


class Resolver(Protocol):
    """What Predict needs from the servable manager."""

    def resolve(self, spec: model_pb2.ModelSpec) -> LoadedServable: ...


def _join(keys: Iterable[str]) -> str:
    return ",".join(sorted(keys))


def _check_inputs(
    signature: meta_graph_pb2.SignatureDef, request: predict_pb2.PredictRequest
) -> None:
    sig_inputs = set(signature.inputs)
    sent = set(request.inputs)
    if len(sent) != len(sig_inputs):
        raise ServingError(
            Code.INVALID_ARGUMENT,
            f"input size does not match signature: {len(sent)}!={len(sig_inputs)} "
            f"len({{{_join(sent)}}}) != len({{{_join(sig_inputs)}}}). "
            f"Sent extra: {{{_join(sent - sig_inputs)}}}. "
            f"Missing but required: {{{_join(sig_inputs - sent)}}}.",
        )


def _decode_inputs(
    signature: meta_graph_pb2.SignatureDef, request: predict_pb2.PredictRequest
) -> dict[str, np.ndarray]:
    sig_inputs = signature.inputs
    arrays: dict[str, np.ndarray] = {}
    for alias, proto in request.inputs.items():
        if alias not in sig_inputs:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"input tensor alias not found in signature: {alias}. "
                f"Inputs expected to be in the set {{{_join(sig_inputs)}}}.",
            )
        try:
            arrays[alias] = tensor_proto.to_ndarray(proto)
        except Exception as exc:
            raise ServingError(Code.INVALID_ARGUMENT, f"tensor parsing error: {alias}") from exc
    return arrays


def _output_aliases(
    signature: meta_graph_pb2.SignatureDef, request: predict_pb2.PredictRequest
) -> list[str]:
    sig_outputs = signature.outputs
    seen: list[str] = []
    for alias in request.output_filter:
        if alias not in sig_outputs:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{_join(sig_outputs)}}}.",
            )
        if alias in seen:
            raise ServingError(Code.INVALID_ARGUMENT, f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return seen or sorted(sig_outputs)


def _run(
    servable: LoadedServable,
    signature_name: str,
    arrays: Mapping[str, np.ndarray],
    timeout_s: float | None,
    before_run: Callable[[], None] | None,
) -> dict[str, np.ndarray]:
    def task() -> dict[str, np.ndarray]:
        if before_run is not None:
            before_run()
        return servable.call(signature_name, arrays)

    if servable.batched:
        # batching_session.cc Run: the task waits for its batch with no deadline of its own;
        # the batch thread applies the timeout (RESOURCE_EXHAUSTED in the queue, else the
        # session run's DEADLINE_EXCEEDED).
        if before_run is not None:
            before_run()
        return servable.call(signature_name, arrays, timeout_s)
    if timeout_s is None:
        return task()
    if timeout_s <= 0:
        raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline Exceeded")
    future = _executor.submit(task)
    try:
        return future.result(timeout=timeout_s)
    except TimeoutError:
        raise ServingError(Code.DEADLINE_EXCEEDED, TIMED_OUT) from None


def predict_with_servable(
    servable: LoadedServable,
    request: predict_pb2.PredictRequest,
    *,
    tensor_content: bool,
    timeout_s: float | None = None,
    before_run: Callable[[], None] | None = None,
) -> predict_pb2.PredictResponse:
    """Run ``request`` on an already resolved servable (also used by warmup)."""
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = servable.signature_defs.get(signature_name)
    if signature is None:
        # Contract: unknown signature in gRPC Predict -> FAILED_PRECONDITION.
        raise ServingError(
            Code.FAILED_PRECONDITION, f'Serving signature key "{signature_name}" not found.'
        )
    if signature.method_name not in _PREDICT_METHODS:
        raise ServingError(
            Code.INTERNAL,
            "Expected prediction signature method_name to be one of {"
            + ", ".join(_PREDICT_METHODS)
            + f"}}. Was: {signature.method_name}",
        )
    _check_inputs(signature, request)
    arrays = _decode_inputs(signature, request)
    aliases = _output_aliases(signature, request)
    outputs = _run(servable, signature_name, arrays, timeout_s, before_run)

    response = predict_pb2.PredictResponse()
    # Contract: the response echoes model_spec with the version actually served.
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = signature_name
    for alias in aliases:
        response.outputs[alias].CopyFrom(
            tensor_proto.from_ndarray(outputs[alias], as_content=tensor_content)
        )
    return response


def run_predict(
    resolver: Resolver,
    request: predict_pb2.PredictRequest,
    *,
    tensor_content: bool,
    timeout_s: float | None = None,
    servable: LoadedServable | None = None,
    before_run: Callable[[], None] | None = None,
) -> predict_pb2.PredictResponse:
    """TensorflowPredictor::Predict: resolve the servable (unless given) and run the request."""
    if not request.HasField("model_spec"):
        raise ServingError(Code.INVALID_ARGUMENT, "Missing ModelSpec")
    if servable is None:
        servable = resolver.resolve(request.model_spec)
    return predict_with_servable(
        servable, request, tensor_content=tensor_content, timeout_s=timeout_s, before_run=before_run
    )
