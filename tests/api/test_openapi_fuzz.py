"""Schemathesis against our own OpenAPI document: generated requests (valid and invalid) to
every operation, as the admin, must never get a 5xx and every response must match the spec
(status code, content type, headers, body schema)."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.python import asgi

from flowrunner.api import create_app
from flowrunner.config import Settings
from tests.api.helpers import ADMIN, cheap_hasher

EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}
ADMIN_BASIC = "Basic " + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()


@pytest.fixture(scope="module")
def api_schema(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[schemathesis.BaseSchema]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    shutil.copyfile(sqlite_template, data_dir / "flowrunner.db")
    app = create_app(
        Settings(
            storage="sqlite",
            data_dir=data_dir,
            database_url=f"sqlite:///{data_dir / 'flowrunner.db'}",
            secret_keys=SecretStr(Fernet.generate_key().decode()),
            admin_username=ADMIN[0],
            admin_password=SecretStr(ADMIN[1]),
            # Fuzzed logins with wrong passwords must not lock the admin out mid-run.
            login_max_failures=1_000_000,
            login_max_failures_per_client=1_000_000,
        ),
        hasher=cheap_hasher(),
    )
    yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    asgi.shutdown_lifespans()


Operation = schemathesis.APIOperation[Any, Any, Any, Any]


def fuzz(operation: Operation, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,  # no example database files left in the tree
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case[Operation]) -> None:
        case.call_and_validate(
            headers={"Authorization": ADMIN_BASIC},
            # Schema-valid is not always acceptable here: a flow's YAML, a password's length
            # or a cursor's origin are checked by the services and answered with a documented
            # 400, which JSON Schema cannot express.
            excluded_checks=[schemathesis.checks.positive_data_acceptance],
        )

    run()


# A hang guard, not a time limit: ~35 s on a quiet 2-core machine, several minutes under load;
# the default 120 s guard firing inside a hypothesis run shows up as "inconsistent results".
@pytest.mark.timeout(900)
def test_no_server_errors_and_responses_match_the_spec(
    api_schema: schemathesis.BaseSchema,
) -> None:
    # One hypothesis run per operation and mode, failures collected so one bad route does not
    # hide the others. (Schemathesis' own pytest parametrization does not run on pytest 9.)
    failures: list[str] = []
    operations: list[Operation] = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), f"the spec has an invalid operation: {result.err()}"
        operations.append(result.ok())
    assert len(operations) >= 25
    for operation in operations:
        for mode in EXAMPLES:
            try:
                fuzz(operation, mode)
            except Unsatisfiable:
                pass  # no invalid request exists for it (e.g. no parameters, no body)
            except (Exception, BaseExceptionGroup) as exc:  # reported below with its operation
                failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:2000]}")
    assert not failures, "\n\n".join(failures)
