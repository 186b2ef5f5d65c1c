"""The TF Serving text protos in serving_config/ parse as the server's own messages.

    .venv/bin/pytest tests/test_serving_config.py -q

models.config is parsed with ModelServerConfig from the tensorflow-serving-api wheel. The wheel has
no module for the batching and monitoring messages, so serving_config/protos/ declares them and
grpc_tools.protoc (dev extra) compiles them into a descriptor set for this test.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

import serving_config
from tfserving_standin.config_protos import (
    BATCHING_PARAMETERS,
    MONITORING_CONFIG,
    message_class,
)

MODEL_NAME = "fashion_gan"
COND_MODEL_NAME = "fashion_gan_cond"
SHEET = 9  # the gateway sends sheets of 9 latents


@pytest.fixture(scope="module")
def messages() -> dict[str, Any]:
    """Message classes compiled from serving_config/protos, keyed by full name."""
    return {n: message_class(n) for n in (BATCHING_PARAMETERS, MONITORING_CONFIG)}


def parse_models_config(text: str) -> Any:
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def parse_batching(messages: dict[str, Any], text: str) -> Any:
    return text_format.Parse(text, messages["tensorflow.serving.BatchingParameters"]())


def parse_monitoring(messages: dict[str, Any], text: str) -> Any:
    return text_format.Parse(text, messages["tensorflow.serving.MonitoringConfig"]())


# --- models.config ---------------------------------------------------------------------------


def test_models_config_serves_both_models_from_absolute_base_paths() -> None:
    cfg = parse_models_config(serving_config.MODELS_CONFIG.read_text())
    assert cfg.WhichOneof("config") == "model_config_list"
    models = list(cfg.model_config_list.config)
    assert [m.name for m in models] == [MODEL_NAME, COND_MODEL_NAME]
    for model in models:
        assert PurePosixPath(model.base_path).is_absolute()
        assert model.base_path == f"/models/{model.name}"  # both on the models volume
        assert model.model_platform == "tensorflow"


@pytest.mark.parametrize("index", [0, 1])
def test_models_config_labels_point_at_kept_versions(index: int) -> None:
    cfg = parse_models_config(serving_config.MODELS_CONFIG.read_text())
    model = cfg.model_config_list.config[index]
    policy = model.model_version_policy
    # a `latest` or `all` policy would make a label's target depend on what is on disk
    assert policy.WhichOneof("policy_choice") == "specific"
    kept = set(policy.specific.versions)
    labels = dict(model.version_labels)
    assert set(labels) == {"stable", "canary"}
    assert set(labels.values()) <= kept, f"labels {labels} name versions outside {sorted(kept)}"
    assert labels["stable"] != labels["canary"]


def test_both_models_follow_one_scheme() -> None:
    first, cond = parse_models_config(
        serving_config.MODELS_CONFIG.read_text()
    ).model_config_list.config
    assert first.model_version_policy == cond.model_version_policy
    assert dict(first.version_labels) == dict(cond.version_labels)


def test_models_config_is_in_the_form_the_rollout_writes() -> None:
    """The rollout rewrites the whole file from the parsed config (text_format); a template in
    that same form keeps the entry of the model it does not touch byte for byte."""
    text = serving_config.MODELS_CONFIG.read_text()
    body = "".join(line for line in text.splitlines(True) if not line.startswith("#"))
    assert text_format.MessageToString(parse_models_config(text)) == body


def test_a_fresh_volume_starts_with_the_models_that_can_load(tmp_path: Path) -> None:
    """TF Serving waits at start-up until every model listed has a version: the trainer's
    copy lists the model it trains on a miss and any other that has a version already."""
    from fashion_core.models_config import parse
    from training.jobserver import seed_models_config

    models = tmp_path / "models"
    live = models / "models.config"
    template = tmp_path / "template.config"
    template.write_text(
        serving_config.MODELS_CONFIG.read_text().replace('"/models/', f'"{models}/')
    )
    assert seed_models_config(live, template, models / MODEL_NAME)
    assert [m.name for m in parse(live.read_text()).model_config_list.config] == [MODEL_NAME]
    assert live.read_text().startswith("# TensorFlow Serving model config")
    assert not seed_models_config(live, template, models / MODEL_NAME)  # never overwritten

    live.unlink()
    (models / COND_MODEL_NAME / "1").mkdir(parents=True)  # the conditional model has one
    assert seed_models_config(live, template, models / MODEL_NAME)
    assert live.read_text() == template.read_text()  # both: the template as it is


def test_models_config_typo_is_rejected() -> None:
    text = serving_config.MODELS_CONFIG.read_text().replace("base_path", "basepath")
    with pytest.raises(text_format.ParseError):
        parse_models_config(text)


# --- batching.config -------------------------------------------------------------------------


def test_batching_sizes_are_whole_sheets(messages: dict[str, Any]) -> None:
    params = parse_batching(messages, serving_config.BATCHING_CONFIG.read_text())
    sizes = list(params.allowed_batch_sizes)
    assert sizes, "allowed_batch_sizes must be set so batches are padded to whole sheets"
    assert all(size % SHEET == 0 for size in sizes), sizes
    assert sizes == sorted(set(sizes)), "allowed_batch_sizes must be strictly increasing"
    assert params.HasField("max_batch_size")
    assert sizes[-1] == params.max_batch_size.value
    assert params.num_batch_threads.value >= 1
    assert 0 < params.batch_timeout_micros.value <= 100_000  # a sheet waits at most 0.1 s
    assert params.max_enqueued_batches.value >= 1


def test_batching_typo_and_wrong_type_are_rejected(messages: dict[str, Any]) -> None:
    text = serving_config.BATCHING_CONFIG.read_text()
    with pytest.raises(text_format.ParseError):
        parse_batching(messages, text.replace("max_batch_size", "max_batch_sise"))
    with pytest.raises(text_format.ParseError):  # a wrapper field needs `{ value: N }`
        parse_batching(messages, "max_batch_size: 72")


def test_gateway_and_warmup_agree_with_the_batch_limits(messages: dict[str, Any]) -> None:
    """TF Serving refuses a predict with more rows than max_batch_size: the gateway's per-call
    limit must be that number, and warmup (replayed through the batching session at load)
    must run every allowed size and nothing bigger."""
    from export.warmup import WARMUP_BATCHES
    from fashion_gan.tfserving.chunking import MIN_ROWS
    from gateway.settings import Settings

    cfg = parse_batching(messages, serving_config.BATCHING_CONFIG.read_text())
    assert Settings().upstream_max_batch == cfg.max_batch_size.value
    assert not cfg.enable_large_batch_splitting.value  # so no request may exceed that limit
    assert set(WARMUP_BATCHES) == {1, *cfg.allowed_batch_sizes}
    # the smallest merged batch TF Serving runs is the gateway's smallest call
    assert cfg.allowed_batch_sizes[0] == MIN_ROWS


# --- monitoring.config -----------------------------------------------------------------------


def test_monitoring_exposes_prometheus(messages: dict[str, Any]) -> None:
    cfg = parse_monitoring(messages, serving_config.MONITORING_CONFIG.read_text())
    assert cfg.prometheus_config.enable
    assert cfg.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_monitoring_typo_is_rejected(messages: dict[str, Any]) -> None:
    with pytest.raises(text_format.ParseError):
        parse_monitoring(messages, "prometheus_config { enabled: true }")


# --- the package helper ----------------------------------------------------------------------


def test_config_path_finds_each_file() -> None:
    for path in serving_config.CONFIG_FILES:
        assert serving_config.config_path(path.name) == path
        assert path.is_file()
    with pytest.raises(FileNotFoundError, match=r"known: models\.config"):
        serving_config.config_path("model.config")


def test_config_files_ship_as_package_data() -> None:
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["serving_config"]
    for path in serving_config.CONFIG_FILES:
        assert any(path.match(pattern) for pattern in patterns), path.name
