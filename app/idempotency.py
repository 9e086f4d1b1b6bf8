"""Idempotent scoring: a retry of POST /score with the same `Idempotency-Key` gets the first answer again.

Pipelines and line controllers retry when a response is lost (a timeout, a dropped connection). Without a
key each retry is scored and stored anew, and the inspection log counts the part twice. With one, the
first request's stored result is returned again, and nothing new is stored. The key's form follows the
IETF draft "The Idempotency-Key HTTP Header Field": a string, quoted or not. The service remembers it as
long as retention keeps its result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from app.errors import InvalidInput

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"  # "true" on an answer that is an earlier request's stored result
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class IdempotentRequest:
    key: str
    digest: str  # of what the request asked for: a reused key with another image or parameters is refused


def parse_key(value: str) -> str:
    """The key in an Idempotency-Key header: 1-255 printable ASCII characters, optionally in double quotes
    (a structured-field string, as the draft writes it)."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    rule = f"header {HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters, new for each request"
    if not 1 <= len(value) <= MAX_KEY_LENGTH:
        raise InvalidInput(f"{rule} (a UUID, say); it has {len(value)}")
    if not all(" " <= c <= "~" for c in value):
        raise InvalidInput(f"{rule}; it has others (a control character or a non-ASCII letter)")
    return value


def request_digest(parameters: dict[str, object], content: bytes) -> str:
    """SHA-256 of a request's parameters and image content: the same for a retry, whatever its multipart
    boundary or header order."""
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode())
    digest.update(b"\0")
    digest.update(content)
    return digest.hexdigest()
