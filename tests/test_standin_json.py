"""In-process unit tests of the TF Serving stand-in's JSON modules (no server): the dtype rules
that the project's float-only signature cannot reach over HTTP, and WriteDecimal's floats
(util/json_tensor.cc)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2

from tfserving_standin import json_request, json_response, json_values
from tfserving_standin.errors import Code, ServingError


@pytest.mark.parametrize(
    ("value", "single", "text"),
    [(3.0, True, "3.0"), (9e6, True, "9e+06"), (3e-5, True, "3e-05"), (0.5, False, "0.5"),
     (math.nan, True, "NaN"), (-math.inf, False, "-Infinity"),
     (float(np.float32(0.1)), True, "0.1"), (float(np.float32(1 / 3)), True, "0.333333343")],
)  # fmt: skip
def test_float_printing(value: float, single: bool, text: str) -> None:
    assert json_values.format_float(value, single=single) == text


def test_json_dtype_rules() -> None:
    ints = {"x": types_pb2.DT_INT32}
    with pytest.raises(ServingError) as info:
        json_request.tensors_from_request({"instances": [1.0]}, "", ints)
    assert info.value.code == Code.INVALID_ARGUMENT
    assert "is not of expected type: int32" in info.value.message
    tensors, fmt = json_request.tensors_from_request({"instances": [1, 2]}, "", ints)
    assert fmt is json_values.RequestFormat.ROW and tensors["x"].tolist() == [1, 2]
    strings = {"s": types_pb2.DT_STRING}
    decoded, _ = json_request.tensors_from_request({"inputs": [{"b64": "aGk="}, "yo"]}, "", strings)
    assert decoded["s"].tolist() == [b"hi", b"yo"]
    with pytest.raises(ServingError):
        json_request.tensors_from_request(
            {"inputs": [{"b64": "aGk="}]}, "", {"f": types_pb2.DT_FLOAT}
        )
    with pytest.raises(ServingError) as lossy:
        json_request.tensors_from_request({"inputs": [2**24 + 1]}, "", {"f": types_pb2.DT_FLOAT})
    assert "without loss of precision" in lossy.value.message
    two: dict[str, np.ndarray] = {
        "a": np.zeros((2, 1), np.float32),
        "b": np.array([1, 2], np.int64),
    }
    assert json.loads(json_response.response_json(two, json_values.RequestFormat.ROW)) == {
        "predictions": [{"a": [0.0], "b": 1}, {"a": [0.0], "b": 2}]
    }
    assert json.loads(json_response.response_json(two, json_values.RequestFormat.COLUMNAR)) == {
        "outputs": {"a": [[0.0], [0.0]], "b": [1, 2]}
    }
