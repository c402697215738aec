"""The in-process GGUF model as a gateway upstream, so that a fresh home serves `smollm2-135m` with no configuration.

llama.cpp generates on one thread per upstream (a single-worker executor: waiting requests hold no thread, and the
event loop never blocks), under the model's lock, which the workflow path shares: one generation at a time. Every
request streams inside, token by token, so that a reader who goes away stops the work at the next token
(`LocalStream.aclose`), and what was produced until then stays known (`LocalStream.produced`), to be billed.

The request is translated, not forwarded blindly: the GGUF's own chat template renders the messages (as llama.cpp's
chat completion would), and what the model cannot honour is refused with a 400 that says so, never dropped. Two of
llama.cpp's own shortcuts are closed here: a JSON schema it cannot compile falls back silently to "any JSON" there
(refused here), and control-token text inside a message is read as the control token there (refused here: a
pasted document could otherwise open a system turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from podium.cost import Tokens
from podium.errors import ConfigurationError
from podium.gateway._upstream import ChatChunk, ChatRequest, ChatResult, EmbedResult, UpstreamError
from podium.models import LlamaCppModel

# Fields the model honours; fields that ask nothing of it (who the user is, what to store, a flag that needs no
# tools to be parallel). Any other field is refused by name, so a client never believes it was honoured.
HONOURED = frozenset(
    {"messages", "temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty"}
    | {"response_format", "tools", "tool_choice", "n", "logprobs", "top_logprobs", "modalities"}
)
NOTHING_TO_DO = frozenset(
    {"model", "stream", "stream_options", "max_tokens", "max_completion_tokens", "user", "metadata", "store"}
    | {"service_tier", "parallel_tool_calls", "safety_identifier", "prompt_cache_key"}
)
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
MOST_STOP_SEQUENCES = 4
MOST_STOP_CHARS = 1000  # each; the text is searched for each at every token
MOST_EMBEDDING_INPUTS = 2048
MOST_SCHEMA_DEPTH = 64  # JSON nesting levels, each object or list one


def refused(message: str) -> UpstreamError:
    return UpstreamError(message, status=400, provider_fault=False)


@dataclass(frozen=True)
class _Plan:
    """A request turned into what llama.cpp reads: the prompt's tokens and how to sample the answer."""

    prompt: list[int]
    max_tokens: int
    stop: list[str]  # the client's stop sequences and the chat template's
    stopping: list[Callable[[Any, Any], bool]]  # the chat template's own criteria
    sampling: dict[str, Any]
    grammar: str | None  # GBNF the answer must match (a JSON schema's, or any JSON)
    tool: str | None  # the function a forced tool call names: the answer is its arguments


class _Generation:
    """One request's work on the model's thread, and what it produced so far (read from the event loop)."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.cancelled = threading.Event()
        self.began = False  # the model read the prompt
        self.sampled = 0  # tokens drawn, each a step of work, whether or not its text was handed on
        self.compute_seconds = 0.0
        self.finish_reason: str | None = None
        self.drew_end = False  # the model ended its turn: that token was drawn, but is not output (llama.cpp's count)

    def usage(self) -> Tokens:
        if not self.began:
            return Tokens()
        return Tokens(input=len(self.plan.prompt), output=max(self.sampled - self.drew_end, 0))

    def finish(self) -> str:
        """OpenAI's finish reason: a forced tool call ends in `tool_calls` unless it was cut at max_tokens."""
        finish = self.finish_reason or "stop"
        return "tool_calls" if self.plan.tool is not None and finish != "length" else finish

    def _count(self, _input_ids: Any, scores: Any) -> Any:
        self.sampled += 1
        return scores

    def _stop_requested(self, _input_ids: Any, _logits: Any) -> bool:
        return self.cancelled.is_set()

    def run(self, model: LlamaCppModel, name: str, emit: Callable[[str], None]) -> None:
        """Generate, handing each piece of text to `emit`; once cancelled, stop at the next token.

        The stop sequences are found here, not by llama.cpp, which ends on them and on the end-of-turn token alike
        and so could not say whether its last token was output."""
        from llama_cpp import LogitsProcessorList, StoppingCriteriaList
        from llama_cpp.llama_grammar import LlamaGrammar

        if self.cancelled.is_set():
            return
        with model.exclusively() as spent:
            if self.cancelled.is_set():
                return
            self.began = True
            plan = self.plan
            pieces = model.llama.create_completion(
                prompt=plan.prompt,
                max_tokens=plan.max_tokens,
                stream=True,
                grammar=None if plan.grammar is None else LlamaGrammar.from_string(plan.grammar, verbose=False),
                logits_processor=LogitsProcessorList([self._count]),
                stopping_criteria=StoppingCriteriaList([*plan.stopping, self._stop_requested]),
                **plan.sampling,
            )
            stops = _StopSequences(plan.stop)
            try:
                for piece in pieces:
                    self.compute_seconds = spent()
                    if self.cancelled.is_set():
                        break
                    choice = piece["choices"][0]
                    text, met = stops.feed(choice["text"])
                    if text:
                        emit(text)
                    if met:
                        self.finish_reason = "stop"
                        break
                    if choice["finish_reason"] is not None:
                        self.finish_reason = str(choice["finish_reason"])
                        self.drew_end = self.finish_reason == "stop"
                        if stops.held:
                            emit(stops.held)  # it began like a stop sequence, but the answer ended first
            except Exception as exc:
                raise UpstreamError(f"{name} failed: {exc}", status=500, provider_fault=True) from exc
            finally:
                pieces.close()
                self.compute_seconds = spent()


class _StopSequences:
    """Finds the stop sequences in text as it streams, holding back what may be the start of one."""

    def __init__(self, sequences: list[str]) -> None:
        self._sequences = sequences
        self.held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """The text that may be handed on, and whether a stop sequence was met (the text then ends before it)."""
        text, self.held = self.held + text, ""
        found = [at for at in (text.find(s) for s in self._sequences) if at >= 0]
        if found:
            return text[: min(found)], True
        hold = max((n for s in self._sequences for n in range(1, len(s)) if text.endswith(s[:n])), default=0)
        self.held = text[len(text) - hold :]
        return text[: len(text) - hold], False


class LocalUpstream:
    """An in-process llama.cpp model, serving chat completions and embeddings as an OpenAI upstream would."""

    def __init__(self, name: str, model: LlamaCppModel) -> None:
        self.name = name
        self.model = model
        self._window = model.context_tokens or 0  # input and output together (LlamaCppModel always says)
        self._formatter = _chat_formatter(model)
        self._generating = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"podium-{name}")
        self._embedding = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"podium-{name}-embed")

    async def complete(self, request: ChatRequest) -> ChatResult:
        plan = await asyncio.to_thread(self._plan, request)
        generation = _Generation(plan)
        pieces: list[str] = []
        job = self._generating.submit(generation.run, self.model, self.name, pieces.append)
        try:
            await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            generation.cancelled.set()  # nobody will read the answer: free the model at the next token
            raise
        usage = generation.usage()
        message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces)}
        if plan.tool is not None:
            message = {"role": "assistant", "content": None, "tool_calls": [_tool_call(plan.tool, "".join(pieces))]}
        body = {
            **_envelope("chat.completion", request.model),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": generation.finish()}],
            "usage": {
                "prompt_tokens": usage.input,
                "completion_tokens": usage.output,
                "total_tokens": usage.input + usage.output,
            },
        }
        return ChatResult(body, usage, generation.compute_seconds)

    def stream(self, request: ChatRequest) -> LocalStream:
        return LocalStream(self, request)

    async def embed(self, inputs: list[str]) -> EmbedResult:
        if not inputs or len(inputs) > MOST_EMBEDDING_INPUTS or not all(isinstance(text, str) for text in inputs):
            raise refused(f"input must be 1 to {MOST_EMBEDDING_INPUTS:,} strings")
        vectors, tokens, seconds = await asyncio.wrap_future(self._embedding.submit(self._embed, inputs))
        return EmbedResult(vectors, Tokens(input=tokens), seconds)

    def close(self) -> None:
        """Stop taking work; a generation under way ends by itself (its tokens are bounded)."""
        self._generating.shutdown(wait=False, cancel_futures=True)
        self._embedding.shutdown(wait=False, cancel_futures=True)

    def _embed(self, inputs: list[str]) -> tuple[list[list[float]], int, float]:
        window = self._window
        lengths = [len(self.model.llama.tokenize(text.encode(), add_bos=True, special=False)) for text in inputs]
        too_long = [i for i, length in enumerate(lengths) if length > window]
        if too_long:
            raise refused(
                f"input {too_long[0]} takes {lengths[too_long[0]]:,} tokens, more than the {window:,} {self.name} "
                "embeds at once; split it into shorter pieces."
            )
        self.model.embedder()  # loaded once, before the clock starts: a request pays for its own work only
        started = time.thread_time()
        vectors, tokens = self.model.embed(inputs)
        return vectors, tokens, time.thread_time() - started

    def _plan(self, request: ChatRequest) -> _Plan:
        """Check `request` against what this model can do, and turn it into tokens and sampling settings."""
        body = request.body
        unknown = sorted(set(body) - HONOURED - NOTHING_TO_DO)
        if unknown:
            raise refused(f"{', '.join(unknown)}: not supported by {self.name}; send the request without it.")
        if body.get("n", 1) != 1:
            raise refused(f"{self.name} makes one choice per request: set n to 1 and send several requests.")
        if body.get("logprobs") or body.get("top_logprobs"):
            raise refused(f"logprobs are not supported by {self.name}; send the request without them.")
        if body.get("modalities") not in (None, ["text"]):
            raise refused(f'{self.name} answers in text only: modalities must be ["text"].')
        if request.max_tokens < 1:
            raise refused(f"max_tokens must be at least 1, not {request.max_tokens}.")
        turns = self._turns(body.get("messages"))
        rendered = self._formatter(messages=turns)
        prompt = self.model.llama.tokenize(rendered.prompt.encode(), add_bos=not rendered.added_special, special=True)
        needed, window = len(prompt) + request.max_tokens, self._window
        if needed > window:
            raise refused(
                f"the request takes {needed:,} tokens ({len(prompt):,} of prompt and max_tokens {request.max_tokens:,}"
                f" of reply), more than the {window:,} {self.name} reads. Shorten the conversation or lower "
                "max_tokens, or send it to a model that reads more."
            )
        grammar, tool = self._answer_shape(body)
        return _Plan(
            prompt=prompt,
            max_tokens=request.max_tokens,
            stop=[*_stop_sequences(body.get("stop")), *(rendered.stop or [])],
            stopping=list(rendered.stopping_criteria or []),
            sampling=_sampling(body),
            grammar=grammar,
            tool=tool,
        )

    def _turns(self, messages: object) -> list[dict[str, str]]:
        """OpenAI messages as the chat template reads them: a role and a text each."""
        if not isinstance(messages, list) or not messages:
            raise refused("messages must be a non-empty list of {role, content} objects.")
        turns = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                raise refused(f"messages[{i}] must be an object whose role is one of {', '.join(ROLES)}.")
            text = _text(self.name, i, message.get("content"))
            calls = message.get("tool_calls")
            if message["role"] == "assistant" and calls:
                # the model has no tool-call syntax: the calls it was said to make are shown to it as their JSON
                text = "\n".join(part for part in (text, json.dumps(calls)) if part)
            llama = self.model.llama
            if llama.tokenize(text.encode(), add_bos=False, special=True) != llama.tokenize(
                text.encode(), add_bos=False, special=False
            ):
                raise refused(
                    f"messages[{i}] contains the text of one of {self.name}'s control tokens (such as <|im_start|>), "
                    "which would change who seems to be speaking; remove it from the message."
                )
            turns.append({"role": ROLES[message["role"]], "content": text})
        return turns

    def _answer_shape(self, body: dict[str, Any]) -> tuple[str | None, str | None]:
        """The grammar the answer must match, and the function a forced tool call names (None: free text)."""
        tools, choice, answer_format = body.get("tools"), body.get("tool_choice"), body.get("response_format")
        if choice is not None and not tools:
            raise refused("tool_choice needs tools: send the tools, or leave tool_choice out.")
        if tools and choice != "none":
            if answer_format not in (None, {"type": "text"}):
                raise refused(f"{self.name} cannot force both a tool call and a response_format; send one of them.")
            tool = self._forced_tool(tools, choice)
            parameters = tool.get("parameters") or {"type": "object"}
            return _grammar(self.name, parameters, f"the parameters of tool {tool['name']!r}"), str(tool["name"])
        if answer_format is None or answer_format == {"type": "text"}:
            return None, None
        if not isinstance(answer_format, dict) or answer_format.get("type") not in ("json_object", "json_schema"):
            raise refused('response_format must be {"type": "text"}, {"type": "json_object"} or a json_schema.')
        from llama_cpp.llama_grammar import JSON_GBNF

        if answer_format["type"] == "json_object":
            return JSON_GBNF, None
        spec = answer_format.get("json_schema")
        if not isinstance(spec, dict):
            raise refused('a json_schema response_format needs "json_schema": {"name": ..., "schema": {...}}.')
        schema = spec.get("schema")
        return (JSON_GBNF if schema is None else _grammar(self.name, schema, "the response_format's schema")), None

    def _forced_tool(self, tools: object, choice: object) -> dict[str, Any]:
        """The one function the answer must call: the model cannot choose among tools, or choose not to call."""
        if not isinstance(tools, list) or not all(
            isinstance(t, dict)
            and t.get("type") == "function"
            and isinstance(t.get("function"), dict)
            and isinstance(t["function"].get("name"), str)
            for t in tools
        ):
            raise refused('tools must be a list of {"type": "function", "function": {"name": ..., "parameters": ...}}.')
        functions = {t["function"]["name"]: t["function"] for t in tools}
        named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        if named is None and choice == "required" and len(functions) == 1:
            named = next(iter(functions))
        if named is None:
            raise refused(
                f"tools are not supported by {self.name} with tool_choice {choice or 'auto'!r}: it cannot decide "
                "whether or which tool to call. Force one with tool_choice "
                '{"type": "function", "function": {"name": ...}} (its arguments will match the parameters), or '
                "send the request without tools."
            )
        if named not in functions:
            raise refused(f"tool_choice names {named!r}, which is not among the tools ({', '.join(functions)}).")
        return dict(functions[named])


class LocalStream(AsyncIterator[ChatChunk]):
    """A streamed answer: `chat.completion.chunk` bodies as the model makes them, then one usage chunk.

    Close it (`aclose`) when the reader goes away: generation stops at the next token, the model is free for the
    next request when `aclose` returns, and `produced` then holds the usage of what was made until then (the
    tokens drawn, not only those handed on), so an abandoned stream is billed for its work, never $0.
    """

    def __init__(self, upstream: LocalUpstream, request: ChatRequest) -> None:
        self._upstream = upstream
        self._request = request
        self._generation: _Generation | None = None
        self._job: Future[None] | None = None
        self._texts: asyncio.Queue[str | None] = asyncio.Queue()
        self._envelope = _envelope("chat.completion.chunk", request.model)
        self._held: list[str | None] = []  # what was taken from the queue and is to be handed on next
        self._opened = False  # the role was stated
        self._closed = False  # the finish reason was stated
        self._done = False

    @property
    def produced(self) -> ChatChunk:
        """The usage of what was made so far; final once the stream ended or `aclose` returned."""
        generation = self._generation
        if generation is None:
            return ChatChunk(usage=Tokens())
        return ChatChunk(usage=generation.usage(), compute_seconds=generation.compute_seconds)

    def __aiter__(self) -> LocalStream:
        return self

    async def __anext__(self) -> ChatChunk:
        if self._done:
            raise StopAsyncIteration
        try:
            return await self._next()
        except Exception:  # a refusal or a failure ends the stream; a cancelled read does not
            self._done = True
            raise

    async def _next(self) -> ChatChunk:
        if self._generation is None or self._job is None:
            self._generation, self._job = await self._start()
        text = self._held.pop() if self._held else await self._texts.get()
        failure = None if text is not None else self._job.exception()  # None comes last, once the job is done
        if failure is not None:
            raise failure
        if not self._opened:  # an OpenAI stream states the role first, once there is something to say
            self._opened = True
            self._held.append(text)
            return self._chunk(self._opening())
        if text is not None:
            return self._chunk(self._delta(text))
        if not self._closed:
            self._closed = True
            self._held.append(None)
            return self._chunk({}, self._generation.finish())
        self._done = True
        return self.produced

    async def _start(self) -> tuple[_Generation, Future[None]]:
        generation = _Generation(await asyncio.to_thread(self._upstream._plan, self._request))
        loop, texts = asyncio.get_running_loop(), self._texts  # not `self`: a dropped stream must be collectable

        def hand_on(text: str | None) -> None:
            with contextlib.suppress(RuntimeError):  # the reader's loop is gone: nobody will read it
                loop.call_soon_threadsafe(texts.put_nowait, text)

        job = self._upstream._generating.submit(generation.run, self._upstream.model, self._upstream.name, hand_on)
        job.add_done_callback(lambda _: hand_on(None))  # the end, after the last text
        return generation, job

    async def aclose(self) -> None:
        """Stop the generation at its next token and wait for the model to be free (not for a request ahead)."""
        self._done = True
        if self._generation is None or self._job is None:
            return
        self._generation.cancelled.set()
        if self._job.cancel():  # still waiting its turn: it never ran
            return
        with contextlib.suppress(Exception):  # its failure was the reader's to see, and the reader has gone
            await asyncio.wrap_future(self._job)

    def __del__(self) -> None:
        if self._generation is not None:
            self._generation.cancelled.set()  # dropped without aclose: the work stops all the same

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> ChatChunk:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return ChatChunk(body={**self._envelope, "choices": [choice]})

    def _opening(self) -> dict[str, Any]:
        tool = self._plan_tool()
        if tool is None:
            return {"role": "assistant", "content": ""}
        call = {"index": 0, **_tool_call(tool, "")}
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    def _delta(self, text: str) -> dict[str, Any]:
        if self._plan_tool() is None:
            return {"content": text}
        return {"tool_calls": [{"index": 0, "function": {"arguments": text}}]}

    def _plan_tool(self) -> str | None:
        return None if self._generation is None else self._generation.plan.tool


def _chat_formatter(model: LlamaCppModel) -> Any:
    """The GGUF's own chat template, as llama.cpp's chat completion applies it."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llama = model.llama
    template = llama.metadata.get("tokenizer.chat_template")
    if template is None:
        raise ConfigurationError(
            f"{model.path} has no chat template, so it cannot serve chat completions; use a chat (instruct) GGUF."
        )
    eos, bos = llama.token_eos(), llama.token_bos()
    return Jinja2ChatFormatter(
        template=template,
        eos_token=llama.detokenize([eos], special=True).decode() if eos != -1 else "",
        bos_token=llama.detokenize([bos], special=True).decode() if bos != -1 else "",
        stop_token_ids=[eos],
    )


def _text(name: str, i: int, content: object) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise refused(f"messages[{i}] has a {kind!r} part; {name} reads text only.")
            texts.append(part["text"])
        return "".join(texts)
    raise refused(f"messages[{i}].content must be a string or a list of text parts.")


def _stop_sequences(stop: object) -> list[str]:
    sequences = [stop] if isinstance(stop, str) else stop if stop is not None else []
    if (
        not isinstance(sequences, list)
        or len(sequences) > MOST_STOP_SEQUENCES
        or not all(isinstance(s, str) and 0 < len(s) <= MOST_STOP_CHARS for s in sequences)
    ):
        raise refused(
            f"stop must be a string of 1 to {MOST_STOP_CHARS:,} characters, or a list of up to {MOST_STOP_SEQUENCES}."
        )
    return sequences


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's sampling, with OpenAI's defaults: temperature and nucleus only (llama.cpp's extra filters off)."""
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise refused(f"seed must be an integer, not {seed!r}.")
    return {
        "temperature": _number(body, "temperature", 1.0, 0.0, 2.0),
        "top_p": _number(body, "top_p", 1.0, 0.0, 1.0),
        "presence_penalty": _number(body, "presence_penalty", 0.0, -2.0, 2.0),
        "frequency_penalty": _number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        "top_k": 0,
        "min_p": 0.0,
        "repeat_penalty": 1.0,
        "seed": None if seed is None else seed % 2**32,  # llama.cpp's seeds are 32-bit; one seed, one answer
    }


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise refused(f"{key} must be a number from {low} to {high}, not {value!r}.")
    return float(value)


def _grammar(name: str, schema: object, what: str) -> str:
    """The GBNF grammar of a JSON schema; refused if llama.cpp cannot compile it (it would otherwise fall back to
    any JSON, silently), if it refers outside itself (the compiler would fetch the URL), or if it nests deeper than
    a schema needs (the compiler recurses)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    if not isinstance(schema, dict):
        raise refused(f"{what} must be a JSON schema object.")
    depth, refs = 0, []
    pending: list[tuple[object, int]] = [(schema, 1)]
    while pending:
        node, level = pending.pop()
        depth = max(depth, level)
        if depth > MOST_SCHEMA_DEPTH:
            raise refused(f"{what} nests deeper than {MOST_SCHEMA_DEPTH} levels; flatten it.")
        if isinstance(node, dict):
            refs += [str(node["$ref"])] if "$ref" in node else []
            pending += [(value, level + 1) for value in node.values()]
        elif isinstance(node, list):
            pending += [(value, level + 1) for value in node]
    if any(not ref.startswith("#") for ref in refs):
        raise refused(f"{what} refers to another document ($ref); inline it: {name} fetches nothing.")
    try:
        return str(json_schema_to_gbnf(json.dumps(schema)))
    except Exception as exc:  # noqa: BLE001 - the converter raises whatever the schema trips in it
        raise refused(f"{name} cannot hold its answer to {what}: {exc or type(exc).__name__}.") from None


def _tool_call(name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _envelope(kind: str, model: str) -> dict[str, Any]:
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()), "model": model}
