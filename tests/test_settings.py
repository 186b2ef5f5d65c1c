"""The gateway's settings: defaults, parsing, and one sentence naming a wrong variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import SettingsError, from_env
from tests.conftest import run_cli


def test_defaults() -> None:
    s = from_env({})
    assert (s.backend, s.model_name, s.model_base_path) == (
        "embedded",
        "fashion_gan",
        Path("models/fashion_gan"),
    )
    assert (s.rest_url, s.grpc_target, s.host, s.port, s.train_profile) == (
        "http://localhost:8501",
        "localhost:8500",
        "127.0.0.1",
        8000,
        "quick",
    )


def test_values_are_parsed() -> None:
    s = from_env(
        {
            "GATEWAY_BACKEND": "grpc",
            "GATEWAY_PORT": "9000",
            "TFSERVING_REST_URL": "http://ts:8501/",
            "GATEWAY_CANARY_PERCENT": "12.5",
            "GATEWAY_TRAIN_ON_MISS": "false",
            "GATEWAY_BACKEND_X": "",
        }
    )
    assert (s.backend, s.port, s.rest_url, s.canary_percent, s.train_on_miss) == (
        "grpc",
        9000,
        "http://ts:8501",
        12.5,
        False,
    )


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("GATEWAY_BACKEND", "tfserving"),
        ("GATEWAY_PORT", "80a"),
        ("GATEWAY_PORT", "70000"),
        ("TFSERVING_REST_URL", "localhost:8501"),
        ("TFSERVING_GRPC_TARGET", "http://x:1"),
        ("GATEWAY_CANARY_PERCENT", "101"),
        ("GATEWAY_CANARY_PERCENT", "nan"),
        ("GATEWAY_TRAIN_PROFILE", "huge"),
        ("MODEL_NAME", "a/b"),
        ("GATEWAY_DEFAULT_LABEL", ".."),  # a path segment, not a label
        ("GATEWAY_HEADER_TIMEOUT_S", "0"),
        ("GATEWAY_MAX_BUFFERED_BYTES", "1k"),
        ("GATEWAY_TRAIN_ON_MISS", "2"),
        ("GATEWAY_UPSTREAM_TIMEOUT_S", "0"),
        ("GATEWAY_MAX_GRID", "-1"),
    ],
)
def test_wrong_values_name_the_variable(var: str, value: str) -> None:
    with pytest.raises(SettingsError) as err:
        from_env({var: value})
    message = str(err.value)
    assert message.startswith(var) and message.endswith(".") and message.count(". ") == 0


def test_gateway_refuses_to_start_with_a_sentence() -> None:
    proc = run_cli("gateway", timeout=60, env_extra={"GATEWAY_PORT": "eighty"})
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "gateway: GATEWAY_PORT must be an integer from 1 to 65535, got 'eighty'."
    )


@pytest.mark.parametrize(
    ("var", "nearest"),
    [
        ("GATEWAY_CANARY_PERCENTAGE", "GATEWAY_CANARY_PERCENT"),
        ("TFSERVING_REST", "TFSERVING_REST_URL"),
        ("GATEWAY_MAXGRID", "GATEWAY_MAX_GRID"),
    ],
)
def test_unknown_variables_are_refused_naming_the_nearest(var: str, nearest: str) -> None:
    """A typo would otherwise be ignored: the canary would stay at 0% with no word."""
    with pytest.raises(SettingsError) as err:
        from_env({var: "50"})
    assert str(err.value) == f"{var} is not a known setting; did you mean {nearest}?"


def test_gateway_stops_on_an_unknown_variable() -> None:
    proc = run_cli("gateway", timeout=60, env_extra={"GATEWAY_CANARY_PERCENTAGE": "50"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "gateway: GATEWAY_CANARY_PERCENTAGE is not a known setting; "
        "did you mean GATEWAY_CANARY_PERCENT?"
    )


def test_every_gateway_or_tfserving_name_the_repo_mentions_is_a_setting() -> None:
    """A name in compose, a manifest or the docs that the gateway does not read would stop a
    gateway started from a shell that has it set (the refusal above)."""
    import re
    import subprocess

    from gateway.settings import ENV, PREFIXES
    from tests.conftest import REPO

    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    pattern = re.compile(r"\b(?:" + "|".join(PREFIXES) + r")[A-Z0-9_]*\*?")
    named = set()
    for name in files:
        path = REPO / name
        if path.suffix in (".py", ".md", ".yml", ".yaml", ".toml", ".js", "") and path.is_file():
            found = pattern.findall(path.read_text(errors="replace"))
            named |= {n for n in found if not n.endswith(("*", "_"))}  # a family, a prefix
    # examples of what the refusal refuses; GATEWAY_ENV: a Python name, not a variable
    examples = {"GATEWAY_CANARY_PERCENTAGE", "GATEWAY_MAXGRID", "GATEWAY_BACKEND_X"}
    examples |= {"TFSERVING_REST", "GATEWAY_SERVICE_HOST", "TFSERVING_PORT", "GATEWAY_ENV"}
    assert named - set(ENV) - examples == set()


def test_the_python_api_reads_only_its_own_variables() -> None:
    """A gateway-only variable, even malformed, never breaks generar_muestra_ropa()."""
    from fashion_gan.settings import ApiSettings

    s = ApiSettings.from_env({"GATEWAY_PORT": "eighty", "MODEL_BASE_PATH": "/srv/models"})
    assert s.model_base_path == Path("/srv/models")


def test_readme_settings_table_is_the_settings() -> None:
    """The README's table is what ``python -m gateway.settings`` prints: every variable the
    gateway reads, with the real defaults."""
    from gateway.settings import markdown_table
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    assert markdown_table() in readme
