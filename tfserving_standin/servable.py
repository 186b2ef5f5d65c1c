"""One loaded SavedModel version: its SignatureDefs and a thread-safe way to run a signature.

Metadata comes from the MetaGraphDef tagged ``serve`` in saved_model.pb (the same SignatureDefs TF
Serving reports, ``__saved_model_init_op`` included); execution goes through
``tf.saved_model.load(...).signatures[name]``, whose concrete functions may be called from many
threads at once, so no lock is needed around model calls.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf
from google.protobuf import message, text_format
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from .errors import TIMED_OUT, Code, ServingError

if TYPE_CHECKING:
    from .batching import SharedBatchScheduler

SERVE_TAG = "serve"


def _read_meta_graph(path: str) -> meta_graph_pb2.MetaGraphDef:
    """The MetaGraphDef whose tag set is exactly {serve}, as the C++ loader selects it."""
    pb_path = os.path.join(path, "saved_model.pb")
    pbtxt_path = os.path.join(path, "saved_model.pbtxt")
    saved_model = saved_model_pb2.SavedModel()
    if os.path.isfile(pb_path):
        try:
            with open(pb_path, "rb") as handle:
                saved_model.ParseFromString(handle.read())
        except message.DecodeError as exc:
            raise ServingError(Code.DATA_LOSS, f"Can't parse {pb_path} as binary proto") from exc
    elif os.path.isfile(pbtxt_path):
        try:
            with open(pbtxt_path, encoding="utf-8") as handle:
                text_format.Parse(handle.read(), saved_model)
        except (text_format.ParseError, UnicodeDecodeError) as exc:
            raise ServingError(Code.DATA_LOSS, f"Can't parse {pbtxt_path} as text proto") from exc
    else:
        raise ServingError(
            Code.NOT_FOUND,
            "Could not find SavedModel .pb or .pbtxt at supplied export directory path: "
            f"{path}. Check that the directory exists and that you have the right permissions "
            "for accessing it.",
        )
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == {SERVE_TAG}:
            return meta_graph
    raise ServingError(
        Code.NOT_FOUND,
        "Could not find meta graph def matching supplied tags: { serve }. To inspect available "
        "tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`",
    )


def error_from_exception(exc: Exception) -> ServingError:
    """Turn a TensorFlow/Python exception raised by a model call or load into a TF status."""
    if isinstance(exc, ServingError):
        return exc
    if isinstance(exc, tf.errors.OpError):
        return ServingError(Code(exc.error_code), exc.message)
    if isinstance(exc, (TypeError, ValueError)):
        # Raised by the function wrapper before any kernel ran (e.g. an input of the wrong rank);
        # the C++ server reports such feeds as INVALID_ARGUMENT.
        return ServingError(Code.INVALID_ARGUMENT, str(exc))
    return ServingError(Code.UNKNOWN, f"{type(exc).__name__}: {exc}")


class LoadedServable:
    """A loaded version of a model. Immutable after construction."""

    def __init__(
        self,
        name: str,
        version: int,
        path: str,
        meta_graph: meta_graph_pb2.MetaGraphDef,
        loaded: Any,
        batching: SharedBatchScheduler | None = None,
        on_run: Callable[[float | None], None] | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.signature_defs: Mapping[str, meta_graph_pb2.SignatureDef] = dict(
            meta_graph.signature_def
        )
        # Keep the loaded object alive: the concrete functions reference its variables.
        self._loaded = loaded
        self._functions: Mapping[str, Any] = dict(loaded.signatures)
        self._batching = batching
        self._on_run = on_run  # stand-in only: the injected delay of a slow model

    @classmethod
    def load(
        cls,
        name: str,
        version: int,
        path: str,
        batching: SharedBatchScheduler | None = None,
        on_run: Callable[[float | None], None] | None = None,
    ) -> LoadedServable:
        """Load ``path``; raises ServingError with the code a failed load reports. With
        ``batching``, every call goes through the shared batch scheduler (as the real server
        wraps the session of each version for batching)."""
        meta_graph = _read_meta_graph(path)
        if batching is not None:
            batching.options.check()
        try:
            loaded = tf.saved_model.load(path, tags=[SERVE_TAG])
        except Exception as exc:
            raise error_from_exception(exc) from exc
        return cls(name, version, path, meta_graph, loaded, batching, on_run)

    def has_function(self, signature_name: str) -> bool:
        """Whether ``signature_name`` can be executed (``__saved_model_init_op`` cannot)."""
        return signature_name in self._functions

    @property
    def batched(self) -> bool:
        """Whether runs go through the batch scheduler (--enable_batching)."""
        return self._batching is not None

    def call(
        self,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Run one signature on already validated inputs; returns every output alias.

        ``timeout_s`` is RunOptions.timeout_in_ms: with batching it is the task's deadline in
        the queue (batching_session.cc); without, the caller enforces it (predict._run)."""
        if self._batching is None or signature_name not in self._functions:
            return self.call_unbatched(signature_name, inputs)
        return self._batching.run(self, signature_name, inputs, timeout_s)

    def call_unbatched(
        self,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        """One model run of exactly these rows; past ``timeout_s`` it fails with
        DEADLINE_EXCEEDED, as a session run with RunOptions.timeout_in_ms does."""
        started = time.monotonic()
        if self._on_run is not None:
            self._on_run(timeout_s)
        function = self._functions.get(signature_name)
        if function is None:
            raise ServingError(
                Code.FAILED_PRECONDITION,
                f'Serving signature key "{signature_name}" not found.',
            )
        try:
            outputs = function(
                **{alias: tf.convert_to_tensor(arr) for alias, arr in inputs.items()}
            )
            result = {alias: tensor.numpy() for alias, tensor in outputs.items()}
        except Exception as exc:
            raise error_from_exception(exc) from exc
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise ServingError(Code.DEADLINE_EXCEEDED, TIMED_OUT)
        return result
