"""Start-up and lifetime of the stand-in process (model_servers/main.cc + server.cc).

Run it as ``python -m tfserving_standin --port=8500 --rest_api_port=8501
--model_name=fashion_gan --model_base_path=/abs/models/fashion_gan`` or with
``--model_config_file=/abs/models.config``. Like the real server it refuses ``--port=0``
without ``--grpc_socket_path``, loads the configured models first and opens its ports only once
start-up loading is done (manager.py; contract, "Failure behaviour"); then it prints one line
``STANDIN READY rest=<port> grpc=<port>`` on stdout (``rest=0`` when REST is off, ``grpc=0``
with a UNIX socket only). A start-up failure prints ``Failed to start server. Error: ...`` on
stdout and exits 255, as the real server does. SIGTERM kills the process without draining
requests, again as in the real server.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Sequence

import tensorflow as tf

from . import batching, cli, model_config
from .aspired import ManagerSettings
from .errors import Code, ServingError
from .faults import Faults
from .grpc_service import GrpcServer
from .manager import ServableManager
from .rest import RestApi, RestServer

_log = logging.getLogger("tfserving_standin")
_DEFAULT_METRICS_PATH = "/monitoring/prometheus/metrics"


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname).1s %(name)s] %(message)s",
    )


def _configure_tensorflow(options: cli.Options) -> None:
    # Must run before the first op executes; 0 leaves TF's automatic choice.
    intra = options.tensorflow_intra_op_parallelism or options.tensorflow_session_parallelism
    inter = options.tensorflow_inter_op_parallelism or options.tensorflow_session_parallelism
    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)


def _metrics_path(monitoring_config_file: str) -> str | None:
    """The prometheus path if the monitoring config enables it (placeholder page only)."""
    if not monitoring_config_file:
        return None
    with open(monitoring_config_file, encoding="utf-8") as handle:
        text = handle.read()
    if not re.search(r"\benable\s*:\s*true\b", text):
        return None
    match = re.search(r"\bpath\s*:\s*[\"']([^\"']*)[\"']", text)
    return match.group(1) if match and match.group(1) else _DEFAULT_METRICS_PATH


def _initial_config(options: cli.Options) -> model_config.ModelServerConfig:
    if options.model_config_file:
        return model_config.read_config_file(options.model_config_file)
    return model_config.single_model_config(options.model_name, options.model_base_path)


def _poll_config_file(manager: ServableManager, path: str, interval_s: int) -> None:
    """server.cc PollFilesystemAndReloadConfig: re-read and re-apply the file every interval."""
    while True:
        threading.Event().wait(interval_s)
        try:
            config = model_config.read_config_file(path)
        except ServingError as exc:
            _log.error("Failed to read ModelServerConfig file: %s", exc.message)
            continue
        try:
            manager.reload_config(config)
        except ServingError as exc:
            _log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", exc.message)


def _batch_scheduler(options: cli.Options) -> batching.SharedBatchScheduler | None:
    """server.cc: --enable_batching reads --batching_parameters_file (TF's defaults without
    one); the file without the flag is an error."""
    if not options.enable_batching:
        if options.batching_parameters_file:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                "server_options.batching_parameters_file is set without setting "
                "server_options.enable_batching to true.",
            )
        return None
    params = batching.BatchingOptions()
    if options.batching_parameters_file:
        params = batching.read_options(options.batching_parameters_file)
    _log.info("Wrapping sessions to perform batch processing: %s", params)
    return batching.SharedBatchScheduler(params)


def _check_ports(options: cli.Options) -> None:
    """server.cc BuildAndStart, its first check: gRPC needs a port or a UNIX socket."""
    if options.port == 0 and not options.grpc_socket_path:
        raise ServingError(
            Code.INVALID_ARGUMENT,
            "At least one of server_options.grpc_port or server_options.grpc_socket_path "
            "must be set.",
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m tfserving_standin --help`` lists the flags."""
    options = cli.parse_options(sys.argv[1:] if argv is None else argv)
    _configure_logging()
    _configure_tensorflow(options)
    try:
        _check_ports(options)
        scheduler = _batch_scheduler(options)
    except ServingError as exc:
        print(f"Failed to start server. Error: {exc}", flush=True)
        return cli.EXIT_START_FAILURE
    faults = Faults()
    manager = ServableManager(
        ManagerSettings(
            file_system_poll_wait_seconds=options.file_system_poll_wait_seconds,
            max_num_load_retries=options.max_num_load_retries,
            load_retry_interval_s=options.load_retry_interval_micros / 1e6,
            enable_model_warmup=options.enable_model_warmup,
            allow_version_labels_for_unavailable_models=(
                options.allow_version_labels_for_unavailable_models
            ),
            batching=scheduler,
            on_run=faults.delay,
        )
    )
    try:
        config = _initial_config(options)
        manager.start_polling()
        manager.reload_config(config)  # blocks until the models are AVAILABLE (or failed)
        grpc_server = GrpcServer(
            manager,
            faults,
            host=options.host,
            port=options.port,
            tensor_content=options.enable_serialization_as_tensor_content,
            max_workers=options.grpc_max_threads or 32,
            socket_path=options.grpc_socket_path,
        )
        rest_server = None
        if options.rest_api_port > 0:
            api = RestApi(
                manager,
                faults,
                timeout_in_ms=options.rest_api_timeout_in_ms,
                metrics_path=_metrics_path(options.monitoring_config_file),
            )
            rest_server = RestServer(api, options.host, options.rest_api_port)
    except (ServingError, OSError) as exc:
        # main.cc writes this line to stdout.
        print(f"Failed to start server. Error: {exc}", flush=True)
        return cli.EXIT_START_FAILURE
    grpc_server.start()
    if rest_server is not None:
        rest_server.start()
    if options.model_config_file and options.model_config_file_poll_wait_seconds > 0:
        threading.Thread(
            target=_poll_config_file,
            args=(manager, options.model_config_file, options.model_config_file_poll_wait_seconds),
            name="standin-config-poll",
            daemon=True,
        ).start()
    rest_port = rest_server.port if rest_server is not None else 0
    if grpc_server.port:
        _log.info("Running gRPC ModelServer at %s:%d", options.host, grpc_server.port)
    if options.grpc_socket_path:
        _log.info("Running gRPC ModelServer at UNIX socket %s", options.grpc_socket_path)
    if rest_server is not None:
        _log.info("Exporting HTTP/REST API at %s:%d", options.host, rest_port)
    print(f"STANDIN READY rest={rest_port} grpc={grpc_server.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        manager.stop()
        grpc_server.stop()
        if rest_server is not None:
            rest_server.stop()
    return 0
