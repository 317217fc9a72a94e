"""Keeps credentials out of audit records and log lines.

Strategies sometimes attach whole config blobs to an intent's `metadata`/extras; anything under a key that
names a secret is replaced before the intent is written anywhere but the promoted signal.
"""

import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

REDACTED = "[REDACTED]"
_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|apikey|private[_-]?key|credential|^auth$|authorization|"
    r"signature|session[_-]?id|cookie|seed|mnemonic|bearer)",
    re.IGNORECASE,
)
_SECRET_KEY_LOWER = re.compile(_SECRET_KEY.pattern)  # for lower-cased ASCII keys
# `"api_key": "abc"` / `api_key=abc` inside text we could not parse as JSON. Written to run in linear time: a key
# is a whole run of `[\w.-]`, tried only where a run starts, that holds a secret word (a look ahead bounded by the
# run), then taken possessively. The earlier pattern (`[\w.-]*?word[\w.-]*` from every position) backtracked in
# cubic time: 1 KB of "tokentoken…" in an intent's free text held the gate for seconds.
_SECRET_IN_TEXT = re.compile(
    r"""(?P<key>(?:["'](?=[\w.-]))?(?<![\w.-])"""
    r"""(?=[\w.-]*?(?:pass|secret|token|api[_-]?key|apikey|private[_-]?key|credential|authorization|signature|"""
    r"""seed|mnemonic))[\w.-]++["']?\s*+[:=]\s*+)(?P<value>"[^"]*+"|'[^']*+'|[^\s,}&]++)""",
    re.IGNORECASE,
)
# Where a match of `_SECRET_IN_TEXT` can start: before a `:` or `=`, a run of `[\w.-]` that holds a secret word.
# Searched in the reversed text, from each `:` or `=` back over its own run only, so the text is read once; the
# pattern above, tried at every run, costs 75-500 ns a character, so it is only tried where one of these says a
# match can start (searched forwards, every secret word would look ahead to the end of its run: quadratic).
# The match ends where the run (reversed) ends: at the run's start in the text.
_CANDIDATE_REVERSED = re.compile(
    r"""[:=]\s*+["']?(?=[\w.-]*?(?:ssap|terces|nekot|yek[_-]?ipa|yekipa|yek[_-]?etavirp|laitnederc|"""
    r"""noitazirohtua|erutangis|dees|cinomenm))[\w.-]*+"""
)
_CANDIDATE_REVERSED_ANY_CASE = re.compile(_CANDIDATE_REVERSED.pattern, re.IGNORECASE)
# What follows a candidate's `:` or `=` in a match: the value (group 1), as `_SECRET_IN_TEXT` takes it.
_VALUE_AFTER_SEP = re.compile(r"""\s*+("[^"]*+"|'[^']*+'|[^\s,}&]++)""")
_MASKED = '"' + REDACTED + '"'
_BEARER = re.compile(r"(?i)bearer\s+[a-z0-9._~+/=-]+")
# A scheme is the run of `[a-z0-9+.-]` before `://` that holds a letter (matched once per run, possessively).
_URL_USERINFO = re.compile(
    r"(?<![a-z0-9+.-])(?P<scheme>[0-9+.-]*+[a-z][a-z0-9+.-]*+://)(?P<user>[^:/@\s]*+):(?P<secret>[^@/\s]++)@",
    re.IGNORECASE,
)
# The same for ASCII text, with both cases spelled out: case-insensitive matching costs twice as much in `re`.
_URL_USERINFO_ASCII = re.compile(
    r"(?<![a-zA-Z0-9+.-])(?P<scheme>[0-9+.-]*+[a-zA-Z][a-zA-Z0-9+.-]*+://)(?P<user>[^:/@\s]*+):(?P<secret>[^@/\s]++)@"
)
# A cheap first look at lower-cased ASCII text: text without any of these words cannot match the patterns above.
# (Other text skips it: searched case-insensitively, to fold letters such as `ſ` and `K` that `lower()` keeps, it
# costs more than the scans it would spare.)
_HINT_LOWER = re.compile(r"pass|secret|token|key|credential|authorization|signature|seed|mnemonic|bearer")


# On raw bytes: a payload with none of these (case-insensitive) cannot hold anything `redact` would change.
# `\u` is there because a JSON escape could spell a secret key without matching the words.
_RAW_HINTS = (
    b"pass",
    b"secret",
    b"token",
    b"key",
    b"credential",
    b"auth",
    b"signature",
    b"session",
    b"cookie",
    b"seed",
    b"mnemonic",
    b"bearer",
    b"@",
    b"\\u",
)


# The same literals, factored by their first letters: `re` tries fewer alternatives per byte (a sixth faster on
# every intent; tests/property/test_redaction_properties.py checks it finds exactly what `_RAW_HINTS` names).
_RAW_HINT = re.compile(
    rb"pass|s(?:ecret|ignature|ession|eed)|token|key|c(?:redential|ookie)|auth|mnemonic|bearer|@|\\u"
)


def may_hold_secrets(raw: bytes) -> bool:
    """False only when redacting what was parsed from `raw` would change nothing (a cheap scan before `redact`)."""
    return _RAW_HINT.search(raw.lower()) is not None


_CACHED_KEY_LENGTH = 128  # the cache holds 4096 keys: of at most this length, not of 16 KB each (64 MB)


def is_secret_key(key: str) -> bool:
    return _is_secret_short_key(key) if len(key) <= _CACHED_KEY_LENGTH else _is_secret_key(key)


def _is_secret_key(key: str) -> bool:
    if key.isascii():  # a strategy chooses its keys, up to 16 KB each: case-sensitive on a copy is 5x cheaper
        return _SECRET_KEY_LOWER.search(key.lower()) is not None
    return _SECRET_KEY.search(key) is not None


_is_secret_short_key = lru_cache(maxsize=4096)(_is_secret_key)


def redact(value: Any) -> Any:
    """A copy of `value` with every value under a secret-looking key replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and is_secret_key(k) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value) if len(value) > 8 else value  # too short to hold "key=secret"
    return value


def redact_text(text: str) -> str:
    ascii = text.isascii()
    if "@" in text and "://" in text:
        url = _URL_USERINFO_ASCII if ascii else _URL_USERINFO
        text = url.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{REDACTED}@", text)
    if not ascii:
        # No first look for a hint here: case-insensitive, it costs ~90 ns a character on such text, more than
        # the two scans it would spare (each a few ns: neither can match where no hint is).
        text = _BEARER.sub("Bearer " + REDACTED, text)
        return _mask_secrets(text, text, _CANDIDATE_REVERSED_ANY_CASE)
    lower = text.lower()  # ASCII: the same length, so a match's span in `lower` is its span in `text`
    if _HINT_LOWER.search(lower) is None:
        return text
    if "bearer" in lower:
        text = _BEARER.sub("Bearer " + REDACTED, text)
        lower = text.lower()
    return _mask_secrets(text, lower, _CANDIDATE_REVERSED)


def _mask_secrets(text: str, scan: str, candidates: re.Pattern[str]) -> str:
    """`_SECRET_IN_TEXT.sub` (value masked, key kept) on `text`, found in `scan` (`text` or its lower-cased copy)
    from the candidates alone: a match starts at a candidate's run (or the quote before it) and ends with the value
    after the candidate's separator, so only the value is left to match. Left to right, a candidate inside what
    the previous match's value took is skipped, as `sub` would: exactly the matches `sub` finds, at one small
    match per candidate instead of the pattern's look ahead at every run (tests/property holds them equal)."""
    spans = list(map(re.Match.span, candidates.finditer(scan[::-1])))  # (separator, run start), reversed
    parts: list[str] = []
    add = parts.append
    value_at = _VALUE_AFTER_SEP.match
    after = len(scan)  # reversed position `p` is `after - p` in `scan`, one past the character
    last = 0
    for separator, run_end in reversed(spans):
        if after - run_end < last:
            continue
        value = value_at(scan, after - separator)
        if value is not None:
            add(text[last : value.start(1)])
            add(_MASKED)
            last = value.end()
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


# -- secrets known by value -----------------------------------------------------------------------------------------
# Patterns catch secrets by the key they sit under; a secret pasted into free text ("my key is sk-…") has no key.
# So whatever the environment holds as a secret (values of variables with secret-looking names, passwords inside
# connection URLs) is also replaced wherever it appears, in text leaving a process that holds it.
_MIN_SECRET_LENGTH = 6  # shorter values ("1", "true") would scrub ordinary words


def secret_values(environ: Mapping[str, str]) -> frozenset[str]:
    found: set[str] = set()
    for name, value in environ.items():
        if not value:
            continue
        for match in _URL_USERINFO.finditer(value):
            found.update((match.group("secret"), unquote(match.group("secret"))))
        if is_secret_key(name):
            found.add(value)
    return frozenset(v for v in found if len(v) >= _MIN_SECRET_LENGTH)


class SecretScrubber:
    """Pattern redaction plus every known secret value, for text and for JSON-like values."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        ordered = sorted(set(values), key=len, reverse=True)  # a secret containing another goes first
        self._known = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "SecretScrubber":
        return cls(secret_values(os.environ if environ is None else environ))

    def text(self, text: str) -> str:
        text = redact_text(text)
        return self._known.sub(REDACTED, text) if self._known is not None else text

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                (self.text(k) if isinstance(k, str) else k): (
                    REDACTED if isinstance(k, str) and is_secret_key(k) else self.value(v)
                )
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value


@lru_cache(maxsize=1)
def process_scrubber() -> SecretScrubber:
    """The scrubber for this process's own environment (read once: deployments inject secrets at start)."""
    return SecretScrubber.from_environ()
