"""JSON request bodies, read by hand: size-capped, and every way they can be wrong a specific 4xx."""

from __future__ import annotations

import json

from app.errors import BadRequest, InvalidInput, PayloadTooLarge, quoted


def json_object(body: bytes, max_bytes: int, *, what: str) -> dict:
    """The body as a JSON object. `what` says what the body should hold, for the error messages."""
    if len(body) > max_bytes:  # parsing megabytes of JSON would stall the event loop
        raise PayloadTooLarge(f"the JSON body is {len(body)} bytes; {what} needs far less than the limit of "
                              f"{max_bytes}")
    try:
        document = json.loads(body, object_pairs_hook=_refuse_repeated_names)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"the JSON body does not parse: {error}") from error
    except RecursionError as error:  # json recurses once per nesting level: '[' * 100_000 fits in the size limit
        raise BadRequest(f"the JSON body is nested too deeply; it should hold {what}") from error
    if not isinstance(document, dict):
        raise InvalidInput(f"the JSON body must be an object: {what}")
    return document


def _refuse_repeated_names(pairs: list[tuple[str, object]]) -> dict:
    # json.loads would keep the last value, so {"verdict": "normal", "verdict": "anomalous"} would be stored
    # as whichever came last; RFC 8259 leaves such a document's meaning to the parser.
    seen = set()
    for name, _ in pairs:
        if name in seen:
            raise InvalidInput(f"the JSON body gives {quoted([name])} more than once; give each field once")
        seen.add(name)
    return dict(pairs)
