"""Counting what a load run did and summarising it as a table.

Latency is recorded in an HDR histogram (bounded memory for any run length, exact enough at
every percentile). Two figures are kept per request: latency from the intended send time, which
includes any time the request waited because the target or the client was saturated (without
it, a slow server hides its queueing: coordinated omission), and service time from the moment
it actually went out.
"""

from collections import Counter
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram
from rich.table import Table

PERCENTILES = (50, 90, 99)
LONGEST_MICROSECONDS = 3_600_000_000
SIGNIFICANT_DIGITS = 3
ACCEPTED = "202"


def _histogram() -> HdrHistogram:
    return HdrHistogram(1, LONGEST_MICROSECONDS, SIGNIFICANT_DIGITS)


def _microseconds(seconds: float) -> int:
    return min(max(round(seconds * 1_000_000), 1), LONGEST_MICROSECONDS)


@dataclass
class LoadStats:
    """Outcomes of every request a load run meant to send."""

    latency: HdrHistogram = field(default_factory=_histogram)
    service: HdrHistogram = field(default_factory=_histogram)
    outcomes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    records_accepted: int = 0
    missed: Counter[str] = field(default_factory=Counter)
    unfinished: int = 0
    elapsed: float = 0.0

    @property
    def sent(self) -> int:
        return sum(self.outcomes.values())

    @property
    def accepted(self) -> int:
        return self.outcomes[ACCEPTED]

    @property
    def errors(self) -> int:
        return self.sent - self.accepted

    @property
    def not_sent(self) -> int:
        return sum(self.missed.values())

    def record(
        self, outcome: str, latency: float, service: float, records: int, message: str = ""
    ) -> None:
        """One finished request: its outcome ("202", "503 kafka_unavailable", ...), its latency
        from the intended send time and its service time, in seconds."""
        self.outcomes[outcome] += 1
        self.latency.record_value(_microseconds(latency))
        self.service.record_value(_microseconds(service))
        if outcome == ACCEPTED:
            self.records_accepted += records
        elif message:
            self.examples.setdefault(outcome, message)

    def miss(self, reason: str) -> None:
        """A request that was due but never went out before the run ended."""
        self.missed[reason] += 1

    def latency_seconds(self, pct: float) -> float:
        return float(self.latency.get_value_at_percentile(pct)) / 1_000_000

    def service_seconds(self, pct: float) -> float:
        return float(self.service.get_value_at_percentile(pct)) / 1_000_000

    def summary(self) -> Table:
        elapsed = self.elapsed
        table = Table(title="Load summary", show_header=True)
        table.add_column("metric")
        table.add_column("value", justify="right", overflow="fold")
        rate = self.sent / elapsed if elapsed > 0 else 0.0
        records_rate = self.records_accepted / elapsed if elapsed > 0 else 0.0
        rows = [
            ("requests sent", f"{self.sent}"),
            ("requests accepted (202)", f"{self.accepted}"),
            ("records accepted", f"{self.records_accepted}"),
        ]
        for name, count in sorted(self.outcomes.items()):
            if name != ACCEPTED:
                example = self.examples.get(name)
                rows.append((f"errors: {name}", f"{count}" + (f" ({example})" if example else "")))
        rows += [(f"not sent: {reason}", f"{n}") for reason, n in sorted(self.missed.items())]
        if self.unfinished:
            rows.append(("unfinished when the run ended", f"{self.unfinished}"))
        rows += [
            ("duration", f"{elapsed:.1f} s"),
            ("throughput", f"{rate:.1f} req/s"),
            ("records/s accepted", f"{records_rate:.1f}"),
        ]
        for pct in PERCENTILES:
            rows.append(
                (
                    f"latency p{pct} (service time)",
                    f"{self.latency_seconds(pct) * 1000:.1f} ms "
                    f"({self.service_seconds(pct) * 1000:.1f} ms)",
                )
            )
        for name, value in rows:
            table.add_row(name, value)
        return table
