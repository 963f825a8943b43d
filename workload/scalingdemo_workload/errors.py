"""The one error shape every endpoint answers with.

Clients (the load generator, curl users, the operator's tests) read `error.code` to branch and
`error.field` to point at what they sent wrong, so every failure path must produce this shape,
including the router's own 404/405, aiohttp's 413 and the protocol-level 400s (see server.py).
"""

from typing import Any

from aiohttp import web

from .jsonio import json_response


class ApiError(Exception):
    """A request failed for a reason the client should see."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error, **self.extra}

    def response(self) -> web.Response:
        return json_response(self.body(), status=self.status, headers=self.headers)


class ClientDisconnected(Exception):
    """The client went away before its request was read: nobody is left to answer."""


def invalid(field: str, message: str) -> ApiError:
    """A well-formed request whose content breaks a rule (422)."""
    return ApiError(422, "invalid", f"{field}: {message}", field)


def bad_parameter(field: str, message: str) -> ApiError:
    """A query parameter that cannot be used (400)."""
    return ApiError(400, "bad_parameter", f"{field}: {message}", field)
