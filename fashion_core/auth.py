"""The admin token check and the body of a training request, shared by the gateway's
``POST /api/training`` and the trainer's job runner."""

from __future__ import annotations

import json
import secrets

from fashion_core.contract import PROFILES


class AuthError(Exception):
    """Missing or wrong credentials (message: one sentence; ``status`` 401 or 403)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class BodyError(ValueError):
    """A training request body that is not ``{"profile": <name>}`` (message: one sentence)."""


def check_bearer(header: str | None, token: str | None, what: str, variable: str) -> None:
    """Raise AuthError unless ``header`` is ``Bearer <token>`` (compared in constant time).
    With no token configured (in the environment ``variable``), ``what`` is disabled (403)."""
    if not token:
        raise AuthError(f"{what} is disabled: set {variable}.", 403)
    given = (header or "").encode("utf-8", "replace")
    if not secrets.compare_digest(given, f"Bearer {token}".encode()):
        raise AuthError(f"{what} needs 'Authorization: Bearer <admin token>'.", 401)


def profile_from_body(raw: bytes, default: str) -> str:
    """``{"profile": "quick"}`` -> "quick"; an empty body -> ``default``."""
    allowed = ", ".join(PROFILES)
    if not raw.strip():
        return default
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        doc = None
    profile = doc.get("profile", default) if isinstance(doc, dict) else None
    if not isinstance(profile, str) or profile not in PROFILES:
        raise BodyError(f'The body must be {{"profile": one of {allowed}}}.')
    if set(doc) - {"profile"}:
        raise BodyError(f'The body must be {{"profile": one of {allowed}}} and nothing else.')
    return profile
