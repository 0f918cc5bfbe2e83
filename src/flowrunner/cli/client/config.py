"""The client's profiles file: which servers the CLI talks to, and with which token.

``~/.config/flowrunner/config.toml`` (``$XDG_CONFIG_HOME`` honoured; ``--config`` or
``FLOWRUNNER_CLI_CONFIG`` name another file)::

    current = "default"

    [profiles.default]
    url = "http://127.0.0.1:8080"
    username = "admin"
    token = "frt_..."            # an API token created for this machine by `flowrunner login`
    token_id = "..."             # so `logout` can revoke it
    output = "table"             # optional default for --output

The file holds a credential: it is written with mode 0600 (through a temporary file renamed
over it, so a crash never leaves half a file), and never holds a password.
``FLOWRUNNER_CONFIG`` is not used here: it already names the server's settings file.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from flowrunner.cli.client.errors import UsageProblem

CONFIG_ENV = "FLOWRUNNER_CLI_CONFIG"
DEFAULT_PROFILE = "default"
FILE_MODE = 0o600


def default_path(environ: Mapping[str, str] = os.environ) -> Path:
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser()
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "flowrunner" / "config.toml"


@dataclass
class Profile:
    url: str | None = None
    username: str | None = None
    token: str | None = None
    token_id: str | None = None
    output: str | None = None


@dataclass
class ConfigFile:
    path: Path
    current: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ConfigFile:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise UsageProblem(f"cannot read {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise UsageProblem(f"{path} is not valid TOML: {exc}") from exc
        known = {f.name for f in fields(Profile)}
        profiles: dict[str, Profile] = {}
        for name, table in (data.get("profiles") or {}).items():
            if not isinstance(table, dict):
                raise UsageProblem(f"{path}: profiles.{name} must be a table")
            values = {k: str(v) for k, v in table.items() if k in known}
            profiles[str(name)] = Profile(**values)
        current = data.get("current")
        return cls(path, str(current) if current is not None else None, profiles)

    def profile(self, name: str | None) -> tuple[str, Profile | None]:
        """The profile called ``name`` (else the current one) and its name."""
        chosen = name or self.current or DEFAULT_PROFILE
        return chosen, self.profiles.get(chosen)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        # Created 0600 from the first byte: the token is never readable by others.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as fh:
                fh.write(self.dumps())
            os.chmod(temporary, FILE_MODE)  # O_CREAT's mode does not apply to an old file
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def dumps(self) -> str:
        lines = ["# flowrunner CLI profiles (written by `flowrunner login`; holds tokens)"]
        if self.current is not None:
            lines.append(f"current = {_string(self.current)}")
        for name in sorted(self.profiles):
            lines += ["", f"[profiles.{_string(name)}]"]
            for item in fields(Profile):
                value = getattr(self.profiles[name], item.name)
                if value is not None:
                    lines.append(f"{item.name} = {_string(value)}")
        return "\n".join(lines) + "\n"


def _string(text: str) -> str:
    """A TOML basic string: JSON's string escapes are all valid TOML escapes."""
    return json.dumps(text, ensure_ascii=False)
