"""Rounds of a benchmark that compares two sides: their order, and the spread of their ratios.

On a shared 2-core machine one measurement of each side gives a ratio that moves by about ±0.2
from run to run: a burst of load, or the bed's controllers still busy with the previous
measurement, lands on one side only. Measuring each side several times, with the side that goes
first alternating from round to round, lets such a drift favour neither side; the median of the
rounds' ratios is then the run's figure, one disturbed round cannot move it, and the lowest and
highest ratios show how far the rounds spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Side = Literal["operator", "bare"]


@dataclass(frozen=True)
class Round:
    """One round of one size: each side measured once, on fresh namespaces."""

    count: int
    """N: the demos each side converges."""
    number: int
    """1 for the first round of this N."""
    rounds: int
    sides: tuple[Side, Side]
    extras: bool
    """Whether the one-off measurements (an edit of many demos at once, an idle window) follow
    this round's operator convergence: they run once, in the last round of the largest N."""
    last: bool
    """Whether this is the run's last round: nothing follows that its namespaces' garbage
    collection could slow down, so it need not be waited for."""

    @property
    def label(self) -> str:
        return f"N={self.count} round {self.number}/{self.rounds}"


def sides(number: int) -> tuple[Side, Side]:
    """The bare client goes first in the odd rounds (1, 3, ...), the operator in the even ones."""
    return ("bare", "operator") if number % 2 else ("operator", "bare")


def plan(sizes: Sequence[int], rounds: int) -> list[Round]:
    """Every round of the run, in order: all rounds of one size before the next size."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    largest = sizes.index(max(sizes))
    return [
        Round(
            count,
            number,
            rounds,
            sides(number),
            extras=index == largest and number == rounds,
            last=index == len(sizes) - 1 and number == rounds,
        )
        for index, count in enumerate(sizes)
        for number in range(1, rounds + 1)
    ]


@dataclass(frozen=True)
class Ratios:
    """One ratio per round, in round order; the median is the run's figure."""

    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("no rounds to summarize")

    @property
    def median(self) -> float:
        """The middle round's ratio; with an even number of rounds, the mean of the two middle
        ones."""
        return statistics.median(self.values)

    def __str__(self) -> str:
        return (
            f"median {self.median:.2f}x (lowest {min(self.values):.2f}x, highest "
            f"{max(self.values):.2f}x; by round "
            + ", ".join(f"{value:.2f}x" for value in self.values)
            + ")"
        )
