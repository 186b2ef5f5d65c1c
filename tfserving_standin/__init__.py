"""A TensorFlow Serving stand-in for tests and benchmarks: real SavedModels, the real REST and
gRPC contract.

It implements the REST and gRPC contract of TF Serving 2.20/2.21 as tensorflow/serving's sources
have it (each module names the files it follows).
Run it like ``tensorflow_model_server``::

    python -m tfserving_standin --port=8500 --rest_api_port=8501 \\
        --model_name=fashion_gan --model_base_path=/abs/path/models/fashion_gan
    python -m tfserving_standin --port=8500 --rest_api_port=8501 \\
        --model_config_file=/abs/path/models.config --model_config_file_poll_wait_seconds=1

It prints ``STANDIN READY rest=<port> grpc=<port>`` once serving; tests and benchmarks start it
through ``tfserving_standin.harness.StandIn``. It imports neither ``gateway`` nor ``fashion_gan``.

Modules, one job each:

- ``cli``: flags (spelled as in the real server) -> ``Options``.
- ``errors``: TF error codes, ``ServingError``, mapping to HTTP / gRPC status.
- ``model_config``: reading and validating ``ModelServerConfig``.
- ``versions``: version dirs under a base path and the version policy.
- ``servable``: one loaded SavedModel version (signatures, thread-safe calls).
- ``warmup``: replaying ``assets.extra/tf_serving_warmup_requests``.
- ``table``: the version table; ``aspired``: polling, load/unload policy, loads;
  ``manager``: requests to servables, labels, config (re)loads.
- ``batching`` (with ``config_protos``): --enable_batching's scheduler, limits and deadlines.
- ``predict`` / ``status`` / ``metadata``: the APIs, protocol-independent (proto in, proto out).
- ``tensor_proto``: tensors <-> TensorProto; ``json_request`` / ``json_response`` (with
  ``json_values``): REST JSON -> tensors -> JSON.
- ``rest`` / ``grpc_service``: the two front ends.
- ``faults``: STAND-IN ONLY latency / error injection (env ``STANDIN_*``), off by default.
- ``server``: process start-up, READY line, lifetime.
- ``harness``: starting it (and other child processes) from tests and benchmarks.
"""
