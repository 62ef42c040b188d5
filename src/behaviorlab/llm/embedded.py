"""The embedded backend: one GGUF model loaded in-process with xllamacpp, decoding in one or more slots.

xllamacpp wraps llama.cpp's C++ server: `Server.handle_chat_completions` is thread-safe and blocks until
its request is done, so a batch is run by `parallel` worker threads that keep every slot busy
(continuous batching packs their tokens into shared decode steps). The server also listens on an
ephemeral 127.0.0.1 port; we use that only for `/tokenize`.

One slot is the default because it is the only setting in which a request's seed fixes its output.
With several slots, the tokens of whichever requests are in flight share a decode step, and the CPU
kernels' rounding depends on that batch's shape: at temperature > 0 a last-bit change in a logit
sometimes flips a sampled token (1.5B model, 24 requests, runs of 4 slots: 3 requests came out
differently, also with flash attention off). Prompt caching is off by default for the same reason: a
prompt that reuses the previous request's cached prefix is computed in other chunks than one computed
whole (12 requests, one slot: 5 came out differently with the cache on). Generation prompts are mostly
read, not written, so one slot loses no speed against four at the same threads.

A request may still ask for reuse itself (`ChatRequest.reuse_prefix`, llama.cpp's per-request
`cache_prompt`): a caller that sends a fixed group of requests in order, the first computed whole, gets
the same prefixes, and so the same output, on every run (`generate` does so for a profile's sequences).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from behaviorlab.errors import LLMError
from behaviorlab.llm.base import ChatRequest, ChatResult, Completion, Failure, prefix_cached_tokens, register_backend
from behaviorlab.llm.config import LLMConfig
from behaviorlab.llm.structured import compact_json_grammar, output_problem
from behaviorlab.llm.weights import MODEL_CATALOG, ModelSpec, resolve_model
from behaviorlab.progress import ProgressReporter


class EmbeddedBackend:
    """A local llama.cpp model. Load once per process and send it whole batches."""

    name = "embedded"

    def __init__(self, model_path: Path, *, model: str | None = None, parallel: int = 1, threads: int = 1,
                 context_per_slot: int = 2048, prompt_cache: bool = False, file_digest: str | None = None) -> None:
        import xllamacpp

        self.model = model or model_path.name
        self.model_path = model_path
        self.parallel = parallel
        # Besides the request, the exact weights fix the output: the verified digest of a named model,
        # else size and modification time of a local file (hashing it on every load would cost seconds).
        stat = model_path.stat()
        self.cache_identity = f"{self.model}|{file_digest or f'{stat.st_size}-{int(stat.st_mtime)}'}"
        params = xllamacpp.CommonParams()
        params.model.path = str(model_path)
        params.n_parallel = parallel
        params.n_ctx = parallel * context_per_slot  # llama.cpp splits n_ctx evenly over the slots
        params.cache_prompt = prompt_cache  # off: each prompt is computed whole, the same way every time
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.verbosity = -1  # keep llama.cpp's logging off the user's terminal
        params.warmup = False
        params.hostnames = ["127.0.0.1"]
        params.port = 0
        try:
            self._server: Any | None = xllamacpp.Server(params)
        except Exception as exc:
            raise LLMError(f"llama.cpp could not load {model_path}: {exc}",
                           hint="Check that the file is a complete GGUF model; delete it from the cache to rebuild it.") from exc

    def __repr__(self) -> str:
        return f"EmbeddedBackend(model={self.model!r}, parallel={self.parallel})"

    @property
    def http_address(self) -> str:
        """Where llama.cpp serves this same model over OpenAI-compatible HTTP (on 127.0.0.1; add /v1)."""
        return str(self._server.listening_address)

    def complete(self, requests: Sequence[ChatRequest], progress: ProgressReporter | None = None) -> list[ChatResult]:
        """Decode the batch in parallel slots; one result per request, in request order."""
        if self._server is None:
            raise LLMError("This embedded backend was closed", hint="Create a new backend with create_backend().")
        results: list[ChatResult | None] = [None] * len(requests)
        tokens = 0
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="llm-slot") as pool:
            futures = {pool.submit(self._complete_one, request): index for index, request in enumerate(requests)}
            for done, future in enumerate(as_completed(futures), start=1):
                result = future.result()
                results[futures[future]] = result
                if result.completion is not None:
                    tokens += result.completion.completion_tokens
                if progress is not None:
                    elapsed = time.perf_counter() - started
                    progress(done, len(requests), {"completion_tokens_per_s": tokens / elapsed if elapsed else 0.0})
        return [result for result in results if result is not None]

    def count_tokens(self, text: str) -> int:
        import httpx

        response = httpx.post(f"{self.http_address}/tokenize",
                              json={"content": text, "add_special": False}, timeout=30)
        response.raise_for_status()
        return len(response.json()["tokens"])

    def close(self) -> None:
        # Dropping the last reference stops llama.cpp's loop and frees the weights.
        self._server = None

    def _complete_one(self, request: ChatRequest) -> ChatResult:
        started = time.perf_counter()
        try:
            answer = self._server.handle_chat_completions(request_body(request))
        except Exception as exc:  # noqa: BLE001 - xllamacpp raises ValueError/RuntimeError for bad requests
            return ChatResult(request, failure=Failure("bad_request", f"{type(exc).__name__}: {exc}"))
        latency = time.perf_counter() - started
        if "error" in answer:
            error = answer["error"]
            return ChatResult(request, failure=Failure("bad_request", str(error.get("message", error))))
        choice = answer["choices"][0]
        text = choice["message"].get("content") or ""
        usage = answer.get("usage", {})
        prompt_tokens, completion_tokens = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        if request.json_schema is not None:
            problem = output_problem(text, request.json_schema)
            if problem is not None:
                return ChatResult(request, failure=Failure(
                    "invalid_output", f"{problem} (finish_reason={choice.get('finish_reason')})", output=text,
                    prompt_tokens=prompt_tokens, completion_tokens=completion_tokens))
        return ChatResult(request, completion=Completion(
            text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, latency_s=latency,
            finish_reason=str(choice.get("finish_reason") or "stop"), prefix_cached_tokens=prefix_cached_tokens(usage)))


def request_body(request: ChatRequest) -> dict[str, Any]:
    """The llama.cpp server request for a ChatRequest; the schema becomes a compact-JSON grammar."""
    sampling = request.sampling
    body: dict[str, Any] = {
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_tokens,
    }
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    if request.reuse_prefix is not None:
        body["cache_prompt"] = request.reuse_prefix  # llama.cpp reads it per request, over the server's setting
    if request.json_schema is not None:
        body["grammar"] = compact_json_grammar(request.json_schema)
    return body


def create_embedded(config: LLMConfig, notify: Callable[[str], None] | None = None) -> EmbeddedBackend:
    """Resolve the weights (telling `notify` before a slow first-time assembly) and load the model."""

    def announce(spec: ModelSpec, source: str) -> None:
        if notify is not None:
            notify(f"Preparing {spec.name} ({spec.size / 1e9:.1f} GB) from {source} into "
                   f"{config.resolved_cache_dir()}; this happens once.")

    path = resolve_model(config.model, config.resolved_cache_dir(), allow_download=config.allow_download,
                         on_assemble=announce)
    spec = MODEL_CATALOG.get(config.model)
    return EmbeddedBackend(path, model=spec.name if spec else path.name, parallel=config.parallel or 1,
                           threads=config.resolved_threads(), context_per_slot=config.context_per_slot,
                           prompt_cache=config.prompt_cache,
                           file_digest=spec.sha256 if spec else None)


register_backend("embedded")(create_embedded)
