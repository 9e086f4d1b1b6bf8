"""API keys: which keys are strong enough to configure, which bearer tokens the service accepts, and the
name of each key, which the audit trail records instead of the key.

Only SHA-256 digests of the keys are kept, and a token is compared with every digest in constant time,
so neither the keys nor how much of one a guess got right can leak from memory dumps or timings.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from training.sources import SOURCE_RULE, is_source_name  # a key's name follows a source's rule


@dataclass(frozen=True)
class ApiKey:
    """A key and the name it goes by in the audit trail (reviews record the name, never the key)."""
    name: str
    secret: str = field(repr=False)


class ApiKeys:
    def __init__(self, keys: Iterable[ApiKey]):
        self._digests = tuple((hashlib.sha256(key.secret.encode()).digest(), key.name) for key in keys)

    @property
    def required(self) -> bool:
        """False when no key is configured: then every endpoint is open."""
        return bool(self._digests)

    def name_for(self, token: str) -> str | None:
        """The name of the key `token` is, or None when it is none of them."""
        digest = hashlib.sha256(token.encode()).digest()
        # No early exit: checking every digest keeps the time independent of which key matched.
        matched = None
        for known, name in self._digests:
            if hmac.compare_digest(digest, known):
                matched = name
        return matched


MIN_API_KEY_LENGTH = 16


def unnamed_key_name(secret: str) -> str:
    """The name of a key listed without one: the start of its SHA-256, which tells keys apart without
    revealing anything of them (the service keeps the same digest in memory)."""
    return "key-" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def keys_from_list(raw: list[str], source: str) -> list[ApiKey]:
    """The keys in `raw` (blank entries skipped), each a key or a name and a key separated by a space;
    ValueError naming `source` if one is too weak to use, or badly named."""
    entries = [entry.split() for entry in raw if entry.strip()]
    if not entries:
        raise ValueError(f"{source} holds no key")
    keys = []
    for words in entries:
        if len(words) > 2:
            raise ValueError(f"{source} holds an entry of {len(words)} words; write a key, or a name and a key "
                             "separated by a space (keys contain no spaces)")
        secret = words[-1]
        if len(secret) < MIN_API_KEY_LENGTH or not secret.isprintable():
            # Never quote the key: this message is printed and logged.
            raise ValueError(f"{source} holds a key of {len(secret)} characters; each key must be at least "
                             f"{MIN_API_KEY_LENGTH} printable characters without spaces, e.g. from "
                             "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        if len(words) == 2 and not is_source_name(words[0]):
            raise ValueError(f"{source} names a key {words[0]!r}; a key's name is {SOURCE_RULE}")
        keys.append(ApiKey(words[0] if len(words) == 2 else unnamed_key_name(secret), secret))
    return keys


def check_distinct(keys: list[ApiKey]) -> list[ApiKey]:
    """ValueError if one key is listed under two names: the audit trail could not tell which it stands for."""
    names: dict[str, str] = {}
    for key in keys:
        if names.setdefault(key.secret, key.name) != key.name:
            raise ValueError(f"one API key is listed twice, as {names[key.secret]!r} and as {key.name!r}; "
                             "give each key one name")
    return keys


def keys_from_file(path: Path) -> list[ApiKey]:
    """One key per line, or a name and a key; lines starting with # are comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the API key file {str(path)!r}: {error}") from None
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return keys_from_list(lines, f"the file {str(path)!r}")
