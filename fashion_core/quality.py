"""Which of two versions draws better designs, from the quality figures in their model cards.

One comparison for both places that need it: a rollout moving a label (``export.rollout``) and
the progressive trainer deciding whether a new candidate replaces the version being served
(``training.progressive``). Figures compare only when the same evaluator measured both at the
same sample count: FIDs from different feature networks are on different scales (the previous
evaluator's 7.6 and this one's 61 were the same version), so a pair that does not compare is
said to be so, never passed as "not worse".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# a candidate replaces the served version only when its FID is lower by this share: two
# measurements of one generator with 10,000 designs differ by about 1%, and publishing on noise
# would churn versions without anybody seeing a better design
MARGIN = 0.03


@dataclass(frozen=True)
class Comparison:
    comparable: bool
    better: bool  # lower FID by more than the margin asked for
    worse: bool  # higher FID
    reason: str  # one sentence, for logs and refusals


def not_comparable(new: dict[str, Any], old: dict[str, Any]) -> str | None:
    """Why these two figure sets cannot be compared, or None if they can."""
    for name, figures in (("new", new), ("old", old)):
        fid = figures.get("fid")
        if isinstance(fid, bool) or not isinstance(fid, int | float) or not math.isfinite(fid):
            return f"the {name} version has no FID"
    if new.get("evaluator") != old.get("evaluator"):
        return (
            f"they were measured by different evaluators ({new.get('evaluator') or 'unnamed'}"
            f" and {old.get('evaluator') or 'unnamed'})"
        )
    if new.get("samples") != old.get("samples"):
        return f"they were measured on {new.get('samples')} and {old.get('samples')} designs"
    return None


def compare(new: dict[str, Any], old: dict[str, Any], margin: float = 0.0) -> Comparison:
    """``new`` against ``old`` (each a card's "quality" section)."""
    why = not_comparable(new, old)
    if why is not None:
        return Comparison(False, False, False, f"FIDs not compared: {why}")
    fid_new, fid_old = float(new["fid"]), float(old["fid"])
    better = fid_new < fid_old * (1.0 - margin)
    worse = fid_new > fid_old
    verdict = "better" if better else ("worse" if worse else "not better enough")
    return Comparison(True, better, worse, f"FID {fid_new:.2f} against {fid_old:.2f}: {verdict}")
