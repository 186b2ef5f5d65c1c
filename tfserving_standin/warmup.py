"""SavedModel warmup: replay ``assets.extra/tf_serving_warmup_requests`` right after a load.

Follows servables/tensorflow/saved_model_warmup_util.cc: the file is a TFRecord of
``PredictionLog``; each record runs once; more than 1000 records or a failing request fails the
load. Only ``predict_log`` records are replayed (the stand-in has no Classify, Regress or
MultiInference); other kinds fail the load with UNIMPLEMENTED rather than being skipped silently.
"""

from __future__ import annotations

import logging
import os
import time

import tensorflow as tf
from google.protobuf import message
from tensorflow_serving.apis import prediction_log_pb2

from .errors import Code, ServingError
from .predict import predict_with_servable
from .servable import LoadedServable

WARMUP_RELATIVE_PATH = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000

_log = logging.getLogger("tfserving_standin.warmup")


def run_warmup(servable: LoadedServable) -> int:
    """Replay the warmup file of ``servable`` if it has one; returns the number of records."""
    path = os.path.join(servable.path, WARMUP_RELATIVE_PATH)
    if not os.path.exists(path):
        return 0
    count = 0
    started = time.monotonic()
    try:
        for record in tf.compat.v1.io.tf_record_iterator(path):
            log = prediction_log_pb2.PredictionLog()
            try:
                log.ParseFromString(record)
            except message.DecodeError as exc:
                raise ServingError(
                    Code.INVALID_ARGUMENT, f"Failed to parse warmup record: {record!r} from {path}"
                ) from exc
            kind = log.WhichOneof("log_type")
            if kind != "predict_log":
                raise ServingError(
                    Code.UNIMPLEMENTED, f"stand-in: unsupported log_type for warmup: {kind}"
                )
            predict_with_servable(servable, log.predict_log.request, tensor_content=False)
            count += 1
            if count > MAX_RECORDS:
                raise ServingError(
                    Code.INVALID_ARGUMENT,
                    f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}",
                )
    except tf.errors.OpError as exc:
        raise ServingError(
            Code(exc.error_code),
            f"{exc.message}. Please verify your warmup data is in TFRecord format.",
        ) from exc
    _log.info(
        "Finished reading warmup data for model at %s. Number of warmup records read: %d. "
        "Elapsed time (microseconds): %d.",
        path, count, int((time.monotonic() - started) * 1e6),
    )  # fmt: skip
    return count
