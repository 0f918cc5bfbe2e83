"""Outbound webhooks: signed callbacks to other systems, through a durable outbox.

``subscriptions`` decides who gets an event (account endpoints and a flow's
``metadata.webhooks``), ``outbox`` turns an execution's status change into outbox entries the
store writes with that change, ``dispatcher`` claims due deliveries with a lease and sends them
signed (``signing``: Standard Webhooks) with retries (``retries``), bounded per endpoint and in
all (``limits``), recording each attempt (``attempts``); ``service`` is what the API calls.
Endpoint secrets are sealed with the vault's keyring (``secretbox``).

The names are imported lazily: the ``webhook`` node needs only ``signing``, not the service,
the dispatcher and what they import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowrunner.webhooks.dispatcher import Dispatcher, DispatchSettings
    from flowrunner.webhooks.outbox import EventOutbox
    from flowrunner.webhooks.runtime import WebhookRuntime, webhook_runtime
    from flowrunner.webhooks.service import WebhookService
    from flowrunner.webhooks.signing import new_secret, signature_headers

_LAZY = {
    "DispatchSettings": "flowrunner.webhooks.dispatcher",
    "Dispatcher": "flowrunner.webhooks.dispatcher",
    "EventOutbox": "flowrunner.webhooks.outbox",
    "WebhookRuntime": "flowrunner.webhooks.runtime",
    "webhook_runtime": "flowrunner.webhooks.runtime",
    "WebhookService": "flowrunner.webhooks.service",
    "new_secret": "flowrunner.webhooks.signing",
    "signature_headers": "flowrunner.webhooks.signing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flowrunner.webhooks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DispatchSettings",
    "Dispatcher",
    "EventOutbox",
    "WebhookRuntime",
    "WebhookService",
    "new_secret",
    "signature_headers",
    "webhook_runtime",
]
