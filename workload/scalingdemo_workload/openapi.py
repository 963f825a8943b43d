"""The OpenAPI 3.1 description of the HTTP API, served at /openapi.json.

Written out by hand: the API is small. It must equal the behaviour, not merely resemble it:
schemathesis drives every operation of both roles with valid and invalid data and fails on any
status, header, content type or body the document does not promise (tests/integration), and a
unit test checks that the documented routes are exactly the served ones.
"""

from typing import Any

from .config import Settings
from .validation import COMPLEXITY_RANGE, DURATION_MS_RANGE

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string"},
    }
}

PRODUCE_ERRORS = {
    "400": _json(_ref("Error"), "Malformed JSON, or an unusable query parameter."),
    "408": _json(_ref("Error"), "The body did not arrive within the body timeout."),
    "413": _json(_ref("Error"), "Body, record or batch larger than allowed."),
    "415": _json(_ref("Error"), "Content-Type is not application/json."),
    "422": _json(_ref("Error"), "A field breaks a rule; `error.field` names it."),
    "502": _json(
        _ref("Error"),
        "Kafka refused a record for good; `ids`, `failed` and `unconfirmed` say what landed.",
    ),
    "503": {
        **_json(
            _ref("Error"),
            "Kafka is unreachable or slow; `ids`, `failed` and `unconfirmed` say what landed.",
        ),
        "headers": RETRY_AFTER,
    },
}


def _count_param(max_batch: int) -> Schema:
    return {
        "name": "count",
        "in": "query",
        "description": "How many times each record is sent (default 1); without a body, how "
        "many synthetic records. At most the batch limit in total.",
        "schema": {"type": "integer", "minimum": 1, "maximum": max_batch},
    }


def _produce(summary: str, item: str, batch_field: str, params: list[Schema]) -> Schema:
    body = {"oneOf": [_ref(item), {"$ref": f"#/components/schemas/{item}Batch"}]}
    return {
        "post": {
            "summary": summary,
            "parameters": params,
            "requestBody": {
                "required": False,
                "description": "One record or a batch; without a body, synthetic records.",
                "content": {"application/json": {"schema": body}},
            },
            "responses": {
                "202": _json(_ref("Accepted"), f"All {batch_field} are durably in Kafka."),
                **PRODUCE_ERRORS,
            },
        }
    }


def _get(summary: str, ok: str, unavailable: str | None = None) -> Schema:
    responses = {"200": _json({"type": "object"}, ok)}
    if unavailable is not None:
        responses["503"] = _json({"type": "object"}, unavailable)
    return {"get": {"summary": summary, "responses": responses}}


def _metrics() -> Schema:
    text = {"text/plain": {"schema": {"type": "string"}}}
    ok = {"description": "Prometheus text exposition format.", "content": text}
    return {"get": {"summary": "Prometheus metrics", "responses": {"200": ok}}}


def _batch(item: str, field: str, max_batch: int) -> Schema:
    return {
        "type": "object",
        "required": [field],
        "additionalProperties": False,
        "properties": {
            field: {"type": "array", "minItems": 1, "maxItems": max_batch, "items": _ref(item)}
        },
    }


def _range(bounds: tuple[int, int], **extra: Any) -> Schema:
    return {"type": ["integer", "null"], "minimum": bounds[0], "maximum": bounds[1], **extra}


def _schemas(max_batch: int) -> Schema:
    record_state = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["index", "id"],
            "properties": {
                "index": {"type": "integer"},
                "id": {"type": "string"},
                "reason": {"type": "string"},
                "retriable": {"type": "boolean"},
            },
        },
    }
    return {
        "Message": {
            "type": "object",
            "required": ["content"],
            "additionalProperties": False,
            "properties": {
                "content": {"type": "string"},
                "key": {
                    "type": ["string", "null"],
                    "description": "Kafka record key; unkeyed records spread over partitions.",
                },
                "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "MessageBatch": _batch("Message", "messages", max_batch),
        "Task": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "type": {"type": ["string", "null"], "default": "cpu"},
                "complexity": _range(
                    COMPLEXITY_RANGE,
                    default=1,
                    description="CPU units to burn when duration_ms is absent.",
                ),
                "duration_ms": _range(
                    DURATION_MS_RANGE,
                    description="CPU milliseconds to burn; overrides complexity.",
                ),
                "payload": {
                    "description": "Any JSON value (at most 64 levels deep), carried along.",
                },
            },
        },
        "TaskBatch": _batch("Task", "tasks", max_batch),
        "Accepted": {
            "type": "object",
            "required": ["accepted", "ids"],
            "properties": {
                "accepted": {"type": "integer"},
                "ids": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                    },
                },
                "accepted": {"type": "integer"},
                "ids": {"type": "array", "items": {"type": "string"}},
                "failed": record_state,
                "unconfirmed": record_state,
            },
        },
    }


def openapi_document(settings: Settings) -> Schema:
    """The document for a process with these settings: only the routes its role serves, with
    batch limits from its configuration."""
    max_batch = settings.max_batch
    paths: Schema = {
        "/healthz": _get("Liveness", "The process is alive.", "A consumer loop stopped."),
        "/health": _get(
            "Liveness (alias kept from the seed)",
            "The process is alive.",
            "A consumer loop stopped.",
        ),
        "/readyz": _get(
            "Readiness",
            "Ready: Kafka reachable and consumer groups joined.",
            "Not ready; `checks` says why.",
        ),
        "/info": _get("Service information", "Identity, Kafka wiring and configuration."),
        "/metrics": _metrics(),
        "/openapi.json": _get("This document", "OpenAPI 3.1 document."),
    }
    if settings.runs_api:
        complexity = {
            "name": "complexity",
            "in": "query",
            "description": "Complexity of every task that does not set its own (default 1).",
            "schema": {
                "type": "integer",
                "minimum": COMPLEXITY_RANGE[0],
                "maximum": COMPLEXITY_RANGE[1],
            },
        }
        count = _count_param(max_batch)
        paths["/messages"] = _produce("Produce messages", "Message", "messages", [count])
        paths["/tasks"] = _produce("Produce tasks", "Task", "tasks", [count, complexity])
    return {
        "openapi": "3.1.0",
        "info": {"title": "ScalingDemo workload", "version": "1"},
        "paths": paths,
        "components": {"schemas": _schemas(max_batch)},
    }
