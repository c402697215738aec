"""An upstream that speaks Anthropic's Messages API: the gateway's OpenAI chat body goes out as an Anthropic
request, and the answer (whole or streamed) comes back as OpenAI chat-completion bodies and chunks.

Anthropic's usage convention differs from OpenAI's: `input_tokens` EXCLUDES the tokens read from the prompt cache
(`cache_read_input_tokens`) and written to it (`cache_creation_input_tokens`), and `output_tokens` INCLUDES the
thinking tokens (`output_tokens_details.thinking_tokens`). `anthropic_tokens` is the one place that turns it into
podium's disjoint token classes. In a stream, usage arrives in message_start and, cumulative, in message_delta.

Everything the upstream sends is bounded (body and event sizes) and validated; nothing from it is executed. No
retries here: the gateway's fallbacks and breakers decide what happens after a provider fault.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Iterator, Mapping
from contextlib import aclosing, contextmanager
from typing import Any

import httpx2

from podium.cost import Tokens
from podium.gateway._openai import openai_usage
from podium.gateway._upstream import ChatChunk, ChatRequest, ChatResult, EmbedResult, UpstreamError

ANTHROPIC_VERSION = "2023-06-01"
MAX_BODY_BYTES = 16 * 1024 * 1024  # a whole (non-streamed) answer
MAX_EVENT_BYTES = 1024 * 1024  # one server-sent event
MAX_STREAM_BYTES = 256 * 1024 * 1024  # a whole stream
MAX_TOKEN_COUNT = 100_000_000  # more than any context window: a larger count is a broken upstream

STOP_REASON_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def anthropic_tokens(usage: Mapping[str, Any]) -> Tokens:
    """Anthropic usage as disjoint token classes: input excludes cache reads and writes (as Anthropic counts it),
    output is split into visible output and thinking."""
    output = _count(usage, "output_tokens")
    details = usage.get("output_tokens_details")
    thinking = min(_count(details, "thinking_tokens"), output) if isinstance(details, Mapping) else 0
    return Tokens(
        input=_count(usage, "input_tokens"),
        cached_input=_count(usage, "cache_read_input_tokens"),
        cache_write=_count(usage, "cache_creation_input_tokens"),
        output=output - thinking,
        reasoning=thinking,
    )


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKEN_COUNT:
        raise UpstreamError(
            f"the upstream reported usage {key}={value!r}, not a token count", status=502, provider_fault=True
        )
    return value


class AnthropicUpstream:
    """One Anthropic model behind `base_url` (e.g. https://api.anthropic.com; a trailing /v1 is accepted).

    One keep-alive HTTP client per upstream; `aclose` closes it."""

    def __init__(self, name: str, *, base_url: str, model: str, api_key: str, timeout_s: float = 60.0) -> None:
        self.name = name
        self.model = model
        root = base_url.rstrip("/").removesuffix("/v1")
        self._url = f"{root}/v1/messages"
        self._headers = {"x-api-key": api_key, "anthropic-version": ANTHROPIC_VERSION}
        self._client = httpx2.AsyncClient(timeout=httpx2.Timeout(timeout_s))

    def __repr__(self) -> str:  # never the key
        return f"AnthropicUpstream({self.name!r}, url={self._url!r}, model={self.model!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def complete(self, request: ChatRequest) -> ChatResult:
        payload = to_anthropic(request)
        with _transport_errors(self.name):
            async with self._client.stream("POST", self._url, json=payload, headers=self._headers) as response:
                body = await _read_bounded(response, MAX_BODY_BYTES)
                if response.status_code != 200:
                    raise _status_error(self.name, response, body)
        message = _json_object(body, self.name)
        usage = message.get("usage")
        tokens = anthropic_tokens(usage if isinstance(usage, Mapping) else {})
        return ChatResult(body=to_openai_completion(message, tokens, model=self.model), usage=tokens)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        """OpenAI chunk bodies as Anthropic's events arrive, then the usage. Closing the iterator closes the
        HTTP response, which stops the provider's work."""
        payload = to_anthropic(request) | {"stream": True}
        with _transport_errors(self.name):
            async with self._client.stream("POST", self._url, json=payload, headers=self._headers) as response:
                if response.status_code != 200:
                    raise _status_error(self.name, response, await _read_bounded(response, MAX_BODY_BYTES))
                translator = StreamTranslator(self.model)
                async with aclosing(_sse_events(response, self.name)) as events:
                    async for event in events:
                        for body in translator.translate(event):
                            yield ChatChunk(body=body)
                        if translator.done:
                            break
                if not translator.done:
                    raise UpstreamError(
                        f"{self.name}: the stream ended before message_stop", status=502, provider_fault=True
                    )
                yield ChatChunk(usage=translator.tokens())

    async def embed(self, inputs: list[str]) -> EmbedResult:
        raise UpstreamError(
            f"{self.name} is an Anthropic model, and Anthropic has no embeddings API: point the embeddings alias at "
            "an OpenAI-compatible upstream or the local model",
            status=400,
            provider_fault=False,
        )


# --- request: OpenAI -> Anthropic ---------------------------------------------------------------------------


def _refuse(message: str) -> UpstreamError:
    return UpstreamError(f"cannot send this to an Anthropic model: {message}", status=400, provider_fault=False)


def to_anthropic(request: ChatRequest) -> dict[str, Any]:
    """The Anthropic Messages request for an OpenAI chat body. System (and developer) messages are hoisted into
    `system`, tool results become user `tool_result` blocks, adjacent turns of one role are merged."""
    body = request.body
    if body.get("n", 1) != 1:
        raise _refuse("n > 1 (Anthropic answers once per request)")
    system, messages = _conversation(body.get("messages"))
    payload: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens, "messages": messages}
    if system:
        payload["system"] = system
    if isinstance(body.get("temperature"), int | float):
        payload["temperature"] = min(max(float(body["temperature"]), 0.0), 1.0)  # OpenAI's range is 0-2
    if isinstance(body.get("top_p"), int | float):
        payload["top_p"] = float(body["top_p"])
    stop = body.get("stop")
    if isinstance(stop, str):
        payload["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        payload["stop_sequences"] = [str(item) for item in stop]
    _add_tools(payload, body)
    response_format = body.get("response_format")
    json_schema = response_format.get("json_schema") if isinstance(response_format, dict) else None
    if isinstance(json_schema, dict) and isinstance(json_schema.get("schema"), dict):
        payload["output_config"] = {"format": {"type": "json_schema", "schema": json_schema["schema"]}}
    if isinstance(body.get("user"), str):
        payload["metadata"] = {"user_id": body["user"]}
    return payload


def _conversation(raw_messages: object) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The system blocks and the user/assistant turns of OpenAI `messages`."""
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for message in raw_messages if isinstance(raw_messages, list) else []:
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content")))
        elif role == "user":
            _append(messages, "user", _user_blocks(message.get("content")))
        elif role == "assistant":
            _append(messages, "assistant", _assistant_blocks(message))
        elif role == "tool":
            tool_use_id = str(message.get("tool_call_id", ""))
            result = {"type": "tool_result", "tool_use_id": tool_use_id, "content": _text(message.get("content"))}
            _append(messages, "user", [result])
        else:
            raise _refuse(f"a message with role {role!r}")
    if not messages:
        raise _refuse("there is no user or assistant message")
    return system, messages


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return  # an empty turn (an assistant's empty reply): Anthropic refuses empty content
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _text(content: object) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "refusal")
        )
    raise _refuse(f"message content of type {type(content).__name__}")


def _text_blocks(content: object) -> list[dict[str, Any]]:
    if isinstance(content, list):
        return [{"type": "text", "text": _text([part])} for part in content if _text([part])]
    text = _text(content)
    return [{"type": "text", "text": text}] if text else []


def _user_blocks(content: object) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return _text_blocks(content)
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and part.get("text"):
            blocks.append({"type": "text", "text": str(part["text"])})
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url")))
        elif kind != "text":
            raise _refuse(f"a user content part of type {kind!r} (Anthropic takes text and images)")
    return blocks


def _image_block(image_url: object) -> dict[str, Any]:
    url = image_url.get("url") if isinstance(image_url, dict) else None
    if isinstance(url, str) and url.startswith("data:") and ";base64," in url:
        media_type, data = url.removeprefix("data:").split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise _refuse("an image that is neither a base64 data URL nor an http(s) URL")


def _assistant_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = _text_blocks(message.get("content"))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise _refuse("an assistant tool call without a function")
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            raise _refuse(f"tool call {call.get('id')!r} has arguments that are not a JSON object")
        blocks.append(
            {
                "type": "tool_use",
                "id": str(call.get("id", "")),
                "name": str(function.get("name", "")),
                "input": arguments,
            }
        )
    return blocks


def _add_tools(payload: dict[str, Any], body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return
    converted = []
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict):
            raise _refuse("a tool that is not a function")
        parameters = function.get("parameters")
        entry: dict[str, Any] = {
            "name": str(function.get("name", "")),
            "input_schema": parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}},
        }
        if isinstance(function.get("description"), str):
            entry["description"] = function["description"]
        converted.append(entry)
    payload["tools"] = converted
    choice = body.get("tool_choice")
    tool_choice: dict[str, Any] | None = None
    if isinstance(choice, str) and choice in ("auto", "required", "none"):
        tool_choice = {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        tool_choice = {"type": "tool", "name": str(choice["function"].get("name", ""))}
    if body.get("parallel_tool_calls") is False:
        tool_choice = tool_choice or {"type": "auto"}
        if tool_choice["type"] != "none":
            tool_choice["disable_parallel_tool_use"] = True
    if tool_choice is not None:
        payload["tool_choice"] = tool_choice


# --- answers: Anthropic -> OpenAI ---------------------------------------------------------------------------


def to_openai_completion(message: Mapping[str, Any], tokens: Tokens, *, model: str) -> dict[str, Any]:
    """An OpenAI `chat.completion` body for an Anthropic `message`."""
    content = message.get("content")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content if isinstance(content, list) else []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            arguments = json.dumps(_object(block.get("input")), ensure_ascii=False)
            function = {"name": str(block.get("name", "")), "arguments": arguments}
            calls.append({"id": str(block.get("id", "")), "type": "function", "function": function})
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        reply["tool_calls"] = calls
    return {
        "id": str(message.get("id", "")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(message.get("model") or model),
        "choices": [{"index": 0, "message": reply, "finish_reason": _finish_reason(message.get("stop_reason"))}],
        "usage": openai_usage(tokens),
    }


def _finish_reason(stop_reason: object) -> str:
    return STOP_REASON_TO_FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


class StreamTranslator:
    """Anthropic stream events (parsed `data` objects) to OpenAI `chat.completion.chunk` bodies, keeping the
    usage: message_start's, overwritten by each message_delta's counts (they are cumulative)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = ""
        self.created = int(time.time())
        self.done = False
        self._usage: dict[str, Any] = {}
        self._tool_calls: dict[int, int] = {}  # content block index -> OpenAI tool-call index
        self._argued: set[int] = set()  # the tool-call blocks whose arguments have begun

    def tokens(self) -> Tokens:
        return anthropic_tokens(self._usage)

    def translate(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "message_start":
            message = _object(event.get("message"))
            self.id = str(message.get("id", ""))
            self.model = str(message.get("model") or self.model)
            self._take_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(event.get("index"), event.get("content_block"))
        if kind == "content_block_delta":
            return self._block_delta(event.get("index"), event.get("delta"))
        if kind == "message_delta":
            self._take_usage(event.get("usage"))
            delta = _object(event.get("delta"))
            return [self._chunk({}, finish_reason=_finish_reason(delta.get("stop_reason")))]
        if kind == "content_block_stop":
            return self._block_stop(event.get("index"))
        if kind == "message_stop":
            self.done = True
        elif kind == "error":
            raise _stream_error(event)
        return []  # ping, and kinds added after this was written

    def _block_start(self, index: object, block: object) -> list[dict[str, Any]]:
        if not isinstance(block, Mapping) or not isinstance(index, int):
            return []
        if block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"]:
            return [self._chunk({"content": block["text"]})]
        if block.get("type") != "tool_use":
            return []  # thinking blocks are not passed on
        self._tool_calls[index] = position = len(self._tool_calls)
        started = block.get("input")
        arguments = json.dumps(started) if isinstance(started, Mapping) and started else ""
        if arguments:
            self._argued.add(index)
        function = {"name": str(block.get("name", "")), "arguments": arguments}
        call = {"index": position, "id": str(block.get("id", "")), "type": "function", "function": function}
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, index: object, delta: object) -> list[dict[str, Any]]:
        if not isinstance(delta, Mapping):
            return []
        if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
            return [self._chunk({"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and isinstance(index, int) and index in self._tool_calls:
            partial = delta.get("partial_json")
            if isinstance(partial, str) and partial:
                self._argued.add(index)
                call = {"index": self._tool_calls[index], "function": {"arguments": partial}}
                return [self._chunk({"tool_calls": [call]})]
        return []

    def _block_stop(self, index: object) -> list[dict[str, Any]]:
        """A tool call without arguments (Anthropic streams an empty `partial_json`) gets `{}`, as it does given
        whole: OpenAI's clients parse the arguments as JSON, and "" is not."""
        if not isinstance(index, int) or index not in self._tool_calls or index in self._argued:
            return []
        self._argued.add(index)
        return [self._chunk({"tool_calls": [{"index": self._tool_calls[index], "function": {"arguments": "{}"}}]})]

    def _take_usage(self, usage: object) -> None:
        if isinstance(usage, Mapping):
            self._usage.update({key: value for key, value in usage.items() if value is not None})

    def _chunk(self, delta: dict[str, Any], *, finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }


def _stream_error(event: Mapping[str, Any]) -> UpstreamError:
    error = _object(event.get("error"))
    kind = str(error.get("type", ""))
    status = _STREAM_ERROR_STATUS.get(kind, 502)
    message = f"the upstream failed mid-stream: {kind or 'error'}: {_snippet(error.get('message'))}"
    return UpstreamError(message, status=status, provider_fault=status != 400)


# --- the wire -----------------------------------------------------------------------------------------------


@contextmanager
def _transport_errors(name: str) -> Iterator[None]:
    """Transport failures (refused, reset, timed out) as the provider's fault."""
    try:
        yield
    except httpx2.TimeoutException:
        raise UpstreamError(f"{name}: timed out", status=504, provider_fault=True) from None
    except httpx2.TransportError as exc:
        raise UpstreamError(f"{name}: unreachable ({type(exc).__name__})", status=502, provider_fault=True) from None


async def _read_bounded(response: httpx2.Response, limit: int) -> bytes:
    body = bytearray()
    async for piece in response.aiter_bytes():
        body += piece
        if len(body) > limit:
            raise UpstreamError(f"the upstream's answer is over {limit:,} bytes", status=502, provider_fault=True)
    return bytes(body)


async def _sse_events(response: httpx2.Response, name: str) -> AsyncGenerator[Mapping[str, Any], None]:
    """The `data` objects of a server-sent event stream, each event and the whole stream bounded."""
    pending = b""
    data: list[bytes] = []
    size = total = 0
    async for piece in response.aiter_bytes():
        total += len(piece)
        if total > MAX_STREAM_BYTES:
            raise UpstreamError(
                f"{name}: the stream is over {MAX_STREAM_BYTES:,} bytes", status=502, provider_fault=True
            )
        *lines, pending = (pending + piece).split(b"\n")
        for raw in lines:
            line = raw.removesuffix(b"\r")
            if not line:  # a blank line ends an event
                if data:
                    yield _event_object(b"\n".join(data), name)
                data, size = [], 0
            elif line.startswith(b"data:"):
                data.append(line[5:].removeprefix(b" "))
                size += len(line)
            # `event:` names repeat the data's own `type`; comments and other fields carry nothing we use
        if size + len(pending) > MAX_EVENT_BYTES:
            raise UpstreamError(
                f"{name}: a stream event is over {MAX_EVENT_BYTES:,} bytes", status=502, provider_fault=True
            )
    if data:
        yield _event_object(b"\n".join(data), name)


def _event_object(data: bytes, name: str) -> Mapping[str, Any]:
    try:
        event = json.loads(data)
    except ValueError:
        raise UpstreamError(f"{name}: a stream event is not JSON", status=502, provider_fault=True) from None
    if not isinstance(event, dict):
        raise UpstreamError(f"{name}: a stream event is not a JSON object", status=502, provider_fault=True)
    return event


def _json_object(body: bytes, name: str) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except ValueError:
        message = None
    if not isinstance(message, dict) or message.get("type") != "message":
        raise UpstreamError(f"{name}: the answer is not an Anthropic message", status=502, provider_fault=True)
    return message


def _status_error(name: str, response: httpx2.Response, body: bytes) -> UpstreamError:
    """An HTTP error from Anthropic. The request is at fault for 400, 413 and 422; anything else (429, 529, 5xx,
    and 401/403/404, which mean podium's key or model setting is wrong) is the provider's, so another upstream
    may be tried, and the client is not told its own key is bad."""
    status = response.status_code
    try:
        error = json.loads(body).get("error", {})
        detail = f"{error.get('type', 'error')}: {_snippet(error.get('message'))}"
    except (ValueError, AttributeError):
        detail = _snippet(body.decode("utf-8", "replace"))
    request_fault = status in (400, 413, 422)
    message = f"{name}: Anthropic answered {status} ({detail})"
    if status in (401, 403, 404):
        message += "; check the upstream's api key and model in podium.toml"
    return UpstreamError(
        message,
        status=status if request_fault or status in (429, 503, 504, 529) else 502,
        provider_fault=not request_fault,
        retry_after_s=_retry_after(response.headers.get("retry-after")),
    )


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds <= 3600 else None


def _snippet(text: object, limit: int = 300) -> str:
    """Upstream text for an error message: one line, bounded."""
    flat = " ".join(str(text).split()) if text is not None else ""
    return flat[:limit] + ("…" if len(flat) > limit else "")


def _object(value: object) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one: what an upstream sends is read defensively."""
    return value if isinstance(value, dict) else {}
