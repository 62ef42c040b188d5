"""Structured output: constrain decoding to a JSON schema, and check every completion against it.

Both backends validate what comes back: a completion that does not parse, or parses but breaks the
schema (also when a server ignored the constraint, or `max_tokens` cut the JSON short), is a failure of
kind "invalid_output" and is never passed on as if it were valid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# llguidance options: no free whitespace between JSON tokens. Every output token costs about five
# prompt tokens on CPU, so `{"a":1}` instead of pretty-printed JSON is a direct speed-up.
_COMPACT_JSON = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}


def compact_json_grammar(schema: Mapping[str, Any]) -> str:
    """An llguidance grammar (the form xllamacpp's server accepts in `grammar`) for compact JSON of `schema`."""
    constrained = dict(schema)
    constrained.setdefault("x-guidance", _COMPACT_JSON)
    return "%llguidance {}\nstart: %json " + json.dumps(constrained, ensure_ascii=False, separators=(",", ":"))


def schema_instruction(schema: Mapping[str, Any]) -> str:
    """A system-prompt paragraph that asks for JSON matching `schema`, for servers without response_format."""
    return ("Reply with one JSON value and nothing else (no prose, no code fences). It must validate against "
            "this JSON Schema:\n" + json.dumps(schema, ensure_ascii=False, separators=(",", ":")))


def schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Why `schema` is not a valid JSON Schema, or None when it is."""
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"invalid JSON Schema: {exc.message}"
    return None


def output_problem(text: str, schema: Mapping[str, Any]) -> str | None:
    """Why `text` is not a JSON document valid under `schema`, or None when it is."""
    import jsonschema

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"output is not JSON ({exc.msg} at character {exc.pos}): {_excerpt(text)}"
    validator_class = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_class(schema).iter_errors(value), key=lambda error: list(error.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(part) for part in first.absolute_path) or "(root)"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        return f"output breaks the schema at {where}: {first.message}{more}"
    return None


def _excerpt(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
