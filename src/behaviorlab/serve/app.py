"""The FastAPI application: routes, request checks with clear 4xx answers, auth, access log and metrics.

Every error answer has the body {"error": {"code", "message", "hint", "details"}}: 400 malformed JSON,
401 missing or wrong token, 404 unknown model or route, 413 body too large, 422 a request that breaks
the schema or a limit (history length, k), names unknown actions or has the wrong context, 429 /generate
queue full (with Retry-After), 502 no valid sequence from the LLM, 503 LLM backend down.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from behaviorlab.errors import LLMError, ModelError
from behaviorlab.schema import HOUR_BINS, WEEKDAYS, EventLog
from behaviorlab.serve import schemas
from behaviorlab.serve.access_log import AccessLog
from behaviorlab.serve.auth import OPEN_PATHS, authorized, token_from_environment
from behaviorlab.serve.batching import MicroBatcher, PredictItem, predict_batch, score_batch
from behaviorlab.serve.config import ServeConfig
from behaviorlab.serve.generation import GenerationJob, GenerationService, QueueFull
from behaviorlab.serve.metrics import Metrics
from behaviorlab.serve.model_set import ModelSet, Role, ServedModel, load_model_set

ROUTES = ("/predict", "/score", "/generate", "/healthz", "/models", "/metrics", "/docs", "/openapi.json")


class Problem(Exception):
    """An HTTP error answer (see the module docstring)."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None, details: list[Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.hint = status, code, message, hint
        self.details = details or []
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body = schemas.ErrorResponse(error=schemas.ErrorDetail(code=self.code, message=self.message, hint=self.hint,
                                                               details=self.details))
        return JSONResponse(body.model_dump(), status_code=self.status, headers=self.headers)


@dataclass
class LiveSet:
    """A loaded model set with one micro-batcher per model (/predict and /score); swapped whole on reload."""

    models: ModelSet
    batchers: dict[str, MicroBatcher] = field(default_factory=dict)


class State:
    """What the routes share: the live set (replaced atomically), the generation service, the metrics."""

    def __init__(self, config: ServeConfig, grounding: EventLog | None, backend_factory: Callable[[], Any] | None = None) -> None:
        self.config = config
        self.metrics = Metrics()
        self.access = AccessLog(config.access_log)
        self.token = token_from_environment()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="behaviorlab-forward")
        self.live = self._live(load_model_set(config.models))
        self.executor.submit(_set_torch_threads, config.torch_threads).result()  # after: loading sets the saved threads
        self.generation = (GenerationService(grounding, config.generation, backend_factory)
                           if grounding is not None and config.generation is not None else None)
        self.metrics.gauge("behaviorlab_batch_queue_depth", "/predict and /score requests waiting for a batch, by model.",
                           lambda: {(("model", n),): b.depth() for n, b in self.live.batchers.items()})
        self.metrics.gauge("behaviorlab_generate_queue_depth", "Requests waiting for /generate.",
                           lambda: {(): self.generation.depth() if self.generation else 0})

    def _live(self, models: ModelSet) -> LiveSet:
        live = LiveSet(models)
        for name, served in models.models.items():
            run = functools.partial(predict_batch if served.role == "predict" else score_batch, served.model)
            live.batchers[name] = MicroBatcher(run, self.config.batching, self.executor,
                                               functools.partial(self.metrics.observe_batch, name))
        return live

    def start(self) -> None:
        for batcher in self.live.batchers.values():
            batcher.start()

    async def reload(self) -> bool:
        """Load the configured models again and build a new /generate backend (both off the event loop), each
        swapped in when ready; whether anything was swapped.

        Requests already queued finish on the old set, a sequence in progress on the old backend; a part that fails
        to load leaves its old one serving, and the access log says why (event reload_failed)."""
        generation = await self._reload_generation() if self.generation is not None else False
        return await self._reload_models() or generation

    async def _reload_generation(self) -> bool:
        assert self.generation is not None
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.generation.reload_backend)
        except Exception as exc:  # noqa: BLE001 - logged and counted; the old backend keeps serving
            self.metrics.count("reload_failed")
            self.access.write(event="reload_failed", part="generate", error=str(exc))
            return False
        self.metrics.count("reload")
        self.access.write(event="reloaded", part="generate")
        return True

    async def _reload_models(self) -> bool:
        loop = asyncio.get_running_loop()
        try:
            models = await loop.run_in_executor(None, load_model_set, self.config.models)
        except Exception as exc:  # noqa: BLE001 - logged and counted; the old set keeps serving
            self.metrics.count("reload_failed")
            self.access.write(event="reload_failed", part="models", error=str(exc))
            return False
        self.executor.submit(_set_torch_threads, self.config.torch_threads)  # runs before the new set's first pass
        new = self._live(models)
        for batcher in new.batchers.values():
            batcher.start()
        old, self.live = self.live, new
        self.metrics.count("reload")
        self.access.write(event="reloaded", part="models", models=models.names())
        for batcher in old.batchers.values():
            await batcher.close()
        return True

    async def stop(self) -> None:
        for batcher in self.live.batchers.values():
            await batcher.close()
        if self.generation is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.generation.close)
        self.executor.shutdown(wait=True)
        self.access.close()


def _set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


HotRoute = tuple[type[BaseModel], Callable[[Any], Awaitable[Response]]]  # the body's model, the route function


class Gate:
    """The outermost layer: body-size limit, bearer auth, then the access log line and the metrics.

    The hot routes (POST /predict and /score) are answered here: the body is validated straight from its bytes
    and handed to the same route function FastAPI declares (and documents at /docs). Skipping FastAPI's request
    machinery (routing, dependency solving, a Python JSON parse, its exception middleware) took the server's CPU
    per /predict from 0.43 to 0.29 ms (bench/serve.py, one core), and the event loop is what a busy server queues on."""

    def __init__(self, app: ASGIApp, state: State, hot: dict[str, HotRoute]) -> None:
        self.app, self.state, self.hot = app, state, hot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        status = {"code": 500, "bytes": 0}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body":
                status["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            problem = self._refusal(scope, path)
            body = b""
            if problem is None:
                body, problem = await self._read_body(receive)
            if problem is not None:
                await problem.response()(scope, receive, sending)
            elif method == "POST" and path in self.hot:
                await (await self._answer_hot(self.hot[path], body))(scope, receive, sending)
            else:
                await self.app(scope, _replay(body), sending)
        finally:
            seconds = time.perf_counter() - started
            route = path if path in ROUTES else "other"
            self.state.metrics.observe_request(route, method, status["code"], seconds)
            client = scope.get("client") or ("", 0)
            self.state.access.write(method=method, path=path, status=status["code"], ms=round(seconds * 1000, 3),
                                    bytes=status["bytes"], client=client[0])

    def _refusal(self, scope: Scope, path: str) -> Problem | None:
        token = self.state.token
        if token is None or path in OPEN_PATHS:
            return None
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        if authorized(header, token):
            return None
        return Problem(401, "unauthorized", "Missing or wrong bearer token",
                       hint="Send the header 'Authorization: Bearer <token>' with the server's BEHAVIORLAB_SERVE_TOKEN.",
                       headers={"WWW-Authenticate": "Bearer"})

    @staticmethod
    async def _answer_hot(route: HotRoute, body: bytes) -> Response:
        model, answer = route
        try:
            request = model.model_validate_json(body)
        except ValidationError as exc:
            return _validation_problem(exc.errors()).response()
        try:
            return await answer(request)
        except Problem as problem:
            return problem.response()

    async def _read_body(self, receive: Receive) -> tuple[bytes, Problem | None]:
        limit = self.state.config.limits.max_body_bytes
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", Problem(413, "body_too_large", f"The request body is over {limit:,} bytes",
                                    hint="Send a shorter history, or start the server with a larger --max-body-bytes.")
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks), None


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _json(answer: BaseModel) -> Response:
    """A validated answer as JSON, serialized by pydantic's core: returning the model would make FastAPI
    validate it again against response_model and encode it in Python (a fifth of a /predict's event-loop CPU)."""
    return Response(answer.model_dump_json(), media_type="application/json")


def _validation_problem(errors: Sequence[Any]) -> Problem:
    """The answer to a body that is not JSON (400) or breaks the schema (422), from pydantic's error list."""
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        return Problem(400, "malformed_json", f"The request body is not valid JSON: {detail.get('ctx', {}).get('error', '')}",
                       hint="Send a JSON object, e.g. {\"history\": [\"a\", \"b\"], \"k\": 5}.")
    details = [{"field": ".".join(str(p) for p in e["loc"] if p != "body"), "problem": e["msg"]} for e in errors]
    return Problem(422, "invalid_request", f"{len(details)} problem{'s' if len(details) > 1 else ''} in the request: "
                   + "; ".join(f"{d['field'] or 'body'}: {d['problem']}" for d in details),
                   hint="See the schema at /docs.", details=details)


def _pick(state: State, name: str | None, role: Role, route: str) -> ServedModel:
    """The model a request names (or the only one of its role)."""
    models = state.live.models
    served = models.names(role)
    if name is None:
        if len(served) == 1:
            return models.models[served[0]]
        raise Problem(422, "model_required", f"Name the model: {route} is served by {len(served)} models",
                      hint=f"Add \"model\": one of {served}.", details=served)
    if name not in models.models:
        raise Problem(404, "unknown_model", f"No model named {name!r} is served",
                      hint=f"{route} models: {served or 'none'}; GET /models lists them all.", details=served)
    model = models.models[name]
    if model.role != role:
        raise Problem(422, "wrong_model_kind", f"Model {name!r} is a '{model.kind}' model and does not answer {route}",
                      hint=f"{route} models: {served or 'none'}.", details=served)
    return model


def _check_sequence(state: State, model: ServedModel, actions: list[str], what: str) -> None:
    limit = state.config.limits.max_history
    if len(actions) > limit:
        raise Problem(422, "history_too_long", f"The {what} has {len(actions):,} events; this server takes at most {limit:,}",
                      hint="Send the most recent events only (the models read the latest ones), or start the server "
                           "with a larger --max-history.")
    unknown = model.sequence_model.unknown_actions(actions)
    if unknown:
        raise Problem(422, "unknown_actions", f"{len(unknown)} action{'s are' if len(unknown) > 1 else ' is'} not in "
                      f"model {model.name!r}'s vocabulary: {unknown[:20]}",
                      hint="Use actions from the training data (GET /models gives the vocabulary size; the model's "
                           "vocabulary.json lists them).", details=unknown)


def create_app(config: ServeConfig, grounding: EventLog | None = None,
               backend_factory: Callable[[], Any] | None = None) -> Gate:
    """The service for `config`; `grounding` (the real log) enables /generate with `config.generation`, through
    the backend `config.generation.generate.llm` names (or `backend_factory()`'s, e.g. a scripted one in tests)."""
    state = State(config, grounding, backend_factory)

    async def lifespan(app: FastAPI):  # starlette lifespan protocol
        state.start()
        yield
        await state.stop()

    app = FastAPI(title="behaviorlab", summary="Next-behavior prediction, anomaly scores and synthetic sequences.",
                  lifespan=lifespan)
    app.state.behaviorlab = state

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_problem(exc.errors()).response()

    @app.exception_handler(404)
    async def _not_found(request: Request, exc: Exception) -> JSONResponse:
        return Problem(404, "not_found", f"No route {request.url.path}", hint=f"Routes: {', '.join(ROUTES)}.").response()

    errors = {code: {"model": schemas.ErrorResponse} for code in (400, 401, 404, 413, 422)}

    @app.post("/predict", response_model=schemas.PredictResponse, responses=errors)
    async def predict(body: schemas.PredictRequest) -> Response:
        """The k most likely next actions after a history, with their probabilities."""
        model = _pick(state, body.model, "predict", "/predict")
        _check_sequence(state, model, body.history, "history")
        if body.k > config.limits.max_k:
            raise Problem(422, "k_too_large", f"k={body.k} is over this server's limit of {config.limits.max_k}",
                          hint="Ask for fewer actions, or start the server with a larger --max-k.")
        try:
            model.model.check_context(body.context)
        except ModelError as exc:
            raise Problem(422, "wrong_context", exc.message, hint=exc.hint,
                          details=[{"reads": dict(model.context or {})}] if model.context is not None else []) from None
        ranked = await state.live.batchers[model.name].submit(PredictItem(body.history, body.k, body.context))
        vocabulary = model.vocabulary
        return _json(schemas.PredictResponse.model_validate({"model": model.name, "predictions": [
            {"action": a, "probability": p, "description": vocabulary.describe(a)} for a, p in ranked]}))

    @app.post("/score", response_model=schemas.ScoreResponse, responses=errors)
    async def score(body: schemas.ScoreRequest) -> Response:
        """An anomaly score per event and for the sequence, from a saved anomaly detector."""
        from behaviorlab.models.anomaly_injection import ContextSequence

        model = _pick(state, body.model, "score", "/score")
        _check_sequence(state, model, body.events, "sequence")
        detector = model.model
        column = detector.config.context_column
        known = (model.context or {}).get(column, [])
        if column is not None:
            if body.context is None or len(body.context) != len(body.events):
                raise Problem(422, "wrong_context", f"Detector {model.name!r} reads one {column!r} value per event: give "
                              f"'context' with {len(body.events)} values", hint=f"Known values: {', '.join(known)}.",
                              details=[{"reads": {column: list(known)}}])
            bad = sorted(set(body.context) - set(known))
            if bad:
                raise Problem(422, "wrong_context", f"{column} values never seen in training: {bad}",
                              hint=f"Known values: {', '.join(known)}.", details=bad)
        elif body.context is not None:
            raise Problem(422, "wrong_context", f"Detector {model.name!r} reads no context", hint="Drop 'context'.")
        sequence = ContextSequence(source="request", actions=tuple(body.events),
                                   context=tuple(body.context) if column is not None else None)
        scored = await state.live.batchers[model.name].submit(sequence)
        return _json(schemas.ScoreResponse(model=model.name, event_scores=scored.event_scores,
                                           sequence_score=scored.sequence_score, aggregate=detector.config.aggregate,
                                           threshold=float(detector.threshold_),
                                           anomalous=bool(scored.sequence_score > detector.threshold_)))

    @app.post("/generate", response_model=schemas.GenerateResponse, responses=errors | {
        429: {"model": schemas.ErrorResponse}, 502: {"model": schemas.ErrorResponse}, 503: {"model": schemas.ErrorResponse}})
    async def generate(body: schemas.GenerateRequest) -> schemas.GenerateResponse:
        """A synthetic sequence for a population profile, a given profile or a persona, through the LLM backend."""
        service = state.generation
        if service is None:
            raise Problem(404, "generate_not_configured", "This server was started without a generator",
                          hint="Start it with --generate-data (the real log that grounds generation).")
        population = service.population
        if body.profile_index >= len(population):
            raise Problem(422, "unknown_profile", f"profile_index {body.profile_index} is outside the population "
                          f"(0..{len(population) - 1})", hint="Pick an index below n_users of the generation config.")
        base = population[body.profile_index]
        profile = body.profile or base
        if not profile.neighbours:
            profile = profile.model_copy(update={"neighbours": base.neighbours})
        unknown = sorted(set(profile.neighbours) - service.real_users)
        if unknown:
            raise Problem(422, "unknown_neighbours", f"{len(unknown)} profile neighbours are not users of the grounding "
                          f"log: {unknown[:20]}", hint="Leave 'neighbours' out to use profile_index's.", details=unknown)
        try:
            future = service.submit(GenerationJob(body.profile_index, profile, body.persona))
        except QueueFull as full:
            state.metrics.count("generate_queue_full")
            raise Problem(429, "queue_full", f"The generation queue is full ({config.generation.queue_size} waiting)",
                          hint=f"Retry after {full.retry_after_s} s.",
                          headers={"Retry-After": str(full.retry_after_s)}) from None
        try:
            result = await future
        except LLMError as exc:
            raise Problem(503, "llm_unavailable", exc.message, hint=exc.hint, headers={"Retry-After": "30"}) from None
        if result.events is None:
            issues = [message for attempt in result.attempts for message, _ in attempt.issues]
            raise Problem(502, "no_valid_sequence", f"The LLM gave no valid sequence in {len(result.attempts)} attempts",
                          hint="Retry with another profile_index, or a larger max_attempts in [generate].", details=issues[:20])
        vocabulary = service.context.log.vocabulary
        return schemas.GenerateResponse(profile_id=profile.profile_id, profile_index=body.profile_index,
                                        attempts=len(result.attempts), events=[
            schemas.GeneratedEvent(action=a, weekday=WEEKDAYS[w] if w is not None else None,
                                   hour_bin=HOUR_BINS[h] if h is not None else None, description=vocabulary.describe(a))
            for a, w, h in result.events])

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness: the service answers and how many models it serves."""
        return {"status": "ok", "models": len(state.live.models.models)}

    @app.get("/models", response_model=schemas.ModelsResponse, responses=errors)
    async def models() -> schemas.ModelsResponse:
        """The served models: name, kind, route, vocabulary size, the digest of the data they were trained on."""
        live = state.live.models
        generation = state.generation
        return schemas.ModelsResponse(loaded_at=live.loaded_at, generate=generation is not None,
                                      generate_loaded_at=generation.loaded_at if generation is not None else None, models=[
            schemas.ModelInfo(name=m.name, kind=m.kind, serves=f"/{m.role}", vocabulary_size=len(m.vocabulary),
                              trained_on=m.trained_on, path=str(m.path),
                              context={k: list(v) for k, v in m.context.items()} if m.context is not None else None)
            for m in (live.models[n] for n in live.names())])

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        """Prometheus text format: requests by route and status, latency and batch-size histograms, queue depths."""
        return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")

    hot = {"/predict": (schemas.PredictRequest, predict), "/score": (schemas.ScoreRequest, score)}
    return Gate(app, state, hot)  # .state reaches the State (server.py reloads through it)
