"""The OpenAI-compatible HTTP backend (vLLM, Ollama, llama.cpp server, SGLang, OpenAI, ...).

A batch runs as asyncio tasks with at most `parallel` requests in flight. Each request has its own
deadline; timeouts, connection errors, 429 and 5xx are retried with exponential backoff and jitter
(Retry-After honoured); 401/403/404 and other 4xx fail at once. A request that keeps failing comes back
as a `Failure`; the other results of the batch are unaffected. The API key is sent in the
Authorization header and nowhere else: reprs, log records and failure messages have it masked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from behaviorlab.errors import ConfigError
from behaviorlab.llm.base import ChatRequest, ChatResult, Completion, Failure, FailureKind, register_backend
from behaviorlab.llm.config import API_KEY_ENVS, BASE_URL_ENV, LLMConfig
from behaviorlab.llm.retry import RetryPolicy, parse_retry_after
from behaviorlab.llm.structured import output_problem, schema_instruction
from behaviorlab.progress import ProgressReporter

logger = logging.getLogger(__name__)
StructuredMode = Literal["auto", "response_format", "prompt"]
_KEY_FIX = f"set api_key in the [llm] config or the {' / '.join(API_KEY_ENVS)} environment variable"
# Characters per token for servers without a /tokenize endpoint (English-like text, BPE tokenizers).
_CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class _Retryable:
    """An attempt that failed in a way worth trying again."""

    kind: FailureKind
    message: str
    retry_after_s: float | None = None


class HttpBackend:
    """Chat completions from any server that speaks the OpenAI `/chat/completions` API."""

    name = "http"

    def __init__(self, base_url: str, model: str, *, api_key: SecretStr | None = None, parallel: int = 4,
                 timeout_s: float = 120.0, retry: RetryPolicy | None = None,
                 structured_output: StructuredMode = "auto") -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.parallel = parallel
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.structured_output = structured_output
        self.cache_identity = f"{self.base_url}|{model}"
        self._api_key = api_key
        # None until a server first accepts or refuses response_format (only consulted in "auto" mode).
        self._response_format_ok: bool | None = {"auto": None, "response_format": True, "prompt": False}[structured_output]
        self._exact_tokenizer: bool | None = None

    def __repr__(self) -> str:
        key = "'***'" if self._api_key is not None else "None"
        return f"HttpBackend(base_url={self.base_url!r}, model={self.model!r}, api_key={key})"

    def complete(self, requests: Sequence[ChatRequest], progress: ProgressReporter | None = None) -> list[ChatResult]:
        """One result per request, in request order; never raises for a failed request."""
        batch = self._complete_batch(requests, progress)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(batch)
        # Called from code that already runs an event loop (a server handler): use a loop of our own.
        with ThreadPoolExecutor(max_workers=1) as helper:
            return helper.submit(asyncio.run, batch).result()

    def count_tokens(self, text: str) -> int:
        """Exact when the server has llama.cpp's/vLLM's /tokenize; otherwise an estimate of len/4."""
        if self._exact_tokenizer is not False:
            root = self.base_url.removesuffix("/v1")
            try:
                response = httpx.post(f"{root}/tokenize", json={"content": text, "add_special": False},
                                      headers=self._headers(), timeout=self.timeout_s)
                tokens = response.json().get("tokens") if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                tokens = None
            self._exact_tokenizer = isinstance(tokens, list)
            if isinstance(tokens, list):
                return len(tokens)
        return max(1, -(-len(text) // _CHARS_PER_TOKEN))

    def close(self) -> None:
        """Nothing stays open between batches: each batch uses its own connection pool."""

    async def _complete_batch(self, requests: Sequence[ChatRequest],
                              progress: ProgressReporter | None) -> list[ChatResult]:
        # The semaphore and the pool size agree, so a request's deadline never includes waiting for a connection.
        in_flight = asyncio.Semaphore(self.parallel)
        limits = httpx.Limits(max_connections=self.parallel, max_keepalive_connections=self.parallel)
        finished = 0
        tokens = 0
        started = time.perf_counter()
        async with httpx.AsyncClient(headers=self._headers(), limits=limits, timeout=self.timeout_s) as client:

            async def one(request: ChatRequest) -> ChatResult:
                nonlocal finished, tokens
                async with in_flight:
                    try:
                        result = await self._complete_one(client, request)
                    except Exception as exc:  # noqa: BLE001 - one broken request must not sink the batch
                        result = ChatResult(request, failure=Failure("internal", self._redact(
                            f"{type(exc).__name__}: {exc}")))
                finished += 1
                tokens += result.completion.completion_tokens if result.completion else 0
                if progress is not None:
                    elapsed = time.perf_counter() - started
                    progress(finished, len(requests), {"completion_tokens_per_s": tokens / elapsed if elapsed else 0.0})
                return result

            # gather keeps request order whatever order the answers arrive in.
            return list(await asyncio.gather(*(one(request) for request in requests)))

    async def _complete_one(self, client: httpx.AsyncClient, request: ChatRequest) -> ChatResult:
        attempt = 0
        while True:
            attempt += 1
            with_response_format = request.json_schema is not None and self._response_format_ok is not False
            outcome = await self._attempt(client, request, with_response_format, attempt)
            if isinstance(outcome, ChatResult):
                return outcome
            if outcome is None:  # the server refused response_format: same request, schema in the prompt
                continue
            if attempt > self.retry.max_retries:
                return ChatResult(request, failure=Failure(
                    outcome.kind, self._redact(f"{outcome.message} (gave up after {attempt} attempts)"), attempt))
            wait = self.retry.delay(attempt, outcome.retry_after_s)
            logger.info("%s", self._redact(f"attempt {attempt} failed ({outcome.kind}: {outcome.message}); "
                                           f"retrying in {wait:.2f}s"))
            await asyncio.sleep(wait)

    async def _attempt(self, client: httpx.AsyncClient, request: ChatRequest, with_response_format: bool,
                       attempt: int) -> ChatResult | _Retryable | None:
        """One HTTP exchange: a final result, a retryable failure, or None to resend without response_format."""
        url = f"{self.base_url}/chat/completions"
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await client.post(url, json=self._body(request, with_response_format))
        except (TimeoutError, httpx.TimeoutException):
            return _Retryable("timeout", f"no complete answer from {url} within {self.timeout_s:g}s")
        except httpx.TransportError as exc:
            return _Retryable("connection", f"{type(exc).__name__} talking to {url}: {exc}")
        latency = time.perf_counter() - started
        status = response.status_code
        detail = _error_detail(response)
        if status == 200:
            return self._parse(request, response, latency, attempt)
        if status == 429:
            return _Retryable("rate_limited", f"{url} is rate limiting (HTTP 429){detail}",
                              parse_retry_after(response.headers.get("retry-after")))
        if status >= 500:
            return _Retryable("server_error", f"{url} failed with HTTP {status}{detail}",
                              parse_retry_after(response.headers.get("retry-after")))
        if status in (401, 403):
            return self._fail(request, "auth", f"{url} refused the credentials (HTTP {status}){detail}; {_KEY_FIX}",
                              attempt)
        if status == 404:
            return self._fail(request, "not_found", f"{url} answered HTTP 404{detail}; check that base_url ends in "
                                                    f"/v1 and that the server serves model {self.model!r}", attempt)
        if with_response_format and self._response_format_ok is None and status in (400, 422):
            logger.info("%s", self._redact(f"{url} refused response_format (HTTP {status}){detail}; "
                                           "putting the schema in the prompt from now on"))
            self._response_format_ok = False
            return None
        return self._fail(request, "bad_request", f"{url} rejected the request (HTTP {status}){detail}", attempt)

    def _parse(self, request: ChatRequest, response: httpx.Response, latency: float,
               attempt: int) -> ChatResult | _Retryable:
        try:
            answer = response.json()
            choice = answer["choices"][0]
            text = choice["message"]["content"] or ""
            usage = answer.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens", 0))
            completion_tokens = int(usage.get("completion_tokens", 0))
        except (ValueError, KeyError, IndexError, TypeError):
            # A proxy or overloaded server can answer 200 with an error page: worth another try.
            return _Retryable("server_error", f"the server's answer is not a chat completion: {response.text[:120]!r}")
        if request.json_schema is not None:
            if self._response_format_ok is None:
                self._response_format_ok = True
            problem = output_problem(text, request.json_schema)
            if problem is not None:
                return ChatResult(request, failure=Failure(
                    "invalid_output", self._redact(problem), attempt, output=text, prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens))
        return ChatResult(request, completion=Completion(
            text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, latency_s=latency,
            finish_reason=str(choice.get("finish_reason") or "stop")))

    def _fail(self, request: ChatRequest, kind: FailureKind, message: str, attempt: int) -> ChatResult:
        return ChatResult(request, failure=Failure(kind, self._redact(message), attempt))

    def _body(self, request: ChatRequest, with_response_format: bool) -> dict[str, Any]:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        if request.json_schema is not None and not with_response_format:
            instruction = schema_instruction(request.json_schema)
            if messages and messages[0]["role"] == "system":
                messages[0] = {"role": "system", "content": f"{messages[0]['content']}\n\n{instruction}"}
            else:
                messages.insert(0, {"role": "system", "content": instruction})
        sampling = request.sampling
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": sampling.temperature,
                                "top_p": sampling.top_p, "max_tokens": sampling.max_tokens}
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if request.json_schema is not None and with_response_format:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "response", "schema": request.json_schema}}
        return body

    def _headers(self) -> dict[str, str]:
        if self._api_key is None:
            return {}
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    def _redact(self, text: str) -> str:
        if self._api_key is None or not self._api_key.get_secret_value():
            return text
        return text.replace(self._api_key.get_secret_value(), "***")


def _error_detail(response: httpx.Response) -> str:
    """A short excerpt of an error body (OpenAI's {"error": {"message": ...}} when present)."""
    if response.status_code == 200:
        return ""
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = response.text
    message = str(message or "").strip()
    return f": {message[:200]}" if message else ""


def create_http(config: LLMConfig, notify: Callable[[str], None] | None = None) -> HttpBackend:
    """Build the HTTP backend from the config, filling base URL and key from the environment.

    `notify` is unused: nothing slow happens before the first request.
    """
    base_url = config.resolved_base_url()
    if base_url is None:
        raise ConfigError("The http backend needs a server address",
                          hint=f"Set base_url in the [llm] config (e.g. http://127.0.0.1:8080/v1) or {BASE_URL_ENV}.")
    retry = RetryPolicy(max_retries=config.max_retries, base_s=config.backoff_base_s, max_s=config.backoff_max_s)
    return HttpBackend(base_url, config.model, api_key=config.resolved_api_key(), parallel=config.parallel,
                       timeout_s=config.timeout_s, retry=retry, structured_output=config.structured_output)


register_backend("http")(create_http)
