"""The load generator's argument checks, request bodies and summary arithmetic."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from rich.console import Console
from scalingdemo_workload.loadgen import build_parser, parse_args, request_body
from scalingdemo_workload.loadstats import LoadStats
from scalingdemo_workload.pacing import Profile

pytestmark = pytest.mark.unit


def parse(*argv: str):
    return parse_args(["http://127.0.0.1:8080/", *argv])


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--rate", "0"], "--rate"),
        (["--rate", "fast"], "--rate"),
        (["--concurrency", "100000"], "--concurrency"),
        (["--complexity", "11"], "--complexity"),
        (["--duration-ms", "-1"], "--duration-ms"),
        (["--rate", "1", "--concurrency", "2"], "--concurrency"),
        (["--complexity", "3"], "--complexity"),
        (["--kind", "messages", "--duration-ms", "5"], "--duration-ms"),
        (["--max-in-flight", "4"], "--max-in-flight"),
        (["--profile", "step:10/s@30s", "--rate", "5"], "--rate"),
        (["--profile", "step:10/s@30s", "--duration", "5"], "--profile"),
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


def test_constant_rate_schedule_is_evenly_spaced_and_ends_before_the_end():
    times = list(Profile.constant(4).send_times(10.0, 11.0))
    assert times == [10.0, 10.25, 10.5, 10.75]


def test_summary_counts_errors_with_the_servers_message():
    stats = LoadStats()
    stats.record("202", 0.01, 0.01, 10)
    stats.record("503 kafka_unavailable", 0.02, 0.02, 10, "Kafka is not reachable; retry later")
    stats.record("connection failed", 0.03, 0.03, 10, "Cannot connect")
    stats.miss("due, but not sent before the end")
    assert (stats.sent, stats.accepted, stats.errors, stats.records_accepted) == (3, 1, 2, 10)
    assert stats.not_sent == 1
    console = Console(width=200, record=True)
    stats.elapsed = 1.0
    console.print(stats.summary())
    text = console.export_text()
    for expected in (
        "errors: 503 kafka_unavailable",
        "Kafka is not reachable; retry later",
        "errors: connection failed",
        "not sent: due, but not sent before the end",
        "latency p99",
    ):
        assert expected in text


def test_latency_percentiles_come_from_the_histogram():
    stats = LoadStats()
    for millis in range(1, 101):
        stats.record("202", millis / 1000, 0.001, 1)
    assert stats.latency_seconds(50) == pytest.approx(0.050, rel=0.01)
    assert stats.latency_seconds(99) == pytest.approx(0.099, rel=0.01)
    assert stats.service_seconds(99) == pytest.approx(0.001, rel=0.01)


def test_unreachable_url_backs_off_and_ctrl_c_prints_the_summary():
    """Nothing listens on port 9: attempts stay few (not thousands a second), and SIGINT ends
    the run with the summary instead of a traceback."""
    load = subprocess.Popen(
        [sys.executable, "-m", "scalingdemo_workload.loadgen", "http://127.0.0.1:9",
         "--rate", "2000", "--duration", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert load.stdout is not None
    assert "Ctrl-C ends early" in load.stdout.readline()
    time.sleep(2)
    load.send_signal(signal.SIGINT)
    out, err = load.communicate(timeout=30)
    assert load.returncode == 1
    assert "Traceback" not in err
    assert "Load summary" in out
    attempts = int(re.search(r"errors: connection failed\s+│\s+(\d+)", out).group(1))
    held_back = int(
        re.search(r"not sent: held back after connection failures\s+│\s+(\d+)", out).group(1)
    )
    assert attempts < 100 < held_back
