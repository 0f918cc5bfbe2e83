"""Secrets for a local ``flowrunner run``: environment, a secrets file and ``--secret`` flags.

Later sources win: ``FLOWRUNNER_SECRET_<KEY>`` variables, then ``--secrets-file`` (dotenv or
a JSON object), then each ``--secret KEY=VALUE``. Names follow the vault's rule (usable as
``${secrets.NAME}``). An error names the source and line, never the value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import typer

ENV_PREFIX = "FLOWRUNNER_SECRET_"
# A secrets file is a handful of lines; anything this large is the wrong file.
MAX_FILE_BYTES = 1024 * 1024
_FILE_HINT = "--secrets-file"
_FLAG_HINT = "--secret"


def collect_secrets(
    *,
    environ: Mapping[str, str],
    file: Path | None,
    pairs: Iterable[str],
) -> dict[str, Any]:
    """The run's secrets from every source, later ones overriding earlier ones."""
    secrets: dict[str, Any] = from_environment(environ)
    if file is not None:
        secrets.update(from_file(file))
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter("expected KEY=VALUE", param_hint=_FLAG_HINT)
        secrets[_checked_key(key.strip(), _FLAG_HINT)] = _checked_value(value, _FLAG_HINT)
    return secrets


def from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """``FLOWRUNNER_SECRET_<KEY>`` variables; settings that share the prefix are not secrets."""
    from flowrunner.config import Settings
    from flowrunner.secrets.vault import KEY_PATTERN

    settings = {f"FLOWRUNNER_{name.upper()}" for name in Settings.model_fields}
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in settings:
            continue
        key = name[len(ENV_PREFIX) :]
        if KEY_PATTERN.match(key):  # a stray variable is not worth refusing to run for
            out[key] = value
    return out


def from_file(path: Path) -> dict[str, Any]:
    """A dotenv file (``KEY=VALUE`` lines) or, for ``.json`` or text starting with ``{``,
    a JSON object whose values are strings or objects (structured secrets)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise typer.BadParameter(
                f"{path} is larger than {MAX_FILE_BYTES} bytes", param_hint=_FILE_HINT
            )
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {path}: {exc.strerror}", param_hint=_FILE_HINT
        ) from exc
    except UnicodeDecodeError as exc:
        raise typer.BadParameter(f"{path} is not UTF-8 text", param_hint=_FILE_HINT) from exc
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        return _from_json(path, text)
    return _from_dotenv(path, text)


def _from_json(path: Path, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            param_hint=_FILE_HINT,
        ) from exc
    if not isinstance(data, dict):
        raise typer.BadParameter(
            f"{path} must hold a JSON object of name → value", param_hint=_FILE_HINT
        )
    where = f"{path}"
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(value, str | dict):
            raise typer.BadParameter(
                f"{where}: secret '{_checked_key(key, _FILE_HINT)}' must be a string or an object",
                param_hint=_FILE_HINT,
            )
        out[_checked_key(key, _FILE_HINT)] = _checked_value(value, _FILE_HINT)
    return out


def _from_dotenv(path: Path, text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        if not sep:
            raise typer.BadParameter(f"{path}:{number}: expected KEY=VALUE", param_hint=_FILE_HINT)
        hint = f"{_FILE_HINT} ({path}:{number})"
        out[_checked_key(key.strip(), hint)] = _checked_value(_dotenv_value(value.strip()), hint)
    return out


def _dotenv_value(value: str) -> str:
    """Quotes are removed (double quotes understand ``\\n``, ``\\"`` and ``\\\\``); an
    unquoted value ends at `` #`` (a comment), as in the dotenv files of other tools."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        if value[0] == "'":
            return inner
        escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
        out: list[str] = []
        chars = iter(inner)
        for char in chars:
            if char == "\\":
                following = next(chars, "")
                out.append(escapes.get(following, "\\" + following))
            else:
                out.append(char)
        return "".join(out)
    comment = value.find(" #")
    return value[:comment].rstrip() if comment >= 0 else value


def _checked_key(key: str, hint: str) -> str:
    from flowrunner.secrets.vault import KEY_PATTERN

    if not KEY_PATTERN.match(key):
        raise typer.BadParameter(
            f"secret name {key!r} must be letters, digits and _ (not starting with a digit), "
            "at most 128 characters",
            param_hint=hint,
        )
    return key


def _checked_value(value: Any, hint: str) -> Any:
    from flowrunner.secrets.vault import MAX_VALUE_BYTES

    if len(json.dumps(value)) > MAX_VALUE_BYTES:
        raise typer.BadParameter(
            f"a secret value is limited to {MAX_VALUE_BYTES} bytes", param_hint=hint
        )
    return value
