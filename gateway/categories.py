"""The ``category`` parameter as the gateway reads it: fashion_core/categories.py's parser (the
one the Python API uses too), its CategoryError answered as a 400 with the same sentence."""

from __future__ import annotations

from typing import Any

from fashion_core import categories as core
from fashion_core.categories import ALL, COUNT, allowed, fold, label
from gateway.errors import BadRequest

__all__ = ["ALL", "COUNT", "allowed", "fold", "index", "label", "parse"]


def parse(raw: Any, key: str = "category", with_all: bool = True) -> int | str:
    try:
        return core.parse(raw, key, with_all)
    except core.CategoryError as exc:
        raise BadRequest(str(exc)) from None


def index(raw: Any, key: str = "category") -> int:
    try:
        return core.index(raw, key)
    except core.CategoryError as exc:
        raise BadRequest(str(exc)) from None
