"""A GGUF model run in process by llama.cpp (the `local` tier's general-purpose LLM)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from pydantic_ai.usage import RequestUsage

from podium.errors import ConfigurationError
from podium.models._files import PackagedModelFile, verify_model_file
from podium.models._local import ChatTurn, LocalModel

DEFAULT_MAX_TOKENS = 96
TEMPLATE_TOKENS_PER_TURN = 8  # the role markers and separators a chat template adds around each turn


class LlamaCppModel(LocalModel):
    """Chat completion with llama-cpp-python on the CPU, greedy (temperature 0) so a re-run step says the same.

    The file must hash to `sha256`; podium refuses to load anything else.
    """

    default_max_tokens = DEFAULT_MAX_TOKENS
    slowest_tokens_per_second = 2.0  # 80-180 tokens a CPU second on one thread of this VM

    def __init__(
        self,
        name: str,
        path: Path,
        sha256: str,
        *,
        context_tokens: int = 2048,
        fix: str = "Point the model at the right file or record its new sha256 deliberately.",
    ) -> None:
        super().__init__(name)
        self.path = verify_model_file(path, sha256, fix=fix)
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ConfigurationError(
                "the local LLM tier needs llama-cpp-python, which is not installed. "
                "Run `make install` (it builds it with the CPU flags this machine needs), "
                "or pip install 'podium[local]'."
            ) from exc
        # One thread, the caller's, so that its CPU time is the whole of the work (LocalModel charges that). With
        # more, llama.cpp's OpenMP workers spin at every barrier while one of them waits for a core: on a busy
        # 2-core machine two threads spent 1.2-5.2 s of CPU (1-10 s wall) on a reply one thread made in 0.54 s.
        self._llama: Any = Llama(
            model_path=str(self.path), n_ctx=context_tokens, n_threads=1, n_threads_batch=1, seed=0, verbose=False
        )
        self.context_tokens = context_tokens
        self._embedder: Any = None
        self._embedder_lock = threading.Lock()

    @property
    def llama(self) -> Any:
        """The llama_cpp.Llama itself, for a caller that drives generation directly (the gateway streams tokens
        from it). Use it only inside `exclusively()`: it is not thread-safe."""
        return self._llama

    def embedder(self) -> Any:
        """A second llama.cpp instance over the same file, made to embed (one made to generate cannot), loaded on
        first use: mean pooling over the tokens, vectors L2-normalised."""
        from llama_cpp import LLAMA_POOLING_TYPE_MEAN, Llama

        with self._embedder_lock:
            if self._embedder is None:
                window = self._llama.n_ctx()  # a text embeds in one batch: as long as the chat model reads
                self._embedder = Llama(
                    model_path=str(self.path),
                    embedding=True,
                    pooling_type=LLAMA_POOLING_TYPE_MEAN,
                    n_ctx=window,
                    n_batch=window,
                    n_ubatch=window,
                    n_threads=1,
                    n_threads_batch=1,
                    verbose=False,
                )
            return self._embedder

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """The unit vectors of `texts`, and the tokens they took. A text longer than `context_tokens` is cut there:
        callers refuse such texts first (`llama.tokenize` counts them as the embedder does)."""
        embedder = self.embedder()
        with self._embedder_lock:
            vectors, tokens = embedder.embed(texts, normalize=True, return_count=True)
            return vectors, int(tokens)

    @classmethod
    def from_package(cls, name: str, packaged: PackagedModelFile) -> LlamaCppModel:
        return cls(
            name,
            packaged.locate(),
            packaged.sha256,
            fix=packaged.fix,
        )

    def prompt_tokens(self, turns: list[ChatTurn]) -> int:
        """The tokens `turns` take in front of the model, chat template included (a few per turn)."""
        text = sum(len(self._llama.tokenize(t.content.encode(), add_bos=False, special=False)) for t in turns)
        return text + TEMPLATE_TOKENS_PER_TURN * (len(turns) + 1)

    def _generate(self, turns: list[ChatTurn], max_tokens: int | None) -> tuple[str, RequestUsage]:
        out = self._llama.create_chat_completion(
            messages=[{"role": t.role, "content": t.content} for t in turns],
            max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
            temperature=0.0,
            repeat_penalty=1.2,
        )
        usage = out["usage"]
        text = str(out["choices"][0]["message"]["content"] or "").strip()
        return text, RequestUsage(input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"])
