"""The load-profile syntax and the rate controller that turns a profile into send times."""

import math

import pytest
from scalingdemo_workload.loadgen import parse_args
from scalingdemo_workload.pacing import Profile, Segment
from scalingdemo_workload.profiles import ProfileError, parse_profile

pytestmark = pytest.mark.unit


def test_step_profile_holds_each_rate_for_its_time():
    profile = parse_profile("step:10/s@30s,50/s@60s,0/s@60s", None)
    assert profile.segments == (
        Segment(10, 10, 30),
        Segment(50, 50, 60),
        Segment(0, 0, 60),
    )
    assert profile.seconds == 150
    assert [profile.target_rate(t) for t in (0, 29.9, 30, 89.9, 90, 149, 151)] == [
        10, 10, 50, 50, 0, 0, 0
    ]  # fmt: skip


def test_units_ramps_constant_and_spike():
    assert parse_profile("ramp:0/s..120/m@2m,2/s@500ms", None).segments == (
        Segment(0, 2, 120),
        Segment(2, 2, 0.5),
    )
    assert parse_profile("constant:20/s", 45).segments == (Segment(20, 20, 45),)
    assert parse_profile("spike:10/s,200/s@30s+10s", 60).segments == (
        Segment(10, 10, 30),
        Segment(200, 200, 10),
        Segment(10, 10, 20),
    )
    assert parse_profile("spike:1/s,5/s@0s+1h", 3600).segments == (Segment(5, 5, 3600),)


@pytest.mark.parametrize(
    ("text", "duration", "named"),
    [
        ("steps:10/s@30s", None, "expected one of constant:..., step:..."),
        ("step:10/s@30s,50/x@60s", None, "segment 2 '50/x@60s': rate '50/x'"),
        ("step:10/s@30s,50/s", None, "segment 2 '50/s': expected RATE@TIME"),
        ("step:10/s@30s,50/s@0s", None, "segment 2 '50/s@0s': time '0s' must be above 0"),
        ("step:10/s@30s,50/s@soon", None, "segment 2 '50/s@soon': time 'soon'"),
        ("step:1/s..5/s@30s", None, "segment 1 '1/s..5/s@30s': a step holds one rate"),
        ("ramp:0/s..200001/s@1s", None, "segment 1 '0/s..200001/s@1s': rate '200001/s' is above"),
        ("step:1/s@30s", 10, "sets its own length; leave --duration out"),
        ("constant:5/s", None, "runs for --duration"),
        ("constant:fast", 10, "constant 'fast': rate 'fast'"),
        ("spike:10/s", 60, "spike '10/s': expected BASE,PEAK@START+LENGTH"),
        ("spike:10/s,99/s@30s", 60, "expected PEAK@START+LENGTH"),
        ("spike:10/s,99/s@50s+20s", 60, "the spike ends at 70s, after --duration 60s"),
        ("step:1/s@20h,1/s@20h", None, "more than 86400s"),
    ],
)
def test_bad_profiles_name_the_segment(text, duration, named):
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, duration)
    assert named in str(caught.value)


def test_the_command_line_names_the_option_and_the_segment(capsys):
    with pytest.raises(SystemExit):
        parse_args(["http://127.0.0.1:8080", "--profile", "step:10/s@30s,fast@1m"])
    assert "argument --profile: segment 2 'fast@1m': rate 'fast'" in capsys.readouterr().err


def test_a_step_or_ramp_profile_sets_the_runs_length():
    args = parse_args(["http://127.0.0.1:8080", "--profile", "step:10/s@30s,50/s@1m"])
    assert args.duration == 90
    assert parse_args(["http://127.0.0.1:8080", "--rate", "3"]).profile == Profile.constant(3)
    assert parse_args(["http://127.0.0.1:8080"]).duration == 30


def windows(profile: Profile, start: float, width: float):
    """(sends, target) per window of `width` seconds over the profile's length."""
    times = list(profile.send_times(start, start + profile.seconds))
    found = []
    for index in range(math.ceil(profile.seconds / width)):
        since, until = index * width, min((index + 1) * width, profile.seconds)
        sent = sum(1 for at in times if since <= at - start < until)
        found.append((sent, profile.target_requests(since, until)))
    return times, found


@pytest.mark.parametrize(
    "text",
    [
        "step:10/s@3s,50/s@2s,0/s@2s,7/s@1.5s",
        "ramp:0/s..100/s@4s,100/s..3/s@3s,3/s@1s",
        "ramp:0.5/s..0.5/s@10s",
    ],
)
def test_every_window_gets_the_requests_its_target_asks_for_to_within_one(text):
    profile = parse_profile(text, None)
    times, found = windows(profile, 1000.0, 0.5)
    assert times == sorted(times)
    assert len(times) == pytest.approx(profile.target_requests(0, profile.seconds), abs=1)
    for sent, target in found:
        assert sent == pytest.approx(target, abs=1)
    # Cumulatively the error never grows past one request.
    for index, at in enumerate(times):
        assert profile.target_requests(0, at - 1000.0) == pytest.approx(index, abs=1e-6)


def test_the_run_end_cuts_a_profile_and_a_rate_of_zero_sends_nothing():
    profile = parse_profile("step:10/s@1s,0/s@5s,10/s@1s", None)
    assert len(list(profile.send_times(0.0, 2.0))) == 10
    assert len(list(profile.send_times(0.0, profile.seconds))) == 20
    assert list(Profile.constant(0.5).send_times(0.0, 5.0)) == [0.0, 2.0, 4.0]
