"""The ``category`` of a request to the class-conditional model: an index 0-9, the English
label (fashion_core/contract.py's CATEGORIES_EN, plus a few obvious spellings: ``t-shirt``,
``top``, ``ankle-boot``) or the Spanish one (CATEGORIES_ES), case and accents forgiven
(``PANTALON``, ``botin``), or ``all`` where a sheet takes one row per category. Anything else
is a CategoryError whose one sentence lists what is allowed. The gateway answers it as a 400
(gateway/categories.py), the Python API raises it (a ValueError)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Final

from fashion_core.contract import CATEGORIES_EN, CATEGORIES_ES


class CategoryError(ValueError):
    """A category that is no index, name or (where allowed) ``all``."""


ALL: Final = "all"
COUNT: Final = len(CATEGORIES_EN)


def fold(text: str) -> str:
    """Lower case, accents dropped, '-' '_' and runs of spaces as one space: the form names
    are compared in ("Ankle_Boot" -> "ankle boot", "PANTALÓN" -> "pantalon")."""
    bare = "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    ).lower()
    return re.sub(r"[\s_-]+", " ", bare).strip()


def _names() -> dict[str, int]:
    names = {fold(name): i for i, name in enumerate(CATEGORIES_EN)}
    names |= {fold(name): i for i, name in enumerate(CATEGORIES_ES)}
    # obvious spellings of the English labels; plurals as people write them
    aliases = {
        "t shirt": 0, "tshirt": 0, "top": 0, "t shirt top": 0, "tee": 0, "trousers": 1,
        "pants": 1, "sweater": 2, "sneakers": 7, "sandals": 5, "boot": 9, "ankleboot": 9,
    }  # fmt: skip
    return names | {fold(k): v for k, v in aliases.items()}


NAMES: Final = _names()


def allowed(with_all: bool = True) -> str:
    """What a category may be, as the 400 answers say it."""
    pairs = ", ".join(f"{en} ({es})" for en, es in zip(CATEGORIES_EN, CATEGORIES_ES, strict=True))
    head = f"{ALL}, an index" if with_all else "an index"
    return f"{head} from 0 to {COUNT - 1} or a name: {pairs}"


def parse(raw: Any, key: str = "category", with_all: bool = True) -> int | str:
    """The category index ``raw`` names (or ALL where ``with_all``), else CategoryError. ``raw``
    is a query string, or a JSON int or string."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        if 0 <= raw < COUNT:
            return raw
    elif isinstance(raw, str) and len(raw) <= 64:
        if re.fullmatch(r"\d{1,3}", raw.strip()):  # before folding: "-1" is no index
            if int(raw) < COUNT:
                return int(raw)
            raise CategoryError(f"{key} must be {allowed(with_all)}.")
        name = fold(raw)
        if with_all and name == ALL:
            return ALL
        if name in NAMES:
            return NAMES[name]
    raise CategoryError(f"{key} must be {allowed(with_all)}.")


def index(raw: Any, key: str = "category") -> int:
    """One category index (``all`` is not one)."""
    value = parse(raw, key, with_all=False)
    assert isinstance(value, int)
    return value


def label(k: int) -> str:
    return CATEGORIES_EN[k]
