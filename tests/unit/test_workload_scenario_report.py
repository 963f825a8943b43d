"""The scenario report: timeline arithmetic, its files, the chart, and the --watch options."""

import csv
import json
from pathlib import Path

import matplotlib.image
import pytest
from rich.console import Console
from scalingdemo_workload.demo_watch import backlogs, components
from scalingdemo_workload.loadgen import parse_args
from scalingdemo_workload.report_chart import chart, chart_title, draw
from scalingdemo_workload.timeline import Component, Sample, ScaleEvent, Timeline, Trigger

from tests.workload_support import drawn_series

pytestmark = pytest.mark.unit

STARTED = 1_800_000_000.0
"""2027-01-15T08:00:00Z"""


def worker(current: int, desired: int, scaled_at: str | None, lag: float) -> dict[str, Component]:
    return {
        "worker": Component(current, desired, scaled_at, (Trigger("taskLag", lag, 10, lag > 0),))
    }


def scenario() -> Timeline:
    """A step up at 2 s, the HPA rescaling 1→4 at 4 s and 4→1 at 9 s, the backlog drained."""
    timeline = Timeline(STARTED)
    readings = [
        (0, 0, 0, worker(1, 1, None, 0)),
        (1, 0, 0, worker(1, 1, None, 0)),
        (2, 50, 20, worker(1, 1, None, 20)),
        (3, 50, 120, worker(1, 1, None, 120)),
        (4, 50, 200, worker(1, 4, "2027-01-15T08:00:04Z", 200)),
        (5, 50, 180, worker(4, 4, "2027-01-15T08:00:04Z", 45)),
        (6, 0, 90, worker(4, 4, "2027-01-15T08:00:04Z", 22.5)),
        (7, 0, 0, worker(4, 4, "2027-01-15T08:00:04Z", 0)),
        (8, 0, 0, worker(4, 4, "2027-01-15T08:00:04Z", 0)),
        (9, 0, 0, worker(4, 1, "2027-01-15T08:00:09Z", 0)),
        (10, 0, 0, worker(1, 1, "2027-01-15T08:00:09Z", 0)),
    ]
    for seconds, rate, backlog, found in readings:
        timeline.add(Sample(seconds, rate, rate * 0.98, backlog, found))
    return timeline


def test_scale_events_come_from_the_hpas_last_scale_times():
    assert scenario().scale_events() == [
        ScaleEvent(4.0, "worker", 1, 4),
        ScaleEvent(9.0, "worker", 4, 1),
    ]


def test_the_summary_figures():
    assert scenario().summary(lost_requests=3) == {
        "time_to_first_scale_up_s": 4.0,
        "time_to_max_replicas_s": 5,
        "max_replicas": 4,
        "peak_backlog": 200,
        "drain_time_s": 3.0,
        "replica_seconds": 1 * 5 + 4 * 5,
        "lost_requests": 3,
    }


def test_the_timeline_is_written_as_csv_and_json(tmp_path: Path):
    table, document = scenario().write(tmp_path / "report", lost_requests=0)
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 11
    assert rows[4]["worker_desired"] == "4"
    assert rows[4]["worker_taskLag_value"] == "200"
    assert rows[4]["worker_taskLag_target"] == "10"
    saved = json.loads(document.read_text())
    assert saved["summary"]["peak_backlog"] == 200
    assert saved["scale_events"][0] == {
        "seconds": 4.0,
        "component": "worker",
        "before": 1,
        "after": 4,
    }
    assert saved["samples"][3]["backlog"] == 120


def test_a_saved_timeline_reads_back_and_draws_the_same_chart(tmp_path: Path):
    timeline = scenario()
    _, document = timeline.write(tmp_path, lost_requests=0)
    again = Timeline.read(document)
    assert again == timeline
    first = draw(timeline, tmp_path / "first.png", chart_title("shop"))
    second = draw(again, tmp_path / "second.png", chart_title("shop"))
    assert (matplotlib.image.imread(first) == matplotlib.image.imread(second)).all()


def test_the_chart_is_a_png(tmp_path: Path):
    path = draw(scenario(), tmp_path / "chart.png", "test")
    pixels = matplotlib.image.imread(path)
    height, width, _ = pixels.shape
    assert (height, width) == (990, 1210)


def test_every_series_of_the_chart_is_read_from_the_timeline():
    timeline = scenario()
    figure = chart(timeline, "test")
    replicas = figure.axes[2]
    lines = drawn_series(figure)
    samples = timeline.samples
    assert lines["target rate"] == [s.target_rate for s in samples]
    assert lines["achieved rate"] == [s.achieved_rate for s in samples]
    assert lines["backlog"] == [s.backlog for s in samples]
    assert lines["worker desired"] == [s.components["worker"].desired for s in samples]
    assert lines["worker current"] == [s.components["worker"].current for s in samples]
    # One grey line per HPA rescale in each panel.
    marks = [line for line in replicas.get_lines() if line.get_label().startswith("_")]
    assert [line.get_xdata()[0] for line in marks] == [4.0, 9.0]


def test_status_scaling_and_scaled_objects_are_read_as_the_operator_writes_them():
    status = {
        "scaling": {
            "summary": "worker 1/4",
            "worker": {"currentReplicas": 1, "desiredReplicas": 4, "triggers": [
                {"name": "taskLag", "value": 38.5, "target": 10, "active": True}]},
        }
    }  # fmt: skip
    assert components(status) == {
        "worker": Component(1, 4, None, (Trigger("taskLag", 38.5, 10, True),))
    }
    scaled = {"spec": {"triggers": [
        {"type": "kafka", "metadata": {"bootstrapServers": "k:9092", "topic": "t",
         "consumerGroup": "g", "offsetResetPolicy": "earliest"}},
        {"type": "prometheus", "metadata": {}},
    ]}}  # fmt: skip
    (found,) = backlogs([scaled, scaled], None)
    assert (found.bootstrap, found.topic, found.group, found.offset_reset) == (
        "k:9092", "t", "g", "earliest"
    )  # fmt: skip
    assert backlogs([scaled], "127.0.0.1:1")[0].bootstrap == "127.0.0.1:1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--watch", "deploy/x"], "argument --watch: expected sdemo/NAME, got 'deploy/x'"),
        (["--watch", "sdemo/"], "argument --watch: expected sdemo/NAME"),
        (["-n", "demo"], "argument --namespace: applies only with --watch"),
        (["--report", "out"], "argument --report: applies only with --watch"),
        (["--kafka-bootstrap", "k:1"], "argument --kafka-bootstrap: applies only with --watch"),
    ],
)
def test_bad_watch_options_name_the_option(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(["http://127.0.0.1:8080", *argv])
    assert message in capsys.readouterr().err


def test_the_report_goes_to_a_directory_named_after_the_demo():
    args = parse_args(["http://127.0.0.1:8080", "--watch", "sdemo/shop", "-n", "demo"])
    assert (args.report, args.namespace) == (Path("scalingdemo-report-shop"), "demo")


def test_the_live_view_shows_rates_backlog_replicas_and_triggers():
    from scalingdemo_workload.scenario import Scenario

    class Watch:
        name, namespace = "shop", "demo"

    view = Scenario(Watch(), None, Path("unused"))  # type: ignore[arg-type]
    view.timeline = scenario()
    console = Console(width=120, record=True)
    console.print(view)
    text = console.export_text()
    for expected in ("sdemo/shop in demo", "0 / 0.0 req/s", "worker replicas current / desired",
                     "1 / 1", "taskLag", "0 / 10 idle"):  # fmt: skip
        assert expected in text, text
