"""Quality per CPU minute: FID after 1, 2, 5, 10, 20 and 30 minutes of training on this machine,
for each recipe, from the scored snapshots of ``benchmarks.timeline`` runs.

    python -m benchmarks.quality_per_minute runs/timeline/*_s[12] --rates rates.json

A run's snapshots are indexed by images seen, so the runs can share the machine with other
work without their figures changing. The minutes come from each recipe's own speed on these
cores, measured alone and side by side with the seed's loop (``python -m benchmarks.training
--recipe ...``; ``--rates`` holds its images/s per recipe), plus the start-up that every job
pays once (``--startup-s``: importing TensorFlow, building and compiling the step). A mark
takes the newest snapshot that the recipe reaches within it. A recipe whose batch grows has a
speed per phase: ``{"0": 1081, "90000": 1199, ...}`` (images/s from that many images on).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path
from typing import Any

from benchmarks.timeline import read_index_file

MINUTES = (1, 2, 5, 10, 20, 30)


def recipe_of(run: Path) -> tuple[str, int]:
    """runs/timeline/<recipe>_s<seed> -> (recipe, seed)."""
    match = re.fullmatch(r"(.+)_s(\d+)", run.name)
    if not match:
        raise SystemExit(f"{run} is not named <recipe>_s<seed>.")
    return match.group(1), int(match.group(2))


Rate = float | dict[str, float]  # images/s, or images/s from so many images on


def images_within(seconds: float, rate: Rate) -> float:
    """Images trained in ``seconds`` at ``rate`` (a constant, or one per phase)."""
    if not isinstance(rate, dict):
        return max(seconds, 0.0) * rate
    phases = sorted((float(start), speed) for start, speed in rate.items())
    images = 0.0
    for i, (start, speed) in enumerate(phases):
        end = phases[i + 1][0] if i + 1 < len(phases) else float("inf")
        takes = (end - start) / speed
        if seconds <= takes:
            return images + max(seconds, 0.0) * speed
        images, seconds = end, seconds - takes
    return images


def describe(rate: Rate) -> str:
    if not isinstance(rate, dict):
        return f"{rate:.0f}"
    return "→".join(f"{speed:.0f}" for _, speed in sorted((float(k), v) for k, v in rate.items()))


def at_minute(scores: list[dict[str, Any]], minute: float, rate: Rate, startup: float) -> Any:
    """The newest scored snapshot within ``minute`` minutes at ``rate`` images/s."""
    budget = images_within(minute * 60 - startup, rate)
    within = [s for s in scores if s["images"] <= budget]
    return max(within, key=lambda s: s["images"]) if within else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.quality_per_minute", description=__doc__)
    p.add_argument("runs", type=Path, nargs="+")
    p.add_argument("--rates", type=Path, required=True, help="JSON: recipe -> images/s")
    p.add_argument("--startup-s", type=float, default=15.0)
    p.add_argument("--tag", default="eval", help="scores_<tag>.jsonl of each run")
    p.add_argument("--baseline", default="seed")
    args = p.parse_args(argv)
    rates: dict[str, Rate] = json.loads(args.rates.read_text())
    table: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for run in args.runs:
        recipe, seed = recipe_of(run)
        if recipe not in rates:
            raise SystemExit(f"--rates has no images/s for {recipe}.")
        scores = read_index_file(run / f"scores_{args.tag}.jsonl")
        # how far the run went: its snapshots, scored or not
        trained = max(s["images"] for s in read_index_file(run / "snapshots.jsonl"))
        for minute in MINUTES:
            hit = at_minute(scores, minute, rates[recipe], args.startup_s)
            table.setdefault(recipe, {}).setdefault(minute, [])
            if (
                hit is not None
                and images_within(minute * 60 - args.startup_s, rates[recipe]) <= trained * 1.05
            ):  # a mark past the run's last snapshot is left blank, not carried
                table[recipe][minute].append({**hit, "seed": seed})
    head = " | ".join(f"{m} min" for m in MINUTES)
    print(f"| recipe | images/s | {head} |")
    print("|---|---:|" + "---:|" * len(MINUTES))
    base = table.get(args.baseline, {})
    for recipe, marks in table.items():
        cells = []
        for m in MINUTES:
            hits = marks.get(m, [])
            if not hits:
                cells.append("")
                continue
            fid = statistics.mean(h["fid"] for h in hits)
            cell = f"{fid:.1f}" + (f" ({len(hits)})" if len(hits) < 2 else "")
            ref = base.get(m, [])
            if recipe != args.baseline and ref:
                cell += f", {fid / statistics.mean(h['fid'] for h in ref):.2f}x"
            cells.append(cell)
        print(f"| {recipe} | {describe(rates[recipe])} | " + " | ".join(cells) + " |")
    print(
        "\nMean FID over the seeds (a lone run's count in brackets), and the ratio to the "
        f"{args.baseline} recipe at the same minute; images/s from --rates, "
        f"{args.startup_s:.0f} s of start-up."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
