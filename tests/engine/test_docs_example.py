"""The runnable example in docs/engine.md keeps running."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "engine.md"


def test_the_engine_doc_example_runs_and_prints_what_it_promises() -> None:
    example = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[-1]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, str(DOC), "exec"), {"__name__": "__doc_example__"})
    first, second = out.getvalue().splitlines()
    assert first == "long: THE QUICK BROWN FOX {'words': 4}"
    assert second == (
        "[('finished', 'split'), ('finished', 'shout'), ('log', 'judge'), "
        "('finished', 'judge'), ('finished', 'long')]"
    )
