"""Command line of the stand-in: the subset of ``tensorflow_model_server`` flags it honours.

Flags are spelled and defaulted as in tensorflow_serving/model_servers/main.cc so the same command
line works for both servers. Booleans accept TF's forms: ``--flag``, ``--flag=true|false|1|0``.
Flags that only the stand-in has are marked "stand-in only" in their help text.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

# Exit status of tensorflow_model_server when it cannot start (main() returns -1).
EXIT_START_FAILURE = 255


@dataclass(frozen=True)
class Options:
    """Parsed flags; field names are the flag names."""

    port: int = 8500
    grpc_socket_path: str = ""
    rest_api_port: int = 0
    host: str = "127.0.0.1"
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: int = 1
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    rest_api_timeout_in_ms: int = 30_000
    rest_api_num_threads: int = 0
    enable_model_warmup: bool = True
    enable_serialization_as_tensor_content: bool = False
    allow_version_labels_for_unavailable_models: bool = False
    enable_batching: bool = False
    batching_parameters_file: str = ""
    monitoring_config_file: str = ""
    tensorflow_session_parallelism: int = 0
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    grpc_max_threads: int = 0


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # tensorflow_model_server prints its usage and exits 255 on a bad command line.
        self.print_usage(sys.stderr)
        self.exit(EXIT_START_FAILURE, f"{self.prog}: error: {message}\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m tfserving_standin",
        allow_abbrev=False,  # TF flags are never abbreviated
        description="TensorFlow Serving stand-in for tests (REST + gRPC over real SavedModels).",
    )
    d = Options()
    ints: list[tuple[str, int, str]] = [
        ("port", d.port, "gRPC port; 0 = no TCP port (then --grpc_socket_path is required)"),
        ("rest_api_port", d.rest_api_port, "REST port; 0 = REST off (as in the real server)"),
        ("model_config_file_poll_wait_seconds", d.model_config_file_poll_wait_seconds,
         "re-read --model_config_file every N s; 0 = read once"),
        ("file_system_poll_wait_seconds", d.file_system_poll_wait_seconds,
         "poll base paths every N s; 0 = poll once; negative = never"),
        ("max_num_load_retries", d.max_num_load_retries, "retries after a failed version load"),
        ("load_retry_interval_micros", d.load_retry_interval_micros, "pause between load retries"),
        ("rest_api_timeout_in_ms", d.rest_api_timeout_in_ms, "REST predict timeout; <=0 = none"),
        ("rest_api_num_threads", d.rest_api_num_threads, "accepted, ignored (thread per request)"),
        ("tensorflow_session_parallelism", d.tensorflow_session_parallelism, "TF thread pools"),
        ("tensorflow_intra_op_parallelism", d.tensorflow_intra_op_parallelism, "TF intra-op pool"),
        ("tensorflow_inter_op_parallelism", d.tensorflow_inter_op_parallelism, "TF inter-op pool"),
        ("grpc_max_threads", d.grpc_max_threads, "gRPC worker threads; 0 = default"),
    ]  # fmt: skip
    for name, default, help_text in ints:
        parser.add_argument(f"--{name}", type=int, default=default, help=help_text)
    strings: list[tuple[str, str, str]] = [
        ("host", d.host, "stand-in only: address both servers bind (real: 0.0.0.0)"),
        ("grpc_socket_path", d.grpc_socket_path, "also serve gRPC on this UNIX socket"),
        ("model_name", d.model_name, "model name when --model_config_file is not given"),
        ("model_base_path", d.model_base_path, "absolute base path of the model's version dirs"),
        ("model_config_file", d.model_config_file, "text ModelServerConfig (model_config_list)"),
        (
            "batching_parameters_file",
            d.batching_parameters_file,
            "text BatchingParameters for --enable_batching",
        ),
        ("monitoring_config_file", d.monitoring_config_file, "prometheus path (placeholder page)"),
    ]
    for name, default_text, help_text in strings:
        parser.add_argument(f"--{name}", type=str, default=default_text, help=help_text)
    bools: list[tuple[str, bool, str]] = [
        ("enable_model_warmup", d.enable_model_warmup, "replay assets.extra warmup requests"),
        ("enable_serialization_as_tensor_content", d.enable_serialization_as_tensor_content,
         "gRPC Predict answers with tensor_content instead of typed *_val fields"),
        ("allow_version_labels_for_unavailable_models",
         d.allow_version_labels_for_unavailable_models,
         "allow new labels on versions that are not AVAILABLE"),
        ("enable_batching", d.enable_batching,
         "batch concurrent requests (limits, padding and queue as the real scheduler)"),
    ]  # fmt: skip
    for name, default_flag, help_text in bools:
        parser.add_argument(
            f"--{name}", type=_parse_bool, nargs="?", const=True, default=default_flag,
            help=help_text,
        )  # fmt: skip
    return parser


def parse_options(argv: Sequence[str]) -> Options:
    """Parse ``argv`` (without the program name); exits 255 on a bad command line."""
    parser = _build_parser()
    ns, unknown = parser.parse_known_args(list(argv))
    if unknown:
        # The real server only prints "unknown argument" and carries on; flags the stand-in does
        # not emulate (e.g. --grpc_channel_arguments) are therefore ignored, loudly.
        print(f"stand-in: ignoring unknown arguments: {' '.join(unknown)}", file=sys.stderr)
    options = Options(**vars(ns))
    # main.cc: one of the two ways to name models is required.
    if not options.model_config_file and not options.model_base_path:
        parser.error("Both --model_base_path and --model_config_file are empty!")
    if options.rest_api_port != 0 and options.rest_api_port == options.port:
        parser.error("--port and --rest_api_port cannot be the same")
    return options
