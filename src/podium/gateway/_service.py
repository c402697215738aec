"""The gateway's front door onto the governor: every request a client makes is governed calls, one per upstream
tried, exactly like a workflow's model calls.

    request ─► alias ─► models to try ─► for each (breaker closed):  governor.govern(call)
                                                                        admission   key's person or agent, kills
                                                                        Cedar       who may use which model
                                                                        budgets     reserve the most it can cost
                                                                        execute     the upstream call (or stream)
                                                                        record      ledger + audit, budgets settled

A request is keyed by its id (`request_scope`), so the ledger and the audit log name it and a client's retry is
recognised. A provider's fault (unreachable, 5xx, 429) falls back to the alias's next model and counts against
its breaker; a stream falls back only until its first chunk is on its way to the client. A stream is one governed
call that lasts as long as the stream: it is charged what the provider says it used, or, when it ends early (the
client left, a kill cut it), what was produced until then, estimated if the provider never said.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import math
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import sqlalchemy as sa

from podium.audit import canonical_json, digest, record
from podium.cost import Price, Tokens
from podium.errors import ActionDenied, ConfigurationError, ModelUnavailable, NotFoundError, UsageError
from podium.gateway._auto import AUTO, AutoRoute, AutoRouter
from podium.gateway._guardrails import OutputBlocked
from podium.gateway._limits import RateLimits
from podium.gateway._problems import UnknownModel
from podium.gateway._screen import Guardrails, PromptRefused, blocked_detail
from podium.gateway._streaming import ChatStream, End, Tally, relay
from podium.gateway._upstream import ChatRequest, ChatResult, EmbedResult, Upstream, UpstreamError
from podium.governance import SHADOW_OF, Call, Usage, request_scope, side_scope, valid_request_id
from podium.security import Screening

if TYPE_CHECKING:
    from podium._runtime import Podium
    from podium.audit import InclusionProof, StoredEntry
    from podium.policy import Identity

T = TypeVar("T")
TOKENS_PER_MESSAGE = 8  # the most a chat template adds around each message (role markers, separators)
SLOWEST_TOKENS_PER_SECOND = 2.0  # local compute is reserved as if the model managed no more than this
# The failed tries of the request being served, by model: each request is a task of its own, with its own.
_FAILURES: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "podium_gateway_failures", default=None
)


@dataclass(frozen=True)
class _Ask:
    """One chat request, as every try of it is made."""

    who: Identity
    alias: str
    body: dict[str, Any]  # as it is sent: redacted where the guardrails redact
    max_tokens: int
    detail: dict[str, str]
    data: frozenset[str]  # kinds of sensitive data leaving with it, for Cedar
    prompt_digest: str  # of its messages, for each try's audit entry
    body_bytes: int  # the UTF-8 bytes of the whole body: no tokeniser makes more tokens of it
    framing_tokens: int  # the chat template's markers, and what its media parts are billed at


@dataclass(frozen=True)
class _Checked:
    """A whole answer as the upstream gave it, its text (for the digest, the estimate and the output guard, read
    once), and why the output guard withholds it, if it does."""

    result: ChatResult
    text: str
    blocked: OutputBlocked | None


@dataclass(frozen=True)
class Answer:
    """A whole answer and who gave it."""

    result: ChatResult
    model: str  # the catalog model that answered
    request_id: str


class Gateway:
    """The models a podium process offers OpenAI and Anthropic clients, each request governed."""

    def __init__(self, pod: Podium) -> None:
        self._pod = pod
        self._upstreams: dict[str, Upstream] = {}
        self._lock = threading.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._chat_models: list[str] = []
        self.aliases = self._aliases()
        self._auto = AutoRouter(pod.engine, pod.config.routing, pod.models)
        self._log_content = pod.config.gateway.log_content
        self._guardrails = Guardrails(pod.config.gateway.guardrails)
        self._screening = next((s for s in pod.governor.stages if isinstance(s, Screening)), None)
        limits = RateLimits(pod.engine, pod.config)
        if limits.active and limits.name not in (stage.name for stage in pod.governor.stages):
            pod.governor.add_stage(limits, before="budgets")

    @property
    def engine(self) -> sa.Engine:
        return self._pod.engine

    @property
    def default_max_tokens(self) -> int:
        """The output cap of a request that sets none (gateway.max_tokens): every request's cost has a bound."""
        return self._pod.config.gateway.max_tokens

    # -- what is offered -------------------------------------------------------------------------------------

    def _aliases(self) -> dict[str, tuple[str, ...]]:
        """Every name a client may ask for: each chat model under its own name, and podium.toml's aliases."""
        catalog, config = self._pod.models, self._pod.config
        chat = self._chat_models = [n for n in catalog.names() if n in config.models or catalog.entry(n).packaged]
        aliases: dict[str, tuple[str, ...]] = {name: (name,) for name in chat}
        for alias, models in config.gateway.aliases.items():
            unknown = [m for m in models if m not in chat]
            if not models or unknown:
                raise ConfigurationError(
                    f"gateway.aliases.{alias} = {models!r}: "
                    + (f"no model named {', '.join(map(repr, unknown))}" if unknown else "it names no model")
                    + f". Name models podium serves ({', '.join(chat)}), or declare them under [models.<name>]."
                )
            aliases[alias] = tuple(models)
        return aliases

    def offered_to(self, who: Identity) -> list[str]:
        """The names `who` may call now (their policies, kills and status allow the alias's first model)."""
        governor = self._pod.governor
        with _scope(who, "list-models"):  # as `who`'s calls are checked: a kill of their key covers the list too
            names = [
                a
                for a, models in sorted(self.aliases.items())
                if governor.permits(self._call(who, a, models[0], "", 0))
            ]
        return [AUTO, *names] if names else []

    def upstream(self, model: str) -> Upstream:
        """The upstream serving catalog model `model`, made once per process."""
        with self._lock:
            if model not in self._upstreams:
                self._upstreams[model] = self._make_upstream(model)
            return self._upstreams[model]

    def _request(self, model: str, ask: _Ask) -> ChatRequest:
        """What `model`'s upstream is sent: the model by its provider's id (podium.toml's `model`), not podium's."""
        setting = self._pod.config.models.get(model)
        return ChatRequest(model if setting is None else setting.model, ask.body, ask.max_tokens)

    def _make_upstream(self, model: str) -> Upstream:
        setting = self._pod.config.models.get(model)
        if setting is None:
            from podium.gateway._local_upstream import LocalUpstream
            from podium.models import LlamaCppModel

            local = self._pod.models.get(model)
            assert isinstance(local, LlamaCppModel), f"{model} is not a local chat model"
            return LocalUpstream(model, local)
        from podium.gateway._anthropic_upstream import AnthropicUpstream
        from podium.gateway._openai_upstream import OpenAIUpstream

        kind = AnthropicUpstream if setting.api == "anthropic" else OpenAIUpstream
        return kind(
            model,
            base_url=setting.base_url,
            model=setting.model,
            api_key=setting.api_key(model),
            timeout_s=setting.timeout_s,
        )

    def candidates(self, alias: str) -> tuple[str, ...]:
        """The models an alias names, first choice first (`podium/auto`: every chat model, for the router)."""
        if alias == AUTO:
            return tuple(self._chat_models)
        try:
            return self.aliases[alias]
        except KeyError:
            known = ", ".join([AUTO, *sorted(self.aliases)])
            raise UnknownModel(
                f"no model named {alias[:80]!r} here (models: {known}); GET /v1/models lists yours."
            ) from None

    async def _ask(self, who: Identity, request_id: str, alias: str, body: dict[str, Any], max_tokens: int) -> _Ask:
        """The request as it will be sent: screened by the guardrails (a refusal is audited here, nothing sent),
        with what joins each try's audit entry (the prompt too, if the operator turned content logging on)."""
        self.candidates(alias)
        try:
            sent, data, detail = await self._guardrails.screen(who.name, body)
        except PromptRefused as refused:
            await asyncio.to_thread(self._audit_refused, who, request_id, alias, refused)
            raise
        detail = {"alias": alias, "door": "gateway", **detail, **await self._score(sent.get("messages") or ())}
        if self._log_content:
            detail["prompt"] = _bounded(canonical_json(sent.get("messages")))
        messages = sent.get("messages") or ()
        framing = TOKENS_PER_MESSAGE * (len(messages) + 2)
        framing += self._pod.config.gateway.media_tokens * sum(map(_media_parts, messages))
        body_bytes = len(canonical_json(sent).encode())
        return _Ask(who, alias, sent, max_tokens, detail, data, digest(sent.get("messages")), body_bytes, framing)

    async def _score(self, messages: Sequence[Any]) -> dict[str, str]:
        """The injection detector's score of the prompt, for each try's audit entry and Cedar's context (noted for
        the request: `context.injection_seen`, docs/screening.md); off the event loop, as the detector loads once."""
        if self._screening is None:
            return {}
        return await asyncio.to_thread(self._screening.screen_prompt, messages)

    async def _models_for(self, ask: _Ask) -> tuple[list[str], AutoRoute | None]:
        """`_plan`, off the event loop when it reads the database (podium/auto asks what the caller may use)."""
        return await asyncio.to_thread(self._plan, ask) if ask.alias == AUTO else self._plan(ask)

    def _plan(self, ask: _Ask) -> tuple[list[str], AutoRoute | None]:
        """The models to try for a chat request, in order (`podium/auto`: the router's order, explained in the
        audit entry, among the models the caller may use)."""
        if ask.alias != AUTO:
            return list(self.candidates(ask.alias)), None
        governor = self._pod.governor
        permitted = [
            (model, self._pod.models.entry(model).tier, float(self._weighed(model, ask)))
            for model in self._chat_models
            if governor.permits(self._chat_call(ask, model))
        ]
        if not permitted:
            raise ActionDenied(
                f"{ask.who.actor} may use none of the models here, so {AUTO} has nothing to route to.",
                agent=ask.who.name,
                resource=AUTO,
            )
        route = self._auto.order(permitted, _prompt_text(ask.body), ask.who.actor)
        ask.detail.update(route.why)
        return route.models, route

    async def _routed(
        self, ask: _Ask, route: AutoRoute | None, request_id: str, model: str, answer: dict[str, Any] | None
    ) -> None:
        """Remember a `podium/auto` request answered by `model`, for the client's feedback to teach the router. If it
        is new (not a client's retry) and its `answer` (a chat.completion body; None: a stream cut short) is in the
        shadow sample, ask the strongest model too, beside the reply (keyed apart from the request; drained at exit)."""
        ref = _request_ref(ask.who, request_id)
        if route is None or not await asyncio.to_thread(self._auto.remember, route, ref, model) or answer is None:
            return
        if not self._auto.shadowed(route, ref, model):
            return  # not in the sample
        shadow = dataclasses.replace(ask, detail=ask.detail | {SHADOW_OF: model})
        strongest = functools.partial(self._complete_on, shadow, route.strongest)

        async def answer_of_strongest() -> dict[str, Any] | None:
            with side_scope("shadow"):
                checked = await self._attempt(route.strongest, strongest)
            return None if checked is None else checked.result.body

        task = asyncio.create_task(self._auto.shadow(route, ref, answer, answer_of_strongest))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def feedback(self, who: Identity, request_id: str, good: bool) -> int:
        """Teach `podium/auto` whether its answer to `who`'s request was good (once per request); audited."""
        if not valid_request_id(request_id):
            raise UsageError(
                f"request id {request_id[:40]!r} is not one podium gives (the x-podium-request-id header)."
            )
        credited = self._auto.feedback(_request_ref(who, request_id), good)
        if not credited:
            raise NotFoundError(
                f"no {AUTO} request {request_id!r} of this key waits for feedback (only {AUTO} requests learn from "
                "it, once each)."
            )
        with self.engine.begin() as conn:
            detail = {"good": str(good).lower(), "credited": str(credited)}
            record(conn, who.actor, "gateway.feedback", request_id, decision="allowed", detail=detail)
        return credited

    def _audit_refused(self, who: Identity, request_id: str, alias: str, refused: PromptRefused) -> None:
        detail = {
            "request_id": request_id,
            "reason": refused.message,
            "guardrail_prompt": str(refused.fields["guardrail"]),
        }
        with self.engine.begin() as conn:
            record(conn, who.actor, "gateway.request", alias, decision="denied", detail=detail)

    # -- governed requests -----------------------------------------------------------------------------------

    async def complete(
        self, who: Identity, request_id: str, alias: str, body: dict[str, Any], max_tokens: int
    ) -> Answer:
        """A whole chat answer from the first of the alias's models that gives one."""
        with _scope(who, request_id):
            ask = await self._ask(who, request_id, alias, body, max_tokens)
            models, route = await self._models_for(ask)
            for model in models:
                checked = await self._attempt(model, functools.partial(self._complete_on, ask, model))
                if checked is not None:
                    if checked.blocked is not None:
                        raise checked.blocked  # charged and audited as it ran; the client sees none of it
                    await self._routed(ask, route, request_id, model, checked.result.body)
                    return Answer(checked.result, model, request_id)
        raise self._unavailable(alias)

    async def _complete_on(self, ask: _Ask, model: str) -> _Checked:
        upstream = self.upstream(model)
        request = self._request(model, ask)

        async def answer(_: Call) -> _Checked:
            result = await upstream.complete(request)
            text = _answer_text(result)
            return _Checked(result, text, self._guardrails.check_reply(text))

        return await self._pod.governor.govern(
            self._chat_call(ask, model),
            answer,
            lambda r: self._usage(model, self._reported(r, ask), r.result.compute_seconds),
            lambda r: r.text,
            ask.detail | {"upstream_model": request.model},
            annotate=lambda r: blocked_detail(r.blocked) | self._content(r.text),
            offload=True,
        )

    async def embed(self, who: Identity, request_id: str, alias: str, inputs: list[str]) -> tuple[EmbedResult, str]:
        """Embeddings of `inputs` from the first of the alias's models that gives them."""
        if alias == AUTO:
            raise UsageError(f"{AUTO} routes chat requests; name an embedding model (GET /v1/models lists them).")
        detail = {"alias": alias, "door": "gateway", "endpoint": "embeddings"}
        with _scope(who, request_id):
            for model in self.candidates(alias):
                result = await self._attempt(
                    model, functools.partial(self._embed_on, who, alias, model, inputs, detail)
                )
                if result is not None:
                    return result, model
        raise self._unavailable(alias)

    async def _embed_on(
        self, who: Identity, alias: str, model: str, inputs: list[str], detail: dict[str, str]
    ) -> EmbedResult:
        upstream = self.upstream(model)
        read = sum(len(text.encode()) for text in inputs) + TOKENS_PER_MESSAGE * len(inputs)
        most = self._cost(model, Tokens(input=read), read / SLOWEST_TOKENS_PER_SECOND, worst=True)
        return await self._pod.governor.govern(
            self._call(who, alias, model, digest(inputs), most),
            lambda _: upstream.embed(inputs),
            lambda r: self._usage(model, r.usage, r.compute_seconds),
            lambda r: canonical_json(len(r.vectors)),
            detail,
            offload=True,
        )

    def stream(self, who: Identity, request_id: str, alias: str, body: dict[str, Any], max_tokens: int) -> ChatStream:
        """A streamed chat answer. Await its first chunk before answering the client: a refusal (policy, budget,
        no upstream) raises there, as an error the client sees in place of a stream."""
        stream = ChatStream()
        task = asyncio.create_task(self._produce(who, request_id, alias, body, max_tokens, stream))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return stream

    async def drain(self) -> None:
        """Wait for streams still being recorded (at shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _produce(
        self, who: Identity, request_id: str, alias: str, body: dict[str, Any], max_tokens: int, stream: ChatStream
    ) -> None:
        """Run the stream as governed calls, one per upstream tried, feeding `stream`; always end it."""
        try:
            with _scope(who, request_id):
                ask = await self._ask(who, request_id, alias, body, max_tokens)
                models, route = await self._models_for(ask)
                for model in models:
                    tally = await self._attempt(model, functools.partial(self._stream_on, ask, model, stream))
                    if tally is not None:
                        await self._routed(ask, route, request_id, model, tally.answer())
                        await stream.put(End(tally.cut))
                        return
            raise self._unavailable(alias)
        except BaseException as exc:
            await stream.put(End(exc))
            if not isinstance(exc, Exception):
                raise

    async def _stream_on(self, ask: _Ask, model: str, stream: ChatStream) -> Tally:
        upstream = self.upstream(model)
        request = self._request(model, ask)
        halted = functools.partial(asyncio.to_thread, self._pod.governor.halted)
        guard = self._guardrails.chunk_guard()
        return await self._pod.governor.govern(
            self._chat_call(ask, model),
            lambda _: relay(upstream, request, stream, halted, guard, keep=ask.alias == AUTO),
            lambda t: self._stream_usage(model, t, ask),
            lambda t: "".join(t.text),
            ask.detail | {"stream": "true", "upstream_model": request.model},  # not the shadow's: a whole answer
            annotate=lambda t: t.audit_detail() | blocked_detail(t.blocked) | self._content("".join(t.text)),
            offload=True,
        )

    def _content(self, reply: str) -> dict[str, str]:
        """The reply for the audit entry, if the operator turned content logging on."""
        return {"reply": _bounded(reply)} if self._log_content else {}

    async def _attempt(self, model: str, governed: Callable[[], Awaitable[T]]) -> T | None:
        """One governed try of `model`: its result, or None if its provider failed (the next model is tried). A
        refusal, or a fault of the request itself, is raised: no other model would take it either."""
        breaker = self._pod.breakers.get(model)
        if not breaker.allow():
            self._failures.setdefault(model, "circuit breaker open")
            return None
        try:
            result = await governed()
        except UpstreamError as exc:
            if not exc.provider_fault:
                breaker.abandoned()
                raise
            if breaker.failed():
                self._pod.breakers.opened(model, exc.message)
            self._failures[model] = exc.message
            return None
        except BaseException:
            breaker.abandoned()
            raise
        breaker.succeeded()
        return result

    @property
    def _failures(self) -> dict[str, str]:
        """This request's failed tries, by model (a task's own: requests run concurrently)."""
        failures = _FAILURES.get()
        if failures is None:
            failures = {}
            _FAILURES.set(failures)
        return failures

    def _unavailable(self, alias: str) -> ModelUnavailable:
        failures = [f"{model}: {why}" for model, why in self._failures.items()]
        return ModelUnavailable(
            f"no upstream of {alias!r} could take the request ({'; '.join(failures) or 'none tried'}). Try again "
            "later; `podium models list` shows the providers' state.",
            attempts=failures,
        )

    def audit_of(self, who: Identity, request_id: str) -> list[tuple[StoredEntry, InclusionProof]]:
        """The audit entries of `who`'s request `request_id` (one per governed try), each with the proof that it is
        in the log as it stands now. Only the key that made a request finds it."""
        if not valid_request_id(request_id):
            raise UsageError(
                f"request id {request_id[:40]!r} is not one podium gives (see the x-podium-request-id header)."
            )
        audit = self._pod.audit
        prefix = f"{_request_ref(who, request_id)}:"
        found = list(audit.entries(actor=who.actor, call_key_prefix=prefix))
        if not found:
            raise NotFoundError(f"no request {request_id!r} of this key in the audit log.")
        size = audit.size()
        return [(stored, audit.prove_inclusion(stored.seq, size)) for stored in found]

    # -- calls, estimates, costs -----------------------------------------------------------------------------

    def _chat_call(self, ask: _Ask, model: str) -> Call:
        call = self._call(ask.who, ask.alias, model, ask.prompt_digest, self._most(model, ask))
        return dataclasses.replace(call, data=ask.data)

    def _call(self, who: Identity, alias: str, model: str, prompt_digest: str, most: int) -> Call:
        entry, setting = self._pod.models.entry(model), self._pod.config.models.get(model)
        return Call(
            who.name,
            "model",
            model,
            entry.tier,
            prompt_digest,
            estimate_nano_usd=most,
            principal=who.kind,
            alias=alias,
            provider="local" if setting is None else (urlsplit(setting.base_url).hostname or "unknown"),
        )

    def _most(self, model: str, ask: _Ask) -> int:
        """The most a chat request can cost on `model`: no tokeniser makes more tokens than the UTF-8 bytes it reads
        (the whole body: messages, tools, formats) plus the template's markers, and no more output than max_tokens.
        A picture, a sound or a file is billed by what it holds, not by the bytes of its URL: each such part is
        reserved at gateway.media_tokens."""
        tokens = self._most_tokens(ask)
        seconds = (tokens.total_input + tokens.total_output) / SLOWEST_TOKENS_PER_SECOND
        return self._cost(model, tokens, seconds, worst=True)

    def _weighed(self, model: str, ask: _Ask) -> int:
        """What `podium/auto` weighs a request on `model` at: the tokens it is expected to take, each class at its own
        price (a reservation's dearest class is a bound, and would make a model with dear reasoning tokens look
        dear on every request), and a local model's compute at the seconds a token it has taken
        (`MeasuredCompute`), as workflow routing weighs them."""
        tokens = self._expected_tokens(ask)
        seconds = self._pod.measured_compute.seconds(model, tokens.total_input + tokens.total_output)
        return self._cost(model, tokens, seconds)

    @staticmethod
    def _expected_tokens(ask: _Ask) -> Tokens:
        """About four bytes of the body a token (`expected_tokens`, as workflow routing expects), and max_tokens out:
        reasoning tokens if the request asks the model to reason."""
        read = ask.body_bytes // 4 + 1 + ask.framing_tokens + _hidden_prompt_tokens(ask)
        if ask.body.get("reasoning_effort"):
            return Tokens(input=read, reasoning=ask.max_tokens)
        return Tokens(input=read, output=ask.max_tokens)

    @staticmethod
    def _most_tokens(ask: _Ask) -> Tokens:
        return Tokens(input=ask.body_bytes + ask.framing_tokens + _hidden_prompt_tokens(ask), output=ask.max_tokens)

    def _cost(self, model: str, tokens: Tokens, seconds: float, *, worst: bool = False) -> int:
        """What `tokens` cost on `model`; `worst`: priced at whichever input and output class is dearest."""
        price: Price = self._pod.models.entry(model).price
        if not worst:
            return price.cost_of(tokens, seconds)
        read, made = tokens.total_input, tokens.total_output
        shapes = [Tokens(**{i: read, o: made}) for i in ("input", "cache_write") for o in ("output", "reasoning")]
        return max(price.cost_of(shape, seconds) for shape in shapes)

    def _usage(self, model: str, tokens: Tokens, seconds: float) -> Usage:
        return Usage.of(tokens, compute_seconds=seconds, cost_nano_usd=self._cost(model, tokens, seconds))

    def _stream_usage(self, model: str, tally: Tally, ask: _Ask) -> Usage:
        """The provider's usage if it said; else (a stream cut short) an estimate of what the upstream read and made:
        a stream the client abandons is billed for what the upstream produced, never nothing."""
        tokens = tally.usage or self._estimate(ask, tally.chunks, tally.chars)
        return self._usage(model, tokens, tally.compute_seconds)

    def _reported(self, checked: _Checked, ask: _Ask) -> Tokens:
        """The usage the provider reported for a whole answer; an answer that reports none (a proxy that drops it) is
        charged an estimate, never nothing."""
        if checked.result.usage != Tokens():
            return checked.result.usage
        return self._estimate(ask, 1 if checked.text else 0, len(checked.text))

    @staticmethod
    def _estimate(ask: _Ask, chunks: int, chars: int) -> Tokens:
        """Usage the provider did not report, erring high, always within what was reserved: the whole body read
        (tools and formats too) at three bytes a token and each media part at gateway.media_tokens, and what was
        produced (the whole max_tokens when the model may have reasoned unseen)."""
        read = ask.body_bytes // 3 + ask.framing_tokens
        made = ask.max_tokens if ask.body.get("reasoning_effort") else max(chunks, math.ceil(chars / 3))
        return Tokens(input=read, output=min(made, ask.max_tokens))


# What a provider adds unseen when a request carries tools or a structured format (Anthropic's tool-use system
# prompt is ~350 tokens; a JSON schema's instructions similar): reserved on top of what the body reads.
HIDDEN_PROMPT_TOKENS = 1_000


def _hidden_prompt_tokens(ask: _Ask) -> int:
    """What a provider adds to a prompt that uses tools or a response format (`HIDDEN_PROMPT_TOKENS` each)."""
    return HIDDEN_PROMPT_TOKENS * sum(1 for field in ("tools", "response_format") if ask.body.get(field))


MEDIA_PARTS = frozenset({"image_url", "input_image", "image", "input_audio", "file", "input_file", "document"})


def _media_parts(message: Any) -> int:
    """How many parts of a message hold media (pictures, sound, files), which providers bill by their content."""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return 0
    return sum(1 for part in content if isinstance(part, dict) and part.get("type") in MEDIA_PARTS)


def _request_ref(who: Identity, request_id: str) -> str:
    """A request as the key that made it and its id: what its feedback and its audit entries are found by."""
    return f"request:key.{who.key_id}:{request_id}"


def _prompt_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or ()
    return " ".join(str(m.get("content")) for m in messages if isinstance(m.get("content"), str))


def _bounded(text: str, limit: int = 65_536) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def _answer_text(result: ChatResult) -> str:
    choices = result.body.get("choices") or [{}]
    message = choices[0].get("message") or {}
    return canonical_json({"content": message.get("content"), "tool_calls": message.get("tool_calls")})


def _scope(who: Identity, request_id: str) -> Any:
    _FAILURES.set({})
    return request_scope(request_id, api_key=who.key_id, person=who.name if who.kind == "person" else None)
