"""The table ``python -m benchmarks.reliability`` prints: per scenario, the answers, goodput
beside the baseline of the same run, latencies, the health checks, and a verdict against the
targets of issue 17."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from benchmarks.holders import Held
from benchmarks.procs import Machine
from benchmarks.traffic import Tally, percentile

HEALTH_P99_S = 0.05
GOODPUT_RATIO = 0.70
FLOOD_SCENARIOS = ("retry flood", "idle connections", "stalled uploads")
UPSTREAM_TIMEOUT_S = 6.0


@dataclass
class Outcome:
    name: str
    seconds: float
    tally: Tally
    health: list[float]  # seconds per probe; inf for a failed one
    control: list[float] = field(default_factory=list)  # the control server's, meanwhile
    held: Held | None = None
    memory: list[float] = field(default_factory=list)  # gateway RSS samples, MB
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at the start and end
    images: int = 256  # per request

    def merge(self, other: Outcome) -> Outcome:
        """This scenario and another round of it, as one."""
        tally = Tally()
        for t in (self.tally, other.tally):
            for kind, statuses in t.statuses.items():
                tally.statuses[kind].update(statuses)
            for key, values in t.latencies.items():
                tally.latencies[key].extend(values)
            for status, ends in t.ends.items():
                tally.ends[status].extend(ends)
            tally.timeouts += t.timeouts
            tally.broken += t.broken
            tally.unexpected.update(t.unexpected)
        held = self.held
        if held is not None and other.held is not None:
            held = Held(
                held.opened + other.held.opened,
                held.closed_by_server + other.held.closed_by_server,
                held.answers + other.held.answers,
                held.refused_at_connect + other.held.refused_at_connect,
            )
        return Outcome(
            self.name,
            self.seconds + other.seconds,
            tally,
            sorted(self.health + other.health),
            sorted(self.control + other.control),
            held,
            self.memory + other.memory,
            (min(self.load[0], other.load[0]), max(self.load[1], other.load[1])),
            self.images,
        )

    def count(self, status: int) -> int:
        return self.tally.count(status)

    def latencies(self, status: int) -> list[float]:
        return [x for (_, s), v in self.tally.latencies.items() if s == status for x in v]

    @property
    def goodput(self) -> float:
        """Designs delivered per second."""
        return self.count(200) * self.images / self.seconds

    def waves(self, status: int, apart_s: float = 1.0) -> int:
        """Groups of answers of ``status`` that came together (one model call each)."""
        ends = sorted(self.tally.ends.get(status, []))
        return sum(1 for i, t in enumerate(ends) if i == 0 or t - ends[i - 1] > apart_s)

    @property
    def others(self) -> dict[int, int]:
        found: dict[int, int] = {}
        for statuses in self.tally.statuses.values():
            for status, n in statuses.items():
                if status not in (200, 503):
                    found[status] = found.get(status, 0) + n
        return found


def _ms(values: list[float], q: float) -> str:
    if not values:
        return "-"
    v = percentile(values, q)
    return "fail" if math.isinf(v) else f"{1000 * v:.0f}"


def verdict(o: Outcome, baseline: Outcome | None) -> list[str]:
    """The targets ``o`` misses (none: it passes)."""
    missed = []
    health_p99 = percentile(o.health, 0.99)
    control_p99 = percentile(o.control, 0.99) if o.control else 0.0
    if control_p99 > HEALTH_P99_S:  # the machine itself is slower than the target
        if health_p99 > control_p99 + HEALTH_P99_S:
            missed.append("health p99 <= control p99 + 50 ms")
    elif health_p99 > HEALTH_P99_S:
        missed.append("health p99 <= 50 ms")
    if o.tally.timeouts:
        missed.append("no client timeout")
    refused = o.latencies(503)
    if o.name in FLOOD_SCENARIOS and baseline is not None:
        ratio = o.goodput / baseline.goodput if baseline.goodput else 0.0
        if ratio < GOODPUT_RATIO:
            missed.append(f"goodput >= {GOODPUT_RATIO:.0%} of baseline")
    if o.name.startswith("small sheets") and o.count(503):
        missed.append("no 503")
    if o.name in ("slow upstream", "failing upstream") and (
        not refused or percentile(refused, 0.5) > 0.05
    ):
        missed.append("503 p50 <= 50 ms")
    if o.name == "failing upstream":
        tries = math.ceil(o.seconds / UPSTREAM_TIMEOUT_S) + 1
        if o.waves(504) > tries:
            missed.append(f"504s in <= {tries} waves (one try at a time)")
    return missed


def print_table(results: dict[str, list[Outcome]], m: Machine, seconds: float, rounds: int) -> None:
    for label, runs in results.items():
        print(
            f"\n== gateway {label}: {seconds:g} s per scenario and round, {rounds} rounds of "
            "baseline, flood, idle and stalled in turn ==\n"
        )
        head = (
            f"{'scenario':<18}{'200':>6}{'503':>6}{'other':>12}{'designs/s':>11}{'vs base':>9}"
            f"{'200 p99':>9}{'503 p50/p99':>13}{'health p50/p99/max':>20}{'control p99':>13}"
            f"{'load':>11}  verdict (the targets it misses)"
        )
        print(head)
        print("-" * len(head) + "-" * 40)
        baseline = {"embedded": runs[0], "rest": None}
        for o in runs:
            group = "rest" if o.name.startswith(("rest", "slow", "failing")) else "embedded"
            if o.name == "rest baseline":
                baseline["rest"] = o
            base = baseline[group]
            same = base is not None and base.images == o.images and base.goodput
            ratio = f"{o.goodput / base.goodput:.0%}" if same and base else "-"
            others = ", ".join(f"{s}: {n}" for s, n in sorted(o.others.items())) or "0"
            if 504 in o.others:
                others += f" ({o.waves(504)}w)"
            if o.tally.timeouts:
                others += f", t/o {o.tally.timeouts}"
            refused = o.latencies(503)
            health = f"{_ms(o.health, 0.5)}/{_ms(o.health, 0.99)}/{_ms(o.health, 1.0)}"
            missed = verdict(o, base if o is not base else None)
            said = "PASS" if not missed else "FAIL: " + ", ".join(missed)
            print(
                f"{o.name:<18}{o.count(200):>6}{o.count(503):>6}{others:>12}{o.goodput:>11.0f}"
                f"{ratio:>9}{_ms(o.latencies(200), 0.99):>9}"
                f"{_ms(refused, 0.5) + '/' + _ms(refused, 0.99):>13}{health:>20}"
                f"{_ms(o.control, 0.99):>13}"
                f"{o.load[0]:>5.1f}-{o.load[1]:<5.1f}  {said}"
            )
        for o in runs:
            if o.held is not None:
                answers = dict(o.held.answers) or "-"
                print(
                    f"  {o.name}: {o.held.opened} connections opened, {o.held.closed_by_server} "
                    f"closed by the gateway (answers before closing: {answers})"
                )
            if o.memory:
                print(
                    f"  {o.name}: gateway resident memory {min(o.memory):.0f} -> "
                    f"{max(o.memory):.0f} MB (peak)"
                )
    print(
        f"\nmachine: {m.nproc} cores ({m.cpu_model}), {m.mem_gb} GB; load: the 1-minute load "
        "average, lowest at a start and highest at an end of the scenario's rounds (other "
        "work on the machine included)"
    )
