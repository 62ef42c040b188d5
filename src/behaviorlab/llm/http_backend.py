"""The OpenAI-compatible HTTP backend (vLLM, Ollama, llama.cpp server, SGLang, OpenAI, ...).

A batch runs as asyncio tasks with at most `parallel` requests in flight. Each request has its own
deadline; timeouts, connection errors, 429 and 5xx are retried with exponential backoff and jitter
(Retry-After honoured); 401/403/404 and other 4xx fail at once. A request that keeps failing comes back
as a `Failure`; the other results of the batch are unaffected.

Waits: connecting may take `connect_timeout_s`, a whole answer `timeout_s`. Before its first request
the backend makes first contact: GET /models, where any HTTP answer counts, within `connect_timeout_s`
and retried like a request. A dead port or a server that accepts connections but never answers is thus
found within `first_contact_budget_s()` (65 s at the defaults) instead of after every request has used
up its own, much longer, `request_budget_s()` (615 s).

Secrets: the API key goes in the Authorization header, URL credentials (http://user:pass@host/v1) as
Basic auth, and nowhere else. Every text that leaves the backend (results, and so the errors callers
build from them, log records, the repr) passes one `Redactor`; texts from the server are redacted before
they are cut to an excerpt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import httpx
from pydantic import SecretStr

from behaviorlab.errors import ConfigError
from behaviorlab.llm.base import (
    ChatRequest,
    ChatResult,
    Completion,
    Failure,
    FailureKind,
    prefix_cached_tokens,
    register_backend,
)
from behaviorlab.llm.config import API_KEY_ENVS, BASE_URL_ENV, LLMConfig
from behaviorlab.llm.redact import Redactor, public_url, split_credentials
from behaviorlab.llm.retry import RetryPolicy, parse_retry_after
from behaviorlab.llm.structured import output_problem, schema_instruction
from behaviorlab.progress import ProgressReporter

logger = logging.getLogger(__name__)
StructuredMode = Literal["auto", "response_format", "prompt"]
T = TypeVar("T")
_KEY_FIX = f"set api_key in the [llm] config or the {' / '.join(API_KEY_ENVS)} environment variable"
# Characters per token for servers without a /tokenize endpoint (English-like text, BPE tokenizers).
_CHARS_PER_TOKEN = 4
# Requests in flight when the config leaves it to the backend: enough for a server to batch them.
DEFAULT_IN_FLIGHT = 4
_EXCERPT = 200  # characters of a server's error message kept in a failure


@dataclass(frozen=True)
class _Retryable:
    """An attempt that failed in a way worth trying again."""

    kind: FailureKind
    message: str
    retry_after_s: float | None = None


class HttpBackend:
    """Chat completions from any server that speaks the OpenAI `/chat/completions` API."""

    name = "http"

    def __init__(self, base_url: str, model: str, *, api_key: SecretStr | None = None, parallel: int = DEFAULT_IN_FLIGHT,
                 timeout_s: float = 120.0, connect_timeout_s: float = 10.0, retry: RetryPolicy | None = None,
                 structured_output: StructuredMode = "auto", notify: Callable[[str], None] | None = None) -> None:
        base_url = base_url.rstrip("/")
        # Requests go to the URL without its credentials, which travel as Basic auth: httpx would also
        # do that from the URL, but then log and report the URL with the password in it.
        self._url, user, password = split_credentials(base_url)
        self._auth = httpx.BasicAuth(user, password or "") if user is not None else None
        self.base_url = public_url(base_url)
        self.model = model
        self.parallel = parallel
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.retry = retry or RetryPolicy()
        self.structured_output = structured_output
        self.cache_identity = f"{self._url}|{model}"  # credentials do not change the answers
        self._api_key = api_key
        self._redact = Redactor.for_server(base_url, api_key.get_secret_value() if api_key is not None else None)
        self._notify = notify
        self._contacted = False
        # None until a server first accepts or refuses response_format (only consulted in "auto" mode).
        self._response_format_ok: bool | None = {"auto": None, "response_format": True, "prompt": False}[structured_output]
        self._exact_tokenizer: bool | None = None

    def __repr__(self) -> str:
        key = "'***'" if self._api_key is not None else "None"
        return f"HttpBackend(base_url={self.base_url!r}, model={self.model!r}, api_key={key})"

    def first_contact_budget_s(self) -> float:
        """The longest first contact takes before it gives up on a server that is down or does not answer."""
        return self.retry.worst_case_s(self.connect_timeout_s)

    def request_budget_s(self) -> float:
        """The longest one request takes before it gives up (Retry-After aside, which may lengthen waits)."""
        return self.retry.worst_case_s(self.timeout_s)

    def complete(self, requests: Sequence[ChatRequest], progress: ProgressReporter | None = None) -> list[ChatResult]:
        """One result per request, in request order; never raises for a failed request.

        `progress` also hears, as info["waiting"], what each attempt is waiting for."""
        return [self._scrubbed(result) for result in _run(self._complete_batch(requests, progress))]

    def count_tokens(self, text: str) -> int:
        """Exact when the server has llama.cpp's/vLLM's /tokenize; otherwise an estimate of len/4.

        Asked within `connect_timeout_s`: counting is cheap for a live server, and a server that does
        not answer costs the estimate, not a long wait (first contact, in `complete`, then reports it).
        So a run whose completions are all cached still prepares and finishes with the server away."""
        if self._exact_tokenizer is not False:
            try:
                response = httpx.post(f"{self._url.removesuffix('/v1')}/tokenize",
                                      json={"content": text, "add_special": False}, headers=self._headers(),
                                      auth=self._auth, timeout=self.connect_timeout_s)
                tokens = response.json().get("tokens") if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                tokens = None
            self._exact_tokenizer = isinstance(tokens, list)
            if isinstance(tokens, list):
                return len(tokens)
        return max(1, -(-len(text) // _CHARS_PER_TOKEN))

    def close(self) -> None:
        """Nothing stays open between batches: each batch uses its own connection pool."""

    # -- a batch -------------------------------------------------------------------------------
    async def _complete_batch(self, requests: Sequence[ChatRequest],
                              progress: ProgressReporter | None) -> list[ChatResult]:
        finished = 0
        tokens = 0
        started = time.perf_counter()

        def waiting(status: str) -> None:
            if progress is not None:
                progress(finished, len(requests), {"waiting": status})

        if not self._contacted:
            failure = await self._first_contact(waiting)
            if failure is not None:  # every request would meet the same dead server
                return [ChatResult(request, failure=failure) for request in requests]
        # The semaphore and the pool size agree, so a request's deadline never includes waiting for a connection.
        in_flight = asyncio.Semaphore(self.parallel)
        async with self._client() as client:

            async def one(number: int, request: ChatRequest) -> ChatResult:
                nonlocal finished, tokens
                async with in_flight:
                    try:
                        result = await self._complete_one(client, request, f"request {number} of {len(requests)}",
                                                          waiting)
                    except Exception as exc:  # noqa: BLE001 - one broken request must not sink the batch
                        result = ChatResult(request, failure=Failure("internal", f"{type(exc).__name__}: {exc}"))
                finished += 1
                tokens += result.completion.completion_tokens if result.completion else 0
                if progress is not None:
                    elapsed = time.perf_counter() - started
                    progress(finished, len(requests), {"completion_tokens_per_s": tokens / elapsed if elapsed else 0.0})
                return result

            # gather keeps request order whatever order the answers arrive in.
            return list(await asyncio.gather(*(one(number, r) for number, r in enumerate(requests, start=1))))

    async def _complete_one(self, client: httpx.AsyncClient, request: ChatRequest, label: str,
                            waiting: Callable[[str], None]) -> ChatResult:
        async def send() -> ChatResult | _Retryable:
            with_response_format = request.json_schema is not None and self._response_format_ok is not False
            return await self._attempt(client, request, with_response_format)

        outcome = await self._retrying(send, label, self.timeout_s, waiting, self._log)
        return outcome if isinstance(outcome, ChatResult) else ChatResult(request, failure=outcome)

    async def _retrying(self, send: Callable[[], Awaitable[T | _Retryable]], label: str, limit_s: float,
                        waiting: Callable[[str], None], tell: Callable[[str], None], where: str = "") -> T | Failure:
        """`send()` until it returns anything but a _Retryable, or the retries run out (then a Failure)."""
        attempt = 0
        while True:
            attempt += 1
            waiting(f"waiting for {self.base_url} ({label}, attempt {attempt} of {self.retry.attempts}, "
                    f"{limit_s:g} s timeout)")
            outcome = await send()
            if not isinstance(outcome, _Retryable):
                return outcome
            if attempt == self.retry.attempts:
                return Failure(outcome.kind, f"{outcome.message} (gave up after {attempt} attempts{where})", attempt)
            wait = self.retry.delay(attempt, outcome.retry_after_s)
            tell(f"{outcome.message} (attempt {attempt} of {self.retry.attempts}{where}); retrying in {wait:.1f} s")
            await asyncio.sleep(wait)

    # -- first contact -------------------------------------------------------------------------
    async def _first_contact(self, waiting: Callable[[str], None]) -> Failure | None:
        """None once the server has answered anything at all; else why it could not be reached.

        Any HTTP status counts (a server without GET /models still answers 404): the question is only
        whether something answers, which a live server does in milliseconds, however busy its model."""
        async with self._client() as client:
            outcome = await self._retrying(lambda: self._probe(client), "first contact", self.connect_timeout_s,
                                           waiting, self._tell, " at first contact")
        if isinstance(outcome, Failure):
            return outcome
        self._contacted = True
        return None

    async def _probe(self, client: httpx.AsyncClient) -> bool | _Retryable:
        limit = self.connect_timeout_s
        try:
            async with asyncio.timeout(limit):
                await client.get(f"{self._url}/models", timeout=limit)
        except httpx.ConnectTimeout:
            return _Retryable("timeout", f"{self.base_url} accepted no connection within {limit:g} s")
        except (TimeoutError, httpx.TimeoutException):
            return _Retryable("timeout", f"{self.base_url} accepted the connection but did not answer GET /models "
                                         f"within {limit:g} s")
        except httpx.ConnectError as exc:
            return _Retryable("connection", f"cannot connect to {self.base_url}: {type(exc).__name__}: {exc}")
        except httpx.TransportError as exc:
            return _Retryable("connection", f"{type(exc).__name__} talking to {self.base_url}: {exc}")
        return True

    # -- one exchange --------------------------------------------------------------------------
    async def _attempt(self, client: httpx.AsyncClient, request: ChatRequest,
                       with_response_format: bool) -> ChatResult | _Retryable:
        """One HTTP exchange: a final result or a retryable failure."""
        shown = f"{self.base_url}/chat/completions"
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await client.post(f"{self._url}/chat/completions",
                                             json=self._body(request, with_response_format))
        except httpx.ConnectTimeout:
            return _Retryable("timeout", f"could not connect to {shown} within {self.connect_timeout_s:g} s")
        except (TimeoutError, httpx.TimeoutException):
            return _Retryable("timeout", f"no complete answer from {shown} within {self.timeout_s:g} s")
        except httpx.TransportError as exc:
            return _Retryable("connection", f"{type(exc).__name__} talking to {shown}: {exc}")
        latency = time.perf_counter() - started
        status = response.status_code
        detail = self._error_detail(response)
        if status == 200:
            return self._parse(request, response, latency)
        if status == 429:
            return _Retryable("rate_limited", f"{shown} is rate limiting (HTTP 429){detail}",
                              parse_retry_after(response.headers.get("retry-after")))
        if status >= 500:
            return _Retryable("server_error", f"{shown} failed with HTTP {status}{detail}",
                              parse_retry_after(response.headers.get("retry-after")))
        if status in (401, 403):
            return _failed(request, "auth", f"{shown} refused the credentials (HTTP {status}){detail}; {_KEY_FIX}")
        if status == 404:
            return _failed(request, "not_found", f"{shown} answered HTTP 404{detail}; check that base_url ends in "
                                                 f"/v1 and that the server serves model {self.model!r}")
        if with_response_format and self._response_format_ok is None and status in (400, 422):
            self._log(f"{shown} refused response_format (HTTP {status}){detail}; putting the schema in the prompt "
                      "from now on")
            self._response_format_ok = False
            return await self._attempt(client, request, with_response_format=False)
        return _failed(request, "bad_request", f"{shown} rejected the request (HTTP {status}){detail}")

    def _parse(self, request: ChatRequest, response: httpx.Response, latency: float) -> ChatResult | _Retryable:
        try:
            answer = response.json()
            choice = answer["choices"][0]
            # Masked before anything reads it: the schema check quotes an excerpt of it, and it may be stored.
            text = self._redact(choice["message"]["content"] or "")
            usage = answer.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens", 0))
            completion_tokens = int(usage.get("completion_tokens", 0))
            reused = prefix_cached_tokens(usage)
        except (ValueError, KeyError, IndexError, TypeError):
            # A proxy or overloaded server can answer 200 with an error page: worth another try.
            return _Retryable("server_error", "the server's answer is not a chat completion: "
                                              f"{self._redact.excerpt(response.text, 120)!r}")
        if request.json_schema is not None:
            if self._response_format_ok is None:
                self._response_format_ok = True
            problem = output_problem(text, request.json_schema)
            if problem is not None:
                return ChatResult(request, failure=Failure("invalid_output", problem, output=text,
                                                           prompt_tokens=prompt_tokens,
                                                           completion_tokens=completion_tokens))
        return ChatResult(request, completion=Completion(
            text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, latency_s=latency,
            finish_reason=str(choice.get("finish_reason") or "stop"), prefix_cached_tokens=reused))

    def _error_detail(self, response: httpx.Response) -> str:
        """A short excerpt of an error body (OpenAI's {"error": {"message": ...}} when present), masked first."""
        if response.status_code == 200:
            return ""
        try:
            error = response.json().get("error")
            message = error.get("message") if isinstance(error, dict) else error
        except (ValueError, AttributeError):
            message = response.text
        message = str(message or "").strip()
        return f": {self._redact.excerpt(message, _EXCERPT)}" if message else ""

    # -- plumbing ------------------------------------------------------------------------------
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

    def _client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=self.parallel, max_keepalive_connections=self.parallel)
        return httpx.AsyncClient(headers=self._headers(), auth=self._auth, limits=limits, timeout=self._timeouts())

    def _timeouts(self) -> httpx.Timeout:
        # A live server accepts a connection in milliseconds; only writing the answer can take long.
        return httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s)

    def _headers(self) -> dict[str, str]:
        if self._api_key is None:
            return {}
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    def _scrubbed(self, result: ChatResult) -> ChatResult:
        """The last pass over what leaves the backend: every text a result carries, masked."""
        if result.completion is not None:
            return replace(result, completion=replace(result.completion, text=self._redact(result.completion.text)))
        failure = result.failure
        assert failure is not None  # a ChatResult holds exactly one of the two
        output = self._redact(failure.output) if failure.output is not None else None
        return replace(result, failure=replace(failure, message=self._redact(failure.message), output=output))

    def _log(self, message: str) -> None:
        logger.info("%s", self._redact(message))

    def _tell(self, message: str) -> None:
        """A wait at first contact: logged, and told to the user (`notify`), who would otherwise see nothing."""
        self._log(message)
        if self._notify is not None:
            self._notify(self._redact(message))


def _failed(request: ChatRequest, kind: FailureKind, message: str) -> ChatResult:
    return ChatResult(request, failure=Failure(kind, message))


def _run(batch: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end, also when called from code that already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(batch)
    # Called from inside a loop (a server handler): use a loop of our own, in a helper thread.
    with ThreadPoolExecutor(max_workers=1) as helper:
        return helper.submit(asyncio.run, batch).result()


def create_http(config: LLMConfig, notify: Callable[[str], None] | None = None) -> HttpBackend:
    """Build the HTTP backend from the config, filling base URL and key from the environment.

    `notify` hears about a server that has not answered yet at first contact."""
    base_url = config.resolved_base_url()
    if base_url is None:
        raise ConfigError("The http backend needs a server address",
                          hint=f"Set base_url in the [llm] config (e.g. http://127.0.0.1:8080/v1) or {BASE_URL_ENV}.")
    retry = RetryPolicy(max_retries=config.max_retries, base_s=config.backoff_base_s, max_s=config.backoff_max_s)
    return HttpBackend(base_url, config.model, api_key=config.resolved_api_key(), parallel=config.parallel or DEFAULT_IN_FLIGHT,
                       timeout_s=config.timeout_s, connect_timeout_s=config.connect_timeout_s, retry=retry,
                       structured_output=config.structured_output, notify=notify)


register_backend("http")(create_http)
