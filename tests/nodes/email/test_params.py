"""The email nodes' params: checked when a flow is loaded (with line:column), the IMAP search
built from the filters, and the node's own retries on a connection failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.engine import NodeEvent
from flowrunner.errors import DefinitionError
from flowrunner.nodes.email.checks import params_validator
from flowrunner.nodes.email.imap import imap_utf7
from flowrunner.nodes.email.receive import search_criteria
from flowrunner.plugins import builtin_registry
from tests.mail import silent_server

WRONG_PARAM = """\
metadata: {name: Wrong}
nodes:
  mail:
    type: email.send
    params:
      smtp_host: mail.example.test
      from: bot@example.test
      to: ana@example.test
      tls: startls
      atachments: []
"""


def test_both_types_are_built_in_with_a_params_schema() -> None:
    registry = builtin_registry()
    for name in ("email.send", "email.receive"):
        node_type = registry.get(name)
        assert node_type.params_schema["additionalProperties"] is False
        assert node_type.description


def test_a_wrong_param_is_named_with_its_line_and_column() -> None:
    with pytest.raises(DefinitionError) as raised:
        load_flow(WRONG_PARAM)
    found = [(p.path, p.location, p.message) for p in raised.value.problems]
    assert found == [
        (
            "nodes.mail.params.tls",
            "9:12",
            "'startls' is not one of: implicit, starttls, none",
        ),
        ("nodes.mail.params.atachments", "10:7", "unknown key 'atachments'"),
    ]


def test_receive_requires_credentials_and_bounds_its_limit() -> None:
    flow = """\
metadata: {name: Read}
nodes:
  read:
    type: email.receive
    params: {imap_host: imap.example.test, username: ana, limit: 5000}
"""
    with pytest.raises(DefinitionError) as raised:
        load_flow(flow)
    messages = " ".join(p.message for p in raised.value.problems)
    assert "password" in messages
    assert "5000" in messages


@pytest.mark.parametrize(
    ("params", "criteria", "charset"),
    [
        ({}, ["ALL"], None),
        ({"unseen": True}, ["UNSEEN"], None),
        (
            {"from": "ana@example.test", "subject": 'say "hi"', "since": "2024-05-01"},
            ["FROM", '"ana@example.test"', "SUBJECT", '"say \\"hi\\""', "SINCE", "1-May-2024"],
            None,
        ),
        ({"before": "2024-12-31T23:00:00+00:00"}, ["BEFORE", "31-Dec-2024"], None),
        ({"subject": "Grüße"}, ["SUBJECT", '"Grüße"'], "UTF-8"),
    ],
)
def test_filters_become_imap_search_keys(
    params: dict[str, Any], criteria: list[str], charset: str | None
) -> None:
    assert search_criteria(params) == (criteria, charset)


def test_folder_names_are_written_in_modified_utf7() -> None:
    assert imap_utf7("INBOX") == "INBOX"
    assert imap_utf7("Entwürfe") == "Entw&APw-rfe"
    assert imap_utf7("A&B") == "A&-B"
    assert imap_utf7("台北") == "&U,BTFw-"


async def test_a_connection_failure_is_retried_as_the_node_says_then_takes_the_error_edge() -> None:
    with silent_server() as silent:
        port = silent.port  # closed on leaving: nothing listens there any more
    flow = f"""\
metadata: {{name: Retry}}
nodes:
  mail:
    type: email.send
    params:
          smtp_host: 127.0.0.1
          smtp_port: {port}
          tls: none
          from: bot@example.test
          to: ana@example.test
    retry: {{max_retries: 2, wait: 0}}
    next: {{error: handled}}
  handled:
    type: set
    params: {{values: {{failed: "${{error.message}}"}}}}
"""
    events: list[NodeEvent] = []
    result = await compile_flow(load_flow(flow)).run({}, observer=events.append)
    assert [e.attempt for e in events if e.kind == "retrying"] == [2, 3]
    assert result.output["failed"] == (
        f"could not connect to SMTP server 127.0.0.1:{port}: connection refused"
    )


def test_flowrunner_schema_checks_email_params_by_type() -> None:
    import json

    import jsonschema
    import yaml
    from typer.testing import CliRunner

    from flowrunner.cli.app import app

    printed = CliRunner().invoke(app, ["schema"])
    assert printed.exit_code == 0, printed.output
    validator = jsonschema.Draft202012Validator(json.loads(printed.stdout))

    def errors(text: str) -> list[str]:
        return [e.message for e in validator.iter_errors(yaml.safe_load(text))]

    example = Path(__file__).resolve().parents[3] / "examples" / "email-report.yaml"
    assert errors(example.read_text()) == []
    assert errors(WRONG_PARAM) != []
    assert errors(WRONG_PARAM.replace("startls", "starttls").replace("atachments", "cc")) == []


def test_the_resolved_params_validator_is_built_at_its_first_use() -> None:
    # The email nodes load with every server; their validators wait for a node to run.
    validator = params_validator({"type": "no-such-type"})
    with pytest.raises(jsonschema.SchemaError):
        validator()
    good = params_validator({"type": "object"})
    assert good() is good()
