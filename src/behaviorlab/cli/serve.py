"""`behaviorlab serve`: the HTTP service (predict, score, generate) over saved models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from behaviorlab.cli.app import app, err_console
from behaviorlab.cli.common import (
    ReadFlags,
    data_source,
    with_read_flags,
)
from behaviorlab.errors import ConfigError


@app.command("serve")
@with_read_flags
def serve(
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="NAME=DIR of a saved model (repeatable): "
                                                    "next-behavior models answer /predict, anomaly detectors /score.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    batch_wait_ms: Annotated[float, typer.Option(help="Longest wait of a /predict or /score request for others to share its forward pass.")] = 2.0,
    max_batch: Annotated[int, typer.Option(help="Most requests in one forward pass.")] = 64,
    no_batching: Annotated[bool, typer.Option("--no-batching", help="One forward pass per request.")] = False,
    max_history: Annotated[int, typer.Option(help="Most events in a history or scored sequence.")] = 512,
    max_k: Annotated[int, typer.Option(help="Largest k of /predict.")] = 100,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 64 * 1024,
    torch_threads: Annotated[int, typer.Option(help="Threads of each forward pass (more helps only large batches on idle cores).")] = 1,
    access_log: Annotated[Path | None, typer.Option(help="File for the JSON-lines access log (default: standard error).")] = None,
    generate_data: Annotated[Path | None, typer.Option(callback=data_source, help="Real log that grounds /generate (enables it).")] = None,
    generate_config: Annotated[Path | None, typer.Option(help="TOML file whose [generate] table (with [generate.llm]) "
                                                                "configures /generate, as for `behaviorlab generate`.")] = None,
    queue_size: Annotated[int, typer.Option(help="/generate requests that may wait; more get 429.")] = 8,
    *,
    read_flags: ReadFlags,
) -> None:
    """Serve predictions, anomaly scores and generation over HTTP (OpenAPI at /docs); SIGHUP reloads the models and the LLM backend.

    Set BEHAVIORLAB_SERVE_TOKEN to require 'Authorization: Bearer <token>' on every route but /healthz and /docs.
    The read options (--format, --map, --sep, ...) say how --generate-data is read.
    """
    from behaviorlab.config import parse_config, read_toml
    from behaviorlab.serve.config import parse_model_spec
    from behaviorlab.serve.server import serve as run_server

    read = read_flags.options()
    if read.given() and generate_data is None:
        raise ConfigError("The read options (--format, --map, --sep, ...) say how --generate-data is read, and it is not given",
                          hint="Add --generate-data LOG, or drop them.")
    grounding, generation = None, None
    if generate_data is not None:
        from behaviorlab.cli.generate import GenerateJob, training_log

        values = read_toml(generate_config).get("generate", {}) if generate_config is not None else {}
        job = parse_config(GenerateJob, {"data": generate_data, "out": ".", "read": read, "generate": values},
                           where=f"generate configuration{f' from {generate_config}' if generate_config else ''}")
        grounding = training_log(job)
        generation = {"generate": job.generate, "queue_size": queue_size}
    from behaviorlab.serve.config import ServeConfig

    config = parse_config(ServeConfig, {
        "models": [parse_model_spec(text) for text in model or []], "host": host, "port": port,
        "batching": {"enabled": not no_batching, "max_wait_ms": batch_wait_ms, "max_batch": max_batch},
        "limits": {"max_history": max_history, "max_k": max_k, "max_body_bytes": max_body_bytes},
        "generation": generation, "access_log": access_log, "torch_threads": torch_threads}, where="serve options")
    err_console.print(f"Serving on http://{host}:{port} (docs at /docs); SIGHUP reloads the models and the LLM backend.", highlight=False)
    run_server(config, grounding)
