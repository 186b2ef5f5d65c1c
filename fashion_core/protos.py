"""TF Serving's and TensorFlow's generated protobuf modules, without TensorFlow.

``tensorflow_serving.apis`` imports ``tensorflow.core.framework.*_pb2``; importing any
``tensorflow.*`` module runs ``tensorflow/__init__.py``, which loads all of TensorFlow (about
600 MB and 5 s) although the gRPC client needs only the message classes. So, when TensorFlow is
not loaded yet, the package ``tensorflow`` is stood in for by an empty module whose search path is
the real package folder for the length of these imports: the ``_pb2`` files (plain protobuf code)
load from there, ``__init__`` does not run, and the stand-in is removed again, so a later
``import tensorflow`` in the same process works as usual.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any


def _import_protos() -> dict[str, Any]:
    from google.protobuf import wrappers_pb2
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    return {
        "wrappers_pb2": wrappers_pb2,
        "tensor_pb2": tensor_pb2,
        "tensor_shape_pb2": tensor_shape_pb2,
        "types_pb2": types_pb2,
        "get_model_metadata_pb2": get_model_metadata_pb2,
        "get_model_status_pb2": get_model_status_pb2,
        "model_pb2": model_pb2,
        "model_service_pb2_grpc": model_service_pb2_grpc,
        "predict_pb2": predict_pb2,
        "prediction_service_pb2_grpc": prediction_service_pb2_grpc,
    }


def load() -> types.SimpleNamespace:
    if "tensorflow" in sys.modules:
        return types.SimpleNamespace(**_import_protos())
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the gRPC backend needs the tensorflow package's proto modules")
    stand_in = types.ModuleType("tensorflow")
    stand_in.__path__ = list(spec.submodule_search_locations)
    sys.modules["tensorflow"] = stand_in
    try:
        return types.SimpleNamespace(**_import_protos())
    finally:
        if sys.modules.get("tensorflow") is stand_in:
            del sys.modules["tensorflow"]
