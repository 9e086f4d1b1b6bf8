"""API keys: which keys are strong enough to configure, and which bearer tokens the service accepts.

Only SHA-256 digests of the keys are kept, and a token is compared with every digest in constant time,
so neither the keys nor how much of one a guess got right can leak from memory dumps or timings.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from pathlib import Path


class ApiKeys:
    def __init__(self, keys: Iterable[str]):
        self._digests = tuple(hashlib.sha256(key.encode()).digest() for key in keys)

    @property
    def required(self) -> bool:
        """False when no key is configured: then every endpoint is open."""
        return bool(self._digests)

    def accepts(self, token: str) -> bool:
        digest = hashlib.sha256(token.encode()).digest()
        # No early exit: checking every digest keeps the time independent of which key matched.
        matched = False
        for known in self._digests:
            matched |= hmac.compare_digest(digest, known)
        return matched


MIN_API_KEY_LENGTH = 16


def keys_from_list(raw: list[str], source: str) -> list[str]:
    """The keys in `raw` (blank entries skipped); ValueError naming `source` if one is too weak to use."""
    keys = [key.strip() for key in raw if key.strip()]
    if not keys:
        raise ValueError(f"{source} holds no key")
    for key in keys:
        if len(key) < MIN_API_KEY_LENGTH or any(c.isspace() or not c.isprintable() for c in key):
            # Never quote the key: this message is printed and logged.
            raise ValueError(f"{source} holds a key of {len(key)} characters; each key must be at least "
                             f"{MIN_API_KEY_LENGTH} printable characters without spaces, e.g. from "
                             "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    return keys


def keys_from_file(path: Path) -> list[str]:
    """One key per line; lines starting with # are comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the API key file {str(path)!r}: {error}") from None
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return keys_from_list(lines, f"the file {str(path)!r}")
