"""Turning request bodies and query strings into records, with errors that name the field.

Hand-written rather than schema-library driven: the rules are few, and each error must carry the
exact path (`messages[3].attributes.color`) the client got wrong.
"""

import asyncio
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import uuid_utils
from aiohttp import web
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from .errors import ApiError, ClientDisconnected, bad_parameter, invalid
from .jsonio import JSONDecodeError, dumps, loads

COMPLEXITY_RANGE = (1, 10)
DURATION_MS_RANGE = (0, 60_000)
DEFAULT_TASK_TYPE = "cpu"
MESSAGE_FIELDS = frozenset({"content", "key", "attributes"})
TASK_FIELDS = frozenset({"type", "complexity", "duration_ms", "payload"})
MAX_RECORD_BYTES = 1 << 20
"""The producer's max_request_size: a record above it could never be sent, so it is refused up
front with the field named (413) instead of failing inside a batch after earlier records landed."""
MAX_PAYLOAD_DEPTH = 64
"""Nesting allowed inside a task's payload; deep enough for real documents, far below the
encoder's own limit, so a record that was accepted can always be encoded."""


class Outgoing(NamedTuple):
    """A validated record, encoded and ready for the producer (a named tuple: the cheapest
    immutable record to build, once per record of every batch)."""

    id: str
    key: bytes | None
    value: bytes


async def read_json(request: web.Request, body_timeout: float) -> Any:
    """The request's JSON body, or None when it has none.

    Everything here is the client's doing, so every failure is a 4xx or a disconnect, never a
    500: a body that does not arrive within `body_timeout` is a 408, a client that hangs up mid-body
    is reported as ClientDisconnected (nobody is left to answer).
    """
    if not request.body_exists:
        return None
    if request.content_type != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json, got {request.content_type!r}",
            "Content-Type",
        )
    limit = request.client_max_size
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    try:
        if request.content.is_eof():
            # The whole body is already buffered (the usual case for small bodies): no wait.
            raw = await request.read()
        else:
            async with asyncio.timeout(body_timeout):
                raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limit) from None
    except TimeoutError:
        raise ApiError(
            408,
            "body_timeout",
            f"the body did not arrive within {body_timeout:g}s",
            "body",
        ) from None
    except (ConnectionError, web.RequestPayloadError) as err:
        raise ClientDisconnected(str(err)) from None
    try:
        body = loads(raw)
    except JSONDecodeError as err:
        raise ApiError(
            400,
            "malformed_json",
            f"the body is not JSON this API accepts (strict JSON, integers within 64 bits, "
            f"at most 1024 levels deep): {err}",
            "body",
        ) from None
    if body is None:
        # JSON null is a body, not its absence: it must not turn into synthetic records.
        raise invalid("body", "must be a JSON object")
    return body


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"the body exceeds {limit} bytes", "body")


def _int_param(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_parameter(name, f"must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise bad_parameter(name, f"must be between {low} and {high}, got {value}")
    return value


def _reject_unknown_params(query: Mapping[str, str], allowed: set[str]) -> None:
    for name in query:
        if name not in allowed:
            raise bad_parameter(name, f"unknown parameter; expected one of {sorted(allowed)}")


def _items(body: Any, max_batch: int, batch_field: str) -> list[tuple[str, dict[str, Any]]]:
    """Split a single-object or `{batch_field: [...]}` body into (path, object) pairs."""
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    if batch_field not in body:
        return [("", body)]
    if len(body) > 1:
        extra = sorted(set(body) - {batch_field})[0]
        raise invalid(extra, f"not allowed next to {batch_field!r}")
    items = body[batch_field]
    if not isinstance(items, list) or not items:
        raise invalid(batch_field, "must be a non-empty array")
    if len(items) > max_batch:
        raise ApiError(
            413,
            "batch_too_large",
            f"{batch_field}: at most {max_batch} records per request, got {len(items)}",
            batch_field,
        )
    pairs: list[tuple[str, dict[str, Any]]] = []
    for index, item in enumerate(items):
        path = f"{batch_field}[{index}]."
        if not isinstance(item, dict):
            raise invalid(path[:-1], "must be a JSON object")
        pairs.append((path, item))
    return pairs


def _check_fields(path: str, item: dict[str, Any], allowed: frozenset[str]) -> None:
    for name in item:
        if name not in allowed:
            raise invalid(f"{path}{name}", f"unknown field; expected one of {sorted(allowed)}")


def _optional_str(path: str, item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(f"{path}{name}", "must be a string")
    return value


def _optional_int(
    path: str, item: dict[str, Any], name: str, bounds: tuple[int, int]
) -> int | None:
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{path}{name}", "must be an integer")
    if not bounds[0] <= value <= bounds[1]:
        raise invalid(f"{path}{name}", f"must be between {bounds[0]} and {bounds[1]}")
    return value


Fields = tuple[str | None, dict[str, Any]]
"""A validated record before it gets its id: (key, value)."""


def _message(path: str, item: dict[str, Any]) -> Fields:
    _check_fields(path, item, MESSAGE_FIELDS)
    content = _optional_str(path, item, "content")
    if content is None:
        raise invalid(f"{path}content", "is required")
    key = _optional_str(path, item, "key")
    attributes = item.get("attributes", {})
    if not isinstance(attributes, dict):
        raise invalid(f"{path}attributes", "must be an object of strings")
    for name, value in attributes.items():
        if not isinstance(value, str):
            raise invalid(f"{path}attributes.{name}", "must be a string")
    return key, {"content": content, "attributes": attributes}


def _task(path: str, item: dict[str, Any], complexity: int) -> Fields:
    _check_fields(path, item, TASK_FIELDS)
    value = {
        "type": _optional_str(path, item, "type") or DEFAULT_TASK_TYPE,
        "complexity": _optional_int(path, item, "complexity", COMPLEXITY_RANGE) or complexity,
        "duration_ms": _optional_int(path, item, "duration_ms", DURATION_MS_RANGE),
        "payload": _payload(path, item.get("payload")),
    }
    return None, value


def _payload(path: str, payload: Any) -> Any:
    """The payload unchanged, once it is known to nest no deeper than MAX_PAYLOAD_DEPTH."""
    level: list[Any] = [payload]
    for _ in range(MAX_PAYLOAD_DEPTH + 1):
        level = [
            child
            for node in level
            if isinstance(node, dict | list)
            for child in (node.values() if isinstance(node, dict) else node)
        ]
        if not level:
            return payload
    raise invalid(f"{path}payload", f"nested deeper than {MAX_PAYLOAD_DEPTH} levels")


def _record(path: str, key: str | None, value: dict[str, Any]) -> Outgoing:
    """Encode a record now, so every record of a request is known to be sendable before the
    first one is produced."""
    # uuid-utils (Rust) makes a version-4 UUID in a tenth of the standard library's time, which
    # counts once per record of every batch. Its generator is seeded per process and not
    # reseeded on fork; the service never forks after making ids (its CPU pool starts from a
    # fork server).
    record_id = str(uuid_utils.uuid4())
    encoded = dumps({"id": record_id, **value, "created_at": time.time()})
    encoded_key = None if key is None else key.encode()
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(encoded_key, encoded, [])
    if size > MAX_RECORD_BYTES:
        where = path[:-1] or "body"
        raise ApiError(
            413,
            "record_too_large",
            f"{where}: the record is {size} bytes encoded; at most {MAX_RECORD_BYTES}",
            where,
        )
    return Outgoing(record_id, encoded_key, encoded)


def _copies(query: Mapping[str, str], records: int, max_batch: int) -> int:
    """`?count=N`: how many times each record is sent (default once), within the batch limit."""
    count = _int_param(query, "count", 1, max_batch) or 1
    if count * records > max_batch:
        raise ApiError(
            413,
            "batch_too_large",
            f"count: {count} copies of {records} records make {count * records}; "
            f"at most {max_batch} records per request",
            "count",
        )
    return count


def _expand(
    query: Mapping[str, str], validated: list[tuple[str, Fields]], max_batch: int
) -> list[Outgoing]:
    """Every validated record `count` times over, each copy with its own id."""
    copies = _copies(query, len(validated), max_batch)
    return [_record(path, key, value) for _ in range(copies) for path, (key, value) in validated]


def parse_messages(query: Mapping[str, str], body: Any, max_batch: int) -> list[Outgoing]:
    """Records for POST /messages: one object or a batch, each sent `?count=N` times; without a
    body, N synthetic messages (the seed's form)."""
    _reject_unknown_params(query, {"count"})
    if body is None:
        synthetic: Fields = (None, {"content": "synthetic message", "attributes": {}})
        return _expand(query, [("", synthetic)], max_batch)
    items = _items(body, max_batch, "messages")
    validated = [(path, _message(path, item)) for path, item in items]
    return _expand(query, validated, max_batch)


def parse_tasks(query: Mapping[str, str], body: Any, max_batch: int) -> list[Outgoing]:
    """Records for POST /tasks: one object or a batch, each sent `?count=N` times; without a
    body, N synthetic tasks. `?complexity=C` applies to every task that does not set one."""
    _reject_unknown_params(query, {"count", "complexity"})
    complexity = _int_param(query, "complexity", *COMPLEXITY_RANGE) or 1
    if body is None:
        synthetic: Fields = (
            None,
            {"type": "synthetic", "complexity": complexity, "duration_ms": None, "payload": None},
        )
        return _expand(query, [("", synthetic)], max_batch)
    items = _items(body, max_batch, "tasks")
    validated = [(path, _task(path, item, complexity)) for path, item in items]
    return _expand(query, validated, max_batch)
