"""Reading If-Match and If-None-Match as RFC 9110 writes them: lists of quoted entity tags, or *."""

import pytest

from app.api.preconditions import entity_tags, matches
from app.errors import BadRequest


def test_no_header_is_no_condition_and_star_is_any():
    assert entity_tags([], "If-Match") is None
    assert matches(entity_tags(["*"], "If-Match"), "anything")


def test_a_list_may_span_lines_hold_empty_elements_and_tags_with_commas():
    tags = entity_tags(['"a", ,"b,c"', ' "d" '], "If-Match")
    assert tags == {"a", "b,c", "d"}
    assert entity_tags(['"caf\xe9"'], "If-Match") == {"caf\xe9"}  # obs-text, as Starlette decodes


def test_a_weak_tag_counts_as_its_strong_self():
    assert entity_tags(['W/"a", "b"'], "If-Match") == {"a", "b"}  # as a compressing proxy passes them on


@pytest.mark.parametrize("value, detail", [
    ("a", "'a' is not one"), ('"a" "b"', "is not one"), ('"a', "is not one"), ('w/"a"', "is not one"),
    ('"a"b', "is not one"), ("*, \"a\"", "or is * alone"), (",", "If-Match is empty"), ("", "If-Match is empty"),
])
def test_anything_else_is_refused_saying_how_to_write_it(value, detail):
    with pytest.raises(BadRequest, match=detail.replace("*", r"\*")):
        entity_tags([value], "If-Match")
