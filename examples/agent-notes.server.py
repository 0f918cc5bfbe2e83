"""The scripted model server for agent-notes.yaml: the same one as llm-tools.server.py."""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).with_name("llm-tools.server.py")), run_name="__main__")
