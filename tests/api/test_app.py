"""The composition root's start: what ``create_app``'s lifespan leaves as it found it."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from fastapi import FastAPI

import flowrunner.api.app


@pytest.fixture
def collecting_during_start(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the cyclic collector was on while the services were built, at each start."""
    seen: list[bool] = []
    build = flowrunner.api.app.build_services

    async def building(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return await build(*args, **kwargs)

    monkeypatch.setattr(flowrunner.api.app, "build_services", building)
    return seen


async def test_the_collector_is_paused_while_the_app_starts_and_on_again_after(
    app: FastAPI, collecting_during_start: list[bool]
) -> None:
    # A start allocates far past the collector's thresholds: with the collector on, it runs
    # dozens of times (and a full pass or two) while the services are built.
    async with app.router.lifespan_context(app):
        assert gc.isenabled()
    assert collecting_during_start == [False]
    assert gc.isenabled()


async def test_an_app_started_with_the_collector_off_leaves_it_off(
    app: FastAPI, collecting_during_start: list[bool]
) -> None:
    gc.disable()
    try:
        async with app.router.lifespan_context(app):
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert collecting_during_start == [False]
