"""API keys: which keys are strong enough to configure, which bearer tokens the service accepts, the
name of each key, which the audit trail records instead of the key, and what each key may do (its role).

Only SHA-256 digests of the keys are kept, and a token is compared with every digest in constant time,
so neither the keys nor how much of one a guess got right can leak from memory dumps or timings.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from training.sources import SOURCE_RULE, is_source_name  # a key's name follows a source's rule


class Permission(enum.Enum):
    """What a request does; each router of the API needs one."""
    READ = "reading results, their pictures, the model and the metrics"
    SCORE = "scoring images"
    REVIEW = "reviewing results"


# A line's camera needs to score (and read what it scored), an operator to review, a dashboard to read;
# none of them needs more. A key without a role may do everything, as before roles existed. One role per
# key is enough: scoring and reviewing together is "all".
ROLES: dict[str, frozenset[Permission]] = {
    "read": frozenset({Permission.READ}),
    "score": frozenset({Permission.SCORE, Permission.READ}),
    "review": frozenset({Permission.REVIEW, Permission.READ}),
    "all": frozenset(Permission),
}


def roles_allowing(permission: Permission) -> list[str]:
    return [role for role, permissions in ROLES.items() if permission in permissions]


@dataclass(frozen=True)
class ApiKey:
    """A key, the name it goes by in the audit trail (reviews record the name, never the key) and its role."""
    name: str
    secret: str = field(repr=False)
    role: str = "all"

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLES[self.role]


class ApiKeys:
    def __init__(self, keys: Iterable[ApiKey]):
        self._digests = tuple((hashlib.sha256(key.secret.encode()).digest(), key) for key in keys)

    @property
    def required(self) -> bool:
        """False when no key is configured: then every endpoint is open."""
        return bool(self._digests)

    def identify(self, token: str) -> ApiKey | None:
        """The key `token` is, or None when it is none of them."""
        digest = hashlib.sha256(token.encode()).digest()
        # No early exit: checking every digest keeps the time independent of which key matched.
        matched = None
        for known, key in self._digests:
            if hmac.compare_digest(digest, known):
                matched = key
        return matched

    def sign(self, key: ApiKey, message: bytes) -> bytes | None:
        """An HMAC-SHA256 of `message` keyed by `key` (by its digest, which is all the service keeps); None if
        `key` is not one of these keys."""
        for known, configured in self._digests:
            if configured == key:
                return hmac.new(known, message, hashlib.sha256).digest()
        return None

    def signer(self, message: bytes, signature: bytes) -> ApiKey | None:
        """The key whose `sign` of `message` is `signature`, or None; every key is checked, as in identify."""
        matched = None
        for known, key in self._digests:
            if hmac.compare_digest(hmac.new(known, message, hashlib.sha256).digest(), signature):
                matched = key
        return matched


MIN_API_KEY_LENGTH = 16


def unnamed_key_name(secret: str) -> str:
    """The name of a key listed without one: the start of its SHA-256, which tells keys apart without
    revealing anything of them (the service keeps the same digest in memory)."""
    return "key-" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def keys_from_list(raw: list[str], source: str) -> list[ApiKey]:
    """The keys in `raw` (blank entries skipped), each a key, or a name and a key, or a name, a key and its
    role, separated by spaces; ValueError naming `source` if one is too weak to use, badly named or given
    a role that does not exist."""
    entries = [entry.split() for entry in raw if entry.strip()]
    if not entries:
        raise ValueError(f"{source} holds no key")
    keys = []
    for words in entries:
        if len(words) > 3:
            raise ValueError(f"{source} holds an entry of {len(words)} words; write a key, a name and a key, or "
                             "a name, a key and its role, separated by spaces (keys contain no spaces)")
        role = words.pop() if len(words) == 3 else "all"
        secret = words[-1]
        if len(secret) < MIN_API_KEY_LENGTH or not secret.isprintable():
            # Never quote the key: this message is printed and logged.
            raise ValueError(f"{source} holds a key of {len(secret)} characters; each key must be at least "
                             f"{MIN_API_KEY_LENGTH} printable characters without spaces, e.g. from "
                             "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        if role not in ROLES:
            # A word as long as a key may be one, written in the wrong place: not quoted either.
            shown = repr(role) if len(role) < MIN_API_KEY_LENGTH else f"of {len(role)} characters"
            raise ValueError(f"{source} gives a key the role {shown}; write a name, the key and one of the roles "
                             f"{', '.join(ROLES)}, in that order")
        if len(words) == 2 and not is_source_name(words[0]):
            raise ValueError(f"{source} names a key {words[0]!r}; a key's name is {SOURCE_RULE}")
        keys.append(ApiKey(words[0] if len(words) == 2 else unnamed_key_name(secret), secret, role))
    return keys


def check_distinct(keys: list[ApiKey]) -> list[ApiKey]:
    """ValueError if one key is listed under two names, or with two roles: the audit trail could not tell
    which name it stands for, nor anyone what it may do."""
    first: dict[str, ApiKey] = {}
    for key in keys:
        earlier = first.setdefault(key.secret, key)
        if earlier.name != key.name:
            raise ValueError(f"one API key is listed twice, as {earlier.name!r} and as {key.name!r}; "
                             "give each key one name")
        if earlier.role != key.role:
            raise ValueError(f"the API key {key.name!r} is listed twice with different roles "
                             f"({earlier.role} and {key.role}); list it once")
    return keys


def keys_from_file(path: Path) -> list[ApiKey]:
    """One key per line, or a name and a key; lines starting with # are comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the API key file {str(path)!r}: {error}") from None
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return keys_from_list(lines, f"the file {str(path)!r}")
