"""API keys: which bearer tokens the service accepts.

Only SHA-256 digests of the keys are kept, and a token is compared with every digest in constant time,
so neither the keys nor how much of one a guess got right can leak from memory dumps or timings.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


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
