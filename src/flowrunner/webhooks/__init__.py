"""Outbound webhooks: signed callbacks to other systems, through a durable outbox.

``subscriptions`` decides who gets an event (account endpoints and a flow's
``metadata.webhooks``), ``outbox`` turns an execution's status change into outbox entries the
store writes with that change, ``dispatcher`` claims due deliveries with a lease and sends them
signed (``signing``: Standard Webhooks) with retries (``retries``), bounded per endpoint and in
all (``limits``), recording each attempt (``attempts``); ``service`` is what the API calls.
Endpoint secrets are sealed with the vault's keyring (``secretbox``).
"""

from flowrunner.webhooks.dispatcher import Dispatcher, DispatchSettings
from flowrunner.webhooks.outbox import EventOutbox
from flowrunner.webhooks.runtime import WebhookRuntime, webhook_runtime
from flowrunner.webhooks.service import WebhookService
from flowrunner.webhooks.signing import new_secret, signature_headers

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
