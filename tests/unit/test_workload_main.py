"""The console entry point: --help documents the variables, bad configuration stops the start."""

import pytest
from scalingdemo_workload.__main__ import main
from scalingdemo_workload.contract import Env

pytestmark = pytest.mark.unit


def test_help_documents_the_environment(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert Env.BOOTSTRAP_SERVERS in out
    assert "_FILE" in out


def test_invalid_configuration_stops_with_the_variable_named(monkeypatch):
    monkeypatch.setenv(Env.TASK_CONCURRENCY, "lots")
    with pytest.raises(SystemExit) as caught:
        main([])
    assert f"{Env.TASK_CONCURRENCY}: must be an integer" in str(caught.value.code)
