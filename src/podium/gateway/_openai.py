"""The OpenAI dialect: chat-completions and embeddings requests as clients send them, answers as they expect.

The body is checked against the fields OpenAI's API takes (an unknown one is refused, as OpenAI refuses it, never
silently dropped) and bounded; what an upstream may need (tools, tool_choice, response_format with a JSON schema,
stop, seed, sampling) passes through untouched. `model` is the alias the client asked for; every answer names it.
"""

from __future__ import annotations

import base64 as b64
import struct
import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from podium.cost import Tokens
from podium.gateway._upstream import ChatChunk, ChatResult

MAX_MESSAGES = 2_048
MAX_TOOLS = 256
MAX_OUTPUT_TOKENS = 1_000_000
MAX_EMBED_INPUTS = 2_048
MAX_NAME = 256
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Fields accepted and passed to the upstream as they are (the rest of OpenAI's are read by podium itself).
PASSED_THROUGH = (
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "reasoning_effort",
    "user",
)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False
    include_obfuscation: bool | None = None


class ChatCompletionRequest(BaseModel):
    """`POST /v1/chat/completions`, as the OpenAI API documents it."""

    model_config = ConfigDict(extra="forbid")

    model: Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
    messages: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_MESSAGES)]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int | None, Field(ge=1, le=MAX_OUTPUT_TOKENS)] = None
    max_completion_tokens: Annotated[int | None, Field(ge=1, le=MAX_OUTPUT_TOKENS)] = None
    n: Annotated[int | None, Field(ge=1, le=1, description="podium answers one choice per request")] = None
    tools: Annotated[list[dict[str, Any]] | None, Field(max_length=MAX_TOOLS)] = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    temperature: Annotated[float | None, Field(ge=0, le=2)] = None
    top_p: Annotated[float | None, Field(ge=0, le=1)] = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    seed: int | None = None
    frequency_penalty: Annotated[float | None, Field(ge=-2, le=2)] = None
    presence_penalty: Annotated[float | None, Field(ge=-2, le=2)] = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int | None, Field(ge=0, le=20)] = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    user: Annotated[str | None, Field(max_length=MAX_NAME)] = None
    metadata: dict[str, str] | None = None  # podium keeps it out of the upstream request
    store: bool | None = None  # podium stores nothing at the provider: false or absent only

    @field_validator("messages")
    @classmethod
    def _roles(cls, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for at, message in enumerate(messages):
            role = message.get("role")
            if role not in ROLES:
                raise ValueError(f"messages[{at}].role is {str(role)[:40]!r}; use one of {', '.join(sorted(ROLES))}")
            content = message.get("content")
            if content is not None and not isinstance(content, str | list):
                raise ValueError(f"messages[{at}].content must be a string, a list of parts, or null")
        return messages

    @field_validator("store")
    @classmethod
    def _no_store(cls, store: bool | None) -> bool | None:
        if store:
            raise ValueError(
                "store=true would keep the conversation at the provider, past podium's governance; omit it"
            )
        return store

    def upstream_body(self) -> dict[str, Any]:
        """What the upstream is sent (it adds the model, max_tokens and streaming itself)."""
        fields = self.model_dump(include=set(PASSED_THROUGH), exclude_none=True)
        return fields

    def wanted_tokens(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class EmbeddingsRequest(BaseModel):
    """`POST /v1/embeddings`: text in (token-id input is not taken: podium cannot govern what it cannot read)."""

    model_config = ConfigDict(extra="forbid")

    model: Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
    input: str | Annotated[list[str], Field(min_length=1, max_length=MAX_EMBED_INPUTS)]
    encoding_format: Literal["float", "base64"] | None = None  # the openai SDK asks for base64 by default
    dimensions: int | None = None
    user: Annotated[str | None, Field(max_length=MAX_NAME)] = None

    @field_validator("dimensions")
    @classmethod
    def _no_dimensions(cls, dimensions: int | None) -> int | None:
        if dimensions is not None:
            raise ValueError("dimensions is not supported: models here answer at their own size; omit it")
        return dimensions

    @property
    def inputs(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


def openai_usage(tokens: Tokens) -> dict[str, Any]:
    """Usage in OpenAI's convention: prompt_tokens include cached ones, completion_tokens include reasoning."""
    return {
        "prompt_tokens": tokens.total_input,
        "completion_tokens": tokens.total_output,
        "total_tokens": tokens.total_input + tokens.total_output,
        "prompt_tokens_details": {"cached_tokens": tokens.cached_input},
        "completion_tokens_details": {"reasoning_tokens": tokens.reasoning},
    }


def completion_body(result: ChatResult, alias: str, request_id: str) -> dict[str, Any]:
    """The upstream's answer as a `chat.completion` under the alias and podium's request id, usage as measured."""
    body = result.body
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(body.get("created") or time.time()),
        "model": alias,
        "choices": body.get("choices") or [],
        "usage": openai_usage(result.usage),
        "system_fingerprint": None,
    }


def chunk_body(chunk: ChatChunk, alias: str, request_id: str, created: int) -> dict[str, Any]:
    """A streamed piece as a `chat.completion.chunk` (a usage chunk has no choices)."""
    body: dict[str, Any] = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": created}
    body["model"] = alias
    if chunk.usage is not None:
        body["choices"] = []
        body["usage"] = openai_usage(chunk.usage)
    else:
        body["choices"] = (chunk.body or {}).get("choices") or []
    return body


def embeddings_body(vectors: list[list[float]], tokens: Tokens, alias: str, *, base64: bool = False) -> dict[str, Any]:
    """The vectors as lists of floats, or (`base64`) as OpenAI sends them when asked: little-endian float32 bytes in
    base64, which the openai SDK asks for unless told otherwise and decodes itself."""
    data = [
        {"object": "embedding", "index": at, "embedding": _base64_float32(vector) if base64 else vector}
        for at, vector in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": alias,
        "usage": {"prompt_tokens": tokens.total_input, "total_tokens": tokens.total_input},
    }


def _base64_float32(vector: list[float]) -> str:
    return b64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
