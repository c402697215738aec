"""What went wrong with a gateway request, in terms both client APIs render in their own error shape.

One classification, two dialects: `openai_error` and the Anthropic module's `error_body` render a `Problem`, so a
refusal means the same status to an OpenAI client and an Anthropic one, and no route picks statuses of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel

from podium.errors import (
    BudgetExhausted,
    GovernanceError,
    ModelUnavailable,
    NotFoundError,
    RateLimited,
    RequestTooLarge,
    Unauthenticated,
    UsageError,
)
from podium.gateway._upstream import UpstreamError


class UnknownModel(NotFoundError):
    """A model name the gateway does not serve (or not to this key)."""


Kind = Literal[
    "invalid_request",  # 400: the request is malformed or asks for something no model here can do
    "authentication",  # 401: no key, or one podium does not accept
    "permission",  # 403: policy refuses it, or a kill or suspension stops its principal
    "not_found",  # 404: no such model (for this key)
    "too_large",  # 413: the body is over the limit
    "budget",  # 429 (OpenAI "insufficient_quota") / 429 Anthropic: a budget would be exceeded; not worth retrying
    "rate_limit",  # 429: too many requests or refusals; retry after Retry-After
    "unavailable",  # 503: no upstream answered, or the database does not (podium fails closed)
    "upstream",  # the upstream refused the request itself: its status passed on
    "internal",  # 500: podium's own failure
]
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    status: int
    kind: Kind
    message: str
    retry_after_s: int | None = None
    code: str | None = None  # a more specific code than the kind's (OpenAI's "model_not_found")

    @property
    def headers(self) -> dict[str, str]:
        """Retry-After where a retry can help; `x-should-retry: false` where it cannot (the official SDKs honour it,
        so a client out of budget is not made to retry three times)."""
        if self.retry_after_s is not None:
            return {"Retry-After": str(self.retry_after_s)}
        if self.kind in ("budget", "permission", "invalid_request", "not_found", "authentication", "too_large"):
            return {"x-should-retry": "false"}
        return {}


# Podium's refusals, most specific first: what each means to a client (status, kind, a more specific code).
_REFUSALS: tuple[tuple[type[Exception], int, Kind, str | None], ...] = (
    (Unauthenticated, 401, "authentication", None),
    (BudgetExhausted, 429, "budget", None),
    (RateLimited, 429, "rate_limit", None),
    (RequestTooLarge, 400, "invalid_request", "context_length_exceeded"),
    (GovernanceError, 403, "permission", None),  # a policy, a kill, a suspension, a guardrail
    (UnknownModel, 404, "not_found", "model_not_found"),
    (NotFoundError, 404, "not_found", None),
    (UsageError, 400, "invalid_request", None),
    (ModelUnavailable, 503, "unavailable", None),
)
_DATABASE_DOWN = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
RETRY_S = 5  # what Retry-After says when nobody knows better


def problem_of(exc: BaseException) -> Problem:
    """The problem an exception raised while serving a request means to the client."""
    for kind, status, name, code in _REFUSALS:
        if isinstance(exc, kind):
            retry = RETRY_S if name == "unavailable" else getattr(exc, "fields", {}).get("retry_after_s")
            return Problem(status, name, str(getattr(exc, "message", exc)), retry, code)
    if isinstance(exc, UpstreamError):
        return _upstream_problem(exc)
    if isinstance(exc, _DATABASE_DOWN):
        _log.warning("the database does not answer; the gateway refuses requests until it does: %r", exc)
        message = (
            "podium's database does not answer, so nothing can be governed or recorded: the request was not sent. "
            "Retry shortly."
        )
        return Problem(503, "unavailable", message, retry_after_s=RETRY_S)
    _log.error("the gateway failed on a request", exc_info=exc)
    return Problem(500, "internal", "podium failed on this request (not a fault in it); the server's log has why.")


def _upstream_problem(exc: UpstreamError) -> Problem:
    """A provider's fault is podium's 503 (the client may retry); the provider refusing the request is passed on."""
    if exc.provider_fault:
        retry = round(exc.retry_after_s) if exc.retry_after_s is not None else RETRY_S
        return Problem(503, "unavailable", exc.message, retry_after_s=max(1, retry))
    return Problem(exc.status if 400 <= exc.status < 500 else 400, "upstream", exc.message)


_OPENAI_TYPES: dict[Kind, tuple[str, str | None]] = {
    "invalid_request": ("invalid_request_error", None),
    "authentication": ("invalid_request_error", "invalid_api_key"),
    "permission": ("permission_error", "permission_denied"),
    "not_found": ("invalid_request_error", None),
    "too_large": ("invalid_request_error", "request_too_large"),
    "budget": ("insufficient_quota", "insufficient_quota"),
    "rate_limit": ("rate_limit_error", "rate_limit_exceeded"),
    "unavailable": ("server_error", "service_unavailable"),
    "upstream": ("invalid_request_error", "upstream_refused"),
    "internal": ("server_error", None),
}


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """What every gateway error answers in OpenAI's dialect (Anthropic's routes answer in Anthropic's)."""

    error: OpenAIErrorBody


GATEWAY_STATUSES = (400, 401, 403, 404, 413, 421, 429, 500, 503)


def openai_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI declarations of a gateway route's error statuses, in OpenAI's error shape."""
    return {status: {"model": OpenAIError} for status in statuses or GATEWAY_STATUSES}


class AnthropicErrorBody(BaseModel):
    type: str
    message: str


class AnthropicError(BaseModel):
    """What the Anthropic route's errors answer: `{"type": "error", "error": {"type", "message"}}`."""

    type: Literal["error"]
    error: AnthropicErrorBody
    request_id: str | None = None


def anthropic_responses() -> dict[int | str, dict[str, object]]:
    return {status: {"model": AnthropicError} for status in GATEWAY_STATUSES}


def openai_error(problem: Problem) -> dict[str, object]:
    """OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`."""
    kind, code = _OPENAI_TYPES[problem.kind]
    return {"error": {"message": problem.message, "type": kind, "param": None, "code": problem.code or code}}
