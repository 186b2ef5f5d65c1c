"""Environment variables: parsers of their values and the table that names them.

Each parser returns the value or raises SettingsError with one sentence that names the
variable and says what is allowed. ``read`` builds a settings object's overrides from a table
of ``Variable``s (the gateway's settings and the Python API's read theirs this way).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """An environment variable has a value that cannot be used, or a name nothing reads."""


@dataclass(frozen=True)
class Variable:
    env: str
    field: str
    parse: Callable[[str, str], Any]
    help: str


def read(environ: Mapping[str, str], variables: Iterable[Variable]) -> dict[str, Any]:
    """{field: value} for every variable of ``variables`` set to a non-empty value."""
    values: dict[str, Any] = {}
    for var in variables:
        raw = environ.get(var.env, "")
        if raw != "":
            values[var.field] = var.parse(var.env, raw.strip())
    return values


def refuse_unknown(
    environ: Mapping[str, str], prefixes: tuple[str, ...], known: Iterable[str]
) -> None:
    """A set variable with one of ``prefixes`` that is not in ``known`` is a typo: stop, naming
    the nearest known one (``GATEWAY_CANARY_PERCENTAGE`` would otherwise be ignored silently).
    An empty one is ignored, as an empty known one keeps its default."""
    names = sorted(set(known))
    for name in sorted(environ):
        if name.startswith(prefixes) and name not in names and environ[name] != "":
            near = difflib.get_close_matches(name, names, n=1, cutoff=0.0)
            hint = f"; did you mean {near[0]}?" if near else "."
            raise SettingsError(f"{name} is not a known setting{hint}")


def integer(lo: int, hi: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(
                f"{name} must be an integer from {lo} to {hi}, got {raw!r}."
            ) from None
        if not lo <= value <= hi:
            raise SettingsError(f"{name} must be an integer from {lo} to {hi}, got {raw!r}.")
        return value

    return parse


def number(lo: float, hi: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not lo <= value <= hi:  # NaN fails this too
            raise SettingsError(f"{name} must be a number from {lo:g} to {hi:g}, got {raw!r}.")
        return value

    return parse


def choice(options: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        if raw not in options:
            raise SettingsError(f"{name} must be one of {', '.join(options)}, got {raw!r}.")
        return raw

    return parse


def boolean(name: str, raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}.")


def url(name: str, raw: str) -> str:
    if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", raw):
        raise SettingsError(f"{name} must be an http:// or https:// URL, got {raw!r}.")
    return raw.rstrip("/")


def target(name: str, raw: str) -> str:
    if not re.fullmatch(r"[^\s:/]+:\d{1,5}|\[[0-9a-fA-F:]+\]:\d{1,5}", raw):
        raise SettingsError(f"{name} must be host:port, got {raw!r}.")
    return raw


def served_name(name: str, raw: str) -> str:
    # TF Serving: names match [^/:]+ (contract: REST); "." and ".." would be path segments that
    # an HTTP client folds away (/labels/../metadata is the newest version's metadata)
    if not re.fullmatch(r"[^/:\s]+", raw) or not raw.strip("."):
        raise SettingsError(
            f"{name} must be a name without '/', ':' or spaces, and not only dots, got {raw!r}."
        )
    return raw


def text(name: str, raw: str) -> str:
    if not raw:
        raise SettingsError(f"{name} must not be empty.")
    return raw


def path(name: str, raw: str) -> Path:
    return Path(text(name, raw))


def networks(name: str, raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(p.strip()) for p in raw.split(",") if p.strip())
    except ValueError:
        raise SettingsError(
            f"{name} must be comma-separated addresses or networks (10.0.0.0/8), got {raw!r}."
        ) from None
