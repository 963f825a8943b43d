"""Request validation: accepted shapes and errors that name the field."""

import json

import pytest
from scalingdemo_workload.errors import ApiError
from scalingdemo_workload.validation import (
    MAX_PAYLOAD_DEPTH,
    MAX_RECORD_BYTES,
    parse_messages,
    parse_tasks,
)

pytestmark = pytest.mark.unit


def error_of(parse, query, body, max_batch=10) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse(query, body, max_batch)
    return caught.value


def test_single_message_keeps_key_and_attributes():
    [record] = parse_messages({}, {"content": "hi", "key": "k", "attributes": {"a": "b"}}, 10)
    value = json.loads(record.value)
    assert record.key == b"k"
    assert value["content"] == "hi"
    assert value["attributes"] == {"a": "b"}
    assert value["id"] == record.id


def test_message_without_key_stays_unkeyed():
    [record] = parse_messages({}, {"content": "hi"}, 10)
    assert record.key is None


def test_batch_and_synthetic_messages():
    batch = parse_messages({}, {"messages": [{"content": "a"}, {"content": "b"}]}, 10)
    assert [json.loads(r.value)["content"] for r in batch] == ["a", "b"]
    assert len({r.id for r in parse_messages({"count": "5"}, None, 10)}) == 5


def test_task_defaults_and_synthetic_complexity():
    [task] = parse_tasks({}, {}, 10)
    value = json.loads(task.value)
    assert (value["type"], value["complexity"], value["duration_ms"]) == (
        "cpu",
        1,
        None,
    )
    synthetic = parse_tasks({"count": "3", "complexity": "7"}, None, 10)
    assert [json.loads(t.value)["complexity"] for t in synthetic] == [7, 7, 7]


def test_count_copies_a_body_and_complexity_fills_in_tasks_without_one():
    copies = parse_messages({"count": "3"}, {"content": "a", "key": "k"}, 10)
    assert [json.loads(r.value)["content"] for r in copies] == ["a"] * 3
    assert len({r.id for r in copies}) == 3
    tasks = parse_tasks({"complexity": "4"}, {"tasks": [{}, {"complexity": 2}]}, 10)
    assert [json.loads(t.value)["complexity"] for t in tasks] == [4, 2]
    [one] = parse_messages({}, None, 10)
    assert json.loads(one.value)["content"] == "synthetic message"


def test_integral_number_is_an_integer():
    [task] = parse_tasks({}, {"duration_ms": 2519.0}, 10)
    assert json.loads(task.value)["duration_ms"] == 2519


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_payload_nesting_is_bounded_and_named():
    parse_tasks({}, {"payload": nested(MAX_PAYLOAD_DEPTH)}, 10)
    error = error_of(parse_tasks, {}, {"tasks": [{}, {"payload": nested(MAX_PAYLOAD_DEPTH + 1)}]})
    assert (error.status, error.field) == (422, "tasks[1].payload")


def test_record_over_the_producer_limit_is_refused_before_anything_is_sent():
    big = {"content": "x" * MAX_RECORD_BYTES}
    error = error_of(parse_messages, {}, {"messages": [{"content": "a"}, big]})
    assert (error.status, error.code, error.field) == (413, "record_too_large", "messages[1]")
    single = error_of(parse_messages, {}, big)
    assert (single.status, single.field) == (413, "body")


@pytest.mark.parametrize(
    ("parse", "query", "body", "status", "field"),
    [
        (parse_messages, {}, {"content": 3}, 422, "content"),
        (parse_messages, {}, {}, 422, "content"),
        (parse_messages, {}, {"content": "x", "colour": "red"}, 422, "colour"),
        (parse_messages, {}, {"content": "x", "attributes": {"a": 1}}, 422, "attributes.a"),
        (parse_messages, {}, {"content": "x", "attributes": []}, 422, "attributes"),
        (parse_messages, {}, {"messages": [{"content": "a"}, {}]}, 422, "messages[1].content"),
        (parse_messages, {}, {"messages": []}, 422, "messages"),
        (parse_messages, {}, {"messages": [{"content": "a"}], "x": 1}, 422, "x"),
        (parse_messages, {}, {"messages": [{"content": "a"}] * 11}, 413, "messages"),
        (parse_messages, {}, ["content"], 422, "body"),
        (parse_messages, {"count": "0"}, None, 400, "count"),
        (parse_messages, {"count": "11"}, None, 400, "count"),
        (parse_messages, {"count": "many"}, None, 400, "count"),
        (parse_messages, {"count": "6"}, {"messages": [{"content": "a"}] * 2}, 413, "count"),
        (parse_messages, {"cuont": "1"}, None, 400, "cuont"),
        (parse_tasks, {}, {"complexity": 11}, 422, "complexity"),
        (parse_tasks, {}, {"complexity": True}, 422, "complexity"),
        (parse_tasks, {}, {"duration_ms": 60001}, 422, "duration_ms"),
        (parse_tasks, {}, {"duration_ms": 1.5}, 422, "duration_ms"),
        (parse_tasks, {}, {"type": 1}, 422, "type"),
        (parse_tasks, {}, {"tasks": [{}, {"complexity": 0}]}, 422, "tasks[1].complexity"),
        (parse_tasks, {}, {"messages": [{}]}, 422, "messages"),
        (parse_tasks, {"count": "2", "complexity": "11"}, None, 400, "complexity"),
    ],
)
def test_bad_input_names_the_field(parse, query, body, status, field):
    error = error_of(parse, query, body)
    assert (error.status, error.field) == (status, field)
    assert error.body()["error"]["field"] == field
    assert field in error.message
