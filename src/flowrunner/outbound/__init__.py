"""Outbound HTTP for nodes and webhooks, behind the SSRF guard (imports errors, fairness, httpx).

``AddressPolicy`` decides which destinations may be reached (policy.py), ``GuardedBackend``
enforces it on every connection, by the address it checked (backend.py), and
``guarded_client``/``shared_client`` give an httpx client built on them (client.py). Anything
that fetches a URL a user wrote goes through these.
"""

from flowrunner.outbound.backend import GuardedBackend, Resolve, system_resolve
from flowrunner.outbound.client import (
    guarded_client,
    request_slot,
    shared_client,
)
from flowrunner.outbound.policy import AddressPolicy, literal_address, refusal

__all__ = [
    "AddressPolicy",
    "GuardedBackend",
    "Resolve",
    "guarded_client",
    "literal_address",
    "refusal",
    "request_slot",
    "shared_client",
    "system_resolve",
]
