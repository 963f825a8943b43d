"""The convergence benchmark's rounds: their order, the one-off measurements' place, the
median and spread reported, and the checks of the options. The measurements themselves need
the bed and are not run here."""

from __future__ import annotations

import pytest

from benchmarks.operator_convergence import Figures, parse_arguments, summary
from benchmarks.rounds import Ratios, plan, sides

pytestmark = pytest.mark.unit


def test_the_side_that_goes_first_alternates_starting_with_the_bare_client() -> None:
    assert [sides(number) for number in (1, 2, 3, 4)] == [
        ("bare", "operator"),
        ("operator", "bare"),
        ("bare", "operator"),
        ("operator", "bare"),
    ]


def test_every_round_of_a_size_comes_before_the_next_size() -> None:
    steps = plan([1, 20, 100], 3)

    assert [(step.count, step.number, step.rounds) for step in steps] == [
        (count, number, 3) for count in (1, 20, 100) for number in (1, 2, 3)
    ]
    assert [step.sides for step in steps[:3]] == [sides(1), sides(2), sides(3)]
    assert steps[4].label == "N=20 round 2/3"


def test_the_one_off_measurements_follow_the_last_round_of_the_largest_size() -> None:
    steps = plan([1000, 1], 2)

    assert [(step.count, step.number) for step in steps if step.extras] == [(1000, 2)]
    assert [(step.count, step.number) for step in steps if step.last] == [(1, 2)]


def test_one_round_measures_each_size_once() -> None:
    steps = plan([1, 20], 1)

    assert [(step.count, step.sides, step.extras, step.last) for step in steps] == [
        (1, ("bare", "operator"), False, False),
        (20, ("bare", "operator"), True, True),
    ]


def test_a_plan_without_rounds_is_refused() -> None:
    with pytest.raises(ValueError, match="rounds must be at least 1, got 0"):
        plan([1], 0)


def test_the_median_of_an_odd_number_of_rounds_is_the_middle_one() -> None:
    ratios = Ratios((1.53, 1.30, 1.39))

    assert ratios.median == 1.39
    assert str(ratios) == "median 1.39x (lowest 1.30x, highest 1.53x; by round 1.53x, 1.30x, 1.39x)"


def test_the_median_of_an_even_number_of_rounds_is_between_the_middle_two() -> None:
    assert Ratios((1.0, 1.6, 1.2, 1.4)).median == pytest.approx(1.3)


def test_no_rounds_have_no_median() -> None:
    with pytest.raises(ValueError, match="no rounds"):
        Ratios(())


def _round(observed: float, bare_observed: float) -> Figures:
    return Figures(
        20,
        observed=observed,
        ready=2 * observed,
        requests=330,
        bare_observed=bare_observed,
        bare_ready=2 * bare_observed,
        bare_requests=320,
    )


def test_the_summary_of_a_size_gives_each_ratio_over_its_rounds() -> None:
    line = summary([_round(2.8, 2.0), _round(2.2, 2.0), _round(3.0, 2.0)])

    assert line == (
        "N=20, 3 rounds, operator / bare: "
        "observed median 1.40x (lowest 1.10x, highest 1.50x; by round 1.40x, 1.10x, 1.50x); "
        "all Ready median 1.40x (lowest 1.10x, highest 1.50x; by round 1.40x, 1.10x, 1.50x); "
        "API requests per demo median 1.03x (lowest 1.03x, highest 1.03x; "
        "by round 1.03x, 1.03x, 1.03x)"
    )


def test_three_rounds_by_default() -> None:
    assert parse_arguments(["--audit-log", "audit.log"]).rounds == 3


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--rounds", "0", "must be between 1 and 1000, got 0"),
        ("--rounds", "-1", "must be between 1 and 1000, got -1"),
        ("--rounds", "two", "must be an integer, got 'two'"),
        ("--sizes", "1,,20", "must be an integer, got ''"),
        ("--sizes", "0", "must be between 1 and 10000, got 0"),
        ("--sizes", "100000", "must be between 1 and 10000, got 100000"),
        ("--edit", "-5", "must be between 0 and 10000, got -5"),
        ("--idle-seconds", "nan", "must be between 0 and 1800, got nan"),
    ],
)
def test_bad_arguments_are_refused_naming_the_option(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_arguments(["--audit-log", "audit.log", option, value])

    error = capsys.readouterr().err
    assert f"argument {option}: {message}" in error


def test_sizes_are_read_in_order() -> None:
    assert parse_arguments(["--audit-log", "a.log", "--sizes", "100, 1,20"]).sizes == [100, 1, 20]
