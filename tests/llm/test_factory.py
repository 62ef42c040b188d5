"""Building backends from the typed [llm] config."""

import pytest

from behaviorlab.config import parse_config
from behaviorlab.errors import ConfigError, LLMError
from behaviorlab.llm.cache import CachedBackend
from behaviorlab.llm.config import LLMConfig
from behaviorlab.llm.embedded import EmbeddedBackend
from behaviorlab.llm.factory import create_backend
from behaviorlab.llm.http_backend import HttpBackend

SECRET = "sk-factory-secret-987"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("BEHAVIORLAB_BASE_URL", "BEHAVIORLAB_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_unknown_and_invalid_keys_are_all_reported():
    with pytest.raises(ConfigError) as info:
        parse_config(LLMConfig, {"backend": "http", "paralel": 3, "timeout_s": -1}, where="[llm]")
    assert "paralel" in str(info.value) and "timeout_s" in str(info.value)


def test_unknown_backend_lists_the_registered_ones():
    with pytest.raises(LLMError) as info:
        create_backend(LLMConfig(backend="nope"))
    assert "embedded" in info.value.hint and "http" in info.value.hint


def test_http_needs_a_base_url():
    with pytest.raises(ConfigError, match="server address"):
        create_backend(LLMConfig(backend="http", use_cache=False))


def test_http_takes_url_and_key_from_the_environment_and_never_shows_the_key(monkeypatch, tmp_path):
    monkeypatch.setenv("BEHAVIORLAB_BASE_URL", "http://127.0.0.1:9/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    config = LLMConfig(backend="http", model="served-model", cache_dir=tmp_path)
    backend = create_backend(config)
    assert isinstance(backend, CachedBackend) and isinstance(backend.inner, HttpBackend)
    assert backend.inner.base_url == "http://127.0.0.1:9/v1" and backend.model == "served-model"
    assert backend.inner._headers() == {"Authorization": f"Bearer {SECRET}"}
    for text in (repr(backend), repr(config), str(config), repr(LLMConfig(api_key=SECRET))):
        assert SECRET not in text
    assert backend.cache.path == tmp_path / "completions.sqlite"
    backend.close()


def test_config_key_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("BEHAVIORLAB_API_KEY", "from-env")
    assert LLMConfig(api_key="from-config").resolved_api_key().get_secret_value() == "from-config"
    assert LLMConfig().resolved_api_key().get_secret_value() == "from-env"


def test_connection_refused_is_a_failure_not_an_exception():
    # Port 9 (discard) on loopback has no listener here: every attempt is refused.
    backend = create_backend(LLMConfig(backend="http", base_url="http://127.0.0.1:9/v1", use_cache=False,
                                       max_retries=1, backoff_base_s=0.01))
    from behaviorlab.llm.base import ChatMessage, ChatRequest

    result = backend.complete([ChatRequest((ChatMessage("user", "hi"),))])[0]
    assert result.failure is not None and result.failure.kind == "connection" and result.failure.attempts == 2


@pytest.mark.llm
def test_embedded_from_config_assembles_into_the_cache_and_says_so(tmp_path, smollm2_path):
    messages = []
    backend = create_backend(LLMConfig(model="smollm2-135m", cache_dir=tmp_path, parallel=1, threads=1,
                                       context_per_slot=256, allow_download=False), notify=messages.append)
    try:
        assert isinstance(backend, CachedBackend) and isinstance(backend.inner, EmbeddedBackend)
        assert backend.inner.model_path == tmp_path / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
        assert len(messages) == 1 and "smollm2-135m" in messages[0] and "once" in messages[0]
        assert backend.count_tokens("hello") > 0
    finally:
        backend.close()
