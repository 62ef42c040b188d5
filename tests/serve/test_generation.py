"""/generate end to end: with the real small model (smollm2-135m) a sequence and 429 from a full queue; with a
scripted backend whose answers never parse, 502."""

from __future__ import annotations

import concurrent.futures

import pytest

from behaviorlab.generate.config import GenerateConfig
from behaviorlab.llm.config import LLMConfig
from behaviorlab.serve.config import GenerationServiceConfig, ServeConfig

SMALL = {"n_users": 3, "length": 4, "n_exemplars": 2, "n_neighbours": 4, "n_strata": 3, "max_attempts": 2}
LLM = {"model": "smollm2-135m", "parallel": 1, "threads": 1, "context_per_slot": 1024, "use_cache": False}


@pytest.mark.llm
def test_generate_makes_a_sequence_and_a_full_queue_answers_429(start_server, grounding, smollm2_path):
    generation = GenerationServiceConfig(generate=GenerateConfig(**SMALL, llm=LLMConfig(**LLM)), queue_size=1)
    running = start_server(ServeConfig(generation=generation), grounding)
    with running.client() as client:
        answer = client.post("/generate", json={"profile_index": 1, "persona": "Works nights."})
        assert answer.status_code == 200, answer.text
        events = answer.json()["events"]
        assert len(events) == 4 and {e["action"] for e in events} <= set(grounding.vocabulary.actions)
        assert client.post("/generate", json={"profile_index": 9}).json()["error"]["code"] == "unknown_profile"
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda i: client.post("/generate", json={"profile_index": i % 3}), range(4)))
    refused = [a for a in answers if a.status_code == 429]
    assert refused and all(int(a.headers["retry-after"]) >= 1 for a in refused)
    assert refused[0].json()["error"]["code"] == "queue_full"


def test_no_valid_sequence_in_max_attempts_answers_502_with_the_issues(start_server, tiny_log, fake):
    backend = fake(lambda request, call: "Sure! Here is a sequence:")  # never JSON
    generation = GenerationServiceConfig(generate=GenerateConfig(**SMALL))
    running = start_server(ServeConfig(generation=generation), tiny_log, lambda: backend)
    with running.client() as client:
        answer = client.post("/generate", json={"profile_index": 0})
    assert answer.status_code == 502, answer.text
    error = answer.json()["error"]
    assert error["code"] == "no_valid_sequence" and "in 2 attempts" in error["message"]
    assert "max_attempts" in error["hint"] and len(error["details"]) == 2 and "not JSON" in error["details"][0]
    assert backend.calls == 2
