from behaviorlab.generate.rules import DomainRules, repeated_states


def test_repeated_state_needs_no_opposite_between():
    assert repeated_states(["Light:switch off", "TV:switch off", "Light:switch off"]) == [("Light", "switch", "off")]
    assert repeated_states(["Light:switch off", "Light:switch on", "Light:switch off"]) == []
    assert repeated_states(["Light:setLevel", "None:location"]) == []


def test_rules_the_real_data_breaks_often_are_not_enforced():
    vocabulary = ["Light:switch on", "Light:switch off", "Door:doorControl open", "Door:doorControl close"]
    real = [["Light:switch on", "Light:switch on"]] * 3 + [["Light:switch on", "Light:switch off"]] * 97
    rules = DomainRules.from_real(vocabulary, real, max_real_rate=0.01)
    assert rules.real_rates["on"] == 0.03
    assert rules.enforced == frozenset({"off", "open", "close"})
    assert rules.violations(["Light:switch on", "Light:switch on"]) == []
    assert len(rules.violations(["Door:doorControl open", "Door:doorControl open"])) == 1
