"""The governed gateway: an OpenAI- and Anthropic-compatible HTTP endpoint (`podium serve`) that people and
third-party agents point their tools at instead of consumer AI, every request passing the same governor as a
workflow's model calls (identity, Cedar, budgets, ledger, audit, kill switch). See docs/gateway.md."""

from podium.gateway._problems import Problem, problem_of
from podium.gateway._routes import Refused, dialect_error, gateway_router
from podium.gateway._service import Answer, Gateway
from podium.gateway._streaming import ChatStream
from podium.gateway._upstream import ChatChunk, ChatRequest, ChatResult, EmbedResult, Upstream, UpstreamError

__all__ = [
    "Answer",
    "ChatChunk",
    "ChatRequest",
    "ChatResult",
    "ChatStream",
    "EmbedResult",
    "Gateway",
    "Problem",
    "Refused",
    "Upstream",
    "UpstreamError",
    "dialect_error",
    "gateway_router",
    "problem_of",
]
