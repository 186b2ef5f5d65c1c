"""Tensors -> JSON for the REST predict API (util/json_tensor.cc MakeJsonFromTensors).

``{"predictions": ...}`` answers row requests, ``{"outputs": ...}`` columnar ones; with one
output its name is left out. Floats are printed as json_values.format_floats does.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence

import numpy as np

from .json_values import RequestFormat, format_floats, invalid, json_key


def _format_values(name: str, arr: np.ndarray) -> list[str]:
    flat = arr.ravel()
    kind = arr.dtype.kind
    if arr.dtype in (np.float32, np.float16):
        return format_floats(flat, single=True)
    if arr.dtype == np.float64:
        return format_floats(flat, single=False)
    if kind == "b":
        return ["true" if v else "false" for v in flat.tolist()]
    if kind in "iu":
        return [str(v) for v in flat.tolist()]
    if kind in "OSU":
        # Outputs whose alias ends in "_bytes" are binary: {"b64": ...} (IsNamedTensorBytes).
        as_bytes = name.endswith("_bytes")
        texts = []
        for item in flat.tolist():
            raw = item if isinstance(item, bytes) else str(item).encode("utf-8")
            if as_bytes:
                texts.append('{"b64": "' + base64.b64encode(raw).decode("ascii") + '"}')
            else:
                texts.append(json.dumps(raw.decode("utf-8", "replace"), ensure_ascii=False))
        return texts
    raise invalid(f"Failed to write JSON value for tensor type: {arr.dtype}")


def _nest(items: list[str], shape: Sequence[int], levels: int) -> list[str]:
    # Group the innermost `levels` dimensions of a flat, row-major list into JSON arrays.
    for axis in range(len(shape) - 1, len(shape) - 1 - levels, -1):
        size = shape[axis]
        groups = math.prod(shape[:axis])
        items = ["[" + ",".join(items[g * size : (g + 1) * size]) + "]" for g in range(groups)]
    return items


def _nested_json(name: str, arr: np.ndarray, *, levels: int) -> list[str]:
    return _nest(_format_values(name, arr), arr.shape, levels)


def response_json(outputs: Mapping[str, np.ndarray], request_format: RequestFormat) -> str:
    """MakeJsonFromTensors: the response body for a predict request."""
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if request_format is RequestFormat.COLUMNAR:
        columns = {n: _nested_json(n, outputs[n], levels=outputs[n].ndim)[0] for n in names}
        if len(names) == 1:
            return '{"outputs": ' + columns[names[0]] + "}"
        return '{"outputs": {' + ",".join(f"{json_key(n)}: {columns[n]}" for n in names) + "}}"
    batch = -1
    for n in names:
        arr = outputs[n]
        if arr.ndim == 0:
            raise invalid(f"Tensor name: {n} has no shape information ")
        if batch >= 0 and arr.shape[0] != batch:
            raise invalid(
                f"Tensor name: {n} has inconsistent batch size: {arr.shape[0]} expecting: {batch}"
            )
        batch = arr.shape[0]
    # Row format: one element per batch entry, the batch dimension itself is not nested.
    rows = {n: _nested_json(n, outputs[n], levels=outputs[n].ndim - 1) for n in names}
    if len(names) == 1:
        items = rows[names[0]]
    else:
        items = [
            "{" + ",".join(f"{json_key(n)}: {rows[n][i]}" for n in names) + "}"
            for i in range(batch)
        ]
    return '{"predictions": [' + ",".join(items) + "]}"
