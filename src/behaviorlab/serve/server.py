"""Run the service with uvicorn; SIGHUP reloads the models (load the new set, swap it in, old requests finish)."""

from __future__ import annotations

import asyncio
import signal

from behaviorlab.errors import ConfigError
from behaviorlab.schema import EventLog
from behaviorlab.serve.config import ServeConfig


def serve(config: ServeConfig, grounding: EventLog | None = None) -> None:
    """Serve until interrupted (SIGINT/SIGTERM); raises ModelError when a model cannot be loaded."""
    import uvicorn

    from behaviorlab.serve.app import create_app

    if not config.models and grounding is None:
        raise ConfigError("Nothing to serve", hint="Pass --model NAME=DIR (repeatable) and/or --generate-data.")
    gate = create_app(config, grounding)
    server = uvicorn.Server(uvicorn.Config(gate, host=config.host, port=config.port, access_log=False,
                                           log_level="warning", lifespan="on"))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reloads: set[asyncio.Task] = set()

        def reload() -> None:
            task = loop.create_task(gate.state.reload())
            reloads.add(task)  # held until done: a task nobody references may be collected
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, reload)
        await server.serve()

    asyncio.run(main())
