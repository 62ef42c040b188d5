from pathlib import Path

import pytest

from behaviorlab.config import StrictConfig, load_config, parse_config
from behaviorlab.errors import ConfigError


class Example(StrictConfig):
    epochs: int = 10
    lr: float = 1e-3
    name: str = "x"


def test_toml_values_are_typed_and_flags_override_them(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[train]\nepochs = 3\nname = "from-file"\n')
    config = load_config(Example, path, {"name": "from-flag", "lr": None}, section="train")
    assert config == Example(epochs=3, lr=1e-3, name="from-flag")


def test_every_unknown_or_wrong_key_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(Example, {"epochs": "many", "learning_rate": 0.1, "nme": "typo"})
    message = str(info.value)
    assert "epochs" in message and "learning_rate" in message and "nme" in message


def test_invalid_toml_and_missing_file_say_what_to_fix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(Example, bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Example, tmp_path / "missing.toml")


def test_unknown_keys_get_a_spelling_suggestion_and_the_accepted_keys(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text("epoch = 3\nlr = 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(Example, path, {"name": "x"})
    message = str(info.value)
    assert str(path) in message  # the file to fix is named
    assert "unknown key 'epoch' (did you mean 'epochs'?)" in message
    assert "column" not in message  # keys, not columns
    assert "accepts: epochs, lr, name" in message


class Outer(StrictConfig):
    name: str = "x"
    inner: Example = Example()


def test_a_nested_unknown_key_lists_the_keys_of_its_own_table() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(Outer, {"inner": {"epoch": 3}})
    message = str(info.value)
    assert "unknown key 'inner.epoch' (did you mean 'epochs'?)" in message
    assert "[inner] accepts: epochs, lr, name." in message


@pytest.mark.parametrize(("encoding", "named"), [("latin-1", "Latin-1"), ("utf-16", "UTF-16"), ("utf-16-le", "UTF-16LE")])
def test_a_config_file_that_is_not_utf8_names_its_encoding(tmp_path: Path, encoding: str, named: str) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes('name = "café"\n'.encode(encoding))
    with pytest.raises(ConfigError, match=f"is not UTF-8 text: it looks like {named}") as info:
        load_config(Example, path)
    assert "iconv -f" in str(info.value.hint)


def test_a_config_path_that_is_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_config(Example, tmp_path)
