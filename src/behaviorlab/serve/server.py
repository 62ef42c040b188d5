"""Run the service with uvicorn; SIGHUP reloads the models and the /generate backend (each new one swapped in; old requests finish).

What is loaded at start (torch, the models, FastAPI: some 235,000 objects for a SASRec) is frozen out of the
cyclic garbage collector: a full collection over it took about 100 ms of CPU on the event loop (235 ms measured
under a profiler), a pause every request in flight waits through. Young objects are still collected as usual
(about 1 ms a collection)."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Callable

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
    _freeze_heap()
    server = uvicorn.Server(uvicorn.Config(gate, host=config.host, port=config.port, access_log=False,
                                           log_level="warning", lifespan="on"))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reloads: set[asyncio.Task] = set()

        async def reload_and_freeze() -> None:
            if await gate.state.reload():
                gc.unfreeze()  # the retired set is garbage now; what is left is frozen again
                _freeze_heap()

        def reload() -> None:
            task = loop.create_task(reload_and_freeze())
            reloads.add(task)  # held until done: a task nobody references may be collected
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, reload)
        await server.serve()

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())


def _freeze_heap() -> None:
    gc.collect()
    gc.freeze()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when the serve extra installed it (less CPU per request than asyncio's), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
