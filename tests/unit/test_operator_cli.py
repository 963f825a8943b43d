"""The operator's command line refuses bad values, naming the option."""

from __future__ import annotations

import pytest
from scalingdemo_operator.__main__ import _arguments, settings_from

pytestmark = pytest.mark.unit


def test_resync_defaults_to_five_minutes() -> None:
    assert _arguments([]).resync_seconds == 300.0


@pytest.mark.parametrize("value", ["-1", "soon"])
def test_bad_resync_period_names_the_option(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _arguments(["--resync-seconds", value])
    assert "--resync-seconds" in capsys.readouterr().err


def test_topic_deletion_gives_up_after_five_attempts_by_default() -> None:
    assert _arguments([]).topic_delete_attempts == 5
    assert _arguments(["--topic-delete-attempts", "2"]).topic_delete_attempts == 2


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_attempt_count_names_the_option(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _arguments(["--topic-delete-attempts", value])
    assert "--topic-delete-attempts" in capsys.readouterr().err


def test_retry_delays_are_checked_and_become_the_settings() -> None:
    settings = settings_from(_arguments(["--retry-seconds", "2", "--max-retry-seconds", "8"]))
    assert (settings.retry_seconds, settings.max_retry_seconds) == (2, 8)
    assert [settings.retry_delay(attempt) for attempt in range(4)] == [2, 4, 8, 8]
    with pytest.raises(SystemExit):
        _arguments(["--retry-seconds", "10", "--max-retry-seconds", "5"])


def test_concurrent_reconciles_default_to_sixteen_and_become_the_setting() -> None:
    assert settings_from(_arguments([])).concurrent_reconciles == 16
    chosen = settings_from(_arguments(["--concurrent-reconciles", "4"]))
    assert chosen.concurrent_reconciles == 4


@pytest.mark.parametrize("value", ["0", "-2", "many", "2.5"])
def test_bad_concurrent_reconciles_name_the_option(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _arguments(["--concurrent-reconciles", value])
    assert "--concurrent-reconciles" in capsys.readouterr().err
