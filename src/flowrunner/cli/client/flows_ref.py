"""Naming a flow on the command line: by id, or by its name (exact, then any case)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flowrunner.cli.client.errors import NOT_FOUND_OR_AUTH, ClientError, UsageProblem
from flowrunner.cli.client.http import Api, segment


def find_flow(api: Api, ref: str) -> dict[str, Any] | None:
    """The flow whose id or name is ``ref``; None when there is none."""
    try:
        found: dict[str, Any] = api.get(f"/flows/{segment(ref)}")
        return found
    except ClientError as exc:
        if exc.status not in (404, 422):
            raise
    named = list(api.items("/flows", {"name": ref}))
    for same in (
        lambda f: f["name"] == ref,
        lambda f: str(f["name"]).casefold() == ref.casefold(),
    ):
        matches = [f for f in named if same(f)]
        if len(matches) == 1:
            flow: dict[str, Any] = api.get(f"/flows/{segment(matches[0]['id'])}")
            return flow
        if matches:
            ids = ", ".join(f["id"] for f in matches)
            raise ClientError(f"{len(matches)} flows are named {ref!r} ({ids}): give the id")
    return None


def resolve_flow(api: Api, ref: str) -> dict[str, Any]:
    """Like ``find_flow``, but a missing flow is an error (exit 3)."""
    flow = find_flow(api, ref)
    if flow is None:
        raise ClientError(f"no flow with the id or name {ref!r}", exit_code=NOT_FOUND_OR_AUTH)
    return flow


def read_flow_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageProblem(f"{path} is not UTF-8 text") from exc


def name_in(text: str) -> str | None:
    """``metadata.name`` of a flow's YAML, if it can be read (the server checks the rest)."""
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    metadata = document.get("metadata") if isinstance(document, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) and name else None
