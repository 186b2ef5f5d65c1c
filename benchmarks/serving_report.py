"""The serving benchmark's data and its report: the rows and servers a run measured, the
issue's targets checked against them, and the printed tables (benchmarks.serving runs the
measurements)."""

from __future__ import annotations

import argparse
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.procs import Machine
from tfserving_standin.children import Children

HOST = "127.0.0.1"
MODEL_NAME = "fashion_gan"
DESIGN = "/api/generar-diseno"
BACKENDS = ("embedded", "rest", "grpc", "seed")
# targets from the issue
MIN_CEILING_SHARE = 0.70
MIN_SEED_FACTOR = 20.0
MAX_EXTRA_P50_MS = 5.0
MAX_REST_RSS_MB = 150.0
MAX_REST_READY_S = 2.0
NOISY_OTHERS_PCT = 10.0  # others' CPU share above which a row's speed is not trustworthy


@dataclass
class Row:
    path: str
    concurrency: str
    sheets_per_s: float | None
    p50_ms: float | None
    p95_ms: float | None
    errors: int | None
    note: str = ""
    error_kinds: dict[str, int] = field(default_factory=dict)
    # CPU the rest of the machine (other users) used meanwhile, % of all CPUs: the noise gauge
    others_pct: float | None = None


@dataclass
class Server:
    """Start and memory numbers of one server process."""

    name: str
    healthz_s: float | None = None
    ready_s: float | None = None
    rss_mb: float | None = None
    peak_rss_mb: float | None = None
    tensorflow: bool | None = None
    failure: str = ""


@dataclass
class Check:
    name: str
    value: str
    target: str
    ok: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return "n/a" if self.ok is None else ("PASS" if self.ok else "FAIL")


@dataclass
class Run:
    args: argparse.Namespace
    work: Path
    children: Children
    rows: list[Row] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def row(self, path: str, concurrency: int | str) -> Row | None:
        for r in self.rows:
            if r.path == path and r.concurrency == str(concurrency):
                return r
        return None


# --- verdicts ----------------------------------------------------------------------------------
def checks(run: Run) -> list[Check]:
    """The issue's targets, from the numbers of this run."""
    top = max(run.args.concurrency)
    emb_top, emb_1 = run.row("gateway embedded", top), run.row("gateway embedded", 1)
    ceiling = run.row(f"model only b={_batched(run)}", "-")
    solo = run.row("model only b=9", "-")
    seeds = [r for r in run.rows if r.path == "seed flask+pyplot" and r.sheets_per_s is not None]
    seed_top = run.row("seed flask+pyplot", top)
    out: list[Check] = []

    def rate(r: Row | None) -> float | None:
        return None if r is None else r.sheets_per_s

    a, b = rate(emb_top), rate(ceiling)
    out.append(
        Check(
            f"embedded c={top} / model-only batched ceiling",
            _pct(a, b),
            f">= {MIN_CEILING_SHARE:.0%}",
            None if a is None or not b else a / b >= MIN_CEILING_SHARE,
        )
    )
    for what, s in (
        (f"seed c={top}", rate(seed_top)),
        ("seed best", max((r.sheets_per_s or 0.0 for r in seeds), default=None)),
    ):
        out.append(
            Check(
                f"embedded c={top} / {what}",
                "-" if a is None or not s else f"{a / s:.1f}x  ({a:.1f} / {s:.2f} sheets/s)",
                f">= {MIN_SEED_FACTOR:g}x",
                None if a is None or not s else a / s >= MIN_SEED_FACTOR,
            )
        )
    errs = None if emb_top is None else emb_top.errors
    out.append(
        Check(f"embedded c={top} errors", _txt(errs), "0", None if errs is None else errs == 0)
    )
    p1 = None if emb_1 is None else emb_1.p50_ms
    p0 = None if solo is None else solo.p50_ms
    extra = None if p1 is None or p0 is None else p1 - p0
    out.append(
        Check(
            "embedded c=1 p50 - model-only b=9 p50",
            "-" if extra is None else f"{extra:+.1f} ms  ({p1:.1f} - {p0:.1f})",
            f"<= {MAX_EXTRA_P50_MS:g} ms",
            None if extra is None else extra <= MAX_EXTRA_P50_MS,
        )
    )
    rest = next((s for s in run.servers if s.name == "gateway rest"), None)
    rss = None if rest is None else rest.rss_mb
    ready = None if rest is None else rest.ready_s
    tf_in = None if rest is None else rest.tensorflow
    out += [
        Check(
            "rest gateway RSS after load",
            "-" if rss is None else f"{rss:.1f} MB",
            f"< {MAX_REST_RSS_MB:g} MB",
            None if rss is None else rss < MAX_REST_RSS_MB,
        ),
        Check(
            "rest gateway spawn -> /readyz 200",
            "-" if ready is None else f"{ready:.2f} s",
            f"<= {MAX_REST_READY_S:g} s",
            None if ready is None else ready <= MAX_REST_READY_S,
        ),
        Check(
            "rest gateway without TensorFlow",
            "-" if tf_in is None else ("TF mapped" if tf_in else "no TF mapped"),
            "no TF",
            None if tf_in is None else not tf_in,
        ),
    ]
    return out


def _batched(run: Run) -> int:
    images: int = run.args.batch_images
    return max(9, images // 9 * 9)


def _pct(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.0%}  ({a:.1f} / {b:.1f} sheets/s)"


def _txt(v: object) -> str:
    return "-" if v is None else str(v)


# --- output ------------------------------------------------------------------------------------
def table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    """Plain aligned text; columns in ``right`` are right-aligned."""
    widths = [max(len(x) for x in col) for col in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _num(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def report(run: Run, info: Machine, verdicts: list[Check]) -> str:
    """The whole result as plain text: context lines, the rows, the processes, the targets."""
    load = " ".join(f"{x:.2f}" for x in info.loadavg)
    parts = [
        f"machine: nproc {info.nproc} (cpu_count {info.cpu_count}), {info.cpu_model}, "
        f"{info.mem_gb} GB, Python {info.python}, load average at start {load}, at end "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    ]
    if run.model:
        made = "published now, random weights" if run.model["published"] else "existing"
        parts.append(f"model: {run.model['path']} (version {run.model['version']}, {made})")
    parts.append(
        f"load: closed loop, {run.args.seconds:g} s measured after {run.args.warmup:g} s warm-up "
        f"per row; GET {DESIGN} (unseeded 3x3); a success is a 200 with a PNG body"
    )
    parts += run.notes
    rows = [
        [
            r.path,
            r.concurrency,
            _num(r.sheets_per_s, 2),
            _num(r.p50_ms),
            _num(r.p95_ms),
            _txt(r.errors),
            _num(r.others_pct, 0),
            r.note,
        ]
        for r in run.rows
    ]
    parts += [
        "",
        table(
            ["path", "conc", "sheets/s", "p50 ms", "p95 ms", "errors", "others %", "note"],
            rows,
            {1, 2, 3, 4, 5, 6},
        ),
        "(others %: CPU that processes outside this benchmark used during the row, as a share "
        "of all CPUs; above ~10 % the row is slowed by other users' work)",
    ]
    if run.servers:
        srows = [
            [
                s.name,
                _num(s.healthz_s, 2),
                _num(s.ready_s, 2),
                _num(s.rss_mb),
                _num(s.peak_rss_mb),
                "-" if s.tensorflow is None else ("yes" if s.tensorflow else "no"),
                "FAILED: " + s.failure.splitlines()[0] if s.failure else "",
            ]
            for s in run.servers
        ]
        heads = ["process", "up s", "ready s", "RSS MB", "peak MB", "TF mapped", ""]
        parts += ["", table(heads, srows, {1, 2, 3, 4})]
        parts.append(
            "(up: spawn -> first 200 on /healthz; ready: -> /readyz 200; the seed has neither, "
            f"both are its first 200 on {DESIGN}; RSS read after the load rows)"
        )
    vrows = [[c.name, c.value, c.target, c.verdict] for c in verdicts]
    parts += ["", table(["target", "measured", "wanted", "verdict"], vrows, set())]
    noisy = [r.others_pct for r in run.rows if r.others_pct is not None]
    if noisy and max(noisy) > NOISY_OTHERS_PCT:
        parts.append(
            f"warning: other processes used up to {max(noisy):.0f} % of the CPUs during this run "
            f"(median {statistics.median(noisy):.0f} %); the speed verdicts compare rows measured "
            "at different moments, so rerun on a quiet machine before trusting them"
        )
    return "\n".join(parts)
