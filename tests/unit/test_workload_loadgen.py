"""The load generator's argument checks, request bodies and summary arithmetic."""

import pytest
from rich.console import Console
from scalingdemo_workload.loadgen import build_parser, request_body
from scalingdemo_workload.loadstats import LoadStats, percentile

pytestmark = pytest.mark.unit


def parse(*argv: str):
    return build_parser().parse_args(["http://127.0.0.1:8080/", *argv])


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--rate", "0"], "--rate"),
        (["--rate", "fast"], "--rate"),
        (["--concurrency", "100000"], "--concurrency"),
        (["--complexity", "11"], "--complexity"),
        (["--duration-ms", "-1"], "--duration-ms"),
        (["--rate", "1", "--concurrency", "2"], "--concurrency"),
    ],
)
def test_bad_arguments_name_the_option(argv, option, capsys):
    with pytest.raises(SystemExit):
        parse(*argv)
    assert f"argument {option}" in capsys.readouterr().err


def test_bad_url_is_rejected(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["localhost:8080"])
    assert "argument url" in capsys.readouterr().err


def test_request_bodies():
    assert parse().url == "http://127.0.0.1:8080"
    assert request_body(parse()) == {"content": "scalingdemo-load"}
    assert request_body(parse("--kind", "tasks", "--complexity", "4")) == {"complexity": 4}
    batch = request_body(parse("--kind", "tasks", "--duration-ms", "0", "--batch", "3"))
    assert batch == {"tasks": [{"duration_ms": 0}] * 3}


def test_percentile_is_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50.0,
        99.0,
        100.0,
    )
    assert percentile([], 50) != percentile([], 50)


def test_summary_counts_errors_by_status():
    stats = LoadStats()
    stats.record("202", 0.01, 10)
    stats.record("503", 0.02, 10)
    stats.record("ClientConnectorError", 0.03, 10)
    assert (stats.sent, stats.accepted, stats.errors, stats.records_accepted) == (3, 1, 2, 10)
    console = Console(width=120, record=True)
    console.print(stats.summary(1.0))
    text = console.export_text()
    for expected in ("errors: 503", "errors: ClientConnectorError", "latency p99"):
        assert expected in text
