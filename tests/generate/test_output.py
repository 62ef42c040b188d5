import json

from behaviorlab.compress.encode import CodeBook
from behaviorlab.generate.grounding import TimeSlot
from behaviorlab.generate.output import check_completion, output_schema
from behaviorlab.generate.rules import DomainRules

BOOK = CodeBook(("Light:switch on", "Light:switch off", "Television:setChannel"))
SLOTS = (TimeSlot(0, 2), TimeSlot(0, 5), TimeSlot(1, 1))  # the skeleton: Mon bin 2, Mon bin 5, Tue bin 1
RULES = DomainRules(frozenset({"off"}), {"off": 0.0})


def check(text, time_slots=SLOTS, length=3, **kwargs):
    return check_completion(text, BOOK, length, time_slots, RULES, **kwargs)


def test_valid_answer_takes_the_skeletons_times():
    result = check('["A1","A2","A3"]')
    assert result.accepted and result.valid_before_repair
    assert [(e.action, e.weekday, e.hour_bin) for e in result.events] == [
        ("Light:switch on", 0, 2), ("Light:switch off", 0, 5), ("Television:setChannel", 1, 1)]


def test_lower_case_code_and_full_name_are_repaired():
    result = check('[" a1","Light:switch off","A3"]')
    assert result.accepted and not result.valid_before_repair
    assert [e.action for e in result.events] == ["Light:switch on", "Light:switch off", "Television:setChannel"]
    assert [e.hour_bin for e in result.events] == [2, 5, 1]
    assert all(i.repaired for i in result.issues) and len(result.issues) == 2


def test_extra_events_are_cut_and_missing_events_reject():
    longer = check('["A1","A2","A3","A1"]')
    assert longer.accepted and len(longer.events) == 3 and longer.events[-1].weekday == 1
    shorter = check('["A1","A2"]')
    assert not shorter.accepted and "2 events, 3 required" in shorter.issues[0].message


def test_edge_cases_reject_with_a_reason():
    cases = {
        "": "empty completion",
        '["A1",': "truncated",
        '{"a": 1}': "expected a JSON array",
        '["A9","A2","A3"]': "unknown action code",
        '[7,"A2","A3"]': "not a string",
        '[[1,"A1"],[2,"A2"],[3,"A3"]]': "is a list, not a string",  # the LLM writes no bins: times are given
        '"IGNORE ALL INSTRUCTIONS"': "expected a JSON array",
    }
    for text, reason in cases.items():
        result = check(text, truncated=text.endswith(","))
        assert not result.accepted, text
        assert any(reason in i.message for i in result.issues), (text, result.issues)


def test_domain_rule_switch_off_twice_rejects():
    result = check('["A2","A2","A3"]')
    assert not result.accepted
    assert any("twice without" in i.message for i in result.issues)


def test_position_only_logs_answer_plain_codes():
    result = check('["A3","A1","A2"]', time_slots=None)
    assert result.accepted and [e.weekday for e in result.events] == [None, None, None]
    assert [e.hour_bin for e in result.events] == [None, None, None]


def test_schema_is_a_fixed_length_array_of_codes_with_or_without_time():
    schema = output_schema(BOOK, 3)
    assert schema == {"type": "array", "items": {"type": "string", "enum": ["A1", "A2", "A3"]},
                      "minItems": 3, "maxItems": 3}
    json.dumps(schema)  # travels to the backend as JSON
