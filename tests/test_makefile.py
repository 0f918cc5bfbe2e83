"""The quick-start commands from a fresh clone, as ``make -n`` plans them (nothing is run)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def plan(target: str, venv: Path) -> list[str]:
    """The commands ``make <target>`` would run with a venv that does not exist yet."""
    proc = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(ROOT), target, f"VENV={venv}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout.splitlines()


def test_demo_installs_only_what_running_needs(tmp_path: Path) -> None:
    commands = plan("demo", tmp_path / ".venv")
    installs = [c for c in commands if "pip install" in c and "--upgrade pip" not in c]
    assert installs == [f"{tmp_path}/.venv/bin/python -m pip install -q -e ."]
    assert commands[-1].endswith('flowrunner run examples/hello.yaml --input \'{"name": "Ada"}\'')


@pytest.mark.parametrize("target", ["test", "lint", "bench"])
def test_dev_targets_install_the_dev_tools(tmp_path: Path, target: str) -> None:
    commands = plan(target, tmp_path / ".venv")
    assert any("pip install -q -e '.[dev]'" in c for c in commands)
