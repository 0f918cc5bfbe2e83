"""The entry point as a user types it: ``python -m flowrunner ...`` in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello.yaml"


def flowrunner(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowrunner", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "No such command 'nope'"),
        (["run"], "Missing argument 'file'"),
        (["run", str(HELLO), "--bogus"], "No such option: --bogus"),
        (["run", str(HELLO), "--output", "xml"], "'xml' is not one of"),
        (["run", str(HELLO), "--input", "{x"], "not valid JSON"),
    ],
    ids=["unknown-command", "missing-argument", "unknown-option", "bad-choice", "bad-input"],
)
def test_usage_error_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = flowrunner(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert proc.stdout == ""


def test_usage_error_names_the_help_of_the_command_it_belongs_to() -> None:
    proc = flowrunner("run", str(HELLO), "--bogus")
    assert "run --help" in proc.stderr


def test_no_command_prints_the_help_without_a_traceback() -> None:
    proc = flowrunner()
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "validate" in proc.stdout


def test_version_and_help_still_exit_0() -> None:
    version = flowrunner("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("flowrunner ")
    assert flowrunner("run", "--help").returncode == 0
