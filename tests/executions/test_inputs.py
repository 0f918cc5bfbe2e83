"""Run input checks: a JSON object within the size limit, valid Unicode throughout."""

from __future__ import annotations

import pytest

from flowrunner.errors import InvalidInput
from flowrunner.executions.inputs import check_run_input


@pytest.mark.parametrize(
    ("run_input", "says"),
    [
        ([1, 2], "input must be a JSON object, got list"),
        ({"x": object()}, "input is not JSON"),
        ({"x": "\ud800"}, "lone surrogate"),
        ({"x": "y" * 100}, "the limit is 64"),
    ],
)
def test_bad_input_is_refused_naming_the_field(run_input: object, says: str) -> None:
    with pytest.raises(InvalidInput, match=says) as caught:
        check_run_input(run_input, 64)
    assert caught.value.context["field"] == "input"


def test_an_object_within_the_limit_passes() -> None:
    check_run_input({"x": "\U0001f600", "n": [1, None, True]}, 64)
