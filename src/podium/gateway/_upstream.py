"""What the gateway sends to a model and gets back, whichever provider serves it.

The OpenAI chat-completions body is the lingua franca: the OpenAI front door passes it through (tools, response
formats and all), the Anthropic front door translates to it, and each upstream translates from it to its
provider's API. Usage is normalised into disjoint token classes (`podium.cost.Tokens`), each priced at its own
rate, so no provider's convention (OpenAI's prompt_tokens include cached tokens; Anthropic's input_tokens
exclude cache reads) leaks into the ledger.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from podium.cost import Tokens


@dataclass(frozen=True)
class ChatRequest:
    """An OpenAI chat-completions body (validated at the front door), for the upstream model `model`.

    `body` never carries `model`, `stream` or `stream_options`: the upstream sets its own; `max_tokens` is always
    set (the gateway caps every request, so the most it can cost is known before it runs)."""

    model: str  # the upstream provider's model id
    body: dict[str, Any]
    max_tokens: int


@dataclass(frozen=True)
class ChatResult:
    """A whole answer: an OpenAI `chat.completion` body (its `model` the upstream's) and the usage it reports."""

    body: dict[str, Any]
    usage: Tokens
    compute_seconds: float = 0.0  # local models: CPU time, charged at the compute rate


@dataclass(frozen=True)
class ChatChunk:
    """One piece of a streamed answer: an OpenAI `chat.completion.chunk` body (without usage), or, last of all,
    the usage the provider reported for the whole stream (`body` is None then)."""

    body: dict[str, Any] | None = None
    usage: Tokens | None = None
    compute_seconds: float = 0.0


@dataclass(frozen=True)
class EmbedResult:
    vectors: list[list[float]]
    usage: Tokens
    compute_seconds: float = 0.0


class UpstreamError(Exception):
    """The upstream refused or failed. `provider_fault` (unreachable, timed out, 5xx, 429) means another upstream
    may be tried and the breaker counts it; otherwise the request itself is at fault and is not retried."""

    def __init__(self, message: str, *, status: int, provider_fault: bool, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.provider_fault = provider_fault
        self.retry_after_s = retry_after_s


class ChunkStream(Protocol):
    """What `Upstream.stream` returns: an async generator, or any async iterator that can be closed early."""

    def __aiter__(self) -> AsyncIterator[ChatChunk]: ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    """One provider model the gateway can send requests to."""

    name: str  # how the operator declared it, e.g. "openai:gpt-4o" or "smollm2-135m"

    async def complete(self, request: ChatRequest) -> ChatResult: ...

    def stream(self, request: ChatRequest) -> ChunkStream:
        """Chunks as the provider produces them, then one usage chunk. Closing the iterator early (the client went
        away) must stop the provider's work; what was produced until then is still reported by the caller."""
        ...

    async def embed(self, inputs: list[str]) -> EmbedResult: ...


@dataclass
class StreamTally:
    """What a stream produced so far, for billing a stream that ends early: the provider's usage if it said, else
    the prompt estimate and the output chunks counted."""

    chunks: int = 0
    usage: Tokens | None = None
    compute_seconds: float = 0.0
    text: list[str] = field(default_factory=list)
