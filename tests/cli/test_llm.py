"""`behaviorlab llm models` and `behaviorlab llm try`."""

import json
import re

import pytest

from behaviorlab.cli import main


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BEHAVIORLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "160")


def test_models_lists_every_named_model_with_its_state(capsys, smollm2_path):
    assert main(["llm", "models"]) == 0
    out = capsys.readouterr().out
    for name in ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"):
        assert name in out
    assert "98 MB" in out and ".gguf" in out


def test_try_rejects_a_broken_schema_file_before_loading_anything(tmp_path, capsys):
    schema = tmp_path / "schema.json"
    schema.write_text('{"type": "objekt"}')
    assert main(["llm", "try", "hi", "--schema-file", str(schema)]) == 2
    assert "invalid JSON Schema" in capsys.readouterr().err


def test_try_with_an_unreachable_server_reports_the_failure_kind(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text("[llm]\nmax_retries = 1\nbackoff_base_s = 0.01\n")
    code = main(["llm", "try", "hi", "--backend", "http", "--base-url", "http://127.0.0.1:9/v1", "--no-cache",
                 "--config", str(config)])
    assert code == 4
    err = capsys.readouterr().err
    assert "connection" in err and "2 attempts" in err


@pytest.mark.llm
def test_try_prints_a_schema_valid_completion_and_the_accounting(tmp_path, capsys, smollm2_path):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"action": {"enum": ["light_on", "tv_off"]}},
                                  "required": ["action"]}))
    config = tmp_path / "run.toml"
    config.write_text("[llm]\nparallel = 1\nthreads = 1\ncontext_per_slot = 512\nallow_download = false\n")
    args = ["llm", "try", "User comes home. Next action?", "--model", "smollm2-135m", "--max-tokens", "16",
            "--seed", "3", "--schema-file", str(schema), "--config", str(config)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip())["action"] in ("light_on", "tv_off")
    assert "completion_tokens" in captured.err and "Preparing smollm2-135m" in captured.err
    assert main(args) == 0  # the repeat is served from the cache
    assert re.search(r"^ *cached +1 *$", capsys.readouterr().err, re.MULTILINE)
