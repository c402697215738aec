"""An upstream that speaks OpenAI's chat-completions API: OpenAI itself, and vLLM, llama.cpp's server, Together,
Groq and the other endpoints that copy it.

The upstream is as hostile as any client: every answer is read with a size bound, usage counts must be
non-negative integers that add up, and a stream that ends without saying it is done is an error, not an answer.
There are no retries here: the gateway falls back to the next upstream and counts failures in its breakers.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn

import httpx2

from podium.cost import Tokens
from podium.gateway._upstream import ChatChunk, ChatRequest, ChatResult, EmbedResult, UpstreamError

MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a whole non-streamed answer or embedding list
MAX_STREAM_BYTES = 64 * 1024 * 1024  # everything one stream may send
MAX_LINE_BYTES = 1024 * 1024  # one line of a stream (one chunk)
MAX_ERROR_BYTES = 64 * 1024  # an error body: enough for a message, never a flood
MAX_MESSAGE_CHARS = 300  # the part of the upstream's error message quoted to the operator
MAX_RETRY_AFTER_S = 24 * 3600.0
MAX_TOKEN_COUNT = 1_000_000_000  # per class and call: far beyond any context window, well inside a BIGINT of cost
_CLIENT_FAULTS = range(400, 500)
_PROVIDER_FAULT_4XX = frozenset({401, 403, 404, 408, 429})  # the upstream's setup or load, not the request


class OpenAIUpstream:
    """One model at an OpenAI-compatible endpoint, over one keep-alive HTTP client (see `aclose`)."""

    def __init__(self, name: str, *, base_url: str, model: str, api_key: str, timeout_s: float) -> None:
        self.name = name
        self.model = model  # what `embed` asks for; chat requests name their own (ChatRequest.model)
        self._timeout_s = timeout_s
        self._client = httpx2.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "podium-gateway"},
            timeout=httpx2.Timeout(timeout_s),
            limits=httpx2.Limits(max_connections=512, max_keepalive_connections=128),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def complete(self, request: ChatRequest) -> ChatResult:
        body = await self._post_json("chat/completions", _chat_payload(request, stream=False))
        if not isinstance(body.get("choices"), list):
            self._malformed("an answer without a choices list")
        return ChatResult(body=body, usage=self._tokens(body.get("usage")))

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk]:
        """Chunks as the upstream sends them (usage taken out), then the usage it reported for the whole stream.

        If the upstream reports no usage, no usage chunk comes: the caller estimates from what it saw. Closing this
        generator early closes the HTTP response, which stops the upstream's generation."""
        payload = _chat_payload(request, stream=True)
        usage: Tokens | None = None
        try:
            async with self._client.stream("POST", "chat/completions", json=payload) as response:
                if response.status_code != 200:
                    await self._raise_for_status(response)
                async for data in _sse_data(response, self.name):
                    if data == "[DONE]":
                        break
                    chunk = self._parse(data.encode(), "a stream chunk")
                    if "error" in chunk:
                        raise UpstreamError(
                            f"upstream {self.name} broke off the stream: {_message_of(chunk)}",
                            status=502,
                            provider_fault=True,
                        )
                    reported = chunk.pop("usage", None)
                    if reported is not None:
                        usage = self._tokens(reported)  # cumulative where sent in every chunk: the last is the total
                    if chunk.get("choices"):
                        yield ChatChunk(body=chunk)
                else:
                    if usage is None:
                        self._malformed("a stream that ended before data: [DONE]")
        except httpx2.HTTPError as exc:
            raise self._transport_error(exc) from None
        if usage is not None:
            yield ChatChunk(usage=usage)

    async def embed(self, inputs: list[str]) -> EmbedResult:
        payload = {"model": self.model, "input": inputs, "encoding_format": "float"}
        body = await self._post_json("embeddings", payload)
        rows = body.get("data")
        if not isinstance(rows, list) or len(rows) != len(inputs):
            self._malformed(f"an embedding list that is not one vector for each of the {len(inputs)} inputs")
        vectors: list[list[float] | None] = [None] * len(inputs)
        for position, row in enumerate(rows):
            if not isinstance(row, dict):
                self._malformed("an embedding that is not an object")
            index, vector = row.get("index", position), row.get("embedding")
            if not isinstance(index, int) or not _is_count(index) or index >= len(inputs) or vectors[index] is not None:
                self._malformed("an embedding with a repeated or out-of-range index")
            if not isinstance(vector, list) or not vector or not all(_is_finite_number(x) for x in vector):
                self._malformed("an embedding that is not a non-empty list of finite numbers")
            vectors[index] = [float(x) for x in vector]
        if len({len(vector) for vector in vectors if vector is not None}) > 1:
            self._malformed("embeddings of different lengths")
        return EmbedResult(vectors=[v for v in vectors if v is not None], usage=self._tokens(body.get("usage")))

    async def _post_json(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST and parse the JSON answer, with one deadline for the whole exchange (a trickle cannot stall it)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                async with self._client.stream("POST", path, json=payload) as response:
                    if response.status_code != 200:
                        await self._raise_for_status(response)
                    raw = await _read_bounded(response, MAX_ANSWER_BYTES, self.name)
        except TimeoutError:
            raise UpstreamError(
                f"upstream {self.name} did not answer within {self._timeout_s:g} s; raise its timeout_s if it is "
                "slow, or check that it is up.",
                status=504,
                provider_fault=True,
            ) from None
        except httpx2.HTTPError as exc:
            raise self._transport_error(exc) from None
        return self._parse(raw, "an answer")

    async def _raise_for_status(self, response: httpx2.Response) -> NoReturn:
        status = response.status_code
        try:
            raw = await _read_bounded(response, MAX_ERROR_BYTES, self.name)
            message = _message_of(json.loads(raw, parse_constant=_reject_constant))
        except (UpstreamError, ValueError, RecursionError, httpx2.HTTPError):
            message = "no readable error message"
        provider_fault = status not in _CLIENT_FAULTS or status in _PROVIDER_FAULT_4XX
        raise UpstreamError(
            f"upstream {self.name} answered HTTP {status}: {message}",
            status=status,
            provider_fault=provider_fault,
            retry_after_s=retry_after_seconds(response.headers),
        )

    def _transport_error(self, exc: httpx2.HTTPError) -> UpstreamError:
        detail = f"{type(exc).__name__}: {_one_line(str(exc)) or 'no detail'}"
        if isinstance(exc, httpx2.TimeoutException):
            return UpstreamError(
                f"upstream {self.name} timed out ({type(exc).__name__} after {self._timeout_s:g} s); raise its "
                "timeout_s if it is slow, or check that it is up.",
                status=504,
                provider_fault=True,
            )
        if isinstance(exc, httpx2.ConnectError):
            return UpstreamError(
                f"upstream {self.name} is unreachable ({detail}); check its base_url and that it is up.",
                status=503,
                provider_fault=True,
            )
        return UpstreamError(
            f"upstream {self.name} broke off the exchange ({detail}).", status=502, provider_fault=True
        )

    def _parse(self, raw: bytes, what: str) -> dict[str, Any]:
        try:
            parsed = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            self._malformed(f"{what} that is not valid JSON")
        if not isinstance(parsed, dict):
            self._malformed(f"{what} that is not a JSON object")
        return parsed

    def _tokens(self, usage: object) -> Tokens:
        try:
            return openai_tokens(usage)
        except UpstreamError as exc:
            raise UpstreamError(f"upstream {self.name} sent {exc.message}", status=502, provider_fault=True) from None

    def _malformed(self, what: str) -> NoReturn:
        raise UpstreamError(f"upstream {self.name} sent {what}.", status=502, provider_fault=True)


def openai_tokens(usage: object) -> Tokens:
    """OpenAI's usage object as disjoint token classes: its `prompt_tokens` include the cached tokens
    (`prompt_tokens_details.cached_tokens`) and its `completion_tokens` include the reasoning tokens
    (`completion_tokens_details.reasoning_tokens`); `podium.cost.Tokens` counts each once.

    Missing or null counts are 0; a count that is not a non-negative integer, or a part larger than its whole, is
    an UpstreamError (an upstream's usage is read, never trusted)."""
    if usage is None:
        return Tokens()
    if not isinstance(usage, dict):
        _bad_usage("a usage that is not an object")
    prompt = _usage_count(usage, "prompt_tokens")
    completion = _usage_count(usage, "completion_tokens")
    cached = _usage_count(_details(usage, "prompt_tokens_details"), "cached_tokens")
    reasoning = _usage_count(_details(usage, "completion_tokens_details"), "reasoning_tokens")
    if cached > prompt:
        _bad_usage(f"a usage with {cached} cached tokens out of {prompt} prompt tokens")
    if reasoning > completion:
        _bad_usage(f"a usage with {reasoning} reasoning tokens out of {completion} completion tokens")
    return Tokens(input=prompt - cached, cached_input=cached, output=completion - reasoning, reasoning=reasoning)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """How long the upstream asks to be left alone: `retry-after-ms` (OpenAI), else `Retry-After` in seconds or as
    an HTTP date. Unreadable or absurd values are ignored; the wait is capped at a day."""
    seconds: float | None = None
    try:
        if "retry-after-ms" in headers:
            seconds = float(headers["retry-after-ms"]) / 1000
        elif "retry-after" in headers:
            value = headers["retry-after"].strip()
            try:
                seconds = float(value)
            except ValueError:
                seconds = parsedate_to_datetime(value).timestamp() - time.time()
    except (ValueError, TypeError, OverflowError):
        return None
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _chat_payload(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    payload = {key: value for key, value in request.body.items() if key not in ("model", "stream", "stream_options")}
    payload["model"] = request.model
    # Newer OpenAI models take only max_completion_tokens; a client that sent it gets it back, capped.
    payload["max_completion_tokens" if "max_completion_tokens" in payload else "max_tokens"] = request.max_tokens
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    return payload


async def _sse_data(response: httpx2.Response, name: str) -> AsyncIterator[str]:
    """The data of each server-sent event, with every event and the whole stream bounded."""
    buffer = bytearray()
    total = 0
    data: list[str] = []
    data_size = 0
    async for piece in response.aiter_bytes():
        total += len(piece)
        if total > MAX_STREAM_BYTES:
            raise UpstreamError(
                f"upstream {name} streamed more than {MAX_STREAM_BYTES} bytes.", status=502, provider_fault=True
            )
        buffer += piece
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = bytes(buffer[start:end]).rstrip(b"\r").decode("utf-8", errors="replace")
            start = end + 1
            if not line:  # a blank line ends the event
                if data:
                    yield "\n".join(data)
                    data, data_size = [], 0
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
                data_size += len(line)
                if data_size > MAX_LINE_BYTES:
                    break
        del buffer[:start]
        if len(buffer) > MAX_LINE_BYTES or data_size > MAX_LINE_BYTES:
            raise UpstreamError(
                f"upstream {name} streamed an event longer than {MAX_LINE_BYTES} bytes.",
                status=502,
                provider_fault=True,
            )
    if data:  # the last event, without its blank line
        yield "\n".join(data)


async def _read_bounded(response: httpx2.Response, limit: int, name: str) -> bytes:
    raw = bytearray()
    async for piece in response.aiter_bytes():
        raw += piece
        if len(raw) > limit:
            raise UpstreamError(
                f"upstream {name} sent an answer larger than {limit} bytes.", status=502, provider_fault=True
            )
    return bytes(raw)


def _message_of(error_body: object) -> str:
    """The message of an OpenAI-shaped error (`{"error": {"message": ...}}`), as one short line."""
    error = error_body.get("error", error_body) if isinstance(error_body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str) or not message.strip():
        return "no readable error message"
    return _one_line(message)


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_MESSAGE_CHARS else line[: MAX_MESSAGE_CHARS - 1] + "…"


def _details(usage: dict[str, Any], key: str) -> dict[str, Any]:
    details = usage.get(key)
    if details is None:
        return {}
    if not isinstance(details, dict):
        _bad_usage(f"a usage whose {key} is not an object")
    return details


def _usage_count(fields: dict[str, Any], key: str) -> int:
    value = fields.get(key)
    if value is None:
        return 0
    if not _is_count(value) or value > MAX_TOKEN_COUNT:
        _bad_usage(f"a usage whose {key} is {_one_line(repr(value))[:40]}, not an integer from 0 to {MAX_TOKEN_COUNT}")
    return int(value)


def _bad_usage(what: str) -> NoReturn:
    raise UpstreamError(f"{what}.", status=502, provider_fault=True)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")
