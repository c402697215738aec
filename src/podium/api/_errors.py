"""Every error the HTTP API answers has one shape, whoever raised it (a route, FastAPI's validation, the router,
the key check, the Host check, or a bug):

    {"error": {"code": "not_found", "message": "no review request 'x'. `podium review list` shows ..."}}

`code` is one of `CODES` (stable, for programs: one per HTTP status); `message` is one line for a person, naming
the fix, as the CLI says it. A failure of ours is a 500 with `internal` and a fixed message: the traceback goes to
the server's log, never to the client. `responses(...)` declares these statuses in OpenAPI with this model.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from podium.errors import GovernanceError, NotFoundError, StaleError, UsageError

ErrorCode = Literal[
    "bad_request",
    "unauthenticated",
    "refused",
    "not_found",
    "method_not_allowed",
    "conflict",
    "too_large",
    "wrong_host",
    "invalid",
    "rate_limited",
    "internal",
    "unavailable",
]
CODES: dict[int, ErrorCode] = {
    400: "bad_request",
    401: "unauthenticated",  # no key, or a key that proves no one
    403: "refused",  # the key is good, the action is not allowed (audited)
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",  # the request was decided, claimed or escalated since it was read
    413: "too_large",
    421: "wrong_host",  # the Host header names a host this server does not answer to
    422: "invalid",  # bad input: a parameter, a body field, an edit that does not fit
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}
WHEN = {
    401: "No key, or a key that proves no one (unknown, revoked, expired).",
    403: "Refused: an agent's key, or Cedar does not allow this person the action (audited).",
    404: "No such review request.",
    409: "The request was decided, claimed or escalated since it was read: read it again, then act.",
    413: "The request body is over 1 MB.",
    421: "The Host header names a host this server does not answer to.",
    422: "A parameter or body field is missing, of the wrong type or out of bounds; the message names it.",
    429: "Too many refused keys from this address: retry after `Retry-After` seconds.",
    500: "A failure of podium's, not of the request: the server's log has the details.",
    503: "The database does not answer.",
}
INTERNAL = "podium failed on this request (not a fault in it); the server's log has the details: report it."


class ErrorBody(BaseModel):
    code: ErrorCode = Field(description="Stable, for programs: one per HTTP status.")
    message: str = Field(description="One line for a person, naming the fix.")


class Error(BaseModel):
    """What every error response holds."""

    error: ErrorBody


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error in the API's one shape."""
    code = CODES.get(status, "bad_request" if status < 500 else "internal")
    body = Error(error=ErrorBody(code=code, message=message))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of `statuses` with the error model, for a route's or a router's `responses=`."""
    return {status: {"model": Error, "description": WHEN[status]} for status in statuses}


def install(api: FastAPI) -> None:
    """Answer every error `api` raises in the one shape: podium's own, validation, routing, and bugs."""
    api.add_exception_handler(UsageError, _podium_error)  # and its NotFoundError, StaleError
    api.add_exception_handler(GovernanceError, _podium_error)
    api.add_exception_handler(RequestValidationError, _invalid)
    api.add_exception_handler(HTTPException, _http_error)
    api.add_exception_handler(Exception, _internal)  # Starlette logs the exception after answering


async def _podium_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UsageError | GovernanceError)
    if isinstance(exc, GovernanceError):
        status = 403
    else:
        status = 404 if isinstance(exc, NotFoundError) else 409 if isinstance(exc, StaleError) else 422
    return error_response(status, exc.message)


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_problem(e) for e in exc.errors()]
    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
    return error_response(422, f"{shown}. Correct it and send the request again.")


def _problem(error: Any) -> str:
    """`query status: Input should be 'open', 'all' or …` from one of pydantic's errors (never the input)."""
    where, *path = [str(part) for part in error.get("loc", ())] or ["request"]
    if error.get("type") == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'unreadable')})"
    name = ".".join(path)
    return f"{where} {name}: {error.get('msg', 'invalid')}" if name else f"{where}: {error.get('msg', 'invalid')}"


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = "no such route; GET /docs lists the API's routes."
    elif exc.status_code == 405:
        message = f"this route does not take that method; it takes {(exc.headers or {}).get('Allow', '?')}."
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message, dict(exc.headers or {}))


async def _internal(_: Request, exc: Exception) -> JSONResponse:
    return error_response(500, INTERNAL)
