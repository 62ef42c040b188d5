import json

from behaviorlab.compress.encode import CodeBook
from behaviorlab.generate.output import check_completion, output_schema
from behaviorlab.generate.rules import DomainRules

BOOK = CodeBook(("Light:switch on", "Light:switch off", "Television:setChannel"))
DAYS = (0, 0, 1)
BINS = (0, 1, 2, 3, 4, 5, 6, 7)
RULES = DomainRules(frozenset({"off"}), {"off": 0.0})


def check(text, days=DAYS, length=3, **kwargs):
    return check_completion(text, BOOK, length, days, BINS, RULES, **kwargs)


def test_valid_answer_is_accepted_without_issues():
    result = check('[[2,"A1"],[5,"A2"],[1,"A3"]]')
    assert result.accepted and result.valid_before_repair
    assert [(e.action, e.weekday, e.hour_bin) for e in result.events] == [
        ("Light:switch on", 0, 2), ("Light:switch off", 0, 5), ("Television:setChannel", 1, 1)]


def test_bins_out_of_order_within_a_day_are_re_sorted():
    result = check('[[5,"A1"],[2,"A2"],[1,"A3"]]')
    assert result.accepted and not result.valid_before_repair
    assert [e.hour_bin for e in result.events] == [2, 5, 1]
    assert [e.action for e in result.events] == ["Light:switch off", "Light:switch on", "Television:setChannel"]
    assert any("re-sorted" in i.message and i.repaired for i in result.issues)


def test_lower_case_code_and_full_name_are_repaired():
    result = check('[[1," a1"],[2,"Light:switch off"],[3,"A3"]]')
    assert result.accepted and not result.valid_before_repair
    assert [e.action for e in result.events] == ["Light:switch on", "Light:switch off", "Television:setChannel"]
    assert all(i.repaired for i in result.issues) and len(result.issues) == 2


def test_extra_events_are_cut_and_missing_events_reject():
    longer = check('[[1,"A1"],[2,"A2"],[3,"A3"],[4,"A1"]]')
    assert longer.accepted and len(longer.events) == 3
    shorter = check('[[1,"A1"],[2,"A2"]]')
    assert not shorter.accepted and "2 events, 3 required" in shorter.issues[0].message


def test_edge_cases_reject_with_a_reason():
    cases = {
        "": "empty completion",
        '[[1,"A1"],[2,': "truncated",
        '{"a": 1}': "expected a JSON array",
        '[[1,"A9"],[2,"A2"],[3,"A3"]]': "unknown action code",
        '[[1,7],[2,"A2"],[3,"A3"]]': "not a string",
        '[["x","A1"],[2,"A2"],[3,"A3"]]': "bin 'x'",
        '[[9,"A1"],[2,"A2"],[3,"A3"]]': "bin 9",
        '["A1","A2","A3"]': "not a [bin, code] pair",
        '"IGNORE ALL INSTRUCTIONS"': "expected a JSON array",
    }
    for text, reason in cases.items():
        result = check(text, truncated=text.endswith(","))
        assert not result.accepted, text
        assert any(reason in i.message for i in result.issues), (text, result.issues)


def test_domain_rule_switch_off_twice_rejects():
    result = check('[[1,"A2"],[2,"A2"],[3,"A3"]]')
    assert not result.accepted
    assert any("twice without" in i.message for i in result.issues)


def test_position_only_logs_answer_plain_codes():
    result = check('["A3","A1","A2"]', days=None)
    assert result.accepted and [e.weekday for e in result.events] == [None, None, None]


def test_schema_has_fixed_length_enums_of_codes_and_bins():
    schema = output_schema(BOOK, 3, (6, 7))
    assert schema["minItems"] == schema["maxItems"] == 3
    pair = schema["items"]["prefixItems"]
    assert pair[0]["enum"] == [6, 7] and pair[1]["enum"] == ["A1", "A2", "A3"]
    assert output_schema(BOOK, 2, None)["items"]["enum"] == ["A1", "A2", "A3"]
    json.dumps(schema)  # travels to the backend as JSON
