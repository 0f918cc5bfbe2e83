"""A real terminal for the tests: a tmux session of its own (private server socket), typed
into with send-keys and read with capture-pane."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import HANG_GUARD


class Terminal:
    def __init__(self, env: Mapping[str, str], cwd: Path, width: int = 120) -> None:
        self._socket = f"flowrunner-test-{uuid.uuid4().hex[:12]}"
        self._env = {**os.environ, **env, "PS1": "$ ", "TERM": "xterm-256color"}
        self._tmux(
            "new-session", "-d", "-s", "t", "-x", str(width), "-y", "50", "-c", str(cwd),
            "bash --norc --noprofile",
        )  # fmt: skip

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self._socket, *args],
            capture_output=True,
            text=True,
            env=self._env,
            timeout=HANG_GUARD,
            check=True,
        )
        return done.stdout

    def type(self, text: str, *, enter: bool = True) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)
        if enter:
            self._tmux("send-keys", "-t", "t", "Enter")

    def run(self, *argv: str) -> None:
        self.type(shlex.join(argv))

    def key(self, name: str) -> None:
        self._tmux("send-keys", "-t", "t", name)

    def screen(self, *, escapes: bool = False) -> str:
        """The pane's text; with ``escapes``, its colours as SGR sequences too."""
        return self._tmux(
            "capture-pane", "-p", *(["-e"] if escapes else []), "-t", "t", "-S", "-200"
        )

    def wait_for(self, text: str, *, escapes: bool = False) -> str:
        """The screen once it shows ``text`` (polled; a hang guard, not a time bound)."""
        deadline = time.monotonic() + HANG_GUARD
        while True:
            screen = self.screen(escapes=escapes)
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"the terminal never showed {text!r}:\n{screen}")
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", self._socket, "kill-server"], capture_output=True, check=False
        )
