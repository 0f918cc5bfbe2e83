from __future__ import annotations

import subprocess
import sys

import pytest

import flowrunner


@pytest.mark.parametrize("name", flowrunner.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(flowrunner, name) is not None


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        _ = flowrunner.NoSuchThing


def test_importing_the_error_tree_does_not_load_the_definition_stack() -> None:
    # Sandbox workers import flowrunner.errors; they must start light.
    code = (
        "import sys, flowrunner.errors; "
        "print(any(m.startswith(('flowrunner.definition', 'jsonschema', 'sqlalchemy')) "
        "for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
