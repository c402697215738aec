"""The gateway's HTTP routes: OpenAI's chat completions, embeddings and models, and Anthropic's messages.

Each route checks the key first (`identify`), then reads and checks the body itself (so that a bad body from a
known key is audited, and answered in the client's API's error shape), then hands the request to the `Gateway`.
A refusal before the governor (bad body, unknown model) is audited here; the governor audits its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from podium.audit import record
from podium.cost import Tokens
from podium.errors import GovernanceError, UsageError
from podium.gateway import _anthropic as anthropic
from podium.gateway._openai import (
    ChatCompletionRequest,
    EmbeddingsRequest,
    chunk_body,
    completion_body,
    embeddings_body,
)
from podium.gateway._problems import Problem, anthropic_responses, openai_error, openai_responses, problem_of
from podium.gateway._service import Gateway
from podium.gateway._streaming import ChatStream
from podium.governance import valid_request_id
from podium.policy import Identity

M = TypeVar("M", bound=BaseModel)
REQUEST_ID_HEADER = "x-podium-request-id"
MAX_DEPTH = 64  # how deeply a body's JSON may nest: enough for any real schema, and far from the stack's limit
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
Identify = Callable[[Request], Identity]  # the key's identity, or raises `Refused`
OPENAI_PATHS = ("/v1/chat/completions", "/v1/embeddings", "/v1/models", "/v1/podium")  # answered in OpenAI's shape
ANTHROPIC_PATHS = ("/v1/messages",)  # answered in Anthropic's shape


class Feedback(BaseModel):
    """`POST /v1/podium/feedback`: whether the answer to a `podium/auto` request (its x-podium-request-id) was good."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200)
    good: bool


class Refused(Exception):
    """A request refused before it reached the gateway (no key, a bad key, too many refusals)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def gateway_router(gateway: Gateway, identify: Identify) -> APIRouter:
    """The gateway's routes over `gateway`, each request's key checked by `identify`."""
    router = APIRouter(tags=["gateway"], responses=openai_responses())
    _chat_routes(router, gateway, identify)
    _anthropic_routes(router, gateway, identify)
    _podium_routes(router, gateway, identify)
    return router


def refusal(engine: sa.Engine, exc: BaseException, who: Identity | None, path: str, request_id: str) -> Problem:
    """What `exc` means to the client; a request from a known key refused before the governor saw it (a bad body,
    an unknown model) is audited here (the governor audits its own refusals, the gatekeeper bad keys)."""
    problem = _problem(exc)
    if who is not None and problem.kind in ("invalid_request", "not_found") and not isinstance(exc, GovernanceError):
        _audit_refusal(engine, who, path, request_id, problem)
    return problem


def dialect_error(path: str, problem: Problem) -> JSONResponse | None:
    """`problem` in the error shape of the gateway's API at `path` (Anthropic's on its messages routes, OpenAI's on
    the others), for a refusal made before any route runs (a body over the limit); None off the gateway's routes
    (podium's own API, under /v1 too, has its own shape)."""
    if _under(path, ANTHROPIC_PATHS):
        body = anthropic.problem_body(problem)
    elif _under(path, OPENAI_PATHS):
        body = openai_error(problem)
    else:
        return None
    return JSONResponse(body, status_code=problem.status, headers=problem.headers)


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def _openai_refusal(
    engine: sa.Engine, exc: BaseException, who: Identity | None, request: Request, request_id: str
) -> JSONResponse:
    problem = refusal(engine, exc, who, request.url.path, request_id)
    headers = {**problem.headers, REQUEST_ID_HEADER: request_id}
    return JSONResponse(openai_error(problem), status_code=problem.status, headers=headers)


def _chat_routes(router: APIRouter, gateway: Gateway, identify: Identify) -> None:
    engine = gateway.engine

    @router.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> Response:
        """OpenAI's chat completions, streamed (`stream: true`) or whole."""
        request_id, who = _request_id(request), None
        try:
            who = await asyncio.to_thread(identify, request)  # a database read: off the loop
            chat = _parse(ChatCompletionRequest, await request.body())
            max_tokens = chat.wanted_tokens(gateway.default_max_tokens)
            if chat.stream:
                stream = gateway.stream(who, request_id, chat.model, chat.upstream_body(), max_tokens)
                first = await _first(stream)
            else:
                answer = await gateway.complete(who, request_id, chat.model, chat.upstream_body(), max_tokens)
        except Exception as exc:  # noqa: BLE001 - every failure is answered in OpenAI's shape
            return await asyncio.to_thread(_openai_refusal, engine, exc, who, request, request_id)
        if not chat.stream:
            body = completion_body(answer.result, chat.model, request_id)
            return JSONResponse(body, headers={REQUEST_ID_HEADER: request_id})
        events = _openai_events(stream, first, chat.model, request_id, include_usage=chat.include_usage)
        headers = {**SSE_HEADERS, REQUEST_ID_HEADER: request_id}
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)

    @router.post("/v1/embeddings", response_model=None)
    async def embeddings(request: Request) -> Response:
        """OpenAI's embeddings, of text."""
        request_id, who = _request_id(request), None
        try:
            who = await asyncio.to_thread(identify, request)  # a database read: off the loop
            asked = _parse(EmbeddingsRequest, await request.body())
            result, _ = await gateway.embed(who, request_id, asked.model, asked.inputs)
        except Exception as exc:  # noqa: BLE001 - every failure is answered in OpenAI's shape
            return await asyncio.to_thread(_openai_refusal, engine, exc, who, request, request_id)
        body = embeddings_body(result.vectors, result.usage, asked.model, base64=asked.encoding_format == "base64")
        return JSONResponse(body, headers={REQUEST_ID_HEADER: request_id})


def _anthropic_routes(router: APIRouter, gateway: Gateway, identify: Identify) -> None:
    engine = gateway.engine

    def refused(exc: BaseException, who: Identity | None, request: Request, request_id: str) -> JSONResponse:
        problem = refusal(engine, exc, who, request.url.path, request_id)
        body = anthropic.problem_body(problem, request_id=request_id)
        headers = {**problem.headers, REQUEST_ID_HEADER: request_id}
        return JSONResponse(body, status_code=problem.status, headers=headers)

    @router.post("/v1/messages", response_model=None, responses=anthropic_responses())
    async def messages(request: Request) -> Response:
        """Anthropic's Messages API, streamed (`stream: true`) or whole."""
        request_id, who = _request_id(request), None
        try:
            who = await asyncio.to_thread(identify, request)  # a database read: off the loop
            asked = anthropic.read_messages_request(_json_object(await request.body()))
            body, max_tokens = anthropic.to_openai(asked)
            if asked.stream:
                stream = gateway.stream(who, request_id, asked.model, body, max_tokens)
                first = await _first(stream)
            else:
                answer = await gateway.complete(who, request_id, asked.model, body, max_tokens)
        except Exception as exc:  # noqa: BLE001 - every failure is answered in Anthropic's shape
            return await asyncio.to_thread(refused, exc, who, request, request_id)
        message_id = f"msg_{request_id}"
        if not asked.stream:
            reply = anthropic.from_openai_result(
                answer.result.body, asked.model, answer.result.usage, message_id=message_id
            )
            return JSONResponse(reply, headers={REQUEST_ID_HEADER: request_id})
        events = _anthropic_events(stream, first, anthropic.MessagesStream(asked.model, message_id=message_id))
        return StreamingResponse(
            events, media_type="text/event-stream", headers={**SSE_HEADERS, REQUEST_ID_HEADER: request_id}
        )


async def _anthropic_events(
    stream: ChatStream, first: Any, translator: anthropic.MessagesStream
) -> AsyncIterator[bytes]:
    """Server-sent events as Anthropic streams them; a stream cut after it began ends with an error event."""
    usage = Tokens()
    try:
        yield translator.start()
        chunk = first
        while chunk is not None:
            if chunk.usage is not None:
                usage = chunk.usage
            elif chunk.body is not None:
                yield translator.feed(chunk.body)
            chunk = await anext(stream, None)
        yield translator.finish(usage)
    except Exception as exc:  # noqa: BLE001 - the stream has begun: the error goes in it
        problem = _problem(exc)
        yield anthropic.error_event(anthropic.error_type(problem.status), problem.message)
    finally:
        stream.abandon()


def _podium_routes(router: APIRouter, gateway: Gateway, identify: Identify) -> None:
    engine = gateway.engine

    @router.get("/v1/models", response_model=None)
    async def models(request: Request) -> Response:
        """The models this key may call now."""
        request_id, who = _request_id(request), None
        try:
            who = await asyncio.to_thread(identify, request)  # a database read: off the loop
            names = await asyncio.to_thread(gateway.offered_to, who)
        except Exception as exc:  # noqa: BLE001 - every failure is answered in OpenAI's shape
            return await asyncio.to_thread(_openai_refusal, engine, exc, who, request, request_id)
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "podium"} for name in names]
        return JSONResponse({"object": "list", "data": data})

    @router.post("/v1/podium/feedback", response_model=None)
    async def feedback(request: Request) -> Response:
        """Say whether a `podium/auto` answer was good: the router learns from it (once per request)."""
        who = None
        try:
            who = await asyncio.to_thread(identify, request)  # a database read: off the loop
            said = _parse(Feedback, await request.body())
            credited = await asyncio.to_thread(gateway.feedback, who, said.request_id, said.good)
        except Exception as exc:  # noqa: BLE001 - every failure is answered in OpenAI's shape
            return await asyncio.to_thread(_openai_refusal, engine, exc, who, request, _request_id(request))
        return JSONResponse({"request_id": said.request_id, "credited": credited})

    @router.get("/v1/podium/audit/{request_id}", response_model=None)
    async def audit_proof(request: Request) -> Response:
        """The audit entries of one of this key's requests, each with its Merkle inclusion proof."""
        who, request_id = None, str(request.path_params["request_id"])
        try:
            who = await asyncio.to_thread(identify, request)  # a database read: off the loop
            found = await asyncio.to_thread(gateway.audit_of, who, request_id)
        except Exception as exc:  # noqa: BLE001 - every failure is answered in OpenAI's shape
            shown = request_id if valid_request_id(request_id) else uuid.uuid4().hex  # never echo a path into a header
            return await asyncio.to_thread(_openai_refusal, engine, exc, who, request, shown)
        entries = [
            {"seq": stored.seq, "entry": dataclasses.asdict(stored.entry), "proof": dataclasses.asdict(proof)}
            for stored, proof in found
        ]
        return JSONResponse({"request_id": request_id, "entries": entries})


def _problem(exc: BaseException) -> Problem:
    """What `exc` means to the client: a gatekeeper's refusal says so itself."""
    return exc.problem if isinstance(exc, Refused) else problem_of(exc)


def _request_id(request: Request) -> str:
    """The client's idempotency key if it sent a usable one (a retry is then recognised), else a new id."""
    given = request.headers.get("idempotency-key", "")
    return given if valid_request_id(given) else uuid.uuid4().hex


def _json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or one line saying what is wrong with it (never echoing it). Standard JSON only:
    NaN and Infinity, a number of more than 4,300 digits and an unpaired UTF-16 surrogate ("\\ud800") are refused
    here, where the client can be told, rather than failing later on the way to a provider."""
    try:
        data = json.loads(raw, parse_constant=_not_a_number, parse_float=_finite)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"the body is not valid JSON ({type(exc).__name__} at position {getattr(exc, 'pos', '?')})."
        ) from None
    except _NotANumber as exc:
        raise UsageError(f"the body is not standard JSON: {exc}") from None
    except ValueError:  # Python's limit on the digits of an integer it reads
        raise UsageError("the body holds a number of more than 4,300 digits; send a smaller one.") from None
    except RecursionError:
        raise UsageError(f"the body nests deeper than {MAX_DEPTH} levels; flatten it.") from None
    if not isinstance(data, dict):
        raise UsageError("the body must be a JSON object.")
    if _depth(data) > MAX_DEPTH:
        raise UsageError(f"the body nests deeper than {MAX_DEPTH} levels; flatten it.")
    if _SURROGATE_ESCAPE.search(raw) and not _encodable(data):
        raise UsageError(
            "the body holds an unpaired UTF-16 surrogate escape (such as \\ud800 without its pair), which is not "
            "text; send valid Unicode."
        )
    return data


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class _NotANumber(ValueError):
    pass


def _finite(number: str) -> float:
    value = float(number)
    if not math.isfinite(value):  # 1e999 reads as infinity
        raise _NotANumber(f"{number[:40]} is beyond what a JSON number may be here; send a finite number.")
    return value


def _not_a_number(constant: str) -> Any:
    raise _NotANumber(f"{constant} is not a JSON number; send a finite number or null.")


def _encodable(data: Any) -> bool:
    """Whether every string in `data` is text UTF-8 can carry (a lone surrogate is not)."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _depth(value: Any) -> int:
    """How deeply `value` nests (without recursion: a hostile body cannot exhaust the stack here)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _parse(model: type[M], raw: bytes) -> M:
    """The body as `model`, or one line saying what to fix (never echoing the input)."""
    data = _json_object(raw)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [_field_problem(error) for error in exc.errors()]
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise UsageError(f"{shown}. Correct it and send the request again.") from None


def _field_problem(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "body"
    if error.get("type") == "extra_forbidden":
        return f"{where[:80]}: not a field this endpoint takes"
    return f"{where[:80]}: {error.get('msg', 'invalid')}"


async def _first(stream: ChatStream) -> Any:
    """The stream's first chunk (None: it ended at once): a refusal raises here, before any byte is sent."""
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None
    except BaseException:
        stream.abandon()
        raise


async def _openai_events(
    stream: ChatStream, first: Any, alias: str, request_id: str, *, include_usage: bool
) -> AsyncIterator[bytes]:
    """Server-sent events as OpenAI streams them; a stream cut after it began ends with an error event."""
    created = int(time.time())
    try:
        chunk = first
        while chunk is not None:
            if chunk.usage is None or include_usage:
                yield _event(chunk_body(chunk, alias, request_id, created))
            chunk = await anext(stream, None)
        yield b"data: [DONE]\n\n"
    except Exception as exc:  # noqa: BLE001 - the stream has begun: the error goes in it
        yield _event(openai_error(_problem(exc)))
    finally:
        stream.abandon()


def _event(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def _audit_refusal(engine: sa.Engine, who: Identity, path: str, request_id: str, problem: Problem) -> None:
    """One audit entry for a request refused before the governor saw it: who, which route, why (not the body). The
    path is recorded percent-encoded, as it came: a client's path may hold what no database column takes (a NUL)."""
    detail = {"request_id": request_id, "status": str(problem.status), "reason": problem.message[:500]}
    with engine.begin() as conn:
        record(conn, who.actor, "gateway.request", quote(path[:1_000], safe="/"), decision="denied", detail=detail)
