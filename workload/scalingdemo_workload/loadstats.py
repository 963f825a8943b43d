"""Counting what a load run did and summarising it as a table."""

import math
from collections import Counter
from dataclasses import dataclass, field

from rich.table import Table

PERCENTILES = (50, 90, 99)


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(math.ceil(pct / 100 * len(sorted_values)), 1)
    return sorted_values[rank - 1]


@dataclass
class LoadStats:
    """Outcomes of every request a load run sent."""

    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    records_accepted: int = 0

    @property
    def sent(self) -> int:
        return sum(self.outcomes.values())

    @property
    def accepted(self) -> int:
        return self.outcomes["202"]

    @property
    def errors(self) -> int:
        return self.sent - self.accepted

    def record(self, outcome: str, seconds: float, records: int) -> None:
        self.outcomes[outcome] += 1
        self.latencies.append(seconds)
        if outcome == "202":
            self.records_accepted += records

    def summary(self, elapsed: float) -> Table:
        table = Table(title="Load summary", show_header=True)
        table.add_column("metric")
        table.add_column("value", justify="right")
        rate = self.sent / elapsed if elapsed > 0 else 0.0
        rows = [
            ("requests sent", f"{self.sent}"),
            ("requests accepted (202)", f"{self.accepted}"),
            ("records accepted", f"{self.records_accepted}"),
            *((f"errors: {name}", f"{n}") for name, n in sorted(self.outcomes.items())
              if name != "202"),
            ("duration", f"{elapsed:.1f} s"),
            ("throughput", f"{rate:.1f} req/s"),
            ("records/s accepted", f"{self.records_accepted / elapsed if elapsed else 0:.1f}"),
        ]  # fmt: skip
        ordered = sorted(self.latencies)
        for pct in PERCENTILES:
            rows.append((f"latency p{pct}", f"{percentile(ordered, pct) * 1000:.1f} ms"))
        for name, value in rows:
            table.add_row(name, value)
        return table
