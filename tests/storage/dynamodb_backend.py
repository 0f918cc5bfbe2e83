"""Registers the DynamoDB backend into the storage conformance suite.

Each test gets a table of its own (a fresh prefix), created on ``connect`` like in production
and deleted afterwards, on the session's DynamoDB-API server (the ``dynamodb_endpoint``
fixture: moto on loopback, or ``FLOWRUNNER_TEST_DYNAMODB_ENDPOINT``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from flowrunner.storage import Store
from tests.storage.backends import FakeClock, register_backend

try:
    import aioboto3

    from flowrunner.storage.dynamodb import DynamoStore
    from tests.dynamodb_server import ENDPOINT_ENV
except ImportError:  # pragma: no cover - the dynamodb extra is not installed
    aioboto3 = None


@functools.cache
def aws_session() -> Any:
    """AWS credentials from the usual chain against a configured endpoint; moto takes any.
    One session for the whole run: each new one re-reads botocore's service models."""
    if os.environ.get(ENDPOINT_ENV):
        return aioboto3.Session()
    return aioboto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")


def unique_prefix() -> str:
    return f"frtest-{os.getpid()}-{os.urandom(4).hex()}"


if aioboto3 is not None:
    from contextlib import asynccontextmanager

    @register_backend("dynamodb", marks=[pytest.mark.dynamodb])
    @asynccontextmanager
    async def dynamodb_store(
        request: pytest.FixtureRequest, clock: FakeClock
    ) -> AsyncIterator[Store]:
        endpoint: str = request.getfixturevalue("dynamodb_endpoint")
        store = DynamoStore(
            endpoint=endpoint,
            region=os.environ.get("FLOWRUNNER_DYNAMODB_REGION", "us-east-1"),
            table_prefix=unique_prefix(),
            clock=clock,
            session=aws_session(),
        )
        await store.connect()
        try:
            yield store
        finally:
            await store.drop_table()
            await store.close()
