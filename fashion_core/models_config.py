"""TF Serving's ``models.config`` (text ModelServerConfig): read one model's version policy and
labels, and rewrite them atomically. Protobuf only, no TensorFlow: the rollout tool writes it,
the embedded gateway reads its labels, TF Serving reads the same file.

One file serves several models (fashion_gan, fashion_gan_cond); every change here is to one
model's entry and copies the others as they are. TF Serving waits at start-up until every
model listed has a version, so a fresh volume starts with ``startable`` entries only, and a
model joins the file (``with_entry`` adds it) once it has a version to serve."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from fashion_core import atomic

ModelServerConfig = model_server_config_pb2.ModelServerConfig

HEADER = (
    "# TensorFlow Serving model config, written by `python -m export.rollout`.\n"
    "# Labels name AVAILABLE versions; the policy keeps every labelled version (and the previous\n"
    "# stable one, for rollback) loaded. Edit with the rollout command, not by hand.\n"
)


class ConfigFileError(Exception):
    """The config file is missing, does not parse, or has no entry for the model."""


@dataclass
class ModelEntry:
    name: str
    base_path: str
    versions: list[int] = field(default_factory=list)  # the specific policy
    labels: dict[str, int] = field(default_factory=dict)


def parse(text: str, source: str = "models.config") -> model_server_config_pb2.ModelServerConfig:
    try:
        return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as exc:
        raise ConfigFileError(f"{source} is not a valid models.config: {exc}.") from None


def entry_of(config: model_server_config_pb2.ModelServerConfig, model_name: str) -> ModelEntry:
    for model in config.model_config_list.config:
        if model.name == model_name:
            policy = model.model_version_policy
            versions = list(policy.specific.versions) if policy.HasField("specific") else []
            return ModelEntry(
                model.name,
                model.base_path,
                sorted(int(v) for v in versions),
                {k: int(v) for k, v in model.version_labels.items()},
            )
    raise ConfigFileError(f"the config has no model named {model_name!r}.")


def read(
    path: Path, model_name: str
) -> tuple[model_server_config_pb2.ModelServerConfig, ModelEntry]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror}.") from None
    config = parse(text, str(path))
    try:
        return config, entry_of(config, model_name)
    except ConfigFileError:
        raise ConfigFileError(f"{path} has no model named {model_name!r}.") from None


def with_entry(
    config: model_server_config_pb2.ModelServerConfig, entry: ModelEntry
) -> model_server_config_pb2.ModelServerConfig:
    """A copy of ``config`` whose model ``entry.name`` has entry's policy and labels (added at
    the end when the config has no such model yet); every other model is copied unchanged."""
    out = model_server_config_pb2.ModelServerConfig()
    out.CopyFrom(config)
    found = [m for m in out.model_config_list.config if m.name == entry.name]
    if not found:
        model = out.model_config_list.config.add(
            name=entry.name, base_path=entry.base_path, model_platform="tensorflow"
        )
        found = [model]
    for model in found:
        model.model_version_policy.Clear()
        model.model_version_policy.specific.versions.extend(sorted(set(entry.versions)))
        model.version_labels.clear()
        for label, version in sorted(entry.labels.items()):
            model.version_labels[label] = version
    return out


def follow(
    config: model_server_config_pb2.ModelServerConfig,
    model_name: str,
    base_path: str,
    version: int,
    added: Sequence[int] = (),
    keep: Collection[int] = (),
) -> model_server_config_pb2.ModelServerConfig | None:
    """``config`` with ``version`` of ``model_name`` loaded: what a training job that keeps
    improving writes after each version it publishes, since TF Serving loads only the versions
    a ``specific`` policy lists. ``added``: the versions the job added before, oldest first; it
    drops all but the newest of them (kept until this one has loaded and served a while),
    unless a label names them or ``keep`` does (the rollout's rollback target). Labels,
    versions a rollout put there and every other model stay. A model the file does not list
    joins it with this version; None when the model's policy already loads new versions
    (``latest``, ``all``: nothing to write)."""
    found = [m for m in config.model_config_list.config if m.name == model_name]
    if found and not found[0].model_version_policy.HasField("specific"):
        return None
    if not found:
        return with_entry(config, ModelEntry(model_name, base_path, [version]))
    entry = entry_of(config, model_name)
    stay = set(entry.labels.values()) | set(keep) | set(added[-1:])
    kept = {v for v in entry.versions if v not in added or v in stay}
    if version in kept and kept == set(entry.versions):
        return None
    new = ModelEntry(entry.name, entry.base_path, [*kept, version], entry.labels)
    return with_entry(config, new)


def lock_path(path: Path) -> Path:
    """The lock that every writer of ``path`` holds (the rollout tool, a training job)."""
    return path.with_name(f".{path.name}.lock")


def startable(
    config: model_server_config_pb2.ModelServerConfig,
    has_version: Callable[[str], bool],
    always: Collection[str] = (),
) -> model_server_config_pb2.ModelServerConfig:
    """The models of ``config`` TF Serving can start with: those whose base path
    ``has_version``, and those named in ``always`` (the one the trainer trains on a miss: TF
    Serving keeps its ports closed until that first version lands, as a fresh volume should)."""
    out = model_server_config_pb2.ModelServerConfig()
    out.CopyFrom(config)
    kept = [
        m for m in config.model_config_list.config if m.name in always or has_version(m.base_path)
    ]
    del out.model_config_list.config[:]
    out.model_config_list.config.extend(kept)
    return out


def seed_text(template: str, has_version: Callable[[str], bool], always: Collection[str]) -> str:
    """The models.config a fresh volume starts with: ``template`` as it is when every model in
    it can start, else its comments and its ``startable`` models."""
    config = parse(template, "the models.config template")
    start = startable(config, has_version, always)
    if start == config:
        return template
    comments = "".join(line for line in template.splitlines(True) if line.startswith("#"))
    return comments + str(text_format.MessageToString(start))


def render(config: model_server_config_pb2.ModelServerConfig) -> str:
    return HEADER + str(text_format.MessageToString(config))


def write(path: Path, config: model_server_config_pb2.ModelServerConfig) -> None:
    """Write the whole file atomically: TF Serving never reads half a file."""
    atomic.write_text(path, render(config))


class LabelFile:
    """label -> version of one model from a models.config, re-read when the file changes
    (the embedded gateway honours the same labels TF Serving does)."""

    def __init__(self, path: Path | None, model_name: str) -> None:
        self.path, self.model_name = path, model_name
        self._stamp: tuple[int, int] | None = None
        self._labels: dict[str, int] = {}

    def labels(self) -> dict[str, int]:
        """{} without a file. A file that does not parse keeps the last good labels (a
        half-edited config must not unpin traffic)."""
        if self.path is None:
            return {}
        try:
            st = self.path.stat()
        except OSError:
            return self._labels
        stamp = (st.st_ino, st.st_mtime_ns)
        if stamp != self._stamp:
            try:
                self._labels = read(self.path, self.model_name)[1].labels
            except ConfigFileError:
                return self._labels
            self._stamp = stamp
        return self._labels
