"""An exported dotenv file reads back as the same secrets (the reader of ``run``/``import``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowrunner.cli.client.dotenv import to_dotenv
from flowrunner.cli.client.errors import UsageProblem
from flowrunner.cli.run_secrets import from_file


def test_tricky_values_survive_the_round_trip(tmp_path: Path) -> None:
    values = {
        "QUOTES": "he said \"hi\" and 'bye'",
        "BACKSLASH": "C:\\path\\n-not-a-newline",
        "LINES": "one\ntwo\tthree",
        "HASH": "a #not-a-comment",
        "SPACES": "  padded  ",
        "EMPTY": "",
        "UNICODE": "płatność ✓",
    }
    path = tmp_path / "out.env"
    path.write_text(to_dotenv(values), encoding="utf-8")
    assert from_file(path) == values


@pytest.mark.parametrize(
    ("values", "named"),
    [({"SMTP": {"host": "h"}}, "SMTP"), ({"CR": "a\rb"}, "CR")],
    ids=["object", "carriage-return"],
)
def test_values_dotenv_cannot_hold_are_refused_by_name(
    values: dict[str, object], named: str
) -> None:
    with pytest.raises(UsageProblem, match=named):
        to_dotenv(values)
