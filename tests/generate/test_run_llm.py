"""End to end with the real embedded test model (smollm2-135m): constrained output, checks, a server that goes
down. Kill -9 and resume at the default settings: tests/reliability/test_determinism.py."""

import json
import sqlite3

import pytest

from behaviorlab.datasets import read_event_log
from behaviorlab.errors import LLMError
from behaviorlab.generate.config import GenerateConfig
from behaviorlab.generate.manifest import MANIFEST_FILE
from behaviorlab.generate.run import PARQUET_FILE, STORE_FILE, run_generation
from behaviorlab.llm.config import LLMConfig

pytestmark = pytest.mark.llm
SMALL = {"n_users": 3, "length": 4, "n_exemplars": 2, "n_neighbours": 4, "n_strata": 3, "batch_size": 1,
         "max_attempts": 2, "outlier_filter": True}
LLM = {"model": "smollm2-135m", "parallel": 1, "threads": 1, "context_per_slot": 1024, "use_cache": False}


def test_pipeline_end_to_end_with_the_small_model(tmp_path, tiny_log, smollm2_path):
    from behaviorlab.llm.embedded import EmbeddedBackend

    backend = EmbeddedBackend(smollm2_path, model="smollm2-135m", parallel=1, threads=1, context_per_slot=1024)
    try:
        result = run_generation(tiny_log, tmp_path, GenerateConfig(**SMALL, llm=LLMConfig(**LLM)), backend)
    finally:
        backend.close()
    manifest = result.manifest
    attempts = manifest.attempts
    assert attempts.accepted + attempts.rejected + attempts.failed == attempts.attempts >= 3
    # constrained decoding: every completion the model wrote parsed into legend codes of the right length
    db = sqlite3.connect(tmp_path / STORE_FILE)
    for (text,) in db.execute("SELECT completion FROM attempts WHERE completion IS NOT NULL"):
        assert len(json.loads(text)) == 4
    synthetic = read_event_log(tmp_path / PARQUET_FILE)
    assert set(synthetic.frame.get_column("action")) <= set(tiny_log.vocabulary.actions)
    assert synthetic.n_events == 4 * synthetic.n_users
    tokens = manifest.tokens
    assert 0 < tokens.prompt_tokens_per_generated_event_compressed < tokens.prompt_tokens_per_generated_event_plain_json
    assert manifest.outliers.scored == attempts.accepted  # copies are flagged, not dropped, by default


def test_an_ungrounded_run_shows_no_real_record_and_the_experiment_reads_it_as_the_ablation(tmp_path, tiny_log,
                                                                                             smollm2_path):
    from behaviorlab.evaluate.scenarios import experiment_runs
    from behaviorlab.llm.embedded import EmbeddedBackend

    backend = EmbeddedBackend(smollm2_path, model="smollm2-135m", parallel=1, threads=1, context_per_slot=1024)
    try:
        for grounding in ("real", "none"):
            config = GenerateConfig(**SMALL, grounding=grounding, llm=LLMConfig(**LLM))
            run_generation(tiny_log, tmp_path / grounding, config, backend)
    finally:
        backend.close()
    for grounding, shows_records in (("real", True), ("none", False)):
        db = sqlite3.connect(tmp_path / grounding / STORE_FILE)
        prompts = [slot[1]["content"] for (m,) in db.execute("SELECT messages FROM profiles") for slot in json.loads(m)]
        groundings = [json.loads(g) for (g,) in db.execute("SELECT grounding FROM profiles")]
        assert all(("Real sequences of similar" in p) == shows_records for p in prompts)
        assert all(("Habits" in p) == shows_records for p in prompts)
        assert all(bool(g["exemplars"]) == shows_records for g in groundings)
        manifest = json.loads((tmp_path / grounding / MANIFEST_FILE).read_text())
        assert manifest["exemplars_in_prompts"]["count"] > 0 if shows_records else manifest["exemplars_in_prompts"]["count"] == 0
    runs = experiment_runs([tmp_path / "real", tmp_path / "none"])
    assert [r.source for r in runs] == ["llm", "llm_ungrounded"]
    assert runs[0].grounding_digest == runs[1].grounding_digest == tiny_log.digest()  # both drew profiles from it


def test_a_server_that_is_down_stops_the_run_and_a_resume_against_the_live_server_completes(tmp_path, tiny_log,
                                                                                             smollm2_path):
    """Real HTTP both ways: a loopback port with no listener, then llama.cpp's server with the real model."""
    from behaviorlab.llm.embedded import EmbeddedBackend
    from behaviorlab.llm.http_backend import HttpBackend
    from behaviorlab.llm.retry import RetryPolicy

    config = GenerateConfig(**SMALL, llm=LLMConfig(**LLM))
    dead = HttpBackend("http://127.0.0.1:9/v1", "smollm2-135m", parallel=1, timeout_s=5, retry=RetryPolicy(max_retries=0))
    with pytest.raises(LLMError, match="connection"):
        run_generation(tiny_log, tmp_path, config, dead)
    assert not (tmp_path / MANIFEST_FILE).exists()  # nothing claims the run finished
    server = EmbeddedBackend(smollm2_path, model="smollm2-135m", parallel=1, threads=1, context_per_slot=1024)
    try:
        live = HttpBackend(server.http_address + "/v1", "smollm2-135m", parallel=1, timeout_s=120)
        result = run_generation(tiny_log, tmp_path, config, live)
    finally:
        server.close()
    assert result.manifest.complete and result.manifest.attempts.failed == 0
    assert result.manifest.attempts.attempts >= SMALL["n_users"]  # every profile was asked of the live server


def test_several_sequences_per_profile_reuse_the_prompt_prefix_with_the_small_model(tmp_path, tiny_log, smollm2_path):
    from behaviorlab.llm.embedded import EmbeddedBackend

    backend = EmbeddedBackend(smollm2_path, model="smollm2-135m", parallel=1, threads=1, context_per_slot=1024)
    runs = {}
    try:
        for per_profile in (1, 3):
            config = GenerateConfig(**SMALL | {"n_users": 6, "sequences_per_profile": per_profile}, llm=LLMConfig(**LLM))
            runs[per_profile] = run_generation(tiny_log, tmp_path / str(per_profile), config, backend)
    finally:
        backend.close()
    one, three = runs[1].manifest, runs[3].manifest
    assert three.profiles == 2 and three.attempts.attempts >= 6
    assert runs[3].synthetic.n_events == 4 * runs[3].synthetic.n_users
    # the server reports the prompt tokens it reused: none with one sequence per profile (the cache is off by
    # default); with three, the second and third prompts of a profile reuse all but their last lines
    assert one.tokens.prefix_cache_hit_rate == 0.0
    db = sqlite3.connect(tmp_path / "3" / STORE_FILE)
    reuse = db.execute("SELECT slot, prompt_tokens, prefix_cached_tokens FROM attempts WHERE attempt = 0").fetchall()
    assert all(cached == 0 for slot, _, cached in reuse if slot == 0)
    assert all(cached > 0.7 * prompt for slot, prompt, cached in reuse if slot > 0)
    assert three.tokens.prefix_cache_hit_rate > 0.4
