"""Idempotent scoring: a retry of POST /score with the same `Idempotency-Key` gets the first answer again.

Pipelines and line controllers retry when a response is lost (a timeout, a dropped connection). Without a
key each retry is scored and stored anew, and the inspection log counts the part twice. With one, the
first request's stored result is returned again, and nothing new is stored. The key's form follows the
IETF draft "The Idempotency-Key HTTP Header Field": a string, quoted or not. The service remembers it as
long as retention keeps its result.

POST /score/batch takes a key too. Each of the batch's images is stored under an item key of its own (the
key and the image's position), so a retry of a batch whose results were stored only in part stores the
rest, and a concurrent retry is kept out image by image, as for /score.

With API keys, each key's client has keys of its own: the key is stored under the name of the API key it
came with, so two clients that happen to send the same key (an order number, a counter) never meet.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from app.errors import InvalidInput

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"  # "true" on an answer that is an earlier request's stored result
MAX_KEY_LENGTH = 255
# Joins a batch's key and an image's position into that image's item key. Keys are printable ASCII, so no
# key sent to /score can be an item key, and the item keys of one batch key form one range of the index.
ITEM_SEPARATOR = "\n"
# Joins the name of a request's API key and its Idempotency-Key: neither a key nor a name holds a tab.
SCOPE_SEPARATOR = "\t"


@dataclass(frozen=True)
class IdempotentRequest:
    key: str  # as the client sent it
    digest: str  # of what the request asked for: a reused key with another image or parameters is refused
    scope: str | None = None  # the name of the API key it came with; None when the service has no keys

    @property
    def stored_key(self) -> str:
        """The key as stored: within its client's scope, so that another client's equal key is another key."""
        return self.key if self.scope is None else f"{self.scope}{SCOPE_SEPARATOR}{self.key}"


def item_key(key: str, index: int) -> str:
    """The key under which the image at `index` of a batch sent with `key` is stored."""
    return f"{key}{ITEM_SEPARATOR}{index}"


def item_index(stored_key: str) -> int:
    """The batch position that an item key records."""
    return int(stored_key.rpartition(ITEM_SEPARATOR)[2])


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


def batch_digest(parameters: dict[str, object], parts: list[tuple[str | None, bytes]]) -> str:
    """SHA-256 of a batch request's parameters and its files (name and content, in order)."""
    digest = hashlib.sha256(json.dumps({**parameters, "filenames": [name for name, _ in parts]},
                                       sort_keys=True).encode())
    for _, content in parts:
        # Length-prefixed, so that bytes moved from one file to the next change the digest.
        digest.update(b"\0" + len(content).to_bytes(8, "big"))
        digest.update(content)
    return digest.hexdigest()
