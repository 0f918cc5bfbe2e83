"""Helpers shared by the API tests: a client wrapper that logs in and makes accounts, and
small flow documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from flowrunner.accounts import PasswordHasher

Headers = dict[str, str]
ADMIN = ("admin", "admin-password-1")  # created from FLOWRUNNER_ADMIN_* at start
PASSWORD = "password-123"
YAML_TYPE = {"content-type": "application/yaml"}


def cheap_hasher() -> PasswordHasher:
    """argon2id with the cheapest parameters: Basic auth must not dominate the suite's time."""
    return PasswordHasher(time_cost=1, memory_cost=64)


def flow_yaml(name: str = "Greeter", value: str = "hi", description: str = "Says hello") -> str:
    return (
        f"metadata:\n  name: {name}\n  description: {description}\n"
        f"nodes:\n  greet:\n    type: set\n    params:\n      values: {{greeting: {value}}}\n"
    )


# Three problems on three lines: unknown node type, dangling next target, bad duration.
BROKEN_FLOW = """metadata:
  name: Broken
nodes:
  a:
    type: no.such.type
    next: {default: ghost}
  b:
    type: delay
    params: {duration: soon}
"""


@dataclass
class Api:
    client: httpx.AsyncClient
    app: FastAPI

    async def login(self, username: str, password: str) -> Headers:
        response = await self.client.post(
            "/api/v1/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    async def new_user(self, admin: Headers, username: str) -> Headers:
        response = await self.client.post(
            "/api/v1/accounts", json={"username": username, "password": PASSWORD}, headers=admin
        )
        assert response.status_code == 201, response.text
        return await self.login(username, PASSWORD)

    async def create_flow(self, headers: Headers, yaml: str | None = None) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/flows", content=yaml or flow_yaml(), headers={**headers, **YAML_TYPE}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The envelope's ``error`` object, after checking the envelope's shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details", "correlation_id"}, error
    assert error["correlation_id"] == response.headers["x-request-id"]
    return error
