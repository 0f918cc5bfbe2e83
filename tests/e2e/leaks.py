"""Grepping bytes for a secret: the plain value and every encoding a leak would take.

Secrets are tainted values (the project's rule): tests prove a value reaches no file, log,
event or answer by searching the raw bytes for each of these forms.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from tests.e2e.server import Server


def needles(value: str) -> dict[str, bytes]:
    """The plain value and the encodings a leak would take, as bytes to grep files for."""
    raw = value.encode()
    forms = {
        "plain": value,
        "json": json.dumps(value)[1:-1],
        "json-twice": json.dumps(json.dumps(value))[1:-1],
        "url": urllib.parse.quote(value, safe=""),
        "url-plus": urllib.parse.quote_plus(value),
        "url-path": urllib.parse.quote(value),
        "base64": base64.b64encode(raw).decode().rstrip("="),
        "base64-url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
    }
    for offset in (1, 2):  # embedded after 1 or 2 bytes: the stable middle of the encoding
        core = base64.b64encode(b"\0" * offset + raw).decode()[4:-4]
        forms[f"base64+{offset}"] = core
        forms[f"base64-url+{offset}"] = core.translate(str.maketrans("+/", "-_"))
    return {name: form.encode() for name, form in forms.items()}


def leaks(blob: bytes, value: str) -> list[str]:
    return [name for name, needle in needles(value).items() if needle in blob]


def data_files(server: Server) -> Iterator[Path]:
    """The database and everything beside it (-wal, -shm), not the log."""
    for path in sorted(server.data_dir.iterdir()):
        if path.is_file() and path != server.log:
            yield path


def database_bytes(server: Server) -> bytes:
    return b"".join(path.read_bytes() for path in data_files(server))
