"""Run one email node (or a small flow around it) in-process, with secrets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from flowrunner.definition import compile_flow, load_flow
from flowrunner.engine import Observer, RunResult
from tests.mail import SMTP_PASSWORD, SMTP_USER, Certificate, Dovecot, SmtpServer


def flow_yaml(node_type: str, params: Mapping[str, Any], *, error_edge: bool = False) -> str:
    node: dict[str, Any] = {"type": node_type, "params": dict(params)}
    nodes: dict[str, Any] = {"mail": node}
    if error_edge:
        node["next"] = {"error": "handled"}
        nodes["handled"] = {
            "type": "set",
            "params": {"values": {"failed": "${error.message}", "type": "${error.type}"}},
        }
    return yaml.safe_dump({"metadata": {"name": "Mail"}, "nodes": nodes}, allow_unicode=True)


async def run_node(
    node_type: str,
    params: Mapping[str, Any],
    *,
    secrets: Mapping[str, Any] | None = None,
    error_edge: bool = False,
    run_input: Any = None,
    observer: Observer | None = None,
) -> RunResult:
    definition = load_flow(flow_yaml(node_type, params, error_edge=error_edge))
    assert definition.warnings == [], definition.warnings
    return await compile_flow(definition).run(
        run_input or {}, secrets=secrets or {}, observer=observer
    )


def smtp_params(
    server: SmtpServer, certificate: Certificate | None, **params: Any
) -> dict[str, Any]:
    """Connection params for ``server``, the password from ``${secrets.SMTP_PASSWORD}``."""
    base: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port,
        "tls": server.tls,
        "username": SMTP_USER,
        "password": "${secrets.SMTP_PASSWORD}",
        "from": "Flowrunner Bot <bot@example.test>",
        "timeout": 20,
    }
    if certificate is not None:
        base["ca_cert"] = certificate.pem
    return {**base, **params}


def imap_params(
    server: Dovecot, certificate: Certificate, user: str, tls: str = "implicit", **params: Any
) -> dict[str, Any]:
    """Connection params for ``user``'s mailbox, the password from ``${secrets.IMAP_PASSWORD}``."""
    return {
        "imap_host": "127.0.0.1",
        "imap_port": server.imaps_port if tls == "implicit" else server.imap_port,
        "tls": tls,
        "ca_cert": certificate.pem,
        "username": user,
        "password": "${secrets.IMAP_PASSWORD}",
        "timeout": 20,
        **params,
    }


SMTP_SECRETS = {"SMTP_PASSWORD": SMTP_PASSWORD}
