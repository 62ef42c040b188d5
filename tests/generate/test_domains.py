"""Each domain's real dataset runs end to end (with the scripted backend; the LLM is tested elsewhere)."""

from pathlib import Path

import polars as pl
import pytest

from behaviorlab.generate.config import GenerateConfig
from behaviorlab.generate.run import run_generation

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"
DOMAINS = ["smartthings-fr", "kasteren", "foursquare-nyc", "movielens-100k"]
CONFIG = GenerateConfig(n_users=3, n_exemplars=3, batch_size=3, outlier_filter=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", DOMAINS)
def test_real_dataset_generates_a_log_with_its_schema(name, tmp_path, fake):
    if not (SHARED / name).exists():
        pytest.skip(f"{name} is not present at ../shared/datasets/{name}")
    from behaviorlab.datasets import load

    log = load(SHARED / name)
    if "split" in log.schema.extras:
        log = log.filter(pl.col("split") == "train")
    backend = fake()
    result = run_generation(log, tmp_path, CONFIG, backend)
    assert result.synthetic.schema == log.schema
    assert result.synthetic.n_users == 3 - result.manifest.outliers.dropped
    assert set(result.synthetic.frame.get_column("action")) <= set(log.vocabulary.actions)
    prompt = backend.requests[0].messages[1].content
    assert "<data>" in prompt and "Legend:" in prompt
    assert result.manifest.tokens.prompt_tokens_per_generated_event_compressed > 0  # real tokenizer: LLM tests
