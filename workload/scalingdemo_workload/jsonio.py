"""JSON in and out with orjson.

orjson is strict where the standard library is lenient, which the API relies on: it refuses
`NaN`/`Infinity`, lone surrogates and nesting past 1024 levels with a decode error instead of
producing values Kafka consumers cannot read back, and it is several times faster on the hot
path (every request body, record value and response).
"""

from typing import Any

import orjson
from aiohttp import web

JSONDecodeError = orjson.JSONDecodeError
JSONEncodeError = orjson.JSONEncodeError
loads = orjson.loads


def dumps(value: Any) -> bytes:
    """Compact JSON bytes."""
    return orjson.dumps(value)


def json_response(
    value: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response without the standard library's encoder."""
    return web.Response(
        body=orjson.dumps(value), status=status, headers=headers, content_type="application/json"
    )
