"""The SQLite completions cache and the caching decorator backend."""

import threading
import time
from collections.abc import Sequence

import pytest

from behaviorlab.llm.accounting import RunAccounting
from behaviorlab.llm.base import ChatMessage, ChatRequest, ChatResult, Completion, Failure, SamplingSettings
from behaviorlab.llm.cache import CachedBackend, ResponseCache


class ScriptedBackend:
    """Answers "fail..." prompts with a failure and everything else with an echo; records every call."""

    name = "scripted"

    def __init__(self, model: str = "m", identity: str | None = None, interrupt_on_call: int | None = None) -> None:
        self.model = model
        if identity is not None:
            self.cache_identity = identity
        self.calls: list[list[str]] = []
        self.interrupt_on_call = interrupt_on_call

    def complete(self, requests: Sequence[ChatRequest], progress=None) -> list[ChatResult]:
        self.calls.append([r.messages[-1].content for r in requests])
        if self.interrupt_on_call == len(self.calls):
            raise KeyboardInterrupt
        results = []
        for request in requests:
            text = request.messages[-1].content
            if text.startswith("fail"):
                results.append(ChatResult(request, failure=Failure("server_error", "down")))
            else:
                results.append(ChatResult(request, completion=Completion(f"echo {text}", 10, 4, 0.2)))
            if progress is not None:
                progress(len(results), len(requests), None)
        return results

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def close(self) -> None:
        pass


def _requests(*texts: str) -> list[ChatRequest]:
    return [ChatRequest((ChatMessage("user", t),), sampling=SamplingSettings(seed=1)) for t in texts]


def test_second_run_costs_no_tokens_and_failures_are_retried(tmp_path):
    inner = ScriptedBackend()
    backend = CachedBackend(inner, ResponseCache(tmp_path / "c.sqlite"))
    first = backend.complete(_requests("a", "b", "fail c"))
    assert [r.ok for r in first] == [True, True, False] and not any(r.completion and r.completion.cached for r in first)

    accounting = RunAccounting()
    second = backend.complete(_requests("a", "b", "fail c"))
    accounting.record(second, wall_s=0.01)
    assert inner.calls == [["a", "b", "fail c"], ["fail c"]]  # only the failure was asked again
    assert [r.completion.text for r in second[:2]] == ["echo a", "echo b"] and all(r.completion.cached for r in second[:2])
    assert accounting.prompt_tokens == 0 and accounting.completion_tokens == 0 and accounting.cached == 2
    assert accounting.cached_prompt_tokens == 20


def test_the_cache_survives_a_new_process_view_and_separates_backends(tmp_path):
    CachedBackend(ScriptedBackend(identity="file-1"), ResponseCache(tmp_path / "c.sqlite")).complete(_requests("a"))
    same = ScriptedBackend(identity="file-1")
    assert CachedBackend(same, ResponseCache(tmp_path / "c.sqlite")).complete(_requests("a"))[0].completion.cached
    assert same.calls == []
    other = ScriptedBackend(identity="file-2")  # e.g. a different GGUF under the same name
    CachedBackend(other, ResponseCache(tmp_path / "c.sqlite")).complete(_requests("a"))
    assert other.calls == [["a"]]
    changed = ScriptedBackend(identity="file-1")
    different_sampling = [ChatRequest((ChatMessage("user", "a"),), sampling=SamplingSettings(seed=2))]
    CachedBackend(changed, ResponseCache(tmp_path / "c.sqlite")).complete(different_sampling)
    assert changed.calls == [["a"]]


def test_finished_chunks_are_kept_when_a_run_is_interrupted(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    with pytest.raises(KeyboardInterrupt):
        CachedBackend(ScriptedBackend(interrupt_on_call=2), cache, chunk_size=2).complete(_requests(*"abcde"))
    assert len(cache) == 2
    resumed = ScriptedBackend()
    progress = []
    results = CachedBackend(resumed, cache, chunk_size=2).complete(
        _requests(*"abcde"), progress=lambda done, total, info=None: progress.append(done))
    assert resumed.calls == [["c", "d"], ["e"]] and all(r.ok for r in results)
    assert progress == [2, 3, 4, 5] and len(cache) == 5


def test_concurrent_writers_share_one_file(tmp_path):
    path = tmp_path / "c.sqlite"
    errors = []

    def writer(worker: int) -> None:
        cache = ResponseCache(path)
        try:
            for i in range(40):
                cache.put_many([(f"{worker}-{i}", Completion(f"t{i}", 1, 1, 0.0))])
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            cache.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(ResponseCache(path)) == 160


@pytest.mark.llm
def test_real_model_repeat_run_costs_zero_tokens(smollm2_backend, action_schema, tmp_path):
    backend = CachedBackend(smollm2_backend, ResponseCache(tmp_path / "c.sqlite"))
    requests = [ChatRequest((ChatMessage("user", f"User {i} wakes up. Next action?"),), json_schema=action_schema,
                            sampling=SamplingSettings(max_tokens=24, seed=i)) for i in range(2)]
    runs = []
    for _ in range(2):
        accounting = RunAccounting()
        started = time.perf_counter()
        results = backend.complete(requests)
        accounting.record(results, time.perf_counter() - started)
        runs.append((results, accounting))
    (first, spent), (second, repeat) = runs
    assert spent.completion_tokens > 0 and spent.prompt_tokens > 0
    assert repeat.prompt_tokens == 0 and repeat.completion_tokens == 0 and repeat.cached == 2
    assert [r.completion.text for r in second] == [r.completion.text for r in first]
