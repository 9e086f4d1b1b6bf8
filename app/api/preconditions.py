"""Conditional requests (RFC 9110, section 13) on a stored result: its ETag on reads, If-Match on review writes,
so that two people reviewing the same flag cannot overwrite each other unseen, and If-None-Match on reads, so
that a client polling a result hears "not modified" until someone reviews it."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Request

from app.errors import BadRequest, quoted

# One element of a list of entity tags: an optional weak prefix and a quoted string of visible characters other
# than '"' (commas and bytes over 127 included), or nothing, as a list may have empty elements; then a comma or
# the end.
_LIST_ELEMENT = re.compile(r'[ \t]*(?:(W/)?"([\x21\x23-\x7e\x80-\xff]*)")?[ \t]*(?:,|\Z)')
ANY = "*"


def entity_tags(lines: list[str], header: str) -> frozenset[str] | None:
    """The tags a header lists, unquoted ("*" for any), its lines joined as one list; None without the header.
    BadRequest, saying how to write it, for anything else.

    A weak tag (W/"...") counts as its strong self, in If-Match too, where RFC 9110 compares strongly: a
    result's tag stands for its review, not for the bytes of an answer, and a proxy that compresses answers
    marks the tags it passes on as weak (nginx's gzip does), so that strictly no review through it could
    ever be conditional."""
    if not lines:
        return None
    value = ", ".join(lines).strip()
    if value == ANY:
        return frozenset({ANY})
    tags, listed, position = set(), False, 0
    while position < len(value):
        match = _LIST_ELEMENT.match(value, position)
        if match is None:
            element = value[position:].split(",")[0].strip()
            raise BadRequest(f"{header} lists entity tags in double quotes, as the ETag header gives them "
                             f'(such as {header}: "5e1f0c3a9b27d4e86f10"), or is * alone; {quoted([element])} '
                             "is not one")
        if match[2] is not None:
            listed = True
            tags.add(match[2])
        position = match.end()
    if not listed:
        raise BadRequest(f"{header} is empty; send the ETag of GET /results/{{id}} in it, or leave the header out")
    return frozenset(tags)


def quoted_tag(tag: str) -> str:
    """An ETag header's value."""
    return f'"{tag}"'


def matches(tags: frozenset[str], tag: str) -> bool:
    return ANY in tags or tag in tags


async def _if_match(request: Request, if_match: Annotated[str | None, Header(
        alias="If-Match", description='the result\'s ETag from GET /results/{id} (in its quotes), or *: the '
                                      "review is written only if the result's review is still the one that ETag "
                                      "stands for, else 412 and nothing changes. Without it, the write is "
                                      "unconditional", examples=['"5e1f0c3a9b27d4e86f10"'])] = None,
                    ) -> frozenset[str] | None:
    # The parameter documents the header; the lines are read from the request, as a header may come twice.
    tags = entity_tags(request.headers.getlist("if-match"), "If-Match")
    # * holds for any result that exists, which a review needs anyway: no condition at all.
    return None if tags is not None and ANY in tags else tags


async def _if_none_match(request: Request, if_none_match: Annotated[str | None, Header(
        alias="If-None-Match", description="an ETag this client holds: 304 Not Modified, with no body, while the "
                                           "result still has it", examples=['"5e1f0c3a9b27d4e86f10"'])] = None,
                         ) -> frozenset[str] | None:
    return entity_tags(request.headers.getlist("if-none-match"), "If-None-Match")


IfMatchDep = Annotated[frozenset[str] | None, Depends(_if_match)]
IfNoneMatchDep = Annotated[frozenset[str] | None, Depends(_if_none_match)]
