"""What every in-process model shares: text in, text out, and the CPU time the work consumed, for the ledger."""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import anyio.to_thread
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import RequestUsage

T = TypeVar("T")

COMPUTE_SECONDS = "compute_seconds"


@dataclass(frozen=True)
class ChatTurn:
    role: str  # system | user | assistant
    content: str


def to_chat(messages: list[ModelMessage]) -> list[ChatTurn]:
    """Flatten pydantic-ai messages into plain chat turns (text only: local models here call no tools)."""
    turns: list[ChatTurn] = []
    for message in messages:
        if isinstance(message, ModelRequest):
            if message.instructions:
                turns.append(ChatTurn("system", message.instructions))
            for part in message.parts:
                if isinstance(part, SystemPromptPart):
                    turns.append(ChatTurn("system", part.content))
                elif isinstance(part, UserPromptPart) and isinstance(part.content, str):
                    turns.append(ChatTurn("user", part.content))
        else:
            text = "".join(p.content for p in message.parts if isinstance(p, TextPart))
            if text:
                turns.append(ChatTurn("assistant", text))
    return turns


class LocalModel(Model):
    """A model that runs in this process on the CPU, one request at a time.

    Subclasses implement `_generate`, computing on the calling thread alone; this class serialises requests (the
    libraries underneath are not thread-safe) and reports the CPU time that thread spent on the request in
    `provider_details["compute_seconds"]`, which the governor costs at the configured local rate. CPU time, not
    wall time: waiting for the lock or for a core another process holds costs nothing, so the same request costs
    the same on a quiet machine and a busy one (docs/costs.md).
    """

    # What the governor reserves a request against when the request sets no bound: the output it makes unasked,
    # and the slowest it works (input and output tokens a second), so that its compute has a most it can cost.
    default_max_tokens: int = 1024
    slowest_tokens_per_second: float = 2.0
    context_tokens: int | None = None  # what it reads at most, input and output together (None: not known)

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def system(self) -> str:
        return "podium-local"

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        turns = to_chat(messages)
        max_tokens = (model_settings or {}).get("max_tokens")
        text, usage, seconds = await anyio.to_thread.run_sync(self._timed, lambda: self._generate(turns, max_tokens))
        return ModelResponse(
            parts=[TextPart(text)],
            usage=usage,
            model_name=self._name,
            provider_name="podium-local",
            provider_details={COMPUTE_SECONDS: seconds},
        )

    def _timed(self, work: Callable[[], tuple[str, RequestUsage]]) -> tuple[str, RequestUsage, float]:
        """Run `work` under the lock; return its result and the CPU seconds this thread spent in it (the thread's
        own clock: other threads of this process, and other processes, do not move it)."""
        with self.exclusively() as spent:
            text, usage = work()
            return text, usage, spent()

    @contextmanager
    def exclusively(self) -> Iterator[Callable[[], float]]:
        """Hold the model for one request (others wait), on the calling thread; yields a clock of the CPU seconds
        this thread has spent since it got the model, which is what the request costs."""
        with self._lock:
            started = time.thread_time()
            yield lambda: time.thread_time() - started

    @abstractmethod
    def _generate(self, turns: list[ChatTurn], max_tokens: int | None) -> tuple[str, RequestUsage]:
        """Produce the reply text and its token usage."""
