import json

from behaviorlab.llm.structured import compact_json_grammar, output_problem, schema_instruction, schema_problem

SCHEMA = {"type": "object", "properties": {"action": {"enum": ["a", "b"]}, "n": {"type": "integer"}},
          "required": ["action", "n"], "additionalProperties": False}


def test_valid_output_has_no_problem():
    assert output_problem('{"action":"a","n":3}', SCHEMA) is None


def test_non_json_output_is_reported_with_an_excerpt():
    problem = output_problem("Sure! Here is the JSON: {", SCHEMA)
    assert problem is not None and "not JSON" in problem and "Sure!" in problem


def test_schema_violations_are_reported_with_their_place():
    problem = output_problem('{"action":"c","n":"x"}', SCHEMA)
    assert problem is not None and "breaks the schema" in problem and "1 more problems" in problem


def test_truncated_json_is_a_problem():
    assert output_problem('{"action":"a","n":', SCHEMA) is not None


def test_grammar_embeds_the_schema_with_compact_whitespace_and_keeps_the_callers_schema():
    grammar = compact_json_grammar(SCHEMA)
    header, body = grammar.split("\n", 1)
    assert header == "%llguidance {}"
    embedded = json.loads(body.removeprefix("start: %json "))
    assert embedded["x-guidance"]["whitespace_flexible"] is False
    assert embedded["properties"] == SCHEMA["properties"]
    assert "x-guidance" not in SCHEMA


def test_instruction_carries_the_schema():
    assert json.dumps(SCHEMA, separators=(",", ":")) in schema_instruction(SCHEMA)


def test_schema_problem_flags_an_invalid_schema():
    assert schema_problem(SCHEMA) is None
    assert "invalid JSON Schema" in schema_problem({"type": "objekt"})
