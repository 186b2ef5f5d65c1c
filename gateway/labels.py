"""Version labels from a TF Serving models.config, for the embedded backend (TF Serving itself
reads the same file through --model_config_file). Re-read when the file changes."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2


class LabelFile:
    def __init__(self, path: Path | None, model_name: str) -> None:
        self.path, self.model_name = path, model_name
        self._mtime: float | None = None
        self._labels: dict[str, int] = {}

    def labels(self) -> dict[str, int]:
        """label -> version for ``model_name``; {} without a file. A file that does not parse
        keeps the last good labels (a half-edited config must not unpin traffic)."""
        if self.path is None:
            return {}
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return self._labels
        if mtime != self._mtime:
            try:
                config = text_format.Parse(
                    self.path.read_text(), model_server_config_pb2.ModelServerConfig()
                )
            except (OSError, text_format.ParseError):
                return self._labels
            self._mtime = mtime
            self._labels = {
                label: int(version)
                for model in config.model_config_list.config
                if model.name == self.model_name
                for label, version in model.version_labels.items()
            }
        return self._labels
