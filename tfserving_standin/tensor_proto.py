"""numpy <-> ``tensorflow.TensorProto`` in the two encodings TF Serving uses.

Requests may carry typed ``*_val`` fields or ``tensor_content``; responses use the typed fields by
default (``Tensor::AsProtoField``) and ``tensor_content`` with
``--enable_serialization_as_tensor_content`` (``Tensor::AsProtoTensorContent``).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from .errors import Code, ServingError

# dtype enum -> name of the repeated field Tensor::AsProtoField fills.
_VAL_FIELD: dict[int, str] = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_BFLOAT16: "half_val",
}


def to_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Decode a request tensor; ValueError/TypeError on a malformed proto."""
    return np.asarray(tf.make_ndarray(proto))


def from_ndarray(arr: np.ndarray, *, as_content: bool) -> tensor_pb2.TensorProto:
    """Encode a response tensor the way TF Serving does."""
    if as_content or arr.dtype == object:
        # make_tensor_proto writes tensor_content for numeric dtypes and string_val for strings.
        return tf.make_tensor_proto(arr)
    dtype = tf.dtypes.as_dtype(arr.dtype).as_datatype_enum
    field = _VAL_FIELD.get(dtype)
    if field is None:
        raise ServingError(
            Code.UNIMPLEMENTED, f"Cannot encode tensor of dtype {arr.dtype} as typed values"
        )
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in arr.shape:
        proto.tensor_shape.dim.add(size=size)
    flat = arr.ravel()
    if field == "half_val":
        # Half and bfloat16 travel as their raw 16-bit patterns in an int field.
        flat = flat.view(np.uint16)
    getattr(proto, field).extend(flat.tolist())
    return proto
