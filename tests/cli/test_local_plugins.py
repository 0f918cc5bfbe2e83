"""``flowrunner validate``, ``run`` and ``schema`` know the plugins the server would load
(FLOWRUNNER_PLUGINS_DIR), as a user types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HANG_GUARD

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"

FLOW = """metadata: {name: Greet}
nodes:
  hi:
    type: local.greet
    params: {name: "${input.name}", greeting: 42}
"""


@pytest.fixture
def plugins_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "greeting.py").write_text((EXAMPLES / "folder" / "greeting.py").read_text())
    return folder


def flowrunner(plugins_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLOWRUNNER_PLUGINS_DIR": str(plugins_dir)}
    return subprocess.run(
        [sys.executable, "-m", "flowrunner", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=HANG_GUARD,
        check=False,
    )


def test_validate_checks_a_plugin_types_params_with_line_and_column(
    plugins_dir: Path, tmp_path: Path
) -> None:
    flow = tmp_path / "greet.yaml"
    flow.write_text(FLOW)
    done = flowrunner(plugins_dir, "validate", str(flow))
    assert done.returncode == 1, done.stderr
    assert "greet.yaml:5:47 error nodes.hi.params.greeting" in done.stderr

    flow.write_text(FLOW.replace("greeting: 42", "greeting: Hi"))
    assert flowrunner(plugins_dir, "validate", str(flow)).returncode == 0
    ran = flowrunner(plugins_dir, "run", str(flow), "--input", '{"name": "Ada"}', "-o", "json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["output"] == "Hi, Ada!"


def test_schema_holds_plugin_types(plugins_dir: Path) -> None:
    done = flowrunner(plugins_dir, "schema")
    assert done.returncode == 0, done.stderr
    assert "local.greet" in done.stdout


def test_a_broken_plugin_is_a_warning_not_a_failure(plugins_dir: Path) -> None:
    (plugins_dir / "broken.py").write_text("import no_such_module_here\n")
    done = flowrunner(plugins_dir, "schema")
    assert done.returncode == 0
    assert "warning: plugin broken:" in done.stderr
    assert "ModuleNotFoundError" in done.stderr
