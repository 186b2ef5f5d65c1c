"""Version rollouts for ops, that TF Serving accepts on every replica.

    python -m export.rollout --config /models/models.config \\
        --rest-url http://tfserving-0:8501 --rest-url http://tfserving-1:8501 canary 3

models.config lives where every TF Serving replica reads it and this tool writes it (the models
volume); each replica re-reads it every --model_config_file_poll_wait_seconds. TF Serving
refuses a config that moves an existing label onto a version that is not AVAILABLE yet, and
refuses it whole (server_core.cc checks labels before adding versions), at every poll. So each
change is a sequence of configs the server accepts, each confirmed on every replica before the
next: first the policy gains the version and the tool waits until every replica reports it
AVAILABLE; only then does the label move, and the tool waits until every replica serves the
label from that version; versions nothing needs any more leave the policy last.

A change that is not confirmed on every replica within --timeout is undone: models.config is
written back exactly as it was. Actions hold a lock beside the config, so two rollouts never
interleave. --force skips the quality comparison, never the AVAILABLE check.

Modules: ``replicas`` (what every replica reports), ``store`` (the config file: lock, change,
confirm or restore), ``history`` (previous stable versions), ``gate`` (quality comparison),
``actions`` (canary, stable, promote, rollback, retire, list), ``__main__`` (the command line).
"""

from __future__ import annotations


class RolloutError(Exception):
    """The action is refused or failed; nothing half-done is left (message: one sentence)."""
