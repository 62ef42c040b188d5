"""Throughput of the embedded backend vs calling xllamacpp directly, with 1 and 4 parallel slots.

    .venv/bin/python bench/llm.py [--model qwen2.5-coder-1.5b] [--requests 16] [--slots 1 4] [--repeats 2]

Each setting decodes the same batch of generation-like requests (a fixed-length JSON array of action
codes, schema-constrained) two ways, alternating so that load from other processes hits both alike:
  direct:  xllamacpp.Server + a thread per slot calling handle_chat_completions with the same bodies;
  backend: behaviorlab's EmbeddedBackend.complete (request building, threading, schema validation).
Reported: completion tokens per second of batch wall time, the backend/direct ratio (the overhead must
stay within 5%), and the speed-up of 4 slots over 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from behaviorlab.errors import ModelNotAvailableError
from behaviorlab.llm.base import ChatMessage, ChatRequest, SamplingSettings
from behaviorlab.llm.config import LLMConfig
from behaviorlab.llm.embedded import EmbeddedBackend, request_body
from behaviorlab.llm.weights import resolve_model

ACTIONS = ["A1", "A2", "A3", "B1", "B2", "C1", "C2", "D1"]
LEGEND = "A1=kitchen light on, A2=kitchen light off, A3=coffee maker on, B1=tv on, B2=tv off, " \
         "C1=front door unlock, C2=front door lock, D1=thermostat up"
SCHEMA = {"type": "object", "properties": {"events": {"type": "array", "items": {"enum": ACTIONS},
                                                      "minItems": 12, "maxItems": 12}},
          "required": ["events"], "additionalProperties": False}


def make_requests(count: int) -> list[ChatRequest]:
    return [ChatRequest(
        (ChatMessage("system", f"You simulate smart-home users. Action codes: {LEGEND}."),
         ChatMessage("user", f"User {i} is a {20 + 3 * i}-year-old who comes home at {16 + i % 6}:00. "
                             "Write their next 12 actions as codes.")),
        json_schema=SCHEMA, sampling=SamplingSettings(temperature=0.8, max_tokens=96, seed=i)) for i in range(count)]


def direct_batch(server, bodies: list[dict], slots: int) -> tuple[int, float]:
    """Completion tokens and wall seconds for the batch through xllamacpp alone."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=slots) as pool:
        answers = list(pool.map(server.handle_chat_completions, bodies))
    wall = time.perf_counter() - started
    return sum(answer["usage"]["completion_tokens"] for answer in answers), wall


def run_direct(path: Path, slots: int, threads: int, context: int, bodies: list[dict],
               warm: dict) -> tuple[int, float, int]:
    """Load a bare xllamacpp server (one model in memory at a time), warm it, time the batch."""
    server = load_direct(path, slots, threads, context)
    direct_batch(server, [warm], 1)
    tokens, wall = direct_batch(server, bodies, slots)
    del server
    return tokens, wall, 0


def run_backend(path: Path, model: str, slots: int, threads: int, context: int, requests: list[ChatRequest],
                warm: ChatRequest) -> tuple[int, float, int]:
    """The same through EmbeddedBackend; failed = completions that did not validate against the schema."""
    backend = EmbeddedBackend(path, model=model, parallel=slots, threads=threads, context_per_slot=context)
    backend.complete([warm])
    started = time.perf_counter()
    results = backend.complete(requests)
    wall = time.perf_counter() - started
    backend.close()
    failed = sum(1 for result in results if not result.ok)
    return sum(r.completion.completion_tokens for r in results if r.completion), wall, failed


def load_direct(path: Path, slots: int, threads: int, context_per_slot: int):
    """An xllamacpp server set up exactly as EmbeddedBackend sets up its own."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_parallel = slots
    params.n_ctx = slots * context_per_slot
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = -1
    params.warmup = False
    return xllamacpp.Server(params)


def resolve_with_fallback(model: str, cache_dir: Path | None) -> tuple[str, Path]:
    try:
        return model, resolve_model(model, cache_dir, on_assemble=lambda s, src: print(f"assembling {s.name} from {src}"))
    except ModelNotAvailableError as exc:
        if model != "qwen2.5-coder-1.5b":
            raise
        print(f"NOTE: {model} could not be assembled ({exc.message}); falling back to qwen2.5-coder-0.5b")
        return "qwen2.5-coder-0.5b", resolve_model("qwen2.5-coder-0.5b", cache_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: LLMConfig's default)")
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    model, path = resolve_with_fallback(args.model, args.cache_dir)
    threads = LLMConfig(threads=args.threads).resolved_threads()
    requests = make_requests(args.requests)
    bodies = [request_body(request) for request in requests]
    context = 1024
    print(f"model={model} file={path.name} requests={args.requests} threads={threads} repeats={args.repeats}")
    summary: dict[int, dict[str, float]] = {}
    for slots in args.slots:
        rates: dict[str, list[float]] = {"direct": [], "backend": []}
        warm = ChatRequest((ChatMessage("user", "Say hi."),), sampling=SamplingSettings(max_tokens=4))
        for repeat in range(args.repeats):
            # Alternate which path goes first so drifting load from other processes hits both alike.
            order = ("direct", "backend") if repeat % 2 == 0 else ("backend", "direct")
            for path_name in order:
                if path_name == "direct":
                    tokens, wall, failed = run_direct(path, slots, threads, context, bodies, request_body(warm))
                else:
                    tokens, wall, failed = run_backend(path, model, slots, threads, context, requests, warm)
                rates[path_name].append(tokens / wall)
                print(f"  slots={slots} repeat={repeat} {path_name:7s}: {tokens:5d} tokens {wall:7.1f} s "
                      f"{tokens / wall:6.2f} tok/s ({failed} failed)", flush=True)
        summary[slots] = {name: statistics.mean(values) for name, values in rates.items()}
    print("\nslots  direct tok/s  backend tok/s  backend/direct  overhead")
    for slots, figures in summary.items():
        ratio = figures["backend"] / figures["direct"]
        verdict = "within the 5% budget" if ratio >= 0.95 else "OVER the 5% budget"
        print(f"{slots:5d}  {figures['direct']:12.2f}  {figures['backend']:13.2f}  {ratio:14.3f}  "
              f"{100 * (1 - ratio):+7.1f}%  {verdict}")
    if len(summary) > 1:
        low, high = min(summary), max(summary)
        print(f"\nbackend speed-up of {high} slots over {low}: {summary[high]['backend'] / summary[low]['backend']:.2f}x"
              f" (direct: {summary[high]['direct'] / summary[low]['direct']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
