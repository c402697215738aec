"""The Anthropic front door: the Messages API (`POST /v1/messages`) translated to and from the gateway's OpenAI
chat-completions lingua franca, so the official `anthropic` SDK works against podium unchanged. The request model
(and what it honours, ignores or refuses) is in `_anthropic_request`.

Budget exhaustion follows Anthropic's own convention for a spend limit: 429 `rate_limit_error` whose
`details.error_code` is `enforced_spend_limit_reached` (the SDK raises `anthropic.EnforcedSpendLimitReachedError`),
sent with `x-should-retry: false` so the SDK does not retry a request no retry can pass.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Protocol

from podium.cost import Tokens
from podium.gateway._anthropic_request import (
    ImageBlock,
    Message,
    MessagesRequest,
    TextBlock,
    Tool,
    ToolChoiceAny,
    ToolChoiceAuto,
    ToolChoiceNone,
    ToolChoiceTool,
    ToolResultBlock,
    ToolUseBlock,
    URLImageSource,
    read_messages_request,
)

__all__ = [
    "BUDGET_EXHAUSTED_STATUS",
    "NO_RETRY_HEADERS",
    "PING",
    "MessagesRequest",
    "MessagesStream",
    "budget_error_body",
    "error_body",
    "error_event",
    "error_type",
    "from_openai_result",
    "problem_body",
    "read_messages_request",
    "to_openai",
]

OPENAI_FINISH_TO_STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


# --- request: Anthropic -> OpenAI ---------------------------------------------------------------------------


def to_openai(req: MessagesRequest) -> tuple[dict[str, Any], int]:
    """The OpenAI chat-completions body for `req` (without model, stream and max_tokens), and its max_tokens."""
    messages: list[dict[str, Any]] = []
    if req.system is not None:
        messages.append({"role": "system", "content": _openai_text(req.system)})
    for message in req.messages:
        messages.extend(_openai_messages(message))
    body: dict[str, Any] = {"messages": messages}
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop_sequences:
        body["stop"] = list(req.stop_sequences)
    if req.tools:
        body["tools"] = [_openai_tool(tool) for tool in req.tools]
        if req.tool_choice is not None:
            body["tool_choice"] = _openai_tool_choice(req.tool_choice)
            if getattr(req.tool_choice, "disable_parallel_tool_use", None):
                body["parallel_tool_calls"] = False
    if req.metadata is not None and req.metadata.user_id:
        body["user"] = req.metadata.user_id
    if req.output_config is not None and req.output_config.format is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": req.output_config.format.schema_, "strict": True},
        }
    return body, req.max_tokens


def _openai_text(content: str | list[TextBlock]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if len(content) == 1:
        return content[0].text
    return [{"type": "text", "text": block.text} for block in content]


def _openai_messages(message: Message) -> list[dict[str, Any]]:
    """One Anthropic message as OpenAI messages: a user turn's tool results become `tool` messages (first, as
    OpenAI needs them right after the assistant's calls), then the rest of the turn as one user message."""
    if isinstance(message.content, str):
        return [{"role": message.role, "content": message.content}]
    if message.role == "system":
        return [{"role": "system", "content": _openai_text([b for b in message.content if isinstance(b, TextBlock)])}]
    if message.role == "assistant":
        return [_openai_assistant(message.content)]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, ToolResultBlock):
            text, images = _tool_result_parts(block)
            out.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": text})
            parts.extend(images)  # OpenAI tool messages hold text only: a result's images follow as the user's
        elif isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts.append(_openai_image(block))
    if parts:
        only_text = len(parts) == 1 and parts[0]["type"] == "text"
        out.append({"role": "user", "content": parts[0]["text"] if only_text else parts})
    return out


def _openai_assistant(blocks: list[Any]) -> dict[str, Any]:
    texts = [block.text for block in blocks if isinstance(block, TextBlock)]
    calls = [
        {
            "id": block.id,
            "type": "function",
            "function": {"name": block.name, "arguments": json.dumps(block.input, ensure_ascii=False)},
        }
        for block in blocks
        if isinstance(block, ToolUseBlock)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_result_parts(block: ToolResultBlock) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(block.content, str):
        text, images = block.content, []
    else:
        text = "\n".join(part.text for part in block.content if isinstance(part, TextBlock))
        images = [_openai_image(part) for part in block.content if isinstance(part, ImageBlock)]
    if block.is_error:
        text = f"Error: {text}" if text else "Error"
    return text, images


def _openai_image(block: ImageBlock) -> dict[str, Any]:
    source = block.source
    url = source.url if isinstance(source, URLImageSource) else f"data:{source.media_type};base64,{source.data}"
    return {"type": "image_url", "image_url": {"url": url}}


def _openai_tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.input_schema}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _openai_tool_choice(choice: ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone) -> Any:
    if isinstance(choice, ToolChoiceTool):
        return {"type": "function", "function": {"name": choice.name}}
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type]


# --- response: OpenAI -> Anthropic --------------------------------------------------------------------------


def new_message_id() -> str:
    return f"msg_{secrets.token_hex(12)}"


def anthropic_usage(tokens: Tokens) -> dict[str, Any]:
    """`tokens` in Anthropic's convention: input_tokens exclude cache reads and writes; output_tokens include the
    thinking tokens (`output_tokens_details.thinking_tokens`)."""
    usage: dict[str, Any] = {
        "input_tokens": tokens.input,
        "cache_creation_input_tokens": tokens.cache_write,
        "cache_read_input_tokens": tokens.cached_input,
        "output_tokens": tokens.total_output,
    }
    if tokens.reasoning:
        usage["output_tokens_details"] = {"thinking_tokens": tokens.reasoning}
    return usage


def from_openai_result(
    body: dict[str, Any], model_alias: str, tokens: Tokens, *, message_id: str | None = None
) -> dict[str, Any]:
    """An Anthropic `message` for an upstream's OpenAI `chat.completion` body, named by the alias the client
    asked for. Tool-call arguments that are not a JSON object become `{}` (the client's tool then refuses them
    as it would any bad input)."""
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = _object(choice.get("message"))
    content: list[dict[str, Any]] = []
    text = _text_of(message.get("content"))
    refusal = message.get("refusal")
    if not text and isinstance(refusal, str) and refusal:
        text = refusal  # OpenAI's refusal field: Anthropic says it as text, with stop_reason "refusal"
    if text:
        content.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            call_id = call.get("id")
            content.append(
                {
                    "type": "tool_use",
                    "id": call_id if isinstance(call_id, str) and call_id else _new_tool_id(),
                    "name": function["name"],
                    "input": _arguments(function.get("arguments")),
                }
            )
    stop_reason = _stop_reason(choice.get("finish_reason"))
    if text and text is refusal:
        stop_reason = "refusal"
    elif stop_reason == "end_turn" and any(block["type"] == "tool_use" for block in content):
        stop_reason = "tool_use"  # some servers say "stop" after calling tools
    return {
        "id": message_id or new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": model_alias,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": anthropic_usage(tokens),
    }


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def _arguments(arguments: object) -> dict[str, Any]:
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _stop_reason(finish_reason: object) -> str:
    return OPENAI_FINISH_TO_STOP_REASON.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def _new_tool_id() -> str:
    return f"toolu_{secrets.token_hex(12)}"


# --- streaming: OpenAI chunks -> Anthropic server-sent events -----------------------------------------------

PING = b'event: ping\ndata: {"type":"ping"}\n\n'


def sse_event(data: dict[str, Any]) -> bytes:
    """One server-sent event named by its `type`. JSON escapes newlines, so the data stays on one line."""
    return f"event: {data['type']}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class MessagesStream:
    """Turns an upstream's OpenAI chunk bodies into Anthropic's stream events, in Anthropic's order:
    message_start, then per content block content_block_start, its deltas and content_block_stop (text as
    text_delta, tool calls as tool_use blocks with input_json_delta), then message_delta (stop_reason, usage) and
    message_stop. `feed` and `finish` return bytes ready to send (possibly empty).

    `input_tokens` is what message_start reports before the upstream has said; message_delta then carries the
    whole usage, which the SDK takes over message_start's (its counts are cumulative)."""

    def __init__(self, model_alias: str, *, message_id: str | None = None, input_tokens: int = 0) -> None:
        self.model_alias = model_alias
        self.message_id = message_id or new_message_id()
        self._input_tokens = input_tokens
        self._started = False
        self._finished = False
        self._open: int | None = None  # the index of the open content block
        self._open_is_text = False
        self._blocks = 0
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool-call index -> content block index
        self._stop_reason = "end_turn"

    def start(self) -> bytes:
        """message_start, once (feed and finish send it if nobody did)."""
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model_alias,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": anthropic_usage(Tokens(input=self._input_tokens)),
        }
        return sse_event({"type": "message_start", "message": message})

    def feed(self, chunk: dict[str, Any]) -> bytes:
        """The events for one OpenAI `chat.completion.chunk` body."""
        out = [self.start()]
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        delta = _object(choice.get("delta"))
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self._open is None or not self._open_is_text:
                out.append(self._open_block({"type": "text", "text": ""}, is_text=True))
            out.append(self._delta(self._open, {"type": "text_delta", "text": text}))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict):
                out.append(self._tool_call(call))
        finish_reason = choice.get("finish_reason")
        if finish_reason is not None:
            self._stop_reason = _stop_reason(finish_reason)
        return b"".join(out)

    def finish(self, usage: Tokens) -> bytes:
        """The closing events: the open block's stop, message_delta with the stop reason and `usage`, message_stop."""
        if self._finished:
            return b""
        self._finished = True
        out = [self.start(), self._close_block()]
        if self._stop_reason == "end_turn" and self._tool_blocks:
            self._stop_reason = "tool_use"
        delta = {"stop_reason": self._stop_reason, "stop_sequence": None}
        out.append(sse_event({"type": "message_delta", "delta": delta, "usage": anthropic_usage(usage)}))
        out.append(sse_event({"type": "message_stop"}))
        return b"".join(out)

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        index = call.get("index", 0)
        function = _object(call.get("function"))
        arguments = function.get("arguments")
        out = []
        if not isinstance(index, int) or index not in self._tool_blocks:
            call_id, name = call.get("id"), function.get("name")
            block = {
                "type": "tool_use",
                "id": call_id if isinstance(call_id, str) and call_id else _new_tool_id(),
                "name": name if isinstance(name, str) else "",
                "input": {},
            }
            out.append(self._open_block(block, is_text=False))
            assert self._open is not None
            self._tool_blocks[index if isinstance(index, int) else -1 - len(self._tool_blocks)] = self._open
            block_index = self._open
        else:
            block_index = self._tool_blocks[index]  # a later fragment of a call, even if another block began since
        if isinstance(arguments, str) and arguments:
            out.append(self._delta(block_index, {"type": "input_json_delta", "partial_json": arguments}))
        return b"".join(out)

    def _open_block(self, block: dict[str, Any], *, is_text: bool) -> bytes:
        closed = self._close_block()
        self._open, self._open_is_text = self._blocks, is_text
        self._blocks += 1
        return closed + sse_event({"type": "content_block_start", "index": self._open, "content_block": block})

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open, None
        return sse_event({"type": "content_block_stop", "index": index})

    @staticmethod
    def _delta(index: int | None, delta: dict[str, Any]) -> bytes:
        return sse_event({"type": "content_block_delta", "index": index, "delta": delta})


# --- errors -------------------------------------------------------------------------------------------------

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
BUDGET_EXHAUSTED_STATUS = 429
BUDGET_EXHAUSTED_CODE = "enforced_spend_limit_reached"
NO_RETRY_HEADERS = {"x-should-retry": "false"}  # the anthropic SDK retries 429 and 5xx unless told not to


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status."""
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(
    status: int, message: str, *, error_code: str | None = None, request_id: str | None = None
) -> dict[str, Any]:
    """Anthropic's error JSON: `{"type": "error", "error": {"type": ..., "message": ...}}`; `error_code` adds
    `error.details.error_code`, which the SDK turns into a specific exception class."""
    error: dict[str, Any] = {"type": error_type(status), "message": message}
    if error_code is not None:
        error["details"] = {"error_code": error_code}
    body: dict[str, Any] = {"type": "error", "error": error}
    if request_id is not None:
        body["request_id"] = request_id
    return body


class _Problem(Protocol):
    """What the gateway's Problem offers (see `podium.gateway._problems`)."""

    @property
    def status(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def message(self) -> str: ...


def problem_body(problem: _Problem, *, request_id: str | None = None) -> dict[str, Any]:
    """A gateway Problem in Anthropic's error shape; a budget's as a spend limit reached (`budget_error_body`)."""
    if problem.kind == "budget":
        return budget_error_body(problem.message, request_id=request_id)
    return error_body(problem.status, problem.message, request_id=request_id)


def budget_error_body(message: str, *, request_id: str | None = None) -> dict[str, Any]:
    """A budget with no room for the request, as Anthropic reports a spend limit reached (send it with status
    BUDGET_EXHAUSTED_STATUS and NO_RETRY_HEADERS)."""
    return error_body(BUDGET_EXHAUSTED_STATUS, message, error_code=BUDGET_EXHAUSTED_CODE, request_id=request_id)


def error_event(kind: str, message: str) -> bytes:
    """A well-formed mid-stream error (`event: error`) of Anthropic's error type `kind` (see `error_type`), which
    the SDK raises as an APIStatusError."""
    return sse_event({"type": "error", "error": {"type": kind, "message": message}})


def _object(value: object) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one: what an upstream sends is read defensively."""
    return value if isinstance(value, dict) else {}
