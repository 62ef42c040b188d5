"""/generate end to end with the real small model (smollm2-135m): a sequence, and 429 from a full queue."""

from __future__ import annotations

import concurrent.futures

import pytest

from behaviorlab.generate.config import GenerateConfig
from behaviorlab.llm.config import LLMConfig
from behaviorlab.serve.config import GenerationServiceConfig, ServeConfig

pytestmark = pytest.mark.llm
SMALL = {"n_users": 3, "length": 4, "n_exemplars": 2, "n_neighbours": 4, "n_strata": 3, "max_attempts": 2}
LLM = {"model": "smollm2-135m", "parallel": 1, "threads": 1, "context_per_slot": 1024, "use_cache": False}


def test_generate_makes_a_sequence_and_a_full_queue_answers_429(start_server, tiny_log, smollm2_path):
    generation = GenerationServiceConfig(generate=GenerateConfig(**SMALL, llm=LLMConfig(**LLM)), queue_size=1)
    running = start_server(ServeConfig(generation=generation), tiny_log)
    with running.client() as client:
        answer = client.post("/generate", json={"profile_index": 1, "persona": "Works nights."})
        assert answer.status_code in (200, 502), answer.text
        if answer.status_code == 200:
            events = answer.json()["events"]
            assert len(events) == 4 and {e["action"] for e in events} <= set(tiny_log.vocabulary.actions)
        assert client.post("/generate", json={"profile_index": 9}).json()["error"]["code"] == "unknown_profile"
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda i: client.post("/generate", json={"profile_index": i % 3}), range(4)))
    refused = [a for a in answers if a.status_code == 429]
    assert refused and all(int(a.headers["retry-after"]) >= 1 for a in refused)
    assert refused[0].json()["error"]["code"] == "queue_full"
