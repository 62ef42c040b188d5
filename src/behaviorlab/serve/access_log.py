"""Structured access logs: one JSON object per line and request (time, method, path, status, duration,
bytes, client, model), written whole under a lock so concurrent lines never interleave. Headers are not
logged (the Authorization header holds the token)."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO


class AccessLog:
    def __init__(self, path: Path | None = None) -> None:
        self._own = path is not None
        self._stream: TextIO = open(path, "a", encoding="utf-8") if path is not None else sys.stderr  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, **record: Any) -> None:
        line = json.dumps({"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), **record}, ensure_ascii=False)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def close(self) -> None:
        if self._own:
            self._stream.close()
