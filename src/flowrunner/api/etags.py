"""Versions as HTTP validators, for the resources kept in numbered versions (flows, custom
node types): a read answers with the current version as its ``ETag`` (``"3"``), and a write
may send it back as ``If-Match`` so that it applies only to that version."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from flowrunner.api.errors import ApiError

IfMatch = Annotated[str | None, Header(description='current version, e.g. "3" (from ETag)')]


def etag(version: int) -> str:
    return f'"{version}"'


def if_match_version(if_match: str | None, resource: str) -> int | None:
    """The version ``If-Match`` names; None for no header or ``*`` (any version). A header
    that names no version is a 412 that says what ``resource`` wants."""
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise ApiError(412, f'If-Match must be the {resource}\'s current version, e.g. "3"')
    return int(tag)
