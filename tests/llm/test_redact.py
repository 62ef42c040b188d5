"""Secrets never leave a backend, whole or in part: masked before any cut, URL credentials never shown."""

import base64

from behaviorlab.llm.redact import Redactor, public_url, split_credentials

KEY = "sk-Zq8vX2mT9pL4wR7nB3cY6hJ1kD5fG0sQeUaWiEo"


def fragments(secret: str, size: int = 8) -> set[str]:
    """Every `size`-character piece of a secret: none of them may appear in a shown or stored text."""
    return {secret[start:start + size] for start in range(len(secret) - size + 1)}


def leaks(text: str, secret: str = KEY) -> set[str]:
    return {piece for piece in fragments(secret) if piece in text}


def test_the_whole_key_and_any_long_enough_piece_of_it_are_masked():
    redact = Redactor([KEY])
    assert redact(f"bad key Bearer {KEY}!") == "bad key Bearer ***!"
    for start in range(len(KEY) - 8):
        for end in range(start + 8, len(KEY) + 1):  # a piece a server or a proxy cut out of the key
            assert not leaks(redact(f"echo: Bearer {KEY[start:end]} (truncated)")), (start, end)


def test_a_short_piece_of_the_key_where_a_text_was_cut_is_masked():
    redact = Redactor([KEY])
    assert redact(f"Authorization: Bearer {KEY[:5]}") == "Authorization: Bearer ***"  # the text ends mid-key
    assert redact(f"{KEY[-6:]}', 'Host': 'x'") == "***', 'Host': 'x'"  # the text starts mid-key
    assert redact("short words like sk-Z stay") == "short words like sk-Z stay"  # mid-text, too short to mean anything


def test_an_excerpt_is_masked_before_and_after_it_is_cut():
    redact = Redactor([KEY])
    text = f"{'x' * 100} 'Authorization': 'Bearer {KEY}', and more"
    for limit in range(90, len(text) + 5):
        excerpt = redact.excerpt(text, limit)
        assert not leaks(excerpt) and not any(excerpt.removesuffix("...").endswith(KEY[:n]) for n in range(4, 9))
        assert len(excerpt) <= limit + len("...")


def test_url_credentials_are_masked_in_urls_and_in_any_text():
    url = "http://svc-alice:hunter2-correct-horse@127.0.0.1:8080/v1"
    assert public_url(url) == "http://***@127.0.0.1:8080/v1"
    assert public_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/v1"
    assert split_credentials(url) == ("http://127.0.0.1:8080/v1", "svc-alice", "hunter2-correct-horse")
    assert split_credentials("https://u:p%40ss@h/v1") == ("https://h/v1", "u", "p@ss")
    basic = base64.b64encode(b"svc-alice:hunter2-correct-horse").decode()
    redact = Redactor.for_server(url, api_key=None)
    shown = redact(f"ConnectError talking to {url}/chat/completions; echo: Authorization: Basic {basic}")
    assert shown == ("ConnectError talking to http://***@127.0.0.1:8080/v1/chat/completions; "
                     "echo: Authorization: Basic ***")
    assert redact("http://bob:pw@elsewhere/v1") == "http://***@elsewhere/v1"  # any URL's userinfo, not only ours


def test_nothing_to_hide_leaves_text_alone():
    assert Redactor([])("plain text, http://h/v1") == "plain text, http://h/v1"
    assert Redactor([""])("plain") == "plain"
