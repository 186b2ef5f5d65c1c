"""assets.extra/tf_serving_warmup_requests: predict requests TF Serving replays at load, so the
first real request does not pay for graph initialisation (contract: Warmup)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from fashion_core.contract import CATEGORY, INPUT, SIGNATURE

WARMUP_FILE = "tf_serving_warmup_requests"
# a single row, and every allowed batch size of serving_config/batching.config (a test checks
# they agree): with batching on, TF Serving runs only those sizes, so each is warm at load
WARMUP_BATCHES = (1, 9, 18, 36, 72)


def write_warmup(
    assets_extra: Path, model_name: str, latent_dim: int, num_classes: int = 0
) -> Path:
    """One request per batch size; a conditional version's (``num_classes`` > 0) carry both
    inputs, categories int64 in 0..num_classes-1."""
    path = assets_extra / WARMUP_FILE
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for n in WARMUP_BATCHES:
            z = rng.standard_normal((n, latent_dim)).astype(np.float32)
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SIGNATURE)
            )
            request.inputs[INPUT].CopyFrom(tf.make_tensor_proto(z))
            if num_classes:
                categories = np.arange(n, dtype=np.int64) % num_classes
                request.inputs[CATEGORY].CopyFrom(tf.make_tensor_proto(categories))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path
