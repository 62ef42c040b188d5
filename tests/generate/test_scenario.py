import pytest

from behaviorlab.errors import ConfigError
from behaviorlab.generate.scenario import parse_scenario


def test_scenarios_combine_text_and_limits():
    scenario = parse_scenario(["night", "weekend", "new-device:Fan"])
    assert scenario.bins == frozenset({7, 0, 1}) and scenario.days == frozenset({5, 6})
    assert "night" in scenario.text and "Fan" in scenario.text and scenario.new_devices == ("Fan",)
    assert parse_scenario([]).text == ""


def test_unknown_or_impossible_scenarios_are_config_errors():
    with pytest.raises(ConfigError, match="Unknown scenario"):
        parse_scenario(["nigth"])
    with pytest.raises(ConfigError, match="exclude every time"):
        parse_scenario(["night", "day"])
