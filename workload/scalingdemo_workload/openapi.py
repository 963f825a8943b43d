"""The OpenAPI 3.1 description of the HTTP API, served at /openapi.json.

Written out by hand: the API is small, and a unit test checks that every registered route is
described here and nothing else is.
"""

from typing import Any

from .config import Settings
from .validation import COMPLEXITY_RANGE, DURATION_MS_RANGE

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _json(_ref("Error"), "Malformed JSON or an unusable query parameter."),
    "413": _json(_ref("Error"), "Body or batch larger than allowed."),
    "415": _json(_ref("Error"), "Content-Type is not application/json."),
    "422": _json(_ref("Error"), "A field breaks a rule; `error.field` names it."),
    "503": _json(_ref("Error"), "Kafka is unreachable or slow; see Retry-After."),
}


def _count_param(max_batch: int) -> Schema:
    return {
        "name": "count",
        "in": "query",
        "description": "Generate this many synthetic records instead of sending a body.",
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
                "content": {"application/json": {"schema": body}},
            },
            "responses": {
                "202": _json(_ref("Accepted"), f"All {batch_field} are durably in Kafka."),
                **ERRORS,
            },
        }
    }


def _get(summary: str, description: str, content_type: str = "application/json") -> Schema:
    ok = {"description": description, "content": {content_type: {"schema": {"type": "object"}}}}
    if content_type != "application/json":
        ok["content"][content_type]["schema"] = {"type": "string"}
    return {"get": {"summary": summary, "responses": {"200": ok}}}


def _batch(item: str, field: str, max_batch: int) -> Schema:
    return {
        "type": "object",
        "required": [field],
        "additionalProperties": False,
        "properties": {
            field: {"type": "array", "minItems": 1, "maxItems": max_batch, "items": _ref(item)}
        },
    }


def openapi_document(settings: Settings) -> Schema:
    """The document for a process with these settings (batch limits come from configuration)."""
    max_batch = settings.max_batch
    complexity = {
        "name": "complexity",
        "in": "query",
        "description": "Complexity of the synthetic tasks.",
        "schema": {
            "type": "integer",
            "minimum": COMPLEXITY_RANGE[0],
            "maximum": COMPLEXITY_RANGE[1],
        },
    }
    readiness = _get("Readiness", "Ready: Kafka reachable and consumer groups joined.")
    readiness["get"]["responses"]["503"] = {"description": "Not ready; `checks` says why."}
    message_properties = {
        "content": {"type": "string"},
        "key": {
            "type": "string",
            "description": "Kafka record key; unkeyed records spread over partitions.",
        },
        "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
    }
    task_properties = {
        "type": {"type": "string", "default": "cpu"},
        "complexity": {
            "type": "integer",
            "minimum": COMPLEXITY_RANGE[0],
            "maximum": COMPLEXITY_RANGE[1],
            "default": 1,
            "description": "CPU units to burn when duration_ms is absent.",
        },
        "duration_ms": {
            "type": "integer",
            "minimum": DURATION_MS_RANGE[0],
            "maximum": DURATION_MS_RANGE[1],
            "description": "CPU milliseconds to burn; overrides complexity.",
        },
        "payload": {"description": "Any JSON value, carried along unchanged."},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "ScalingDemo workload", "version": "1"},
        "paths": {
            "/healthz": _get("Liveness", "The process is alive."),
            "/health": _get("Liveness (alias kept from the seed)", "The process is alive."),
            "/readyz": readiness,
            "/info": _get("Service information", "Identity, Kafka wiring and configuration."),
            "/metrics": _get("Prometheus metrics", "Text exposition format.", "text/plain"),
            "/openapi.json": _get("This document", "OpenAPI 3.1 document."),
            "/messages": _produce(
                "Produce messages", "Message", "messages", [_count_param(max_batch)]
            ),
            "/tasks": _produce(
                "Produce tasks", "Task", "tasks", [_count_param(max_batch), complexity]
            ),
        },
        "components": {
            "schemas": {
                "Message": {
                    "type": "object",
                    "required": ["content"],
                    "additionalProperties": False,
                    "properties": message_properties,
                },
                "MessageBatch": _batch("Message", "messages", max_batch),
                "Task": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": task_properties,
                },
                "TaskBatch": _batch("Task", "tasks", max_batch),
                "Accepted": {
                    "type": "object",
                    "properties": {
                        "accepted": {"type": "integer"},
                        "ids": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "field": {"type": "string"},
                            },
                        }
                    },
                },
            }
        },
    }
