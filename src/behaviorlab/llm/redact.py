"""Keeping secrets out of every text that leaves an LLM backend: messages, log records, reprs, stored answers.

A `Redactor` knows a backend's secrets (the API key, the credential in the server URL, and the Basic
credential httpx builds from it) and masks them in any text, together with the userinfo of any URL in
it. It masks pieces as well as whole secrets, because texts get cut: a server may echo a key truncated,
and code downstream cuts messages to a length. What keeps cutting safe is the order: redact, then cut.
`excerpt` does both in that order, and redacts once more in case its cut left a short piece of a secret
at the new end; whatever cuts a redacted text later can only shorten a mask, never uncover a secret.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
# Any run of this many characters of a secret is masked wherever it appears: shorter runs of a random
# key turn up in ordinary text by chance, and are too short to guess the rest from.
MIN_PIECE = 8
# At the very start or end of a text, where a cut may have split a secret, shorter pieces go too. It is
# also the shortest secret searched for at all: masking every "ab" would garble every message, and a
# credential that short protects nothing (URLs still never show it).
MIN_EDGE_PIECE = 4
# scheme://userinfo@ ; greedy up to the authority's last "@", as a password may hold an unescaped "@"
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s?#]*@")


def public_url(url: str) -> str:
    """The URL as it may be shown: its userinfo (user name and password) replaced by the mask."""
    return _USERINFO.sub(lambda match: f"{match['scheme']}{MASK}@", url)


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without userinfo, user name, password); the last two percent-decoded, None when absent."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    host = parts.netloc.rpartition("@")[2]
    password = unquote(parts.password) if parts.password is not None else None
    return urlunsplit(parts._replace(netloc=host)), unquote(parts.username or ""), password


class Redactor:
    """Masks the given secrets, any long-enough piece of them, and URL userinfo, in any text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(dict.fromkeys(s for s in secrets if len(s) >= MIN_EDGE_PIECE))
        self._pieces = {s[i:i + MIN_PIECE] for s in self._secrets for i in range(len(s) - MIN_PIECE + 1)}

    @classmethod
    def for_server(cls, url: str, api_key: str | None) -> Redactor:
        """The secrets of one server: the API key and the URL's credential, also as the Basic header it becomes."""
        _, user, password = split_credentials(url)
        secrets = [api_key or ""]
        if user is not None:
            # The password is the secret; with none, the user name is (a token passed as the user name).
            secrets.append(password if password else user)
            secrets.append(urlsplit(url).password or "")  # as written in the URL, percent-encoded
            secrets.append(base64.b64encode(f"{user}:{password or ''}".encode()).decode())
        return cls(secrets)

    def __call__(self, text: str) -> str:
        text = public_url(text)
        if not self._secrets:
            return text
        spans = sorted(self._whole(text) + self._inner_pieces(text) + self._edge_pieces(text))
        return _masked(text, spans)

    def excerpt(self, text: str, limit: int) -> str:
        """At most `limit` characters of `text` (then "..."), masked before the cut and again after it."""
        masked = self(text)
        return masked if len(masked) <= limit else self(masked[:limit]) + "..."

    def _whole(self, text: str) -> list[tuple[int, int]]:
        spans = []
        for secret in self._secrets:
            start = text.find(secret)
            while start != -1:
                spans.append((start, start + len(secret)))
                start = text.find(secret, start + 1)
        return spans

    def _inner_pieces(self, text: str) -> list[tuple[int, int]]:
        return [(i, i + MIN_PIECE) for i in range(len(text) - MIN_PIECE + 1) if text[i:i + MIN_PIECE] in self._pieces]

    def _edge_pieces(self, text: str) -> list[tuple[int, int]]:
        """A text that ends with the start of a secret, or starts with its end: it was cut there."""
        spans = []
        for secret in self._secrets:
            for size in range(len(secret) - 1, MIN_EDGE_PIECE - 1, -1):
                if text.endswith(secret[:size]):
                    spans.append((len(text) - size, len(text)))
                    break
            for size in range(len(secret) - 1, MIN_EDGE_PIECE - 1, -1):
                if text.startswith(secret[-size:]):
                    spans.append((0, size))
                    break
        return spans


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with each run of overlapping or touching spans (sorted by start) replaced by one mask."""
    parts, position = [], 0
    for start, end in spans:
        if start > position or not parts:
            parts += [text[position:start], MASK]
        position = max(position, end)
    parts.append(text[position:])
    return "".join(parts)
